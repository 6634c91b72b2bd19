// The deploy scripts (setup.sh, deploy.sh, destroy.sh, scripts/upload.sh, scripts/results.sh), run
// for real in a temporary copy of the repository against stub `gcloud` and `terraform` commands.
// Each stub logs its arguments (one line per call, each argument base64-encoded, so spaces, quotes
// and newlines survive) and answers canned outputs. PATH holds only the stubs and links to the few
// system tools the scripts use, so no real gcloud or terraform can run and nothing leaves the machine.
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';

const REPO = path.resolve(import.meta.dirname, '../..');
const SCRIPTS = [
  'setup.sh',
  'deploy.sh',
  'destroy.sh',
  'scripts/upload.sh',
  'scripts/results.sh',
  'scripts/bake-vm-image.sh',
];
/** Sourced by setup.sh, deploy.sh and destroy.sh. */
const LIBRARIES = ['scripts/lib/common.sh'];
const SYSTEM_TOOLS = [
  'bash',
  'env',
  'dirname',
  'basename',
  'date',
  'sleep',
  'mkdir',
  'cat',
  'touch',
  'base64',
  'mktemp',
  'rm',
  'seq',
  'grep',
];
const IN_CI = process.env.CI === 'true';

function findExecutable(name: string): string | undefined {
  for (const dir of (process.env.PATH ?? '').split(path.delimiter)) {
    const candidate = path.join(dir, name);
    try {
      fs.accessSync(candidate, fs.constants.X_OK);
      if (fs.statSync(candidate).isFile()) return candidate;
    } catch {
      // not here
    }
  }
  return undefined;
}

const REAL_JQ = findExecutable('jq');

const IMAGE_URI = 'europe-west1-docker.pkg.dev/demo-project/pipeline';
const BUILD_SA = 'pipeline-build@demo-project.iam.gserviceaccount.com';
type Outputs = Record<string, { value: unknown }>;
const OUTPUTS: Outputs = Object.fromEntries(
  Object.entries({
    project_id: 'demo-project',
    region: 'europe-west1',
    zone: 'europe-west1-b',
    input_bucket: 'demo-input',
    output_bucket: 'demo-output',
    shared_bucket: 'demo-shared',
    image_uri: IMAGE_URI,
    service_name: 'pipeline-dispatcher',
    service_url: 'https://pipeline-dispatcher-xyz.a.run.app',
    job_name: 'pipeline-worker',
    uploads_topic: 'pipeline-uploads',
    completions_topic: 'pipeline-completions',
    dead_letter_topic: 'pipeline-dead-letter',
    build_service_account: `projects/demo-project/serviceAccounts/${BUILD_SA}`,
    build_source_bucket: 'demo-build',
    vm_label: 'pipeline',
  }).map(([k, v]) => [k, { value: v }]),
);
function outputsWith(changes: Record<string, unknown>): Outputs {
  const copy: Outputs = { ...OUTPUTS };
  for (const [k, v] of Object.entries(changes)) {
    if (v === undefined) delete copy[k];
    else copy[k] = { value: v };
  }
  return copy;
}

// `terraform show -json` of a deployed pipeline: the images now running, the agent's in the
// dispatcher's environment (AGENT_IMAGE); `agent: null`, a deployment from before it had one.
const stateWithImages = (agent: string | null = `${IMAGE_URI}/agent:old`) => ({
  format_version: '1.0',
  values: {
    root_module: {
      resources: [
        {
          address: 'google_cloud_run_v2_service.dispatcher[0]',
          mode: 'managed',
          type: 'google_cloud_run_v2_service',
          values: {
            template: [
              {
                containers: [
                  {
                    image: `${IMAGE_URI}/dispatcher:old`,
                    env: [
                      { name: 'WORKER_IMAGE', value: `${IMAGE_URI}/worker:old`, value_source: [] },
                      ...(agent === null ? [] : [{ name: 'AGENT_IMAGE', value: agent, value_source: [] }]),
                    ],
                  },
                ],
              },
            ],
          },
        },
        {
          address: 'google_cloud_run_v2_job.worker[0]',
          mode: 'managed',
          type: 'google_cloud_run_v2_job',
          values: { template: [{ template: [{ containers: [{ image: `${IMAGE_URI}/worker:old` }] }] }] },
        },
      ],
    },
  },
});
const STATE_WITH_IMAGES = stateWithImages();

// Both stubs log their call, fail on request (STUB_FAIL: a prefix of "command args..."), and answer.
const STUB_PRELUDE = `#!/usr/bin/env bash
set -u
{
  printf '%s' "$(basename "$0")"
  for arg in "$@"; do printf ' %s' "$(printf '%s' "$arg" | base64 -w0)"; done
  printf '\\n'
} >>"$STUB_LOG"
args=("$@")
if [[ "\${args[0]:-}" == -chdir=* ]]; then args=("\${args[@]:1}"); fi
call="$(basename "$0") \${args[*]}"
if [[ -n "\${STUB_FAIL:-}" && "$call" == "$STUB_FAIL"* ]]; then
  echo "ERROR: stub failure of $STUB_FAIL" >&2
  exit 1
fi
`;

