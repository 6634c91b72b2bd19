// Every wrong command line exits 2 with what is wrong, and asks the pipeline nothing: --url points
// at a loopback server that records every request, and it must see none. And the next page's hint
// keeps every option given.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startRecordingServer, type RecordingServer } from '../../../test/support/recording-server.ts';
import { CONFIG, cliRun } from './cli-support.ts';

let server: RecordingServer;
beforeAll(async () => {
  server = await startRecordingServer(() => ({ status: 200, body: { jobs: [] } }));
});
afterAll(async () => {
  await server?.close();
});

const WHOLE_ID = '3f2a1b'.padEnd(32, '0');

describe('a wrong command line', () => {
  it.each([
    { args: ['frobnicate'], message: /^unknown command "frobnicate"/ },
    { args: ['jobs', '--bogus'], message: /^Unknown option '--bogus'/ },
    { args: ['jobs', '--state', 'DONE'], message: /^--state must be one of / },
    { args: ['jobs', '--limit', '201'], message: /^--limit must be a whole number from 1 to 200/ },
    { args: ['capacity', '--limit', '0'], message: /^--limit must be a whole number/ },
    { args: ['deadletters', '--limit', 'x'], message: /^--limit must be a whole number/ },
    { args: ['job'], message: /^job takes one job ID, got 0/ },
    { args: ['job', WHOLE_ID, WHOLE_ID], message: /^job takes one job ID, got 2/ },
    {
      args: ['job', '3f2a1'],
      message: /^"3f2a1" is not a job id: give its 32 hex characters, or the first 6/,
    },
    { args: ['job', 'xyz123'], message: /^"xyz123" is not a job id/ },
    { args: ['job', `${WHOLE_ID}0`], message: /^"3f2a1b0+" is not a job id/ },
    { args: ['logs', '3f2a1'], message: /^"3f2a1" is not a job id/ },
    { args: ['logs', WHOLE_ID, '--tail', 'all'], message: /^--tail must be a whole number/ },
    { args: ['cancel'], message: /^cancel takes at least one job ID, got 0/ },
    // The bad id is the second: not even the first is asked for.
    { args: ['cancel', WHOLE_ID, 'not-an-id'], message: /^"not-an-id" is not a job id/ },
    { args: ['retry', '3f2a1b', 'g'.repeat(32)], message: /^"g{32}" is not a job id/ },
    { args: ['replay', 'not/an id'], message: /^"not\/an id" is not a message id/ },
    { args: ['run'], message: /^run takes one of --task, --image or --input/ },
    {
      args: ['run', '--task', 't', '--cron', 'every minute'],
      message: /^cron "every minute": needs 5 fields/,
    },
    { args: ['run', '--task', 't', '--cron', '61 * * * *'], message: /^cron "61 \* \* \* \*": / },
    { args: ['run', '--input', 'gs://b/o', '--cron', '* * *'], message: /^cron "\* \* \*": needs 5 fields/ },
    { args: ['run', '--task', 't', '--memory', 'lots'], message: /^--memory: "lots" is not a size/ },
    {
      args: ['run', '--task', 't', '--gpu', 'NVIDIA L4'],
      message: /^--gpu must look like nvidia-l4 or nvidia-l4:2/,
    },
    {
      args: ['run', '--task', 't', '--expected-duration', 'soon'],
      message: /^--expected-duration: "soon" is not a duration/,
    },
    { args: ['run', '--task', 't', '--at', 'tomorrow'], message: /^--at takes an ISO time/ },
    { args: ['run', '--task', 't', '--at', '+400d'], message: /^--at must be within a year, got "\+400d"/ },
    { args: ['run', '--task', 't', '--cpu', 'Infinity'], message: /^--cpu must be a positive number/ },
    { args: ['run', '--task', 'Big_Task'], message: /^--task must be a task name like logreg/ },
    { args: ['run', '--image', ' '], message: /^--image must name an image/ },
    { args: ['run', '--task', 't', '--env', '1X=y'], message: /^--env: "1X" is not a variable name/ },
    {
      args: ['run', '--task', 't', '--env', 'JOB_ID=x'],
      message: /^--env: JOB_ID is set by the pipeline itself/,
    },
    {
      args: ['run', '--task', 't', '--param', 'TARGET_COLUMN=label'],
      message: /^--param is for --input; a container run's variables go with --env NAME=VALUE/,
    },
    { args: ['run', '--image', 'busybox', '--param', 'X=y'], message: /^--param is for --input/ },
    {
      args: ['run', '--input', 'gs://b/o', '--param', 'target-column=label'],
      message: /^--param: "target-column" is not a variable name like TARGET_COLUMN/,
    },
    { args: ['run', '--input', 'gs://b/o', '--param', 'NOEQUALS'], message: /^--param takes KEY=VALUE/ },
    {
      args: ['run', '--input', 'gs://b/o', '--param', 'LD_PRELOAD=/tmp/x.so'],
      message: /^--param LD_PRELOAD: changes how programs load, run or authenticate/,
    },
    {
      args: ['submit', CONFIG, '--param', `TARGET_COLUMN=${'x'.repeat(4097)}`],
      message: /^--param TARGET_COLUMN: longer than 4096 bytes/,
    },
    { args: ['run', '--input', 'gs://b/o', '--env', 'X=y'], message: /^--env is for --task or --image/ },
    { args: ['run', '--input', 'b/o'], message: /^--input must look like gs:\/\/bucket\/object/ },
    {
      args: ['plan', 'gs://input/a.csv', '/no/such/file.csv'],
      message: /^cannot plan \/no\/such\/file.csv: ENOENT/,
    },
    { args: ['submit', CONFIG, '--param', 'A-B=1'], message: /^--param: "A-B" is not a variable name/ },
    {
      args: ['submit', CONFIG, '--param', 'X=1', '--meta', 'pipeline-param-X=2'],
      message: /^--param X and --meta pipeline-param-X say different values/,
    },
  ])('pipeline $args exits 2 and asks nothing', async ({ args, message }) => {
    const asked = server.requests.length;
    const run = await cliRun([...args, '--url', server.endpoint], { PIPELINE_AUTH: 'off' });
    expect(run.stderr.replace(/^pipeline: /, '')).toMatch(message);
    expect(run.stderr).toMatch(/\nusage: pipeline /);
    expect(run.stdout).toBe('');
    expect(run.code).toBe(2);
    expect(server.requests.slice(asked)).toEqual([]);
  });
});

describe('the next page', () => {
  it('keeps every option given, quoted for the shell where it needs it', async () => {
    const paged = await startRecordingServer(() => ({
      status: 200,
      body: { jobs: [], nextPageToken: 'c2VxOjQy' },
    }));
    try {
      const url = `${paged.endpoint}/a path`;
      const run = await cliRun(['jobs', '--state', 'failed', '--limit', '2', '--url', url]);
      expect(run.stdout).toBe(
        `no jobs\nmore: pipeline jobs --state failed --limit 2 --url '${url}' --page-token c2VxOjQy\n`,
      );
      const bare = await cliRun(['jobs'], { PIPELINE_URL: paged.endpoint });
      expect(bare.stdout.split('\n').at(-2)).toBe('more: pipeline jobs --page-token c2VxOjQy');
      expect(paged.requests.map((r) => r.query.toString())).toEqual(['limit=2&state=FAILED', 'limit=50']);
    } finally {
      await paged.close();
    }
  });
});
