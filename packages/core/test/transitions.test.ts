// Each transition as a table: a starting job, an event, and the job it makes (its state, the entry it
// adds to the history, its attempt record), or nothing when the event no longer applies to the job.
import { describe, expect, it } from 'vitest';
import {
  adopted,
  cancelled,
  claimedWhenDue,
  DEFAULT_PRICES,
  endAttempt,
  failedInQueue,
  jobIdFor,
  launchFailed,
  launching,
  newJob,
  newScheduledJob,
  notedOnce,
  noticedGone,
  parseRoutingConfig,
  placeJob,
  refusedPastMaxQueue,
  requeued,
  retried,
  routed,
  started,
  transition,
  type AttemptResult,
  type Job,
  type JobHistoryEntry,
  type JobState,
  type Placement,
} from '../src/index.ts';

const at = (seconds: number) => new Date(Date.UTC(2026, 2, 1, 0, 0, seconds)).toISOString();
const CREATED = at(0);
const QUEUED_AT = at(1);
const LAUNCHED_AT = at(2);
const STARTED_AT = at(3);
const NOW = at(600);
const OBJECT = { bucket: 'input', name: 'q3.csv', generation: '7', size: 2048, metadata: {} };
const ROUTING = parseRoutingConfig({
  rules: [
    { name: 'vms', match: { path: 'vm/**' }, target: 'vm', job: { task: 'logreg', spot: true } },
    {
      name: 'csv',
      match: { path: '**' },
      target: 'cloud-run-job',
      job: { task: 'logreg', cpu: 1, memory: '2GiB' },
      queue: { maxQueueTime: '1h' },
    },
  ],
});
const uriOf = (path: string) => `gs://output/${path}`;

/** An upload's own job (its id from the object: it writes under the object's name and generation). */
function received(name = OBJECT.name): Job {
  const object = { ...OBJECT, name };
  return newJob(jobIdFor(object.bucket, name, object.generation), { kind: 'object', object }, CREATED);
}
/** Where ROUTING places q3.csv: the csv rule, on Cloud Run. */
const PLACED = placeJob(received(), ROUTING) as Extract<Placement, { kind: 'launch' }>;
function queued(name?: string): Job {
  const job = received(name);
  return routed(job, placeJob(job, ROUTING), QUEUED_AT, ROUTING, uriOf);
}
function launched(name?: string): Job {
  return launching(queued(name), 1, LAUNCHED_AT)!;
}
function adoptedRun(name?: string): Job {
  return adopted(launched(name), 1, LAUNCHED_AT, { execution: 'exec-1' })!;
}
function running(name?: string): Job {
  return started(adoptedRun(name), 1, STARTED_AT)!;
}
/** A job that ended as `state` (FAILED by its launch, or CANCELLED while queued). */
function ended(state: 'FAILED' | 'CANCELLED'): Job {
  return state === 'FAILED'
    ? launchFailed(launched(), 1, NOW, 'launch on cloud-run-job failed: 403')!
    : cancelled(queued(), NOW, DEFAULT_PRICES);
}
const lastEntry = (job: Job) => job.history.at(-1);
const currentRecord = (job: Job) => job.attempts.at(-1);

/** What a row expects of the job a transition made. */
interface Expected {
  state: JobState;
  history: Omit<JobHistoryEntry, 'at'> & { at?: string };
  attempt?: number;
  /** Of the last attempt record; null: the job has no attempt record. */
  record?: Record<string, unknown> | null;
  fields?: Partial<Record<keyof Job, unknown>>;
}

function check(before: Job, after: Job | undefined, expected: Expected, when: string): void {
  expect(after).toBeDefined();
  const job = after!;
  expect(job.state).toBe(expected.state);
  expect(job.version).toBe(before.version + 1);
  expect(job.updatedAt).toBe(when);
  expect(job.history.slice(0, -1)).toEqual(before.history);
  expect(lastEntry(job)).toEqual({ at: when, ...expected.history });
  expect(job.attempt).toBe(expected.attempt ?? before.attempt);
  if (expected.record === null) expect(job.attempts.filter((a) => a.attempt === job.attempt)).toEqual([]);
  else if (expected.record !== undefined) expect(currentRecord(job)).toEqual(expected.record);
  if (expected.fields !== undefined) expect(job).toMatchObject(expected.fields);
}

