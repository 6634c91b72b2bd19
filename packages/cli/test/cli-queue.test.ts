// The queue from the command line, against a dispatcher whose jobs wait (queued-jobs.ts): jobs --state
// queued in launch order with positions and reasons, capacity with its limits, use, ceilings and
// queue, and one job's queue entry and zone refusals; for people and with --json.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { cliRun as run } from './cli-support.ts';
import {
  STOCKOUT,
  startQueuedJobs,
  WAITING,
  ZONE_REFUSAL,
  type QueuedJobs,
} from '../../../services/dispatcher/test/queued-jobs.ts';

let queued: QueuedJobs;

beforeAll(async () => {
  queued = await startQueuedJobs();
});
afterAll(async () => {
  await queued?.stop();
});

const pipelineCommand = (args: string[]) => run(args, { PIPELINE_URL: queued.url });
const idOf = (name: string) => queued.jobs[name].id;

const MAX_CONCURRENT = "waiting for rule one-at-a-time's maxConcurrent: 1 of 1 launched or running";
const VCPUS = 'waiting for capacity: vCPU quota in us-central1: 8 of 12 in use, this job needs 8';
const REFUSED = `launch on vm refused for now: ${STOCKOUT}; tried again after `;
/** How long a job has waited: tenths of seconds below a minute. */
const WAITED = String.raw`(\d+\.\d s|\d+m( \d+s)?)`;
const waited = expect.stringMatching(new RegExp(`^${WAITED}$`));

describe('pipeline jobs --state queued', () => {
  it('lists what waits in launch order, with its position, rule, target, wait and reason', async () => {
    const { code, stdout, stderr } = await pipelineCommand(['jobs', '--state', 'queued']);
    expect(stderr).toBe('');
    expect(code).toBe(0);
    const lines = stdout.trimEnd().split('\n');
    expect(lines[0]).toMatch(/^POS +ID +TARGET +RULE +WAITED +SOURCE +REASON$/);
    const rows = [
      ['1', 'gpu/a.csv', 'vm', 'gpu', REFUSED],
      ['2', 'one/b.csv', 'cloud-run-job', 'one-at-a-time', MAX_CONCURRENT],
      ['3', 'big/b.csv', 'vm', 'big', VCPUS],
      ['4', 'one/c.csv', 'cloud-run-job', 'one-at-a-time', MAX_CONCURRENT],
    ];
    expect(lines.slice(1).map((line) => line.split(/ {2,}/).slice(0, 5))).toEqual(
      rows.map(([pos, name, target, rule]) => [pos, idOf(name), target, rule, waited]),
    );
    rows.forEach(([, name, , , reason], i) => {
      expect(lines[i + 1]).toContain(`  input/${name}  ${reason}`);
    });
    expect(lines).toHaveLength(5);
  });

  it('says when more wait than it shows', async () => {
    const { stdout } = await pipelineCommand(['jobs', '--state', 'QUEUED', '--limit', '2']);
    const lines = stdout.trimEnd().split('\n');
    expect(lines.slice(1, 3).map((line) => line.split(/ +/)[1])).toEqual([
      idOf('gpu/a.csv'),
      idOf('one/b.csv'),
    ]);
    expect(lines[3]).toBe('(the first 2 in line; more wait: --limit N shows up to 200)');
  });

  it("prints the API's page with each job's waiting, with --json", async () => {
    const page = JSON.parse((await pipelineCommand(['jobs', '--state', 'queued', '--json'])).stdout);
    expect(page.jobs.map((job: { id: string }) => job.id)).toEqual(WAITING.map(idOf));
    expect(page.jobs[1]).toMatchObject({ state: 'QUEUED', waiting: { position: 2, reason: MAX_CONCURRENT } });
    expect(page.more).toBeUndefined();
  });
});

