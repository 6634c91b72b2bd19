import { describe, expect, it } from 'vitest';
import type { AttemptRecord, Job } from '../src/job.ts';
import { afterFailedAttempt, backoffSeconds, DEFAULT_RETRY_POLICY, type RetryPolicy } from '../src/retry.ts';
import { parseRoutingConfig, RoutingConfigError } from '../src/routing/index.ts';

const NOW = '2026-11-22T10:00:00.000Z';
const policy = (changes: Partial<RetryPolicy> = {}): RetryPolicy => ({ ...DEFAULT_RETRY_POLICY, ...changes });

/** A job whose attempts ended as `outcomes`; the last one is the attempt that just ended. */
function jobAfter(outcomes: AttemptRecord['outcome'][], target: 'vm' | 'cloud-run-job' = 'vm', spot = true) {
  const attempts: AttemptRecord[] = outcomes.map((outcome, i) => ({
    attempt: i + 1,
    target,
    launchedAt: NOW,
    outcome,
  }));
  return {
    attempt: outcomes.length,
    attempts,
    target,
    template: { args: [], env: {}, spot },
  } satisfies Pick<Job, 'attempt' | 'attempts' | 'target' | 'template'>;
}

describe('afterFailedAttempt', () => {
  it('retries a failing exit code after a backoff that doubles, then fails when attempts run out', () => {
    const first = afterFailedAttempt(jobAfter(['failed']), { outcome: 'failed', exitCode: 3 }, policy(), NOW);
    expect(first).toEqual({
      action: 'retry',
      attempt: 2,
      runAt: '2026-11-22T10:00:30.000Z',
      spot: true,
      detail: 'the attempt failed with exit code 3 (failure 1 of 3): retrying in 30s',
    });
    const second = afterFailedAttempt(
      jobAfter(['failed', 'failed']),
      { outcome: 'failed', exitCode: 3 },
      policy(),
      NOW,
    );
    expect(second).toMatchObject({ action: 'retry', attempt: 3, runAt: '2026-11-22T10:01:00.000Z' });
    const third = afterFailedAttempt(
      jobAfter(['failed', 'failed', 'failed']),
      { outcome: 'failed', exitCode: 3 },
      policy(),
      NOW,
    );
    expect(third).toEqual({
      action: 'fail',
      detail: 'the attempt failed with exit code 3: 3 of 3 attempts failed',
    });
  });

  it('never retries the exit codes it is told not to (2 and 4 by default)', () => {
    for (const exitCode of [2, 4]) {
      expect(
        afterFailedAttempt(jobAfter(['failed']), { outcome: 'failed', exitCode }, policy(), NOW),
      ).toEqual({
        action: 'fail',
        detail: `the attempt failed with exit code ${exitCode}: exit code ${exitCode} is not retried`,
      });
    }
  });

  it('with retryExitCodes, retries only those', () => {
    const only137 = policy({ retryExitCodes: [137] });
    expect(
      afterFailedAttempt(jobAfter(['failed']), { outcome: 'failed', exitCode: 137 }, only137, NOW).action,
    ).toBe('retry');
    expect(
      afterFailedAttempt(jobAfter(['failed']), { outcome: 'failed', exitCode: 1 }, only137, NOW),
    ).toEqual({
      action: 'fail',
      detail: 'the attempt failed with exit code 1: only exit codes 137 are retried',
    });
  });

  it('counts preemptions apart from failures, retries them at once, and moves to standard after N', () => {
    const p = policy({ maxAttempts: 1, spotFallbackAfter: 3 });
    const one = afterFailedAttempt(jobAfter(['preempted']), { outcome: 'preempted' }, p, NOW);
    expect(one).toMatchObject({ action: 'retry', attempt: 2, runAt: NOW, spot: true });
    const two = afterFailedAttempt(jobAfter(['preempted', 'preempted']), { outcome: 'preempted' }, p, NOW);
    expect(two).toMatchObject({ action: 'retry', attempt: 3, spot: true });
    const three = afterFailedAttempt(
      jobAfter(['preempted', 'preempted', 'preempted']),
      { outcome: 'preempted' },
      p,
      NOW,
    );
    expect(three).toEqual({
      action: 'retry',
      attempt: 4,
      runAt: NOW,
      spot: false,
      detail: 'the VM was preempted (3 preemptions): retrying at once on a standard VM',
    });
    // maxAttempts 1 still allows a failure after preemptions: they do not use it up.
    expect(
      afterFailedAttempt(jobAfter(['preempted', 'failed']), { outcome: 'failed', exitCode: 1 }, p, NOW),
    ).toEqual({
      action: 'fail',
      detail: 'the attempt failed with exit code 1: 1 of 1 attempts failed',
    });
  });

  it('fails after more preemptions than allowed', () => {
    const decision = afterFailedAttempt(
      jobAfter(['preempted', 'preempted', 'preempted']),
      { outcome: 'preempted' },
      policy({ maxPreemptions: 2 }),
      NOW,
    );
    expect(decision).toEqual({
      action: 'fail',
      detail: 'the VM was preempted: 3 preemptions, more than the 2 allowed',
    });
  });

  it('keeps a Cloud Run job off spot, and does not retry timeouts or cancels', () => {
    const run = afterFailedAttempt(
      jobAfter(['failed'], 'cloud-run-job', false),
      { outcome: 'failed', exitCode: 1 },
      policy(),
      NOW,
    );
    expect(run).toMatchObject({ action: 'retry', spot: false });
    expect(afterFailedAttempt(jobAfter(['timed-out']), { outcome: 'timed-out' }, policy(), NOW)).toEqual({
      action: 'fail',
      detail: 'the attempt ran past its timeout: a timeout is not retried',
    });
    expect(afterFailedAttempt(jobAfter(['cancelled']), { outcome: 'cancelled' }, policy(), NOW).action).toBe(
      'fail',
    );
  });

  it('retries a lost attempt as a failure with no exit code', () => {
    expect(afterFailedAttempt(jobAfter(['lost']), { outcome: 'lost' }, policy(), NOW)).toMatchObject({
      action: 'retry',
      detail: 'the attempt ended without a completion (failure 1 of 3): retrying in 30s',
    });
  });

  it('caps the backoff', () => {
    const p = policy({ backoffSeconds: 60, backoffMultiplier: 3, maxBackoffSeconds: 600 });
    expect([1, 2, 3, 4].map((n) => backoffSeconds(n, p))).toEqual([60, 180, 540, 600]);
  });
});

