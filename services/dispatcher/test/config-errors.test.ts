// A wrong setting or routing config ends `pipeline start` and the cloud dispatcher with one line that
// says what to fix, and no stack: `pipeline: <message>` and exit 2 for the CLI, one CRITICAL JSON log
// line and exit 1 for the dispatcher (src/index.ts, as Cloud Run starts it). Real processes: what is
// under test is what reaches the terminal and the log.
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { runGuarded } from '../../../test/support/run-worker.ts';
import { testCloudEnv } from './integration/test-launchers.ts';
import { pipelineCommand } from '../../../packages/cli/test/cli-support.ts';

const INDEX = path.resolve(import.meta.dirname, '../src/index.ts');
const TARGET_MESSAGE = 'rule 1 ("x"): target: must be "cloud-run-job", "vm" or "ignore", got "nope"';

let tmp: string;
let badConfig: string;
beforeAll(() => {
  tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'config-errors-'));
  badConfig = path.join(tmp, 'pipeline.config.json');
  fs.writeFileSync(badConfig, JSON.stringify({ rules: [{ name: 'x', target: 'nope' }] }));
});
afterAll(() => {
  fs.rmSync(tmp, { recursive: true, force: true });
});

describe('pipeline start', () => {
  it('with a bad routing config prints its message on one line and exits 2, starting nothing', async () => {
    const dir = path.join(tmp, 'local');
    const run = await pipelineCommand(['start', '--config', badConfig, '--port', '0', '--dir', dir]);
    expect(run.stderr).toBe(`pipeline: ${badConfig}: ${TARGET_MESSAGE}\n`);
    expect([run.code, run.stdout]).toEqual([2, '']);
    expect(fs.existsSync(dir)).toBe(false);
  });

  it('with a bad setting in the environment names it on one line and exits 2', async () => {
    const run = await pipelineCommand(['start', '--dir', path.join(tmp, 'local')], { LOCAL_CAPACITY: '0' });
    expect(run.stderr).toBe('pipeline: LOCAL_CAPACITY must be a whole number from 1 to 1000, got 0\n');
    expect([run.code, run.stdout]).toEqual([2, '']);
  });
});

describe('the cloud dispatcher', () => {
  it.each([
    {
      what: 'a bad routing config',
      env: () => testCloudEnv({ PIPELINE_CONFIG: badConfig, PORT: '0', HOST: '127.0.0.1' }),
      entry: () => ({ message: `the dispatcher cannot start: ${badConfig}: ${TARGET_MESSAGE}` }),
    },
    {
      what: 'a setting missing',
      env: () => ({ ...testCloudEnv(), REGION: '' }),
      entry: () => ({ variable: 'REGION', message: 'the dispatcher cannot start: REGION: is required' }),
    },
  ])('with $what logs one CRITICAL line saying what to fix and exits 1', async ({ env, entry }) => {
    const run = await runGuarded(INDEX, [], env());
    expect([run.code, run.stderr]).toEqual([1, '']);
    const lines = run.stdout.trimEnd().split('\n');
    expect(lines).toHaveLength(1);
    expect(JSON.parse(lines[0])).toEqual({ severity: 'CRITICAL', time: expect.any(String), ...entry() });
  });
});