const GCLOUD_STUB = `${STUB_PRELUDE}
case "$call" in
  "gcloud auth print-access-token"*) echo ya29.stub-token ;;
  "gcloud config get-value project"*)
    if [[ -n "\${STUB_PROJECT:-}" ]]; then echo "$STUB_PROJECT"; else echo "(unset)" >&2; echo; fi ;;
  "gcloud config get-value"*) echo "(unset)" >&2; echo ;;
  "gcloud storage ls"*)
    count=$(( $(cat "$STUB_DIR/ls-count" 2>/dev/null || echo 0) + 1 ))
    echo "$count" >"$STUB_DIR/ls-count"
    if (( count <= \${STUB_LS_FAILS:-0} )); then
      echo "ERROR: (gcloud.storage.ls) One or more URLs matched no objects." >&2
      exit 1
    fi
    echo "\${args[2]}" ;;
  "gcloud storage cat"*)
    printf '{"prefix":"%s/%s/","jobId":"j","generation":"%s"}\\n' x "\${STUB_GENERATION:-1}" "\${STUB_GENERATION:-1}" ;;
  "gcloud storage rm"*)
    if [[ -n "\${STUB_RM_EMPTY:-}" ]]; then
      echo "ERROR: (gcloud.storage.rm) The following URLs matched no objects or files:" >&2
      exit 1
    fi ;;
  "gcloud compute instances list"*) printf '%s\\n' \${STUB_VMS:-} ;;
  "gcloud compute instances get-serial-port-output"*) echo "pipeline-bake: \${STUB_BAKE:-pulled}" ;;
  "gcloud storage cp"*)
    for arg in "\${args[@]}"; do [[ "$arg" != "-" ]] || cat >/dev/null; done
    if [[ "\${args[2]}" == --recursive ]]; then touch "\${args[-1]}/_SUCCESS"; fi ;;
esac
exit 0
`;

// terraform apply fails its first STUB_APPLY_FAILS calls with STUB_APPLY_ERROR on stderr.
const TERRAFORM_STUB = `${STUB_PRELUDE}
case "$call" in
  "terraform apply"*)
    count=$(( $(cat "$STUB_DIR/apply-count" 2>/dev/null || echo 0) + 1 ))
    echo "$count" >"$STUB_DIR/apply-count"
    if (( count <= \${STUB_APPLY_FAILS:-0} )); then
      printf '%s\\n' "\${STUB_APPLY_ERROR:-Error: something}" >&2
      exit 1
    fi ;;
  "terraform output -json"*) cat "$STUB_TF_OUTPUTS" ;;
  "terraform show -json"*)
    if [[ -n "\${STUB_TF_SHOW:-}" ]]; then cat "$STUB_TF_SHOW"; else echo '{"format_version":"1.0"}'; fi ;;
esac
exit 0
`;

// Without a real jq on the machine: a stand-in for the three filters the scripts use (an output's
// value by name; the image lookup in terraform state; the dispatcher's AGENT_IMAGE there).
const JQ_STANDIN = `#!${process.execPath}
const argv = process.argv.slice(2);
const named = {};
const rest = [];
for (let i = 0; i < argv.length; i++) {
  if (argv[i] === '--arg') { named[argv[i + 1]] = argv[i + 2]; i += 2; }
  else if (argv[i] !== '-r') rest.push(argv[i]);
}
const input = JSON.parse(require('node:fs').readFileSync(0, 'utf8') || 'null');
let out;
if (rest[0].startsWith('.[$name].value')) out = input?.[named.name]?.value;
else if (rest[0].includes('"AGENT_IMAGE"')) {
  const found = [];
  const walk = (v) => {
    if (v && typeof v === 'object') {
      if (v.type === 'google_cloud_run_v2_service' && v.mode === 'managed')
        found.push(v.values?.template?.[0]?.containers?.[0]?.env?.find((e) => e.name === 'AGENT_IMAGE')?.value);
      Object.values(v).forEach(walk);
    }
  };
  walk(input);
  out = found.find((x) => x != null);
} else {
  const found = [];
  const walk = (v) => {
    if (v && typeof v === 'object') {
      if (v.type === named.type && v.mode === 'managed') {
        const t = v.values?.template?.[0];
        found.push(named.type.endsWith('_job') ? t?.template?.[0]?.containers?.[0]?.image : t?.containers?.[0]?.image);
      }
      Object.values(v).forEach(walk);
    }
  };
  walk(input);
  out = found.find((x) => x != null);
}
if (out != null) process.stdout.write(String(out) + '\\n');
`;

interface Work {
  dir: string;
  bin: string;
  sys: string;
  log: string;
}
interface Result {
  code: number | null;
  stdout: string;
  stderr: string;
  calls: string[][];
}

const workDirs: string[] = [];
afterEach(() => {
  for (const dir of workDirs.splice(0)) fs.rmSync(dir, { recursive: true, force: true });
});

