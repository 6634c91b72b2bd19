// The worker job's vCPU and memory, checked by the real terraform: `terraform plan` of a copy of
// variables.tf alone needs no provider, so it runs here without a network and evaluates each
// variable's validation blocks as an apply would, before anything is created. The dispatcher reads
// the same values (WORKER_JOB_CPU, WORKER_JOB_MEMORY) with parseCloudRunJobDefinition; the two must
// accept and refuse the same pairs, or a deploy that terraform lets through fails at the dispatcher's
// start. Terraform isn't in Debian; this machine has it in /usr/local/bin, and CI runs here.
import { execFile, execFileSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parseCloudRunJobDefinition } from '../../packages/core/src/cloud-run-job-definition.ts';
import { TERRAFORM } from './terraform-model.ts';

const run = promisify(execFile);

function terraformInstalled(): boolean {
  try {
    execFileSync('terraform', ['version'], { stdio: 'ignore' });
    return true;
  } catch {
    return false;
  }
}

// Under CI its absence is a failure, not a skip.
const installed = terraformInstalled() || process.env.CI === 'true';

let dir: string;
beforeAll(async () => {
  if (!installed) return;
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'tf-variables-'));
  fs.copyFileSync(path.join(TERRAFORM, 'variables.tf'), path.join(dir, 'variables.tf'));
  await run('terraform', ['init', '-input=false', '-no-color'], { cwd: dir, env: terraformEnv() });
});
afterAll(() => {
  if (dir !== undefined) fs.rmSync(dir, { recursive: true, force: true });
});

function terraformEnv(): NodeJS.ProcessEnv {
  return { ...process.env, TF_IN_AUTOMATION: '1', CHECKPOINT_DISABLE: '1', TF_CLI_CONFIG_FILE: '/dev/null' };
}

/** What terraform says of these values: undefined when the plan passes, else its error's text. */
async function plan(vars: Record<string, string>): Promise<string | undefined> {
  const args = ['plan', '-input=false', '-no-color', '-lock=false', '-var', 'project_id=my-project'];
  for (const [name, value] of Object.entries(vars)) args.push('-var', `${name}=${value}`);
  try {
    await run('terraform', args, { cwd: dir, env: terraformEnv() });
    return undefined;
  } catch (err) {
    const { stderr, stdout } = err as { stderr?: string; stdout?: string };
    return `${stderr ?? ''}${stdout ?? ''}`.replace(/\s+/g, ' ');
  }
}

/** Whether the dispatcher starts with WORKER_JOB_CPU and WORKER_JOB_MEMORY as terraform sets them. */
function dispatcherTakes(cpu: string, memory: string): boolean {
  try {
    parseCloudRunJobDefinition(
      { cpu, memory },
      { cpu: 'cpu', memory: 'memory', gpu: 'gpu', timeout: 'timeout' },
    );
    return true;
  } catch {
    return false;
  }
}

describe.skipIf(!installed)('terraform’s worker_cpu and worker_memory', () => {
  it('passes the defaults (2 vCPU, 4Gi)', async () => {
    expect(await plan({})).toBeUndefined();
  });

  // Each edge of Cloud Run's table, and a step past it (https://cloud.google.com/run/docs/configuring/jobs/cpu).
  const pairs: [string, string, boolean][] = [
    ['1', '512Mi', true],
    ['1', '511Mi', false],
    ['1', '4Gi', true],
    ['1', '4097Mi', false],
    ['2', '8Gi', true],
    ['2', '9Gi', false],
    ['4', '2Gi', true],
    ['4', '1Gi', false],
    ['4', '16Gi', true],
    ['4', '17Gi', false],
    ['6', '4Gi', true],
    ['6', '3Gi', false],
    ['6', '24Gi', true],
    ['6', '25Gi', false],
    ['8', '32Gi', true],
    ['8', '33Gi', false],
    ['8', '2Gi', false],
  ];

  it('refuses at plan what Cloud Run would refuse, and the dispatcher agrees on every pair', async () => {
    // Two at a time: each plan is a process of its own, and the machine has two cores.
    const said: (string | undefined)[] = [];
    for (let i = 0; i < pairs.length; i += 2) {
      const batch = pairs.slice(i, i + 2);
      said.push(
        ...(await Promise.all(
          batch.map(([cpu, memory]) => plan({ worker_cpu: cpu, worker_memory: memory })),
        )),
      );
    }
    pairs.forEach(([cpu, memory, allowed], i) => {
      const what = `${cpu} vCPU, ${memory}`;
      if (allowed) expect(said[i], what).toBeUndefined();
      else expect(said[i], what).toMatch(/worker_memory must fit worker_cpu as Cloud Run requires/);
      expect(dispatcherTakes(cpu, memory), `the dispatcher on ${what}`).toBe(allowed);
    });
  });

  it('names a malformed value by its own check, not the table', async () => {
    const lots = await plan({ worker_memory: 'lots' });
    expect(lots).toMatch(/worker_memory must be like 4Gi or 512Mi/);
    expect(lots).not.toMatch(/must fit worker_cpu/);
    const three = await plan({ worker_cpu: '3' });
    expect(three).toMatch(/worker_cpu must be 1, 2, 4, 6 or 8/);
    expect(three).not.toMatch(/must fit worker_cpu/);
  });
});
