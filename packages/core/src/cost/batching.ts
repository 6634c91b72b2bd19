// Batching: small files of one rule gathered into one Cloud Run execution, one task per file, so a
// burst of small uploads costs one runJob call and one of the region's running executions instead of
// one each. A batch opens with its first file and closes when it holds `maxFiles`, when the next file
// would take it past `maxBytes`, or `maxWaitSeconds` after it opened, whichever comes first. Each file
// keeps its own task (billed as its own instance: Cloud Run bills each task's instance), so batching
// changes the number of executions and adds the wait for the batch to close; it does not change what
// the runs themselves cost.

import { CLOUD_RUN_JOB_LIMITS } from '../platforms.ts';
import {
  describe,
  isRecord,
  optional,
  positiveBytes,
  positiveDuration,
  rejectUnknownKeys,
  type Fail,
} from '../readers.ts';

/** A rule's batching: at most `maxFiles` files and `maxBytes` of input, gathered for `maxWaitSeconds`. */
export interface BatchPolicy {
  maxFiles: number;
  maxWaitSeconds: number;
  maxBytes: number;
}

/** One file waiting for a batch: when it arrived (seconds) and its size. */
export interface BatchCandidate {
  id: string;
  arrival: number;
  inputBytes: number;
}

export interface Batch {
  ids: string[];
  /** When its first file arrived. */
  openedAt: number;
  /** When it closed and its execution is launched. */
  closedAt: number;
  /** Why it closed: full of files, full of bytes, or its wait ran out. */
  closedBy: 'maxFiles' | 'maxBytes' | 'maxWait';
  inputBytes: number;
}

/**
 * The batches that `candidates` (of one rule, in any order) make under `policy`, in the order they
 * close. A file larger than maxBytes makes a batch of its own, closed when it arrives.
 */
export function gatherBatches(candidates: readonly BatchCandidate[], policy: BatchPolicy): Batch[] {
  const byArrival = [...candidates].sort((a, b) => a.arrival - b.arrival || a.id.localeCompare(b.id));
  const batches: Batch[] = [];
  let open: Batch | undefined;
  const close = (at: number, closedBy: Batch['closedBy']) => {
    batches.push({ ...open!, closedAt: at, closedBy });
    open = undefined;
  };
  for (const file of byArrival) {
    if (open !== undefined && file.arrival >= open.openedAt + policy.maxWaitSeconds)
      close(open.openedAt + policy.maxWaitSeconds, 'maxWait');
    if (open !== undefined && open.inputBytes + file.inputBytes > policy.maxBytes)
      close(file.arrival, 'maxBytes');
    open ??= { ids: [], openedAt: file.arrival, closedAt: Number.NaN, closedBy: 'maxWait', inputBytes: 0 };
    open.ids.push(file.id);
    open.inputBytes += file.inputBytes;
    if (open.ids.length >= policy.maxFiles) close(file.arrival, 'maxFiles');
    else if (open.inputBytes >= policy.maxBytes) close(file.arrival, 'maxBytes');
  }
  if (open !== undefined) close(open.openedAt + policy.maxWaitSeconds, 'maxWait');
  return batches;
}

/**
 * Reads `{ "maxFiles": 50, "maxWait": "30s", "maxBytes": "1GiB" }`: maxFiles from 2 to Cloud Run's
 * 10,000 tasks of an execution, maxWait a duration, maxBytes a size (no limit when left out).
 */
export function readBatchPolicy(value: unknown, field: string, fail: Fail): BatchPolicy {
  if (!isRecord(value))
    return fail(field, `must be an object like { "maxFiles": 50, "maxWait": "30s" }, got ${describe(value)}`);
  rejectUnknownKeys(value, ['maxFiles', 'maxWait', 'maxBytes'], `${field}.`, fail);
  const { maxFiles } = value;
  const most = CLOUD_RUN_JOB_LIMITS.maxTasks;
  if (typeof maxFiles !== 'number' || !Number.isInteger(maxFiles) || maxFiles < 2 || maxFiles > most)
    fail(
      `${field}.maxFiles`,
      `must be a whole number from 2 to ${most} (the tasks of one execution), got ${describe(maxFiles)}`,
    );
  if (value.maxWait === undefined)
    fail(`${field}.maxWait`, 'is required: how long a batch gathers, like "30s"');
  return {
    maxFiles: maxFiles as number,
    maxWaitSeconds: positiveDuration(value.maxWait, `${field}.maxWait`, fail),
    maxBytes: optional(value.maxBytes, `${field}.maxBytes`, fail, positiveBytes) ?? Number.POSITIVE_INFINITY,
  };
}