/** A temporary copy of the scripts with stubs; `omit` leaves out tools (gcloud, terraform, jq). */
function makeWork(options: { omit?: string[]; outputs?: Outputs } = {}): Work {
  const omit = new Set(options.omit ?? []);
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'pipeline-scripts-'));
  workDirs.push(dir);
  for (const script of SCRIPTS) {
    fs.mkdirSync(path.dirname(path.join(dir, script)), { recursive: true });
    fs.copyFileSync(path.join(REPO, script), path.join(dir, script));
    fs.chmodSync(path.join(dir, script), 0o755);
  }
  for (const library of LIBRARIES) {
    fs.mkdirSync(path.dirname(path.join(dir, library)), { recursive: true });
    fs.copyFileSync(path.join(REPO, library), path.join(dir, library));
  }
  fs.mkdirSync(path.join(dir, 'terraform'));
  fs.writeFileSync(path.join(dir, 'cloudbuild.yaml'), 'steps: []\n');
  fs.writeFileSync(path.join(dir, 'outputs.json'), JSON.stringify(options.outputs ?? OUTPUTS));
  const bin = path.join(dir, '.stub-bin');
  const sys = path.join(dir, '.sys-bin');
  fs.mkdirSync(bin);
  fs.mkdirSync(sys);
  if (!omit.has('gcloud')) fs.writeFileSync(path.join(bin, 'gcloud'), GCLOUD_STUB, { mode: 0o755 });
  if (!omit.has('terraform')) fs.writeFileSync(path.join(bin, 'terraform'), TERRAFORM_STUB, { mode: 0o755 });
  if (!omit.has('jq')) {
    if (REAL_JQ) fs.symlinkSync(REAL_JQ, path.join(sys, 'jq'));
    else fs.writeFileSync(path.join(bin, 'jq'), JQ_STANDIN, { mode: 0o755 });
  }
  for (const tool of SYSTEM_TOOLS) {
    const found = findExecutable(tool);
    if (!found) throw new Error(`the test needs ${tool} on PATH`);
    fs.symlinkSync(found, path.join(sys, tool));
  }
  return { dir, bin, sys, log: path.join(dir, 'calls.log') };
}

function readCalls(log: string): string[][] {
  if (!fs.existsSync(log)) return [];
  return fs
    .readFileSync(log, 'utf8')
    .split('\n')
    .filter((line) => line !== '')
    .map((line) => {
      const [name, ...args] = line.split(' ');
      return [name, ...args.map((a) => Buffer.from(a, 'base64').toString('utf8'))];
    });
}

function run(
  work: Work,
  script: string,
  args: string[],
  options: { env?: Record<string, string>; input?: string; cwd?: string } = {},
): Promise<Result> {
  return new Promise((resolve, reject) => {
    const child = spawn(path.join(work.dir, script), args, {
      cwd: options.cwd ?? work.dir,
      env: {
        PATH: `${work.bin}:${work.sys}`,
        HOME: work.dir,
        LANG: 'C.UTF-8',
        STUB_LOG: work.log,
        STUB_DIR: work.dir,
        STUB_TF_OUTPUTS: path.join(work.dir, 'outputs.json'),
        ...options.env,
      },
      stdio: ['pipe', 'pipe', 'pipe'],
    });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    const timer = setTimeout(() => child.kill('SIGKILL'), 20_000);
    child.on('error', (err) => {
      clearTimeout(timer);
      reject(err);
    });
    child.on('close', (code) => {
      clearTimeout(timer);
      resolve({ code, stdout, stderr, calls: readCalls(work.log) });
    });
    child.stdin.on('error', () => {}); // the script may exit without reading its input
    child.stdin.end(options.input ?? '');
  });
}

const tf = (...args: string[]) => ['terraform', '-chdir=terraform', ...args];
const TF_OUTPUT = tf('output', '-json');
const TF_SHOW = tf('show', '-json');
const AUTH = ['gcloud', 'auth', 'print-access-token'];
const BASE_VARS = [
  '-var',
  'project_id=demo-project',
  '-var',
  'region=europe-west1',
  '-var',
  'zone=europe-west1-b',
];
const TAG = /^\d{8}-\d{6}$/; // no git repository in the copy: a timestamp

function buildCall(tag: string): string[] {
  return [
    'gcloud',
    'builds',
    'submit',
    '--project',
    'demo-project',
    '--region',
    'europe-west1',
    '--config',
    'cloudbuild.yaml',
    // As the build account terraform made, from source staged in its bucket (terraform/build.tf).
    `--service-account=projects/demo-project/serviceAccounts/${BUILD_SA}`,
    '--gcs-source-staging-dir=gs://demo-build/source',
    `--substitutions=_IMAGE_URI=${IMAGE_URI},_TAG=${tag}`,
    '.',
  ];
}
function tagOf(calls: string[][]): string {
  const build = calls.find((c) => c[1] === 'builds');
  const substitutions = build?.find((a) => a.startsWith('--substitutions=')) ?? '';
  const tag = /_TAG=(.*)$/.exec(substitutions)?.[1];
  expect(tag).toMatch(TAG);
  return tag as string;
}
const imageVars = (dispatcher: string, worker: string, agent: string) => [
  '-var',
  `dispatcher_image=${dispatcher}`,
  '-var',
  `worker_image=${worker}`,
  '-var',
  `agent_image=${agent}`,
];
const OLD_IMAGES = [
  `${IMAGE_URI}/dispatcher:old`,
  `${IMAGE_URI}/worker:old`,
  `${IMAGE_URI}/agent:old`,
] as const;
const newImages = (tag: string) =>
  [`${IMAGE_URI}/dispatcher:${tag}`, `${IMAGE_URI}/worker:${tag}`, `${IMAGE_URI}/agent:${tag}`] as const;