describe('routed', () => {
  const fail: Placement = { kind: 'fail', error: 'pipeline-runtime "gpu" is not a runtime' };
  const ignore: Placement = { kind: 'ignore', rule: 'skip-images', reason: 'images are skipped' };
  const rows: { name: string; job: Job; placement: Placement; expected: Expected }[] = [
    {
      name: 'a launch: QUEUED with its route, outputs, and its rule maxQueueTime as its wait',
      job: received(),
      placement: PLACED,
      expected: {
        state: 'QUEUED',
        history: { from: 'RECEIVED', to: 'QUEUED', detail: PLACED.reason },
        fields: {
          rule: 'csv',
          target: 'cloud-run-job',
          outputUri: 'gs://output/q3.csv/7/',
          logsUri: 'gs://output/q3.csv/7/logs/attempt-1.log',
          queue: { queuedAt: QUEUED_AT, dueBy: at(3601), expiresAt: at(3601), refusals: 0 },
        },
      },
    },
    {
      name: 'a launch without a queue policy: a day to wait, and a later attempt says so',
      job: { ...received('vm/a.csv'), attempt: 2 },
      placement: placeJob(received('vm/a.csv'), ROUTING),
      expected: {
        state: 'QUEUED',
        history: { from: 'RECEIVED', to: 'QUEUED', detail: 'attempt 2 queued for vm' },
        attempt: 2,
        fields: {
          rule: 'vms',
          target: 'vm',
          logsUri: 'gs://output/vm/a.csv/7/logs/attempt-2.log',
          queue: { expiresAt: at(1 + 24 * 3600), dueBy: at(1 + 24 * 3600) },
        },
      },
    },
    {
      name: 'a placement that fails: FAILED with its error',
      job: received(),
      placement: fail,
      expected: {
        state: 'FAILED',
        history: { from: 'RECEIVED', to: 'FAILED', detail: fail.error },
        fields: { error: fail.error, finishedAt: QUEUED_AT },
      },
    },
    {
      name: 'an ignore rule: IGNORED with its reason and rule',
      job: received(),
      placement: ignore,
      expected: {
        state: 'IGNORED',
        history: { from: 'RECEIVED', to: 'IGNORED', detail: 'images are skipped' },
        fields: { reason: 'images are skipped', rule: 'skip-images' },
      },
    },
  ];
  it.each(rows)('$name', ({ job, placement, expected }) => {
    check(job, routed(job, placement, QUEUED_AT, ROUTING, uriOf), expected, QUEUED_AT);
  });

  it('orders a cost-mode rule by its deadline when that comes before its maxQueueTime', () => {
    const routing = parseRoutingConfig({
      rules: [
        {
          name: 'soon',
          mode: 'cost',
          deadline: '10m',
          target: ['cloud-run-job', 'vm'],
          job: { task: 'logreg' },
          queue: { maxQueueTime: '1h' },
        },
      ],
    });
    const job = routed(received(), placeJob(received(), routing), QUEUED_AT, routing, uriOf);
    expect(job.queue).toMatchObject({ dueBy: at(601), expiresAt: at(3601) });
  });
});

