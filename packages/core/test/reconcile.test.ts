import { describe, expect, it } from 'vitest';
import { newJob, newScheduledJob, type Job, type JobState } from '../src/job.ts';
import { deadlineOf, DEFAULT_RECONCILE_SETTINGS, judgeStatus, reconcileStep } from '../src/reconcile.ts';

const settings = { ...DEFAULT_RECONCILE_SETTINGS, leaseMs: 60_000, deadlineGraceSeconds: 600 };
const T0 = '2026-11-22T10:00:00.000Z';
const at = (seconds: number) => new Date(Date.parse(T0) + seconds * 1000).toISOString();
const source = { kind: 'request' as const, task: 'logreg', args: [], env: {} };

function running(state: JobState, changes: Partial<Job> = {}): Job {
  return {
    ...newJob('a'.repeat(32), source, T0),
    state,
    target: 'vm',
    template: { args: [], env: {}, spot: true, timeoutSeconds: 3600 },
    execution: 'zones/z/instances/pipeline-a-a1',
    attempts: [{ attempt: 1, target: 'vm', launchedAt: T0 }],
    ...changes,
  };
}

describe('reconcileStep', () => {
  it('launches a SCHEDULED job when due, not before', () => {
    const job = newScheduledJob('b'.repeat(32), source, T0, at(300));
    expect(reconcileStep(job, at(299), settings)).toEqual({ step: 'none' });
    expect(reconcileStep(job, at(300), settings)).toEqual({ step: 'launch-due' });
  });

  it('takes over a RECEIVED claim only after its lease', () => {
    const job = newJob('c'.repeat(32), source, T0);
    expect(reconcileStep(job, at(60), settings)).toEqual({ step: 'none' });
    expect(reconcileStep(job, at(61), settings)).toEqual({ step: 'take-over' });
  });

  it('asks the platform about a job that runs', () => {
    for (const state of ['LAUNCHED', 'RUNNING'] as const) {
      expect(reconcileStep(running(state), at(10), settings)).toEqual({
        step: 'inspect',
        execution: 'zones/z/instances/pipeline-a-a1',
      });
    }
  });

  it('looks for a launch that never recorded its execution once its answer cannot come any more', () => {
    const job = running('LAUNCHED', { execution: undefined });
    expect(reconcileStep(job, at(29), settings)).toEqual({ step: 'find-launch-later', at: at(30) });
    expect(reconcileStep(job, at(30), settings)).toEqual({ step: 'find-launch' });
    // Never closed as lost, however long ago: its attempt is not a failure of the job.
    expect(reconcileStep(job, at(999_999), settings)).toEqual({ step: 'find-launch' });
  });

  it('leaves final jobs alone', () => {
    for (const state of ['SUCCEEDED', 'FAILED', 'CANCELLED', 'IGNORED'] as const) {
      expect(reconcileStep(running(state), at(999_999), settings)).toEqual({ step: 'none' });
    }
  });
});

describe('judgeStatus', () => {
  const job = running('RUNNING');

  it('closes an ended run as the platform reports it', () => {
    expect(
      judgeStatus(job, { kind: 'ended', exitCode: 0, finishedAt: at(50) }, at(60), settings),
    ).toMatchObject({
      verdict: 'succeeded',
      finishedAt: at(50),
    });
    expect(judgeStatus(job, { kind: 'ended', exitCode: 3 }, at(60), settings)).toMatchObject({
      verdict: 'ended',
      end: { outcome: 'failed', exitCode: 3 },
      error: 'exit code 3',
    });
    expect(
      judgeStatus(job, { kind: 'ended', exitCode: 137, preempted: true }, at(60), settings),
    ).toMatchObject({
      verdict: 'ended',
      end: { outcome: 'preempted' },
    });
  });

  it('calls a forgotten run gone', () => {
    // First noticed, then judged only after the grace: its completion may still be on its way.
    expect(judgeStatus(job, { kind: 'gone' }, at(60), settings)).toEqual({ verdict: 'gone-noticed' });
    const noticed = { ...job, attempts: [{ ...job.attempts[0], goneAt: at(60) }] };
    expect(judgeStatus(noticed, { kind: 'gone' }, at(60 + 179), settings)).toBeUndefined();
    expect(judgeStatus(noticed, { kind: 'gone' }, at(60 + 180), settings)).toMatchObject({ verdict: 'gone' });
  });

  it('times out a run past its timeout plus the grace, whether running or unknown', () => {
    expect(deadlineOf(job, settings)).toBe(at(3600 + 600));
    expect(judgeStatus(job, { kind: 'running' }, at(4200), settings)).toBeUndefined();
    expect(judgeStatus(job, { kind: 'running' }, at(4201), settings)).toMatchObject({ verdict: 'timed-out' });
    expect(judgeStatus(job, { kind: 'unknown', reason: '503' }, at(4201), settings)).toMatchObject({
      verdict: 'timed-out',
    });
    expect(judgeStatus(job, { kind: 'unknown', reason: '503' }, at(100), settings)).toBeUndefined();
  });

  it('uses the default timeout when the template sets none', () => {
    const untimed = running('RUNNING', { template: { args: [], env: {}, spot: false } });
    expect(deadlineOf(untimed, settings)).toBe(at(24 * 3600 + 600));
  });
});