const applyCalls = (calls: string[][]) => calls.filter((c) => c[2] === 'apply');
// What setup.sh does before terraform's first plan (terraform cannot enable the APIs it needs for
// that, nor create the Pub/Sub service agent it grants roles to).
const BOOTSTRAP = (project: string) => [
  [
    'gcloud',
    'services',
    'enable',
    'cloudresourcemanager.googleapis.com',
    'serviceusage.googleapis.com',
    'pubsub.googleapis.com',
    '--project',
    project,
    '--quiet',
  ],
  [
    'gcloud',
    'beta',
    'services',
    'identity',
    'create',
    '--service=pubsub.googleapis.com',
    `--project=${project}`,
    '--quiet',
  ],
];
// Fast retries in tests.
const NO_PAUSE = { TF_APPLY_PAUSE_SECONDS: '0' };

describe('setup.sh', () => {
  it('applies the base, builds the three images with Cloud Build, then applies with them', async () => {
    const work = makeWork();
    const r = await run(work, 'setup.sh', ['--project', 'demo-project', '--region', 'europe-west1']);
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
    const tag = tagOf(r.calls);
    expect(r.calls).toEqual([
      AUTH,
      ...BOOTSTRAP('demo-project'),
      tf('init', '-input=false'),
      TF_SHOW,
      TF_SHOW,
      TF_SHOW,
      tf('apply', '-input=false', '-auto-approve', ...BASE_VARS, ...imageVars('', '', '')),
      TF_OUTPUT,
      buildCall(tag),
      tf('apply', '-input=false', '-auto-approve', ...BASE_VARS, ...imageVars(...newImages(tag))),
      TF_OUTPUT,
    ]);
    expect(r.stdout).toContain('https://pipeline-dispatcher-xyz.a.run.app');
    expect(r.stdout).toContain('scripts/upload.sh');
    expect(r.stdout).toContain('scripts/results.sh');
  });

  it('run again, keeps the deployed images in the base apply', async () => {
    const work = makeWork();
    const show = path.join(work.dir, 'show.json');
    fs.writeFileSync(show, JSON.stringify(STATE_WITH_IMAGES));
    const r = await run(work, 'setup.sh', ['--project', 'demo-project', '--region', 'europe-west1'], {
      env: { STUB_TF_SHOW: show },
    });
    expect(r.code).toBe(0);
    expect(applyCalls(r.calls)[0]).toEqual(
      tf('apply', '-input=false', '-auto-approve', ...BASE_VARS, ...imageVars(...OLD_IMAGES)),
    );
  });

  it('run again on a deployment from before the agent image, keeps its agent: the worker image', async () => {
    const work = makeWork();
    const show = path.join(work.dir, 'show.json');
    fs.writeFileSync(show, JSON.stringify(stateWithImages(null)));
    const r = await run(work, 'setup.sh', ['--project', 'demo-project', '--region', 'europe-west1'], {
      env: { STUB_TF_SHOW: show },
    });
    expect(r.code).toBe(0);
    const [base, withNew] = applyCalls(r.calls);
    const [dispatcher, worker] = OLD_IMAGES;
    expect(base).toEqual(
      tf('apply', '-input=false', '-auto-approve', ...BASE_VARS, ...imageVars(dispatcher, worker, worker)),
    );
    // The second apply ships the agent's own image.
    expect(withNew).toEqual(
      tf('apply', '-input=false', '-auto-approve', ...BASE_VARS, ...imageVars(...newImages(tagOf(r.calls)))),
    );
  });

  it('takes the project from gcloud config, and region and zone defaults', async () => {
    const work = makeWork();
    const r = await run(work, 'setup.sh', [], { env: { STUB_PROJECT: 'config-project' } });
    expect(r.code).toBe(0);
    expect(r.calls[0]).toEqual(['gcloud', 'config', 'get-value', 'project']);
    expect(applyCalls(r.calls)[0]).toEqual(
      tf(
        'apply',
        '-input=false',
        '-auto-approve',
        ...['-var', 'project_id=config-project', '-var', 'region=us-central1', '-var', 'zone=us-central1-b'],
        ...imageVars('', '', ''),
      ),
    );
  });

  it('stops when Cloud Build fails: its message, non-zero, no second apply', async () => {
    const work = makeWork();
    const r = await run(work, 'setup.sh', ['--project', 'demo-project'], {
      env: { STUB_FAIL: 'gcloud builds submit' },
    });
    expect(r.code).not.toBe(0);
    expect(r.stderr).toContain('stub failure of gcloud builds submit');
    expect(r.calls.at(-1)?.slice(0, 3)).toEqual(['gcloud', 'builds', 'submit']);
    expect(applyCalls(r.calls)).toHaveLength(1);
  });

  it.each([
    ['IAM propagation', 'Error: Error 403: Permission iam.serviceAccounts.actAs denied on service account'],
    [
      'a service account not yet seen',
      'Error: Error 400: Service account pipeline-worker@demo-project.iam.gserviceaccount.com does not exist.',
    ],
    [
      'Firestore index contention',
      'Error: Error 409: index already exists, or concurrent index creation is in progress',
    ],
  ])('tries a first apply that failed with %s again, and goes on', async (_label, message) => {
    const work = makeWork();
    const r = await run(work, 'setup.sh', ['--project', 'demo-project', '--region', 'europe-west1'], {
      env: { STUB_APPLY_FAILS: '1', STUB_APPLY_ERROR: message, ...NO_PAUSE },
    });
    expect(r.code).toBe(0);
    expect(r.stderr).toContain(message);
    expect(r.stderr).toMatch(/transient error .*trying again in 0s \(attempt 2 of 3\)/);
    const applies = applyCalls(r.calls);
    // The base apply twice, with the same arguments, then the build and the apply with the images.
    expect(applies).toHaveLength(3);
    expect(applies[1]).toEqual(applies[0]);
    expect(r.calls.filter((c) => c[1] === 'builds')).toHaveLength(1);
    expect(r.stdout).toContain('The pipeline is deployed');
  });

  it('stops at once when an apply fails with an error that does not pass by itself', async () => {
    const work = makeWork();
    const message = 'Error: Invalid value for variable "zone": zone must be a zone like us-central1-a.';
    const r = await run(work, 'setup.sh', ['--project', 'demo-project'], {
      env: { STUB_APPLY_FAILS: '1', STUB_APPLY_ERROR: message, ...NO_PAUSE },
    });
    expect(r.code).toBe(1);
    expect(r.stderr).toContain(message);
    expect(r.stderr).toContain('not with an error known to pass by itself');
    expect(applyCalls(r.calls)).toHaveLength(1);
    expect(r.calls.some((c) => c[1] === 'builds')).toBe(false);
  });

  it('gives up after three transient failures in a row, and says so', async () => {
    const work = makeWork();
    const r = await run(work, 'setup.sh', ['--project', 'demo-project'], {
      env: {
        STUB_APPLY_FAILS: '5',
        STUB_APPLY_ERROR: 'Error: Error 403: does not have permission',
        ...NO_PAUSE,
      },
    });
    expect(r.code).toBe(1);
    expect(r.stderr).toContain('terraform apply failed 3 times with a transient error');
    expect(applyCalls(r.calls)).toHaveLength(3);
    expect(r.calls.some((c) => c[1] === 'builds')).toBe(false);
  });

  it('stops before terraform when the Pub/Sub service agent cannot be made', async () => {
    const work = makeWork();
    const r = await run(work, 'setup.sh', ['--project', 'demo-project'], {
      env: { STUB_FAIL: 'gcloud beta services identity create' },
    });
    expect(r.code).toBe(1);
    expect(r.stderr).toContain('could not create the Pub/Sub service agent');
    expect(r.calls.filter((c) => c[0] === 'terraform')).toEqual([]);
  });

  it('stops before terraform when gcloud is not logged in', async () => {
    const work = makeWork();
    const r = await run(work, 'setup.sh', ['--project', 'demo-project'], {
      env: { STUB_FAIL: 'gcloud auth print-access-token' },
    });
    expect(r.code).toBe(1);
    expect(r.stderr).toContain('run gcloud auth login and gcloud auth application-default login');
    expect(r.calls.filter((c) => c[0] === 'terraform')).toEqual([]);
  });

  it('names a missing terraform output and builds nothing', async () => {
    const work = makeWork({ outputs: outputsWith({ image_uri: null }) });
    const r = await run(work, 'setup.sh', ['--project', 'demo-project']);
    expect(r.code).toBe(1);
    expect(r.stderr).toContain('terraform output image_uri is missing: run ./setup.sh first');
    expect(r.calls.some((c) => c[1] === 'builds')).toBe(false);
  });

  it.each([
    ['gcloud', /gcloud is not installed.*cloud\.google\.com\/sdk/],
    ['terraform', /terraform is not installed.*developer\.hashicorp\.com\/terraform\/install/],
    ['jq', /jq is not installed.*jq/],
  ])('without %s on PATH, says so and how to get it', async (tool, message) => {
    const work = makeWork({ omit: [tool] });
    const r = await run(work, 'setup.sh', ['--project', 'demo-project']);
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(message);
    expect(r.calls).toEqual([]);
  });
});