describe('the launch of an attempt', () => {
  const rows: { name: string; job: Job; event: (job: Job) => Job | undefined; expected: Expected }[] = [
    {
      name: 'launching: LAUNCHED with a fresh record of the attempt',
      job: queued(),
      event: (job) => launching(job, 1, LAUNCHED_AT),
      expected: {
        state: 'LAUNCHED',
        history: { from: 'QUEUED', to: 'LAUNCHED', detail: 'launching on cloud-run-job' },
        record: {
          attempt: 1,
          target: 'cloud-run-job',
          logsUri: 'gs://output/q3.csv/7/logs/attempt-1.log',
          launchedAt: LAUNCHED_AT,
        },
      },
    },
    {
      name: 'launching on a spot VM says so, and replaces an interrupted record of the same attempt',
      job: {
        ...queued('vm/a.csv'),
        attempts: [{ attempt: 1, target: 'vm', launchedAt: at(1), outcome: 'interrupted' }],
      },
      event: (job) => launching(job, 1, LAUNCHED_AT),
      expected: {
        state: 'LAUNCHED',
        history: { from: 'QUEUED', to: 'LAUNCHED', detail: 'launching on vm (spot)' },
        record: {
          attempt: 1,
          target: 'vm',
          spot: true,
          logsUri: 'gs://output/vm/a.csv/7/logs/attempt-1.log',
          launchedAt: LAUNCHED_AT,
        },
      },
    },
    {
      name: 'a launch failed for good: FAILED, and its attempt too',
      job: launched(),
      event: (job) => launchFailed(job, 1, NOW, 'launch on cloud-run-job failed: 403'),
      expected: {
        state: 'FAILED',
        history: { from: 'LAUNCHED', to: 'FAILED', detail: 'launch on cloud-run-job failed: 403' },
        record: {
          attempt: 1,
          target: 'cloud-run-job',
          logsUri: 'gs://output/q3.csv/7/logs/attempt-1.log',
          launchedAt: LAUNCHED_AT,
          outcome: 'failed',
          error: 'launch on cloud-run-job failed: 403',
          finishedAt: NOW,
        },
        fields: { error: 'launch on cloud-run-job failed: 403', finishedAt: NOW },
      },
    },
    {
      name: 'a refusal for now: QUEUED again as the same attempt, at its place, after a backoff',
      job: launched(),
      event: (job) =>
        requeued(job, 1, NOW, { reason: 'launch refused for now: 429', backoffMs: 4000, refusals: 2 }),
      expected: {
        state: 'QUEUED',
        history: { from: 'LAUNCHED', to: 'QUEUED', detail: 'launch refused for now: 429' },
        record: null,
        fields: {
          queue: {
            queuedAt: QUEUED_AT,
            dueBy: at(3601),
            expiresAt: at(3601),
            notBefore: at(604),
            refusals: 2,
            reason: 'launch refused for now: 429',
          },
        },
      },
    },
    {
      name: 'a launch found absent: QUEUED again at once, its refusals as they were',
      job: { ...launched(), queue: { ...launched().queue!, refusals: 3 } },
      event: (job) => requeued(job, 1, NOW, { reason: 'started nothing', backoffMs: 0 }),
      expected: {
        state: 'QUEUED',
        history: { from: 'LAUNCHED', to: 'QUEUED', detail: 'started nothing' },
        record: null,
        fields: { queue: { queuedAt: QUEUED_AT, refusals: 3, reason: 'started nothing' } },
      },
    },
    {
      name: 'refused after its wait ran out: FAILED, and the attempt that never ran is dropped',
      job: launched(),
      event: (job) => refusedPastMaxQueue(job, 1, NOW, 'no capacity came within its maxQueueTime'),
      expected: {
        state: 'FAILED',
        history: { from: 'LAUNCHED', to: 'FAILED', detail: 'no capacity came within its maxQueueTime' },
        record: null,
        fields: { error: 'no capacity came within its maxQueueTime', finishedAt: NOW },
      },
    },
    {
      name: 'a queued job that can never fit: FAILED in the queue',
      job: queued(),
      event: (job) => failedInQueue(job, 1, NOW, 'needs 200 vCPUs; the region has 24'),
      expected: {
        state: 'FAILED',
        history: { from: 'QUEUED', to: 'FAILED', detail: 'needs 200 vCPUs; the region has 24' },
        fields: { error: 'needs 200 vCPUs; the region has 24', finishedAt: NOW },
      },
    },
    {
      name: 'started: RUNNING since the task said so',
      job: adoptedRun(),
      event: (job) => started(job, 1, STARTED_AT),
      expected: {
        state: 'RUNNING',
        history: { from: 'LAUNCHED', to: 'RUNNING' },
        record: {
          attempt: 1,
          target: 'cloud-run-job',
          logsUri: 'gs://output/q3.csv/7/logs/attempt-1.log',
          launchedAt: LAUNCHED_AT,
          execution: 'exec-1',
          startedAt: STARTED_AT,
        },
        fields: { startedAt: STARTED_AT },
      },
    },
  ];
  it.each(rows)('$name', ({ job, event, expected }) => {
    const after = event(job);
    check(job, after, expected, after?.updatedAt ?? '');
  });

  it('adopted records the execution, its refusals and spot on the attempt and the template, in no new state', () => {
    const job = launched('vm/a.csv');
    const after = adopted(job, 1, NOW, {
      execution: 'vm-1',
      refusals: ['us-central1-a: stockout'],
      spot: false,
    })!;
    expect(after).toMatchObject({
      state: 'LAUNCHED',
      version: job.version + 1,
      updatedAt: NOW,
      execution: 'vm-1',
    });
    expect(after.history).toEqual(job.history);
    expect(after.template?.spot).toBe(false);
    expect(currentRecord(after)).toMatchObject({
      execution: 'vm-1',
      refusals: ['us-central1-a: stockout'],
      spot: false,
    });
    const plain = adopted(launched(), 1, NOW, { execution: 'exec-9', refusals: [] })!;
    expect(currentRecord(plain)).not.toHaveProperty('refusals');
    expect(currentRecord(plain)).not.toHaveProperty('spot');
    expect(plain.template).toEqual(launched().template);
  });

  const stale: { name: string; make: () => Job | undefined }[] = [
    { name: 'launching a job no longer QUEUED', make: () => launching(launched(), 1, NOW) },
    { name: 'launching another attempt', make: () => launching(queued(), 2, NOW) },
    {
      name: 'adopting a second execution',
      make: () => adopted(adoptedRun(), 1, NOW, { execution: 'exec-2' }),
    },
    { name: 'adopting for an older attempt', make: () => adopted(launched(), 0, NOW, { execution: 'x' }) },
    { name: 'a launch failure of an ended job', make: () => launchFailed(ended('CANCELLED'), 1, NOW, 'e') },
    { name: 'a launch failure of another attempt', make: () => launchFailed(launched(), 2, NOW, 'e') },
    {
      name: 'requeueing a launch that has its execution',
      make: () => requeued(adoptedRun(), 1, NOW, { reason: 'r', backoffMs: 0 }),
    },
    {
      name: 'requeueing a queued job',
      make: () => requeued(queued(), 1, NOW, { reason: 'r', backoffMs: 0 }),
    },
    { name: 'failing a running job for its wait', make: () => refusedPastMaxQueue(running(), 1, NOW, 'e') },
    { name: 'failing in the queue a launched job', make: () => failedInQueue(launched(), 1, NOW, 'e') },
    { name: 'a start of a job already running', make: () => started(running(), 1, NOW) },
    { name: 'a start of another attempt', make: () => started(adoptedRun(), 2, NOW) },
  ];
  it.each(stale)('does nothing for $name', ({ make }) => {
    expect(make()).toBeUndefined();
  });
});