describe('pipeline capacity', () => {
  it('prints each limit against its use per target, the ceilings learned, and the head of the queue', async () => {
    const { code, stdout, stderr } = await pipelineCommand(['capacity']);
    expect(stderr).toBe('');
    expect(code).toBe(0);
    const [until] = /\d{4}-\d\d-\d\dT[\d:.]+Z(?= \(learned\))/.exec(stdout)!;
    const lines = stdout.trimEnd().split('\n');
    expect(lines.slice(0, 12)).toEqual([
      'capacity in us-central1',
      '  TARGET         POOL                       IN USE  LIMIT',
      '  cloud-run-job  executions                 1       10',
      '  cloud-run-job  runJob calls, last minute  1       60 per minute',
      '  vm             vCPUs                      8       12 (quota 24)',
      `  vm             nvidia-l4 GPUs             0       2 (quota 4); 1 until ${until} (learned)`,
      '  any            local slots                2       4',
      'rule caps (queue.maxConcurrent, launched or running at once): one-at-a-time 1',
      'ceilings learned from refusals',
      '  POOL               LIMIT  UNTIL                     REASON',
      `  vm nvidia-l4 GPUs  1      ${until}  ${STOCKOUT}`,
      'queue: 4 queued, in launch order',
    ]);
    expect(lines[12]).toMatch(/^ {2}POS +ID +TARGET +RULE +WAITED +REFUSALS +REASON$/);
    const rows = lines.slice(13).map((line) => line.trim().split(/ {2,}/));
    expect(rows).toEqual([
      ['1', idOf('gpu/a.csv'), 'vm', 'gpu', waited, '1', expect.stringContaining(REFUSED)],
      ['2', idOf('one/b.csv'), 'cloud-run-job', 'one-at-a-time', waited, '0', MAX_CONCURRENT],
      ['3', idOf('big/b.csv'), 'vm', 'big', waited, '0', VCPUS],
      ['4', idOf('one/c.csv'), 'cloud-run-job', 'one-at-a-time', waited, '0', MAX_CONCURRENT],
    ]);
  });

  it('shows the first --limit N of the queue, and says more wait', async () => {
    const { stdout } = await pipelineCommand(['capacity', '--limit', '1']);
    expect(stdout).toContain('\nqueue: 1+ queued, in launch order\n');
    expect(stdout.trimEnd().split('\n').at(-1)).toBe(
      '  (the first 1 in line; more wait: --limit N shows up to 200)',
    );
  });

  it("prints GET /capacity's own JSON, with --json", async () => {
    const view = JSON.parse((await pipelineCommand(['capacity', '--json'])).stdout);
    expect(view).toMatchObject({
      limits: { region: 'us-central1', vmCpus: 12, ruleMaxConcurrent: { 'one-at-a-time': 1 } },
      inUse: { cloudRunExecutions: 1, vmCpus: 8, gpus: {}, total: 2 },
      ceilings: [{ pool: 'gpus:nvidia-l4', limit: 1, reason: STOCKOUT }],
      queue: { more: false },
    });
    expect(view.queue.jobs.map((q: { id: string }) => q.id)).toEqual(WAITING.map(idOf));
  });

  it('refuses a --limit out of range, with its usage', async () => {
    const { code, stderr } = await pipelineCommand(['capacity', '--limit', '0']);
    expect(code).toBe(2);
    expect(stderr).toContain('--limit must be a whole number from 1 to 200, got "0"');
    expect(stderr).toContain('usage: pipeline capacity [--limit N]');
  });
});

describe('pipeline job', () => {
  it("shows a queued job's entry: when it joined, its place and why it waits now, its refusals", async () => {
    const { code, stdout } = await pipelineCommand(['job', idOf('gpu/a.csv')]);
    expect(code).toBe(0);
    const { queue } = (await queued.ledger.get(idOf('gpu/a.csv')))!;
    expect(stdout).toMatch(
      new RegExp(
        `\nqueued {5}${queue!.queuedAt}, waiting ${WAITED} so far; fails if not launched by ${queue!.expiresAt}\n`,
      ),
    );
    expect(stdout).toContain(`\nwaiting    #1 in line: ${REFUSED}${queue!.notBefore}\n`);
    expect(stdout).toContain('\nrefusals   1\n'); // the reason above says the refusal already
    expect(stdout).toContain(`  QUEUED    launch on vm refused for now: ${STOCKOUT}\n`);
  });

  it('shows how long a launched job waited, and the zones that refused its VM', async () => {
    const { stdout } = await pipelineCommand(['job', idOf('big/a.csv')]);
    const job = (await queued.ledger.get(idOf('big/a.csv')))!;
    expect(stdout).toContain(`\nqueued     ${job.queue!.queuedAt}, launched after 0.0 s\n`);
    expect(stdout).not.toMatch(/\n(waiting|refusals) /);
    expect(stdout).toContain(`\nrefused by zones\n  attempt 1  ${ZONE_REFUSAL}\nhistory\n`);
  });
});