describe('deploy.sh', () => {
  it('builds new images, applies them with terraform, sends traffic to the latest revision', async () => {
    const work = makeWork();
    const r = await run(work, 'deploy.sh', []);
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
    const tag = tagOf(r.calls);
    expect(r.calls).toEqual([
      TF_OUTPUT,
      AUTH,
      buildCall(tag),
      tf('apply', '-input=false', '-auto-approve', ...BASE_VARS, ...imageVars(...newImages(tag))),
      [
        'gcloud',
        'run',
        'services',
        'update-traffic',
        'pipeline-dispatcher',
        '--to-latest',
        '--region',
        'europe-west1',
        '--project',
        'demo-project',
      ],
      TF_OUTPUT,
    ]);
    expect(r.stdout).toContain(`Deployed ${tag}`);
  });

  it('names a missing terraform output (nothing deployed yet)', async () => {
    const work = makeWork({ outputs: outputsWith({ service_name: null }) });
    const r = await run(work, 'deploy.sh', []);
    expect(r.code).toBe(1);
    expect(r.stderr).toContain('terraform output service_name is missing: run ./setup.sh first');
    expect(r.calls).toEqual([TF_OUTPUT]);
  });

  it('stops when terraform apply fails: no traffic change', async () => {
    const work = makeWork();
    const r = await run(work, 'deploy.sh', [], { env: { STUB_FAIL: 'terraform apply' } });
    expect(r.code).not.toBe(0);
    expect(r.stderr).toContain('stub failure of terraform apply');
    expect(r.calls.some((c) => c[3] === 'update-traffic')).toBe(false);
  });
});