describe('endAttempt', () => {
  const result = (outcome: AttemptResult['outcome'], more: Partial<AttemptResult> = {}): AttemptResult => ({
    outcome,
    finishedAt: NOW,
    ...more,
  });
  const spotRun = (preemptions: number): Job => {
    const job = running('vm/a.csv');
    const earlier = Array.from({ length: preemptions }, (_, i) => ({
      attempt: i + 1,
      target: 'vm' as const,
      spot: true,
      launchedAt: at(i),
      outcome: 'preempted' as const,
    }));
    return {
      ...job,
      attempt: preemptions + 1,
      attempts: [...earlier, { ...currentRecord(job)!, attempt: preemptions + 1 }],
    };
  };
  const rows: {
    name: string;
    job: Job;
    result: AttemptResult;
    expected: Expected;
    retryDue?: boolean;
    runAt?: string;
  }[] = [
    {
      name: 'exit 0: SUCCEEDED, its record ended, its error cleared',
      job: { ...running(), error: 'an earlier error' },
      result: result('succeeded', { exitCode: 0, detail: 'from its completion' }),
      expected: {
        state: 'SUCCEEDED',
        history: { from: 'RUNNING', to: 'SUCCEEDED', detail: 'exit code 0 (from its completion)' },
        record: {
          attempt: 1,
          target: 'cloud-run-job',
          logsUri: 'gs://output/q3.csv/7/logs/attempt-1.log',
          launchedAt: LAUNCHED_AT,
          execution: 'exec-1',
          startedAt: STARTED_AT,
          finishedAt: NOW,
          outcome: 'succeeded',
          exitCode: 0,
        },
        fields: { exitCode: 0, finishedAt: NOW, startedAt: STARTED_AT, error: undefined },
      },
    },
    {
      name: 'a success seen before its start: the completion says when it started',
      job: adoptedRun(),
      result: result('succeeded', { exitCode: 0, startedAt: at(5) }),
      expected: {
        state: 'SUCCEEDED',
        history: { from: 'LAUNCHED', to: 'SUCCEEDED', detail: 'exit code 0' },
        record: expect.objectContaining({ startedAt: at(5), outcome: 'succeeded' }),
        fields: { startedAt: at(5) },
      },
    },
    {
      name: 'exit 1 with attempts left: SCHEDULED as the next attempt after the backoff',
      job: running(),
      result: result('failed', { exitCode: 1, error: 'Traceback: KeyError' }),
      expected: {
        state: 'SCHEDULED',
        history: {
          from: 'RUNNING',
          to: 'SCHEDULED',
          detail: 'the attempt failed with exit code 1 (failure 1 of 3): retrying in 30s',
        },
        attempt: 2,
        fields: { error: 'Traceback: KeyError', exitCode: 1, runAt: at(630), execution: undefined },
      },
      retryDue: false,
      runAt: at(630),
    },
    {
      name: 'a failure without a message says its exit code',
      job: running(),
      result: result('failed', { exitCode: 4 }),
      expected: {
        state: 'FAILED',
        history: {
          from: 'RUNNING',
          to: 'FAILED',
          detail: 'the attempt failed with exit code 4: exit code 4 is not retried',
        },
        record: expect.objectContaining({ outcome: 'failed', exitCode: 4, error: 'exit code 4' }),
        fields: { error: 'exit code 4' },
      },
    },
    {
      name: 'the last failure allowed: FAILED',
      job: {
        ...running(),
        attempt: 3,
        attempts: [
          { attempt: 1, target: 'cloud-run-job', launchedAt: at(0), outcome: 'failed' },
          { attempt: 2, target: 'cloud-run-job', launchedAt: at(0), outcome: 'lost' },
          { ...currentRecord(running())!, attempt: 3 },
        ],
      },
      result: result('failed', { exitCode: 1 }),
      expected: {
        state: 'FAILED',
        history: {
          from: 'RUNNING',
          to: 'FAILED',
          detail: 'the attempt failed with exit code 1: 3 of 3 attempts failed',
        },
        attempt: 3,
      },
    },
    {
      name: 'a run past its deadline: FAILED, never retried',
      job: running(),
      result: result('timed-out', { error: 'timed out: ran 2 h', detail: 'exec-1 was stopped' }),
      expected: {
        state: 'FAILED',
        history: {
          from: 'RUNNING',
          to: 'FAILED',
          detail: 'the attempt ran past its timeout: a timeout is not retried (exec-1 was stopped)',
        },
        record: expect.objectContaining({ outcome: 'timed-out', error: 'timed out: ran 2 h' }),
        fields: { error: 'timed out: ran 2 h' },
      },
    },
    {
      name: 'a run its platform lost, with no error given: the error says so',
      job: running(),
      result: result('lost'),
      expected: {
        state: 'SCHEDULED',
        history: {
          from: 'RUNNING',
          to: 'SCHEDULED',
          detail: 'the attempt ended without a completion (failure 1 of 3): retrying in 30s',
        },
        attempt: 2,
        fields: { error: 'the attempt ended without a completion' },
      },
      retryDue: false,
    },
    {
      name: 'a preemption on spot: SCHEDULED at once, still on spot',
      job: spotRun(0),
      result: result('preempted', { exitCode: 0 }),
      expected: {
        state: 'SCHEDULED',
        history: {
          from: 'RUNNING',
          to: 'SCHEDULED',
          detail: 'the VM was preempted (1 of 6 preemptions allowed): retrying at once',
        },
        attempt: 2,
        fields: { runAt: NOW, template: expect.objectContaining({ spot: true }) },
      },
      retryDue: true,
      runAt: NOW,
    },
    {
      name: 'the third preemption: SCHEDULED at once on a standard VM',
      job: spotRun(2),
      result: result('preempted'),
      expected: {
        state: 'SCHEDULED',
        history: {
          from: 'RUNNING',
          to: 'SCHEDULED',
          detail: 'the VM was preempted (3 preemptions): retrying at once on a standard VM',
        },
        attempt: 4,
        fields: { template: expect.objectContaining({ spot: false }) },
      },
      retryDue: true,
    },
  ];
  it.each(rows)('$name', ({ job, result: r, expected, retryDue = false, runAt }) => {
    const ended = endAttempt(job, job.attempt, r, NOW, DEFAULT_PRICES);
    check(job, ended?.job, expected, NOW);
    expect(ended!.retryDue).toBe(retryDue);
    if (runAt !== undefined) expect(ended!.job.runAt).toBe(runAt);
    // What it cost so far: each attempt that ran, measured.
    expect(ended!.job.cost?.detail.some((line) => line.startsWith(`attempt ${job.attempt} `))).toBe(true);
  });

  const late: { name: string; job: Job; attempt: number }[] = [
    { name: 'an older attempt', job: running(), attempt: 0 },
    { name: 'a later attempt', job: running(), attempt: 2 },
    { name: 'a job still queued', job: queued(), attempt: 1 },
    { name: 'a job that ended already', job: ended('FAILED'), attempt: 1 },
  ];
  it.each(late)('changes nothing for a report of $name', ({ job, attempt }) => {
    expect(
      endAttempt(job, attempt, result('succeeded', { exitCode: 0 }), NOW, DEFAULT_PRICES),
    ).toBeUndefined();
  });
});