describe("a rule's retry block", () => {
  const rule = (retry: unknown) => ({ rules: [{ name: 'csv', target: 'vm', retry }] });

  it('fills what it leaves out from the defaults', () => {
    const [parsed] = parseRoutingConfig(
      rule({ maxAttempts: 5, backoff: '2m', retryExitCodes: [3, 137] }),
    ).rules;
    expect(parsed.retry).toEqual({
      ...DEFAULT_RETRY_POLICY,
      maxAttempts: 5,
      backoffSeconds: 120,
      retryExitCodes: [3, 137],
    });
  });

  it.each([
    [{ maxAttempts: 0 }, 'rule 1 ("csv"): retry.maxAttempts: must be a whole number from 1 to 1000, got 0'],
    [
      { retryExitCodes: [256] },
      'rule 1 ("csv"): retry.retryExitCodes: must be a list of exit codes (0 to 255), got a list',
    ],
    [
      { retryExitCodes: [4] },
      'rule 1 ("csv"): retry.retryExitCodes: exit codes 4 are also in noRetryExitCodes',
    ],
    [
      { backoffMultiplier: 0.5 },
      'rule 1 ("csv"): retry.backoffMultiplier: must be a number from 1 to 10, got 0.5',
    ],
    [{ tries: 3 }, 'rule 1 ("csv"): retry.tries: unknown key'],
  ])('refuses %j', (retry, message) => {
    expect(() => parseRoutingConfig(rule(retry))).toThrow(RoutingConfigError);
    expect(() => parseRoutingConfig(rule(retry))).toThrow(message);
  });
});
