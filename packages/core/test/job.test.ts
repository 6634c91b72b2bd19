import { describe, expect, it } from 'vitest';
import {
  amend,
  canTransition,
  FINAL_STATES,
  IllegalTransitionError,
  JOB_STATES,
  RETRYABLE_STATES,
  finishedRunOf,
  newJob,
  transition,
  type JobState,
} from '../src/job.ts';
import { isJobId, jobIdFor } from '../src/job-id.ts';

const ALLOWED: [JobState, JobState][] = [
  ['SCHEDULED', 'RECEIVED'],
  ['SCHEDULED', 'CANCELLED'],
  ['SCHEDULED', 'FAILED'],
  ['RECEIVED', 'QUEUED'],
  ['QUEUED', 'LAUNCHED'],
  ['QUEUED', 'FAILED'],
  ['QUEUED', 'CANCELLED'],
  ['RECEIVED', 'IGNORED'],
  ['RECEIVED', 'FAILED'],
  ['RECEIVED', 'CANCELLED'],
  ['LAUNCHED', 'RUNNING'],
  ['LAUNCHED', 'SUCCEEDED'],
  ['LAUNCHED', 'FAILED'],
  ['LAUNCHED', 'CANCELLED'],
  ['LAUNCHED', 'SCHEDULED'],
  ['LAUNCHED', 'QUEUED'],
  ['RUNNING', 'SUCCEEDED'],
  ['RUNNING', 'FAILED'],
  ['RUNNING', 'CANCELLED'],
  ['RUNNING', 'SCHEDULED'],
  ['RUNNING', 'QUEUED'],
  ['FAILED', 'RECEIVED'],
  ['CANCELLED', 'RECEIVED'],
];

const job = (state: JobState) => ({
  ...newJob('a'.repeat(32), { kind: 'request' as const, task: 'logreg', args: [], env: {} }, 't0'),
  state,
});

describe('the job state machine', () => {
  it('allows exactly the transitions of the state machine (job.ts)', () => {
    for (const from of JOB_STATES) {
      for (const to of JOB_STATES) {
        const allowed = ALLOWED.some(([f, t]) => f === from && t === to);
        expect(canTransition(from, to), `${from} -> ${to}`).toBe(allowed);
        if (allowed) expect(transition(job(from), to, 't1').state).toBe(to);
        else expect(() => transition(job(from), to, 't1')).toThrow(IllegalTransitionError);
      }
    }
  });

  it('records each change in the history and bumps the version', () => {
    const launched = transition(job('QUEUED'), 'LAUNCHED', 't1', { rule: 'csv' }, 'rule "csv" matched');
    expect(launched).toMatchObject({ state: 'LAUNCHED', version: 2, updatedAt: 't1', rule: 'csv' });
    expect(launched.history).toEqual([
      { at: 't0', to: 'RECEIVED' },
      { at: 't1', from: 'QUEUED', to: 'LAUNCHED', detail: 'rule "csv" matched' },
    ]);
    expect(amend(launched, 't2', { execution: 'x' })).toMatchObject({
      state: 'LAUNCHED',
      version: 3,
      execution: 'x',
      history: launched.history,
    });
  });

  it('retries from FAILED and CANCELLED only: the final states that may go back to RECEIVED', () => {
    expect(RETRYABLE_STATES).toEqual(['FAILED', 'CANCELLED']);
    for (const state of RETRYABLE_STATES) expect(FINAL_STATES).toContain(state);
    for (const state of FINAL_STATES)
      expect(RETRYABLE_STATES.includes(state), state).toBe(canTransition(state, 'RECEIVED'));
  });

  it('names the refused transition', () => {
    expect(() => transition(job('SUCCEEDED'), 'RUNNING', 't')).toThrow(
      'a job cannot go from SUCCEEDED to RUNNING',
    );
  });
});

describe('jobIdFor', () => {
  it('is stable, and differs by bucket, name and generation', () => {
    const id = jobIdFor('b', 'x.csv', '1');
    expect(id).toBe(jobIdFor('b', 'x.csv', '1'));
    expect(isJobId(id)).toBe(true);
    expect(
      new Set([
        id,
        jobIdFor('b', 'x.csv', '2'),
        jobIdFor('c', 'x.csv', '1'),
        jobIdFor('b', 'y.csv', '1'),
        jobIdFor('b/x.csv', '', '1'),
      ]).size,
    ).toBe(5);
  });
});

describe('finishedRunOf', () => {
  it("measures a SUCCEEDED job's last attempt, with its input size", () => {
    const object = { bucket: 'in', name: 'x.csv', generation: '1', size: 4096, metadata: {} };
    const job = {
      ...newJob('a'.repeat(32), { kind: 'object' as const, object }, 't0'),
      state: 'SUCCEEDED' as const,
      attempts: [
        { attempt: 1, target: 'vm' as const, launchedAt: 't', outcome: 'preempted' as const },
        {
          attempt: 2,
          target: 'vm' as const,
          launchedAt: '2026-11-22T10:00:00Z',
          startedAt: '2026-11-22T10:01:00Z',
          finishedAt: '2026-11-22T10:03:30Z',
          outcome: 'succeeded' as const,
        },
      ],
    };
    expect(finishedRunOf(job)).toEqual({ inputBytes: 4096, seconds: 150, target: 'vm' });
    expect(finishedRunOf({ ...job, state: 'FAILED' })).toBeUndefined();
    expect(finishedRunOf({ ...job, attempts: job.attempts.slice(0, 1) })).toBeUndefined();
  });
});

describe('noted', () => {
  it('adds a note to the history without a change of state, and bumps the version', async () => {
    const { noted } = await import('../src/job.ts');
    const base = newJob('b'.repeat(32), { kind: 'request', task: 'logreg', args: [], env: {} }, 't0');
    const next = noted(base, 't1', 'x/_LATEST was not moved: denied');
    expect(next).toMatchObject({ state: 'RECEIVED', version: 2, updatedAt: 't1' });
    expect(next.history.at(-1)).toEqual({
      at: 't1',
      to: 'RECEIVED',
      detail: 'x/_LATEST was not moved: denied',
    });
  });
});
