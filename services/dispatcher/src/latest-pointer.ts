// Moves an object's _LATEST pointer (packages/core/src/latest.ts) to a succeeded job's prefix, with
// compare-and-set on the pointer object's generation, so two jobs finishing at once cannot move it
// back. Called after the ledger records SUCCEEDED: a completion delivered again (a dispatcher that
// died in between, or a push answered 503 because Cloud Storage refused for now) moves it again, a
// no-op once moved.
import { withinDeadline } from './deadline.ts';
import { RetryLaterError } from './errors.ts';
import {
  formatLatestPointer,
  latestPointerOf,
  parseLatestPointer,
  supersedes,
  type BlobStore,
  type Job,
  type LatestPointer,
} from '@pipeline/core';

/** Enough for every writer of one object's pointer to get its turn; each loss means another moved it. */
const MAX_POINTER_TRIES = 8;
/**
 * How long a completion waits for the pointer. The Storage client retries what it may (5xx, resets)
 * for up to 10 minutes by default, longer than a push delivery waits for its answer; a pointer that
 * Cloud Storage will not take in this time is reported, and the job stays SUCCEEDED. A write still
 * under way may land later: it is a compare-and-set, so it can only move the pointer forward.
 */
export const POINTER_DEADLINE_MS = 10_000;

/** Why the pointer did not move; `passing`: Cloud Storage refused for now or did not answer in time. */
export interface PointerProblem {
  problem: string;
  passing: boolean;
}

/**
 * Moves the pointer if `job` is an upload's own job and its generation is newer than the one the
 * pointer names. Returns what went wrong, or undefined.
 */
export async function moveLatestPointer(
  blobs: BlobStore,
  outputBucket: string,
  job: Job,
  at: string,
  deadlineMs = POINTER_DEADLINE_MS,
): Promise<PointerProblem | undefined> {
  const target = latestPointerOf(job, at);
  if (target === undefined) return undefined;
  return withinDeadline(move(blobs, outputBucket, target), deadlineMs, () => ({
    problem: `${target.name} was not moved: Cloud Storage did not take it within ${deadlineMs / 1000} s`,
    passing: true,
  }));
}

async function move(
  blobs: BlobStore,
  outputBucket: string,
  target: { name: string; pointer: LatestPointer },
): Promise<PointerProblem | undefined> {
  const data = Buffer.from(formatLatestPointer(target.pointer), 'utf8');
  try {
    // Most objects are uploaded once: their pointer does not exist yet, and "create only if absent"
    // (ifGenerationMatch=0) is one request instead of a read and a write.
    if (await blobs.putIf(outputBucket, target.name, data, 'application/json', '0')) return undefined;
    for (let tries = 0; tries < MAX_POINTER_TRIES; tries++) {
      const stored = await blobs.get(outputBucket, target.name);
      const current = stored === undefined ? undefined : parseLatestPointer(stored.data.toString('utf8'));
      if (!supersedes(target.pointer, current)) return undefined;
      if (await blobs.putIf(outputBucket, target.name, data, 'application/json', stored?.generation ?? '0'))
        return undefined;
    }
    return {
      problem: `${target.name} was not moved: it kept changing under ${MAX_POINTER_TRIES} tries`,
      passing: true,
    };
  } catch (err) {
    return {
      problem: `${target.name} was not moved: ${(err as Error).message}`,
      passing: err instanceof RetryLaterError,
    };
  }
}
