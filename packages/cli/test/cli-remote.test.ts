// The `pipeline` command against a deployed pipeline's interfaces, all on loopback: the identity token
// from a stub gcloud (or $PIPELINE_TOKEN) sent to a stand-in API that records it, the API's answers
// that local mode never gives (dead letters, retries across attempts, 401), and uploads to the input
// bucket through @google-cloud/storage against the fake Cloud Storage server.
import fs from 'node:fs';
import http from 'node:http';
import os from 'node:os';
import path from 'node:path';
import type { AddressInfo } from 'node:net';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { jobIdFor } from '@pipeline/core';
import { startFakeGcs, type FakeGcs } from '../../../test/support/fake-gcs.ts';
import { closedPort, cliRun } from './cli-support.ts';

let tmp: string;
beforeAll(() => {
  tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'pipeline-remote-'));
});
afterAll(() => {
  fs.rmSync(tmp, { recursive: true, force: true });
});

/** A stand-in for the dispatcher's API: `answer` decides, every request is recorded with its headers. */
async function standIn(answer: (req: http.IncomingMessage, res: http.ServerResponse) => void) {
  const requests: { method: string; url: string; authorization?: string }[] = [];
  const server = http.createServer((req, res) => {
    requests.push({ method: req.method!, url: req.url!, authorization: req.headers.authorization });
    answer(req, res);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  return {
    url,
    requests,
    close: () => new Promise<void>((resolve) => server.close(() => resolve()).closeAllConnections()),
  };
}
let api: Awaited<ReturnType<typeof standIn>> | undefined;
afterEach(async () => {
  await api?.close();
  api = undefined;
});

function json(res: http.ServerResponse, status: number, body: unknown): void {
  res.writeHead(status, { 'content-type': 'application/json' }).end(JSON.stringify(body));
}

/** An executable that stands for gcloud: records its arguments (one line per run), then `script`. */
function stubGcloud(script: string): { bin: string; calls: () => string[] } {
  const dir = fs.mkdtempSync(path.join(tmp, 'gcloud-'));
  const bin = path.join(dir, 'gcloud');
  const calls = path.join(dir, 'calls');
  fs.writeFileSync(bin, `#!/bin/sh\nprintf '%s\\n' "$*" >> '${calls}'\n${script}\n`, { mode: 0o755 });
  return {
    bin,
    calls: () => (fs.existsSync(calls) ? fs.readFileSync(calls, 'utf8').trimEnd().split('\n') : []),
  };
}

const TOKEN = 'eyJhbGciOiJSUzI1NiJ9.eyJzdWIiOiJ0ZXN0In0.c2lnbmF0dXJl';

describe('the identity token', () => {
  it('comes from gcloud auth print-identity-token, run once per invocation, as a Bearer header', async () => {
    api = await standIn((_req, res) => json(res, 200, { jobs: [] }));
    const gcloud = stubGcloud(`echo '${TOKEN}'`);
    const run = await cliRun(['jobs'], {
      PIPELINE_URL: api.url,
      PIPELINE_AUTH: 'on', // loopback gets no token unless asked: this stands for an https URL
      PIPELINE_GCLOUD: gcloud.bin,
    });
    expect(run.stderr).toBe('');
    expect(run.stdout).toBe('no jobs\n');
    expect(run.code).toBe(0);
    expect(api.requests).toEqual([
      { method: 'GET', url: '/jobs?limit=50', authorization: `Bearer ${TOKEN}` },
    ]);
    expect(gcloud.calls()).toEqual(['auth print-identity-token']);
  });

  it("is a service account's, for the dispatcher's URL, with PIPELINE_IMPERSONATE_SERVICE_ACCOUNT", async () => {
    api = await standIn((_req, res) => json(res, 200, { jobs: [] }));
    const gcloud = stubGcloud(`echo '${TOKEN}'`);
    const run = await cliRun(['jobs', '--url', `${api.url}/`], {
      PIPELINE_AUTH: 'on',
      PIPELINE_GCLOUD: gcloud.bin,
      PIPELINE_IMPERSONATE_SERVICE_ACCOUNT: 'ops@acme.iam.gserviceaccount.com',
    });
    expect(run.code).toBe(0);
    expect(gcloud.calls()).toEqual([
      `auth print-identity-token --impersonate-service-account=ops@acme.iam.gserviceaccount.com --audiences=${api.url} --include-email`,
    ]);
    expect(api.requests[0].authorization).toBe(`Bearer ${TOKEN}`);
  });

  it('is $PIPELINE_TOKEN when given, and gcloud does not run', async () => {
    api = await standIn((_req, res) => json(res, 200, { messages: [] }));
    const gcloud = stubGcloud('exit 1');
    const run = await cliRun(['deadletters'], {
      PIPELINE_URL: api.url,
      PIPELINE_AUTH: 'on',
      PIPELINE_GCLOUD: gcloud.bin,
      PIPELINE_TOKEN: TOKEN,
    });
    expect(run.code).toBe(0);
    expect(api.requests[0].authorization).toBe(`Bearer ${TOKEN}`);
    expect(gcloud.calls()).toEqual([]);
  });

  it('is not sent to a loopback http URL by default, and gcloud does not run', async () => {
    api = await standIn((_req, res) => json(res, 200, { jobs: [] }));
    const gcloud = stubGcloud(`echo '${TOKEN}'`);
    const run = await cliRun(['jobs'], { PIPELINE_URL: api.url, PIPELINE_GCLOUD: gcloud.bin });
    expect(run.code).toBe(0);
    expect(api.requests[0].authorization).toBeUndefined();
    expect(gcloud.calls()).toEqual([]);
  });

  it('is asked for before anything is sent to an https URL off this machine', async () => {
    // No connection is made (the test process may not leave loopback): the failing gcloud stops it first.
    const gcloud = stubGcloud(
      "echo 'ERROR: (gcloud.auth.print-identity-token) You do not currently have an active account selected.' >&2; exit 1",
    );
    const run = await cliRun(['jobs', '--url', 'https://dispatcher-abc-uc.a.run.app'], {
      PIPELINE_GCLOUD: gcloud.bin,
    });
    expect(run.stderr).toBe(
      `pipeline: ${gcloud.bin} auth print-identity-token failed (exit 1): ERROR: (gcloud.auth.print-identity-token) You do not currently have an active account selected.; log in with gcloud auth login, or set $PIPELINE_TOKEN\n`,
    );
    expect(run.code).toBe(1);
    expect(gcloud.calls()).toHaveLength(1);
  });

  it.each([
    {
      what: 'a gcloud that is not installed',
      env: { PIPELINE_GCLOUD: '/no/such/gcloud' },
      message:
        'pipeline: cannot run /no/such/gcloud for an identity token: not found; install the Google Cloud CLI, or set $PIPELINE_TOKEN\n',
    },
    {
      what: 'a gcloud that prints no token',
      env: { PIPELINE_GCLOUD: 'STUB:echo' },
      message: /^pipeline: \S+ auth print-identity-token printed no token\n$/,
    },
    {
      what: 'a $PIPELINE_TOKEN that is not a token',
      env: { PIPELINE_TOKEN: 'abc\r\nX-Injected: 1' },
      message: 'pipeline: $PIPELINE_TOKEN is not an identity token (a JWT: letters, digits, -, _, . and =)\n',
    },
  ])('fails clearly, exit 1, with nothing sent, for $what', async ({ env, message }) => {
    api = await standIn((_req, res) => json(res, 200, { jobs: [] }));
    const resolved = Object.fromEntries(
      Object.entries(env).map(([k, v]) => [k, v.startsWith('STUB:') ? stubGcloud(v.slice(5)).bin : v]),
    );
    const run = await cliRun(['jobs'], { PIPELINE_URL: api.url, PIPELINE_AUTH: 'on', ...resolved });
    if (typeof message === 'string') expect(run.stderr).toBe(message);
    else expect(run.stderr).toMatch(message);
    expect(run.code).toBe(1);
    expect(api.requests).toEqual([]);
  });

  it('rejects a $PIPELINE_AUTH it does not know, exit 2', async () => {
    const run = await cliRun(['jobs'], { PIPELINE_AUTH: 'yes' });
    expect(run.stderr).toMatch(/^pipeline: \$PIPELINE_AUTH must be auto, on or off, got "yes"\n/);
    expect(run.code).toBe(2);
  });

  it('explains a 401 of the dispatcher: what it checks, and how to get a token it takes', async () => {
    api = await standIn((_req, res) => json(res, 401, { error: 'unauthenticated: Wrong recipient' }));
    const withToken = await cliRun(['job', '3f2a1b'], {
      PIPELINE_URL: api.url,
      PIPELINE_AUTH: 'on',
      PIPELINE_TOKEN: TOKEN,
    });
    expect(withToken.stderr).toMatch(
      /^pipeline: 401: unauthenticated: Wrong recipient \(the dispatcher checks that the token is for its URL; .*PIPELINE_IMPERSONATE_SERVICE_ACCOUNT/,
    );
    expect(withToken.code).toBe(1);
    const without = await cliRun(['job', '3f2a1b'], { PIPELINE_URL: api.url });
    expect(without.stderr).toMatch(/^pipeline: 401: .* \(no identity token was sent: use the https URL/);
    expect(without.code).toBe(1);
  });
});

describe('answers only a deployed pipeline gives', () => {
  it('lists dead letters as a table, and replays one', async () => {
    const letters = [
      {
        id: '9120001',
        publishTime: '2026-11-20T10:00:00.000Z',
        sourceSubscription: 'projects/acme/subscriptions/pipeline-uploads-push',
        deliveryAttempts: 5,
        reason: 'malformed: data is not base64 JSON',
        attributes: {},
        data: 'garbage',
      },
      {
        id: '9120002',
        publishTime: '2026-11-20T11:30:00.000Z',
        reason: 'a storage notification\nwith a newline \u001b[31m and an escape',
        attributes: {},
        data: '{}',
      },
    ];
    api = await standIn((req, res) => {
      if (req.url === '/deadletters?limit=100') return json(res, 200, { messages: letters });
      if (req.method === 'POST' && req.url === '/deadletters/9120001/replay')
        return json(res, 200, {
          id: '9120001',
          topic: 'projects/acme/topics/pipeline-uploads',
          messageId: '77',
        });
      json(res, 404, { error: 'no such route' });
    });
    const listed = await cliRun(['deadletters'], { PIPELINE_URL: api.url });
    expect(listed.code).toBe(0);
    expect(listed.stdout).toBe(
      [
        'ID       PUBLISHED                 DELIVERIES  SUBSCRIPTION           REASON',
        '9120001  2026-11-20T10:00:00.000Z  5           pipeline-uploads-push  malformed: data is not base64 JSON',
        '9120002  2026-11-20T11:30:00.000Z  -           -                      a storage notification\\nwith a newline \\u001b[31m and an escape',
        '',
      ].join('\n'),
    );
    const replayed = await cliRun(['replay', '9120001'], { PIPELINE_URL: api.url });
    expect(replayed.stdout).toBe(
      'dead letter 9120001 published again to projects/acme/topics/pipeline-uploads as message 77\n',
    );
    expect(replayed.code).toBe(0);
    const asJson = await cliRun(['replay', '9120001', '--json'], { PIPELINE_URL: api.url });
    expect(JSON.parse(asJson.stdout)).toEqual({
      id: '9120001',
      topic: 'projects/acme/topics/pipeline-uploads',
      messageId: '77',
    });
  });

  it('follows a job across a retry: attempt 1 to its end, then attempt 2 from its start', async () => {
    // A job as the reconciler moves it: attempt 1 runs and fails, a retry waits (SCHEDULED, no log of
    // its own: the API then answers attempt 1's log, as dispatcher.readLog does), attempt 2 runs, fails.
    const logs: Record<number, string> = { 1: 'one\n', 2: '' };
    const id = '0f'.repeat(16);
    let job = { id, state: 'RUNNING', attempt: 1, attempts: [{ attempt: 1 }] };
    const script = [
      () => (logs[1] += 'two\n'),
      () => (job = { ...job, state: 'SCHEDULED', attempt: 2 }),
      () => (job = { ...job, state: 'RUNNING', attempts: [{ attempt: 1 }, { attempt: 2 }] }),
      () => (logs[2] += 'three\n'),
      () => (logs[2] += 'four\n'),
      () => (job = { ...job, state: 'FAILED' }),
    ];
    api = await standIn((req, res) => {
      const url = new URL(req.url!, 'http://x');
      if (url.pathname === `/jobs/${id}`) {
        script.shift()?.(); // every look at the job moves the story on
        return json(res, 200, job);
      }
      const asked = url.searchParams.has('attempt') ? Number(url.searchParams.get('attempt')) : job.attempt;
      const launched = job.attempts.some((a) => a.attempt === asked);
      const text = Buffer.from(logs[launched ? asked : 1]);
      const offset = url.searchParams.has('offset')
        ? Number(url.searchParams.get('offset'))
        : Math.max(0, text.length - Number(url.searchParams.get('tail') ?? 65536));
      const part = text.subarray(offset);
      res
        .writeHead(200, {
          'content-type': 'text/plain',
          'x-attempt': String(asked),
          'x-log-size': String(text.length),
          'x-next-offset': String(offset + part.length),
          'x-job-state': job.state,
        })
        .end(part);
    });
    const followed = await cliRun(['logs', id, '--follow', '--interval', '0.05'], {
      PIPELINE_URL: api.url,
    });
    expect(followed.stdout).toBe('one\ntwo\nthree\nfour\n');
    expect(followed.stderr).toBe(`(attempt 2)\n(job ${id} FAILED)\n`);
    expect(followed.code).toBe(1);
  });
});

describe('pipeline submit to a Cloud Storage bucket', () => {
  let gcs: FakeGcs;
  let proxy: Awaited<ReturnType<typeof standIn>>;
  /** What the client sent to Cloud Storage: the fake keeps objects, not their custom metadata. */
  const bodies: string[] = [];
  beforeAll(async () => {
    gcs = await startFakeGcs();
    proxy = await standIn((req, res) => {
      const chunks: Buffer[] = [];
      req.on('data', (c: Buffer) => chunks.push(c));
      req.on('end', () => {
        const body = Buffer.concat(chunks);
        if (body.length < 64 * 1024) bodies.push(body.toString('latin1'));
        const forward = http.request(
          `${gcs.url}${req.url}`,
          { method: req.method, headers: { ...req.headers, host: new URL(gcs.url).host } },
          (answer) => {
            const location = answer.headers.location?.replace(gcs.url, proxy.url);
            res.writeHead(answer.statusCode!, { ...answer.headers, ...(location && { location }) });
            answer.pipe(res);
          },
        );
        forward.end(body);
      });
    });
  });
  afterAll(async () => {
    await proxy?.close();
    await gcs?.close();
  });

  // HOME elsewhere: no Application Default Credentials of the machine running the tests are found
  // (none are needed: the client sends no credentials to an endpoint of its own).
  const storageEnv = () => ({ PIPELINE_STORAGE_ENDPOINT: proxy.url, HOME: tmp });

  it('uploads a file with its metadata and parameters; prints the generation and the job id the notification makes', async () => {
    const file = path.join(tmp, 'q3 data.csv');
    fs.writeFileSync(file, 'x,label\n1,0\n2,1\n');
    const run = await cliRun(
      [
        'submit',
        file,
        '--bucket',
        'gs://acme-input/',
        '--name',
        'uploads/q3 data.csv',
        '--runtime',
        'vm',
        '--meta',
        'team=risk',
        '--param',
        'TARGET_COLUMN=label',
      ],
      storageEnv(),
    );
    expect(run.stderr).toBe('');
    expect(run.code).toBe(0);
    const stored = gcs.get('acme-input', 'uploads/q3 data.csv')!;
    expect(stored.body.toString()).toBe('x,label\n1,0\n2,1\n');
    expect(run.stdout).toBe(
      `submitted ${file} as gs://acme-input/uploads/q3 data.csv (generation ${stored.generation}): job ${jobIdFor('acme-input', 'uploads/q3 data.csv', stored.generation)}\n`,
    );
    const metadata =
      '"metadata":{"team":"risk","pipeline-param-TARGET_COLUMN":"label","pipeline-runtime":"vm"}';
    expect(bodies.some((b) => b.includes(metadata))).toBe(true);
  });

  it('takes the bucket from $PIPELINE_INPUT_BUCKET, shows progress when asked, and prints JSON lines', async () => {
    const small = path.join(tmp, 'small.csv');
    fs.writeFileSync(small, 'a,b\n');
    const run = await cliRun(['submit', small, '--progress', '--json'], {
      ...storageEnv(),
      PIPELINE_INPUT_BUCKET: 'acme-input',
    });
    expect(run.code).toBe(0);
    const { generation } = gcs.get('acme-input', 'small.csv')!;
    expect(JSON.parse(run.stdout)).toEqual({
      file: small,
      bucket: 'acme-input',
      name: 'small.csv',
      generation,
      job: jobIdFor('acme-input', 'small.csv', generation),
    });
    expect(run.stderr).toBe('small.csv  [########################] 100%  4 B of 4 B\n');
  });

  it('shows a progress bar for a file of 8 MiB or more without being asked; none for a small one', async () => {
    const big = path.join(tmp, 'big.csv');
    const data = Buffer.alloc(9 * 1024 * 1024, 'a,b\n');
    fs.writeFileSync(big, data);
    const run = await cliRun(['submit', big, '--bucket', 'acme-input'], storageEnv());
    expect(run.code).toBe(0);
    expect(gcs.get('acme-input', 'big.csv')!.body.equals(data)).toBe(true);
    const lines = run.stderr.trimEnd().split('\n');
    expect(lines.length).toBeGreaterThan(2);
    expect(lines.at(-1)).toBe('big.csv  [########################] 100%  9 MiB of 9 MiB');
    const percents = lines.map((line) => Number(/(\d+)%/.exec(line)![1]));
    expect(percents).toEqual([...percents].sort((a, b) => a - b));

    const small = path.join(tmp, 'quiet.csv');
    fs.writeFileSync(small, 'a,b\n');
    const quiet = await cliRun(['submit', small, '--bucket', 'acme-input'], storageEnv());
    expect(quiet.code).toBe(0);
    expect(quiet.stderr).toBe('');
  });

  it('says which upload failed and why, exit 1', async () => {
    const file = path.join(tmp, 'lost.csv');
    fs.writeFileSync(file, 'a,b\n');
    const port = await closedPort();
    const run = await cliRun(['submit', file, '--bucket', 'acme-input'], {
      PIPELINE_STORAGE_ENDPOINT: `http://127.0.0.1:${port}`,
      HOME: tmp,
    });
    expect(run.stderr).toMatch(
      new RegExp(`^pipeline: uploading ${file} to gs://acme-input/lost.csv failed: .*ECONNREFUSED`),
    );
    expect(run.code).toBe(1);
  });
});
