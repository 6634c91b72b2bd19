// What people read: the job block (with estimates and costs when a job has them), attempts, and how
// data from the pipeline is kept from breaking tables or reaching the terminal as escape sequences.
import { describe, expect, it } from 'vitest';
import type { Job } from '@pipeline/core';
import { duration, jobDetail, jobsTable, printable, table } from '../src/format.ts';
import { capacityReport, queuedJobsTable } from '../src/queue-format.ts';
import type { CapacityView } from '../../../services/dispatcher/src/queue-view.ts';
import { runAt } from '../src/run.ts';

const JOB: Job = {
  id: '0123456789abcdef0123456789abcdef',
  state: 'FAILED',
  version: 9,
  source: {
    kind: 'object',
    object: { bucket: 'in', name: 'a\nb.csv', generation: '17', size: 3 * 1024 * 1024, metadata: {} },
  } as Job['source'],
  reason: 'rule "big" matched',
  rule: 'big',
  target: 'vm',
  attempt: 2,
  execution: 'pipeline-0123-a2',
  outputUri: 'gs://out/a/',
  logsUri: 'gs://out/a/logs/attempt-2.log',
  exitCode: 137,
  error: 'killed\nout of memory',
  createdAt: '2026-11-20T10:00:00.000Z',
  updatedAt: '2026-11-20T10:30:00.000Z',
  startedAt: '2026-11-20T10:05:00.000Z',
  finishedAt: '2026-11-20T10:30:00.000Z',
  attempts: [
    {
      attempt: 1,
      target: 'vm',
      spot: true,
      execution: 'pipeline-0123-a1',
      launchedAt: '2026-11-20T10:00:01.000Z',
      startedAt: '2026-11-20T10:01:00.000Z',
      finishedAt: '2026-11-20T10:01:42.500Z',
      outcome: 'preempted',
    },
    {
      attempt: 2,
      target: 'vm',
      spot: false,
      execution: 'pipeline-0123-a2',
      launchedAt: '2026-11-20T10:04:00.000Z',
      startedAt: '2026-11-20T10:05:00.000Z',
      finishedAt: '2026-11-20T10:30:00.000Z',
      exitCode: 137,
      outcome: 'failed',
      error: 'killed\nout of memory',
    },
  ],
  history: [{ at: '2026-11-20T10:00:00.000Z', to: 'RECEIVED' }],
};

describe('job', () => {
  it('shows route, attempts with outcomes, exit codes and durations, outputs and logs', () => {
    expect(jobDetail(JOB)).toBe(
      [
        'job        0123456789abcdef0123456789abcdef',
        'state      FAILED',
        'source     "in/a\\nb.csv" generation 17, 3 MiB',
        'route      vm (rule big)',
        'reason     rule "big" matched',
        'attempt    2',
        'execution  pipeline-0123-a2',
        'exit code  137',
        'ran        25m (2026-11-20T10:05:00.000Z to 2026-11-20T10:30:00.000Z)',
        'outputs    gs://out/a/',
        'logs       gs://out/a/logs/attempt-2.log',
        'error      killed',
        '           out of memory',
        'attempts',
        '  #  TARGET         OUTCOME    EXIT  DURATION  LAUNCHED                  EXECUTION         ERROR',
        '  1  vm (spot)      preempted  -     42.5 s    2026-11-20T10:00:01.000Z  pipeline-0123-a1',
        '  2  vm (standard)  failed     137   25m       2026-11-20T10:04:00.000Z  pipeline-0123-a2  killed',
        'history',
        '  2026-11-20T10:00:00.000Z  RECEIVED',
      ].join('\n'),
    );
  });

  it("names a batch's task beside the execution it shares", () => {
    const execution = 'projects/p/locations/r/jobs/pipeline-worker/executions/pipeline-worker-x7k2q';
    const batched: Job = {
      ...JOB,
      target: 'cloud-run-job',
      attempts: [
        {
          attempt: 1,
          target: 'cloud-run-job',
          execution,
          launchedAt: '2026-11-20T10:00:01.000Z',
          batch: { id: `batch-${'0'.repeat(24)}`, index: 7, size: 50 },
        },
      ],
    };
    expect(jobDetail(batched)).toContain(`${execution} (task 7 of 50)`);
  });

  it('shows the estimate, the places priced, and the cost when the job has them, and nothing of them when not', () => {
    const priced: Job = {
      ...JOB,
      estimate: {
        target: 'vm',
        machineType: 'e2-standard-8',
        spot: true,
        seconds: 2520,
        usd: 0.061,
        runSeconds: 2430,
        basis: 'history: 23 runs',
        options: [
          {
            target: 'vm',
            machineType: 'e2-standard-8',
            spot: true,
            seconds: 2520,
            usd: 0.061,
            feasible: true,
          },
          { target: 'cloud-run-job', seconds: 2445, usd: 0.19, feasible: true },
          { target: 'cloud-run-job', feasible: false, why: '64 GiB is over 32 GiB' },
        ],
      },
      cost: {
        usd: 0.0409,
        billedSeconds: 1600,
        detail: ['attempt 1 vm e2-standard-8 spot: 1500 s run, $0.041'],
      },
    };
    const text = jobDetail(priced);
    expect(text).toContain('\nestimate   $0.061 on vm e2-standard-8 spot, 42m (history: 23 runs)\n');
    expect(text).toContain('\ncost       $0.041 (attempt 1 vm e2-standard-8 spot: 1500 s run, $0.041)\n');
    expect(text).toContain(
      [
        'priced',
        '  PLACE                  EXPECTED  COST    NOTE',
        '  vm e2-standard-8 spot  42m       $0.061',
        '  cloud-run-job          40m 45s   $0.19',
        '  cloud-run-job          -         -       cannot: 64 GiB is over 32 GiB',
      ].join('\n'),
    );
    expect(jobDetail(JOB)).not.toMatch(/estimate|cost|priced/);
  });
});

