// The pointer to an object's newest results. Every job writes under a prefix of its own
// (outputPrefix), so a reader that wants "the results of sales.csv" follows `sales.csv/_LATEST`: a
// small JSON document naming the prefix of the newest generation whose job succeeded. It moves only
// forward: an older generation's job that finishes later leaves it alone. Written after that job's
// _SUCCESS, so the prefix it names is always complete. Pure: the dispatcher reads and writes it with
// compare-and-set on the pointer's own generation (latest-pointer.ts).
import type { Job } from './job.ts';
import { outputPrefix, uploadObjectOf } from './worker-env.ts';

export const LATEST_POINTER_NAME = '_LATEST';

export interface LatestPointer {
  /** The prefix in the output bucket that holds the results, ending in "/". */
  prefix: string;
  jobId: string;
  /** The input object and the generation the results are of (a decimal string: it can pass 2^53). */
  bucket: string;
  object: string;
  generation: string;
  succeededAt: string;
}

/** Where the pointer of `objectName`'s results lives in the output bucket. */
export function latestPointerName(objectName: string): string {
  return `${objectName}/${LATEST_POINTER_NAME}`;
}

/** The pointer a succeeded upload job moves to, or undefined for a job that is no upload's own. */
export function latestPointerOf(job: Job, at: string): { name: string; pointer: LatestPointer } | undefined {
  const object = uploadObjectOf(job);
  if (object === undefined) return undefined;
  return {
    name: latestPointerName(object.name),
    pointer: {
      prefix: outputPrefix(job),
      jobId: job.id,
      bucket: object.bucket,
      object: object.name,
      generation: object.generation,
      succeededAt: at,
    },
  };
}

/** A pointer's text, or undefined if it is not one (an unreadable pointer is replaced). */
export function parseLatestPointer(text: string): LatestPointer | undefined {
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch {
    return undefined;
  }
  if (typeof value !== 'object' || value === null) return undefined;
  const p = value as Record<string, unknown>;
  const strings = ['prefix', 'jobId', 'bucket', 'object', 'generation', 'succeededAt'];
  if (!strings.every((k) => typeof p[k] === 'string')) return undefined;
  if (!/^\d{1,20}$/.test(p.generation as string)) return undefined;
  return value as LatestPointer;
}

/** Whether `candidate` should replace `current`: only a newer generation does. */
export function supersedes(candidate: LatestPointer, current: LatestPointer | undefined): boolean {
  return current === undefined || BigInt(candidate.generation) > BigInt(current.generation);
}

export function formatLatestPointer(pointer: LatestPointer): string {
  return `${JSON.stringify(pointer)}\n`;
}