describe('destroy.sh', () => {
  const destroyVars = [...BASE_VARS, ...imageVars(...OLD_IMAGES), '-var', 'deletion_protection=false'];
  const rm = (bucket: string) => [
    'gcloud',
    'storage',
    'rm',
    '--recursive',
    '--all-versions',
    `gs://${bucket}/**`,
  ];
  const listVms = [
    'gcloud',
    'compute',
    'instances',
    'list',
    '--project',
    'demo-project',
    '--zones',
    'europe-west1-b',
    '--filter',
    'labels.pipeline=pipeline',
    '--format',
    'value(name)',
  ];
  const withState = (work: Work) => {
    const show = path.join(work.dir, 'show.json');
    fs.writeFileSync(show, JSON.stringify(STATE_WITH_IMAGES));
    return { STUB_TF_SHOW: show };
  };

  it('--yes: lifts deletion protection, empties the buckets, destroys', async () => {
    const work = makeWork();
    const r = await run(work, 'destroy.sh', ['--yes'], { env: withState(work) });
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
    expect(r.calls).toEqual([
      TF_OUTPUT,
      AUTH,
      TF_SHOW,
      TF_SHOW,
      TF_SHOW,
      tf('apply', '-input=false', '-auto-approve', ...destroyVars),
      listVms,
      rm('demo-input'),
      rm('demo-output'),
      rm('demo-shared'),
      tf('destroy', '-input=false', '-auto-approve', ...destroyVars),
    ]);
  });

  it('deletes task VMs still running first: the subnet cannot be deleted while they are in it', async () => {
    const work = makeWork();
    const r = await run(work, 'destroy.sh', ['--yes'], {
      env: { ...withState(work), STUB_VMS: 'pipeline-0123-a1 pipeline-4567-a2' },
    });
    expect(r.code).toBe(0);
    const listed = r.calls.findIndex((c) => c[2] === 'instances' && c[3] === 'list');
    expect(r.calls[listed]).toEqual(listVms);
    expect(r.calls[listed + 1]).toEqual([
      'gcloud',
      'compute',
      'instances',
      'delete',
      'pipeline-0123-a1',
      'pipeline-4567-a2',
      '--project',
      'demo-project',
      '--zone',
      'europe-west1-b',
      '--quiet',
    ]);
    expect(r.calls.at(-1)?.[2]).toBe('destroy');
  });

  it('tolerates empty buckets', async () => {
    const work = makeWork();
    const r = await run(work, 'destroy.sh', ['--yes'], { env: { ...withState(work), STUB_RM_EMPTY: '1' } });
    expect(r.code).toBe(0);
    expect(r.stdout).toContain('already empty');
    expect(r.calls.at(-1)?.[2]).toBe('destroy');
  });

  it('stops when a bucket cannot be emptied: no terraform destroy', async () => {
    const work = makeWork();
    const r = await run(work, 'destroy.sh', ['--yes'], {
      env: { ...withState(work), STUB_FAIL: 'gcloud storage rm' },
    });
    expect(r.code).toBe(1);
    expect(r.stderr).toContain('could not empty gs://demo-input');
    expect(r.calls.some((c) => c[2] === 'destroy')).toBe(false);
  });

  it.each([
    ['a wrong answer', 'other-project\n'],
    ['no answer', ''],
  ])('without --yes, refuses on %s and deletes nothing', async (_label, input) => {
    const work = makeWork();
    const r = await run(work, 'destroy.sh', [], { input });
    expect(r.code).toBe(1);
    expect(r.stderr).toContain('Type the project id (demo-project)');
    expect(r.stderr).toContain('not confirmed');
    expect(r.calls).toEqual([TF_OUTPUT]);
  });

  it('without --yes, goes on when the project id is typed back', async () => {
    const work = makeWork();
    const r = await run(work, 'destroy.sh', [], { input: 'demo-project\n', env: withState(work) });
    expect(r.code).toBe(0);
    expect(r.calls.at(-1)).toEqual(tf('destroy', '-input=false', '-auto-approve', ...destroyVars));
  });
});

