import { describe, expect, it } from 'vitest';
import {
  afterFailedAttempt,
  DEFAULT_RETRY_POLICY,
  interruptAttempt,
  JOB_STATES,
  newJob,
  resumeInterrupted,
  transition,
  wasInterrupted,
  withCurrentAttempt,
  type Job,
  type JobState,
} from '../src/index.ts';

const QUEUED_AT = '2026-01-01T00:00:00.000Z';
const LAUNCHED_AT = '2026-01-01T00:00:05.000Z';
const STARTED_AT = '2026-01-01T00:00:06.000Z';
const STOPPED_AT = '2026-01-01T00:01:00.000Z';
const QUEUE = {
  queuedAt: QUEUED_AT,
  dueBy: '2026-01-01T00:30:00.000Z',
  expiresAt: '2026-01-01T01:00:00.000Z',
  refusals: 1,
  notBefore: '2026-01-01T00:00:04.000Z',
  reason: 'launch on vm refused for now: stockout',
};

/** A job routed and queued, at attempt `attempt`. */
function queued(attempt = 1): Job {
  const job = newJob('a'.repeat(32), { kind: 'request', task: 'logreg', args: [], env: {} }, QUEUED_AT);
  return transition({ ...job, attempt }, 'QUEUED', QUEUED_AT, {
    target: 'cloud-run-job',
    rule: 'csv',
    queue: QUEUE,
  });
}

function launched(attempt = 1): Job {
  const job = queued(attempt);
  return transition(job, 'LAUNCHED', LAUNCHED_AT, {
    attempts: [
      ...(attempt > 1
        ? [
            {
              attempt: 1,
              target: 'cloud-run-job' as const,
              launchedAt: QUEUED_AT,
              outcome: 'failed' as const,
            },
          ]
        : []),
      { attempt, target: 'cloud-run-job', launchedAt: LAUNCHED_AT },
    ],
  });
}

function running(attempt = 1): Job {
  const job = { ...launched(attempt), execution: 'local-aaaa-a1-pid42' };
  return transition(job, 'RUNNING', STARTED_AT, {
    startedAt: STARTED_AT,
    attempts: withCurrentAttempt(job, { startedAt: STARTED_AT, execution: 'local-aaaa-a1-pid42' }),
  });
}

const REASON = 'the local pipeline stopped (SIGINT)';

describe('interruptAttempt', () => {
  it.each([
    ['LAUNCHED, its launch not yet answered', () => launched(), 'its launch'],
    ['LAUNCHED with its execution', () => ({ ...launched(), execution: 'local-aaaa-a1-pid42' }), 'pid42'],
    ['RUNNING', () => running(), 'local-aaaa-a1-pid42'],
    ['RUNNING its second attempt', () => running(2), 'local-aaaa-a1-pid42'],
  ])('puts a job %s back in the queue as the same attempt', (_, make, stopped) => {
    const job = make();
    const next = interruptAttempt(job, job.attempt, STOPPED_AT, REASON)!;
    expect(next).toMatchObject({ state: 'QUEUED', attempt: job.attempt, version: job.version + 1 });
    expect(next.execution).toBeUndefined();
    expect(next.startedAt).toBeUndefined();
    // Its place: queued and due as before, with no backoff left from an earlier refusal.
    expect(next.queue).toEqual({
      queuedAt: QUEUE.queuedAt,
      dueBy: QUEUE.dueBy,
      expiresAt: QUEUE.expiresAt,
      refusals: QUEUE.refusals,
      reason: `interrupted (${REASON}): it runs again, at its place, when the pipeline runs`,
    });
    expect(next.attempts.at(-1)).toMatchObject({
      attempt: job.attempt,
      outcome: 'interrupted',
      finishedAt: STOPPED_AT,
    });
    expect(next.attempts.slice(0, -1)).toEqual(job.attempts.slice(0, -1));
    expect(next.history.at(-1)).toEqual({
      at: STOPPED_AT,
      from: job.state,
      to: 'QUEUED',
      detail: expect.stringContaining(`interrupted: ${REASON}; `),
    });
    expect(next.history.at(-1)!.detail).toContain(stopped);
    expect(wasInterrupted(next)).toBe(true);
  });

  const inactive = JOB_STATES.filter((s) => s !== 'LAUNCHED' && s !== 'RUNNING');
  it.each(inactive)('leaves a %s job alone', (state: JobState) => {
    const job = { ...running(), state };
    expect(interruptAttempt(job, job.attempt, STOPPED_AT, REASON)).toBeUndefined();
  });

  it('leaves alone a job at another attempt than the interrupted one (a late report)', () => {
    const job = running(2);
    expect(interruptAttempt(job, 1, STOPPED_AT, REASON)).toBeUndefined();
  });

  it('spends nothing of the retry budget: a later failure is the first one counted', () => {
    const interrupted = interruptAttempt(running(), 1, STOPPED_AT, REASON)!;
    // A failed run of the same attempt after it, with the interruption still on record.
    const attempts = [
      ...interrupted.attempts,
      { attempt: 1, target: 'cloud-run-job' as const, launchedAt: STOPPED_AT, outcome: 'failed' as const },
    ];
    const decision = afterFailedAttempt(
      { ...interrupted, attempts },
      { outcome: 'failed', exitCode: 1 },
      { ...DEFAULT_RETRY_POLICY, backoffSeconds: 0 },
      STOPPED_AT,
    );
    expect(decision).toMatchObject({ action: 'retry', attempt: 2 });
    expect(decision.detail).toContain('failure 1 of 3');
  });
});

describe('resumeInterrupted', () => {
  it('starts the wait for capacity anew, as long as its rule allows, keeping its place', () => {
    const interrupted = interruptAttempt(running(), 1, STOPPED_AT, REASON)!;
    const nextDay = '2026-01-02T09:00:00.000Z';
    const resumed = resumeInterrupted(interrupted, nextDay)!;
    expect(resumed).toMatchObject({ state: 'QUEUED', attempt: 1, version: interrupted.version + 1 });
    expect(resumed.queue).toMatchObject({
      queuedAt: QUEUE.queuedAt,
      dueBy: QUEUE.dueBy,
      expiresAt: '2026-01-02T10:00:00.000Z', // the hour its rule lets it wait
    });
    expect(resumed.history).toEqual(interrupted.history);
  });

  it('drops an execution the launch recorded after the interruption', () => {
    const interrupted = interruptAttempt(launched(), 1, STOPPED_AT, REASON)!;
    const lateAnswer = { ...interrupted, execution: 'local-aaaa-a1-pid42' };
    expect(resumeInterrupted(lateAnswer, STOPPED_AT)!.execution).toBeUndefined();
  });

  it.each([
    ['a queued job that was never interrupted', () => queued()],
    ['a running job', () => running()],
    [
      'a job relaunched after its interruption',
      () => {
        const again = transition(interruptAttempt(running(), 1, STOPPED_AT, REASON)!, 'LAUNCHED', STOPPED_AT);
        return {
          ...again,
          attempts: [{ attempt: 1, target: 'cloud-run-job' as const, launchedAt: STOPPED_AT }],
        };
      },
    ],
  ])('leaves alone %s', (_, make) => {
    const job = make();
    expect(wasInterrupted(job)).toBe(false);
    expect(resumeInterrupted(job, STOPPED_AT)).toBeUndefined();
  });
});