describe('cancel, retry, due, gone and notes', () => {
  const rows: { name: string; job: Job; event: (job: Job) => Job | undefined; expected: Expected }[] = [
    {
      name: 'cancelling a running job: CANCELLED, its attempt cancelled and priced',
      job: running(),
      event: (job) => cancelled(job, NOW, DEFAULT_PRICES),
      expected: {
        state: 'CANCELLED',
        history: { from: 'RUNNING', to: 'CANCELLED', detail: 'cancelled by request; exec-1 was stopped' },
        record: expect.objectContaining({ outcome: 'cancelled', finishedAt: NOW }),
        fields: { finishedAt: NOW, cost: expect.objectContaining({ billedSeconds: expect.any(Number) }) },
      },
    },
    {
      name: 'cancelling a launch still under way: it names the launch',
      job: launched(),
      event: (job) => cancelled(job, NOW, DEFAULT_PRICES),
      expected: {
        state: 'CANCELLED',
        history: {
          from: 'LAUNCHED',
          to: 'CANCELLED',
          detail: 'cancelled by request; its launch was stopped',
        },
        record: expect.objectContaining({ outcome: 'cancelled' }),
      },
    },
    {
      name: 'cancelling a queued job: CANCELLED, no attempt touched, nothing priced',
      job: queued(),
      event: (job) => cancelled(job, NOW, DEFAULT_PRICES),
      expected: {
        state: 'CANCELLED',
        history: { from: 'QUEUED', to: 'CANCELLED', detail: 'cancelled by request' },
        record: null,
        fields: { finishedAt: NOW },
      },
    },
    {
      name: 'retrying a FAILED job: RECEIVED as the next attempt, its end cleared',
      job: ended('FAILED'),
      event: (job) => retried(job, NOW),
      expected: {
        state: 'RECEIVED',
        history: { from: 'FAILED', to: 'RECEIVED', detail: 'retried by request' },
        attempt: 2,
        fields: { error: undefined, finishedAt: undefined, execution: undefined, exitCode: undefined },
      },
    },
    {
      name: 'retrying a CANCELLED job',
      job: ended('CANCELLED'),
      event: (job) => retried(job, NOW),
      expected: {
        state: 'RECEIVED',
        history: { from: 'CANCELLED', to: 'RECEIVED', detail: 'retried by request' },
        attempt: 2,
      },
    },
    {
      name: 'a SCHEDULED job claimed when due',
      job: newScheduledJob(received().id, received().source, CREATED, at(300)),
      event: (job) => claimedWhenDue(job, NOW),
      expected: {
        state: 'RECEIVED',
        history: { from: 'SCHEDULED', to: 'RECEIVED', detail: `due at ${at(300)}` },
      },
    },
  ];
  it.each(rows)('$name', ({ job, event, expected }) => {
    check(job, event(job), expected, NOW);
  });

  it('throws for a cancel of a job that ended: the dispatcher answers it 409 before', () => {
    expect(() => cancelled(ended('FAILED'), NOW, DEFAULT_PRICES)).toThrow(
      /cannot go from FAILED to CANCELLED/,
    );
  });

  const none: { name: string; make: () => Job | undefined }[] = [
    { name: 'retrying a running job', make: () => retried(running(), NOW) },
    { name: 'retrying a SUCCEEDED job', make: () => retried(transition(running(), 'SUCCEEDED', NOW), NOW) },
    { name: 'claiming a job that is not SCHEDULED', make: () => claimedWhenDue(received(), NOW) },
    { name: 'noticing gone another attempt', make: () => noticedGone(running(), 2, NOW) },
    {
      name: 'noting again what was noted last',
      make: () =>
        notedOnce(notedOnce(running(), NOW, 'results pointer not moved')!, NOW, 'results pointer not moved'),
    },
  ];
  it.each(none)('does nothing for $name', ({ make }) => {
    expect(make()).toBeUndefined();
  });

  it('noticedGone stamps the attempt record when its platform first forgot it, in no new state', () => {
    const job = running();
    const after = noticedGone(job, 1, NOW)!;
    expect(after).toMatchObject({ state: 'RUNNING', version: job.version + 1, updatedAt: NOW });
    expect(after.history).toEqual(job.history);
    expect(currentRecord(after)).toEqual({ ...currentRecord(job), goneAt: NOW });
  });

  it('notedOnce adds a note in the current state, and a different note after it', () => {
    const job = running();
    const first = notedOnce(job, NOW, 'results pointer not moved')!;
    expect(lastEntry(first)).toEqual({ at: NOW, to: 'RUNNING', detail: 'results pointer not moved' });
    expect(first.version).toBe(job.version + 1);
    expect(lastEntry(notedOnce(first, at(601), 'another problem')!)).toEqual({
      at: at(601),
      to: 'RUNNING',
      detail: 'another problem',
    });
  });
});