describe('scripts/upload.sh', () => {
  it('copies each file, with the runtime metadata and the prefix', async () => {
    const work = makeWork();
    fs.writeFileSync(path.join(work.dir, 'one.csv'), 'a,b\n');
    fs.mkdirSync(path.join(work.dir, 'data'));
    fs.writeFileSync(path.join(work.dir, 'data', 'two.csv'), 'a,b\n');
    const r = await run(work, 'scripts/upload.sh', [
      'one.csv',
      '--runtime',
      'vm',
      'data/two.csv',
      '--prefix',
      'batch/',
    ]);
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
    expect(r.calls).toEqual([
      ['terraform', `-chdir=${work.dir}/terraform`, 'output', '-json'],
      [
        'gcloud',
        'storage',
        'cp',
        '--custom-metadata=pipeline-runtime=vm',
        'one.csv',
        'gs://demo-input/batch/one.csv',
      ],
      [
        'gcloud',
        'storage',
        'cp',
        '--custom-metadata=pipeline-runtime=vm',
        'data/two.csv',
        'gs://demo-input/batch/two.csv',
      ],
    ]);
  });

  it('passes a name with spaces, quotes and $(...) as one argument, and runs none of it', async () => {
    const work = makeWork();
    const name = 'a b "c" $(touch x).csv';
    fs.writeFileSync(path.join(work.dir, name), 'a,b\n');
    const r = await run(work, 'scripts/upload.sh', [name]);
    expect(r.code).toBe(0);
    expect(r.calls.slice(1)).toEqual([['gcloud', 'storage', 'cp', name, `gs://demo-input/${name}`]]);
    expect(fs.existsSync(path.join(work.dir, 'x'))).toBe(false);
    expect(fs.existsSync(path.join(work.dir, 'scripts', 'x'))).toBe(false);
  });

  it('streams a name with wildcard characters, which gcloud would expand', async () => {
    const work = makeWork();
    fs.writeFileSync(path.join(work.dir, 'a[1].csv'), 'a,b\n');
    const r = await run(work, 'scripts/upload.sh', ['a[1].csv', '--runtime', 'cloud-run-job']);
    expect(r.code).toBe(0);
    expect(r.calls.slice(1)).toEqual([
      [
        'gcloud',
        'storage',
        'cp',
        '--custom-metadata=pipeline-runtime=cloud-run-job',
        '-',
        'gs://demo-input/a[1].csv',
      ],
    ]);
  });

  it('uploads nothing when a file is missing', async () => {
    const work = makeWork();
    fs.writeFileSync(path.join(work.dir, 'one.csv'), 'a,b\n');
    const r = await run(work, 'scripts/upload.sh', ['one.csv', 'missing.csv']);
    expect(r.code).toBe(1);
    expect(r.stderr).toContain('not a file: missing.csv');
    expect(r.calls).toEqual([]);
  });

  it('names a missing terraform output', async () => {
    const work = makeWork({ outputs: {} });
    fs.writeFileSync(path.join(work.dir, 'one.csv'), 'a,b\n');
    const r = await run(work, 'scripts/upload.sh', ['one.csv']);
    expect(r.code).toBe(1);
    expect(r.stderr).toContain('terraform output input_bucket is missing: run ./setup.sh first');
    expect(r.calls.some((c) => c[0] === 'gcloud')).toBe(false);
  });
});

describe('scripts/results.sh', () => {
  it('waits for the _LATEST pointer, then downloads everything under the generation it names', async () => {
    const work = makeWork();
    const r = await run(work, 'scripts/results.sh', ['data.csv'], {
      env: { STUB_LS_FAILS: '2', RESULTS_POLL_SECONDS: '1', STUB_GENERATION: '1763771234567890' },
    });
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
    const ls = ['gcloud', 'storage', 'ls', 'gs://demo-output/data.csv/_LATEST'];
    expect(r.calls).toEqual([
      ['terraform', `-chdir=${work.dir}/terraform`, 'output', '-json'],
      ls,
      ls,
      ls,
      ['gcloud', 'storage', 'cat', 'gs://demo-output/data.csv/_LATEST'],
      [
        'gcloud',
        'storage',
        'cp',
        '--recursive',
        'gs://demo-output/data.csv/1763771234567890/*',
        'results/data.csv',
      ],
    ]);
    expect(r.stdout).toContain('Results of data.csv (generation 1763771234567890) are in results/data.csv');
    expect(fs.existsSync(path.join(work.dir, 'results', 'data.csv', '_SUCCESS'))).toBe(true);
  });

  it("with --generation, waits for that generation's _SUCCESS and reads no pointer", async () => {
    const work = makeWork();
    const r = await run(work, 'scripts/results.sh', ['data.csv', '--generation', '42'], {
      env: { RESULTS_POLL_SECONDS: '1' },
    });
    expect(r.code, r.stderr).toBe(0);
    expect(r.calls.slice(1)).toEqual([
      ['gcloud', 'storage', 'ls', 'gs://demo-output/data.csv/42/_SUCCESS'],
      ['gcloud', 'storage', 'cp', '--recursive', 'gs://demo-output/data.csv/42/*', 'results/data.csv'],
    ]);
  });

  it('times out with a message and exit 1, downloading nothing', async () => {
    const work = makeWork();
    const r = await run(work, 'scripts/results.sh', ['data.csv', '--timeout', '1', '--dest', 'out'], {
      env: { STUB_LS_FAILS: '1000', RESULTS_POLL_SECONDS: '1' },
    });
    expect(r.code).toBe(1);
    expect(r.stderr).toContain('timed out after 1s waiting for gs://demo-output/data.csv/_LATEST');
    expect(r.calls.some((c) => c[2] === 'cp')).toBe(false);
  });
});