describe('the queue', () => {
  const QUEUED: Job = {
    ...JOB,
    state: 'QUEUED',
    attempt: 1,
    attempts: [],
    exitCode: undefined,
    error: undefined,
    execution: undefined,
    startedAt: undefined,
    finishedAt: undefined,
    queue: {
      queuedAt: '2026-11-20T10:00:00.000Z',
      dueBy: '2026-11-21T10:00:00.000Z',
      expiresAt: '2026-11-21T10:00:00.000Z',
      notBefore: '2026-11-20T10:02:00.000Z',
      refusals: 2,
      reason: 'launch on vm refused for now: 429 RESOURCE_EXHAUSTED\u001b[2J',
    },
  };

  it("shows a queued job's recorded reason and backoff when the live one is not known", () => {
    const text = jobDetail(QUEUED, undefined, '2026-11-20T10:01:30.000Z');
    expect(text).toContain(
      [
        'queued     2026-11-20T10:00:00.000Z, waiting 1m 30s so far; fails if not launched by 2026-11-21T10:00:00.000Z',
        'waiting    launch on vm refused for now: 429 RESOURCE_EXHAUSTED\\u001b[2J',
        'refusals   2, not tried again before 2026-11-20T10:02:00.000Z',
        'attempt    1',
      ].join('\n'),
    );
    // Its live place and reason, when GET /capacity has them; the refusal it does not repeat is kept.
    const live = jobDetail(QUEUED, { position: 3, reason: 'behind 2 earlier jobs waiting for vCPUs' });
    expect(live).toContain('\nwaiting    #3 in line: behind 2 earlier jobs waiting for vCPUs\n');
    expect(live).toContain(
      '\nrefusals   2; last: launch on vm refused for now: 429 RESOURCE_EXHAUSTED\\u001b[2J\n',
    );
  });

  it('lists nothing queued as such, and keeps reasons from breaking the table', () => {
    expect(queuedJobsTable({ jobs: [] }, '2026-11-20T10:00:00.000Z')).toBe('nothing queued');
    const row = queuedJobsTable(
      { jobs: [{ ...QUEUED, waiting: { position: 0, reason: 'held by a launch\nunder way' } }] },
      '2026-11-20T10:00:05.000Z',
    ).split('\n')[1];
    expect(row.split(/ {2,}/)).toEqual([
      '-',
      JOB.id,
      'vm',
      'big',
      '5.0 s',
      'in/a\\nb.csv',
      'held by a launch\\nunder way',
    ]);
  });

  it('reads no limit (JSON null, as Infinity is sent) as none, in local mode without slots, and says its notes', () => {
    const view: CapacityView = JSON.parse(
      JSON.stringify({
        limits: {
          region: 'local',
          runExecutions: Infinity,
          runJobsPerMinute: Infinity,
          notes: ['the vCPU quota could not be read: 403'],
        },
        inUse: { cloudRunExecutions: 2, vmCpus: 4, gpus: { 'nvidia-l4': 1 }, total: 3 },
        runLaunchesLastMinute: 2,
        ceilings: [],
        queue: { jobs: [], more: false },
      }),
    );
    expect(capacityReport(view, '2026-11-20T10:00:00.000Z')).toBe(
      [
        'capacity (local)',
        '  TARGET         POOL                       IN USE  LIMIT',
        '  cloud-run-job  executions                 2       none',
        '  cloud-run-job  runJob calls, last minute  2       none',
        '  vm             vCPUs                      4       none',
        '  vm             nvidia-l4 GPUs             1       none',
        '  any            launched or running        3       none',
        'note: the vCPU quota could not be read: 403',
        'ceilings learned from refusals: none in force',
        'queue: nothing waits',
      ].join('\n'),
    );
  });
});

describe('tables and data', () => {
  it('aligns columns, the last one unpadded', () => {
    expect(
      table([
        ['A', 'BB', 'C'],
        ['long', 'x', 'y'],
      ]),
    ).toBe('A     BB  C\nlong  x   y');
  });

  it('escapes control characters of object names, keeping quotes and other letters', () => {
    expect(printable('a\u001b[2Jb\tc"d\u00e9\u009b')).toBe('a\\u001b[2Jb\\tc"dé\\u009b');
    const row = jobsTable([JOB]).split('\n')[1];
    expect(row).toMatch(/ in\/a\\nb\.csv$/);
  });

  it('reads durations as tenths below a minute', () => {
    expect(duration('2026-01-01T00:00:00Z', '2026-01-01T00:00:03.25Z')).toBe('3.3 s');
    expect(duration('2026-01-01T00:00:00Z', '2026-01-01T01:02:03Z')).toBe('1h 2m 3s');
    expect(duration('2026-01-01T00:00:00Z', undefined)).toBeUndefined();
  });
});

describe('run --at', () => {
  it('takes an ISO time or +DURATION, and sends UTC', () => {
    const now = Date.parse('2026-11-20T10:00:00Z');
    expect(runAt('+90m', now)).toBe('2026-11-20T11:30:00.000Z');
    expect(runAt('2026-12-01T06:00:00+01:00', now)).toBe('2026-12-01T05:00:00.000Z');
    expect(() => runAt('tomorrow', now)).toThrow(/--at takes an ISO time/);
  });
});