describe('scripts/bake-vm-image.sh', () => {
  const IMAGE = `${IMAGE_URI}/agent:7`;
  const WORKER = `${IMAGE_URI}/worker:7`;
  const SUBNET = 'projects/demo-project/regions/europe-west1/subnetworks/pipeline-tasks';
  const WORKER_SA = 'pipeline-worker@demo-project.iam.gserviceaccount.com';
  const base = ['--project', 'demo-project', '--zone', 'europe-west1-b', '--image', IMAGE];
  const creates = (r: Result) =>
    r.calls.filter((c) => c.slice(0, 4).join(' ') === 'gcloud compute instances create');

  it('bakes on the task subnet without an external IP, as the worker account, then deletes the builder', async () => {
    const work = makeWork();
    const r = await run(work, 'scripts/bake-vm-image.sh', [
      ...base,
      '--subnet',
      SUBNET,
      '--service-account',
      WORKER_SA,
    ]);
    expect(r.code, r.stderr).toBe(0);
    const [create] = creates(r);
    expect(create.join(' ')).toContain(`--subnet ${SUBNET} --no-address --service-account ${WORKER_SA}`);
    expect(create).toContain(`pipeline-bake-images=${IMAGE}`);
    const builder = create[4];
    expect(builder).toMatch(/^pipeline-bake-\d{14}$/);
    const imageCreate = r.calls.find((c) => c.slice(0, 4).join(' ') === 'gcloud compute images create')!;
    expect(imageCreate.join(' ')).toContain(`--family pipeline-worker-cos --source-disk ${builder}`);
    expect(r.calls.at(-1)!.slice(0, 5)).toEqual(['gcloud', 'compute', 'instances', 'delete', builder]);
    expect(r.stdout).toContain(
      'TF_VAR_vm_image_family=pipeline-worker-cos TF_VAR_vm_image_project=demo-project ./deploy.sh',
    );
  });

  it('pulls every --image: the agent image, and task images such as the worker image', async () => {
    const r = await run(makeWork(), 'scripts/bake-vm-image.sh', [...base, '--image', WORKER]);
    expect(r.code, r.stderr).toBe(0);
    // One metadata value, the images apart by spaces, which the builder's start-up script reads as a list.
    expect(creates(r)[0]).toContain(`pipeline-bake-images=${IMAGE} ${WORKER}`);
    expect(r.stdout).toContain(`waiting for the pull of ${IMAGE} ${WORKER}`);
  });

  it.each(['--rm', `${IMAGE} --quiet`, `${IMAGE},x`])(
    'refuses --image %j before it creates anything',
    async (image) => {
      const r = await run(makeWork(), 'scripts/bake-vm-image.sh', [...base, '--image', image]);
      expect(r.code).toBe(2);
      expect(r.stderr).toContain(`not an image reference: ${image}`);
      expect(r.calls).toEqual([]);
    },
  );

  it('without them, uses the default network and account, as before', async () => {
    const r = await run(makeWork(), 'scripts/bake-vm-image.sh', base);
    expect(r.code, r.stderr).toBe(0);
    expect(creates(r)[0]).not.toContain('--subnet');
    expect(creates(r)[0]).not.toContain('--no-address');
    expect(creates(r)[0]).not.toContain('--service-account');
  });

  it('stops, says why and deletes the builder when the builder cannot pull', async () => {
    const r = await run(makeWork(), 'scripts/bake-vm-image.sh', base, { env: { STUB_BAKE: 'failed' } });
    expect(r.code).toBe(1);
    expect(r.stderr).toContain(`the builder could not pull all of ${IMAGE}`);
    expect(r.calls.some((c) => c.slice(0, 4).join(' ') === 'gcloud compute images create')).toBe(false);
    expect(r.calls.at(-1)!.slice(0, 4)).toEqual(['gcloud', 'compute', 'instances', 'delete']);
  });
});

describe('every script', () => {
  it.each([
    ['setup.sh', ['--bogus']],
    ['setup.sh', ['--project']],
    ['setup.sh', ['--project', 'demo-project', '--region', 'europe-west1', '--zone', 'us-east1-b']],
    ['deploy.sh', ['now']],
    ['destroy.sh', ['--force']],
    ['scripts/upload.sh', []],
    ['scripts/upload.sh', ['--runtime', 'gpu', 'one.csv']],
    ['scripts/upload.sh', ['one.csv', '--bogus']],
    ['scripts/results.sh', []],
    ['scripts/results.sh', ['a.csv', 'b.csv']],
    ['scripts/results.sh', ['a.csv', '--timeout', 'soon']],
    ['scripts/results.sh', ['a.csv', '--generation', 'latest']],
    ['scripts/bake-vm-image.sh', ['--project', 'demo-project']],
    ['scripts/bake-vm-image.sh', ['--network', 'default']],
  ])('%s %j prints its usage and exits 2', async (script, args) => {
    const work = makeWork();
    const r = await run(work, script, args);
    expect(r.stderr).toContain('usage:');
    expect(r.code).toBe(2);
    expect(r.calls.filter((c) => c[0] === 'terraform' || c[1] !== 'config')).toEqual([]);
  });

  it.each(SCRIPTS)('%s is executable', (script) => {
    expect(fs.statSync(path.join(REPO, script)).mode & 0o111).not.toBe(0);
  });

  const shellcheck = findExecutable('shellcheck');
  if (!shellcheck && !IN_CI) console.warn('shellcheck is not installed: skipping the shellcheck test');
  it.skipIf(!shellcheck && !IN_CI)('is shellcheck clean', async () => {
    expect(shellcheck, 'shellcheck is required in CI').toBeDefined();
    const r = await new Promise<{ code: number | null; out: string }>((resolve, reject) => {
      const child = spawn(shellcheck as string, ['-x', ...SCRIPTS, ...LIBRARIES], {
        cwd: REPO,
        stdio: ['ignore', 'pipe', 'pipe'],
      });
      let out = '';
      child.stdout.on('data', (d: Buffer) => (out += d.toString()));
      child.stderr.on('data', (d: Buffer) => (out += d.toString()));
      child.on('error', reject);
      child.on('close', (code) => resolve({ code, out }));
    });
    expect(r.out).toBe('');
    expect(r.code).toBe(0);
  });
});
