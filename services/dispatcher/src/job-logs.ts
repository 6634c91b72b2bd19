// Reading an attempt's log for GET /jobs/:id/logs: its tail, or from an offset for a follower.
import type { BlobStore, Job, JobState } from '@pipeline/core';
import { RequestError } from './errors.ts';

export interface LogRead {
  attempt: number;
  data: Buffer;
  size: number;
  nextOffset: number;
  state: JobState;
}

export interface LogQuery {
  /** Default: the job's current attempt. */
  attempt?: number;
  /** From here, up to maxBytes; without it, the last `tail` bytes. */
  offset?: number;
  tail: number;
  maxBytes: number;
}

export async function readAttemptLog(blobs: BlobStore, job: Job, query: LogQuery): Promise<LogRead> {
  const attempt = query.attempt ?? job.attempt;
  const record = job.attempts?.find((a) => a.attempt === attempt);
  // Only the attempt's own record names its log: while a retry waits, job.logsUri is still the last one's.
  const uri = record?.logsUri;
  const nothing = (nextOffset: number) => ({
    attempt,
    data: Buffer.alloc(0),
    size: 0,
    nextOffset,
    state: job.state,
  });
  if (uri === undefined) {
    // The current attempt may not be launched yet; any other attempt without a record never was.
    if (attempt !== job.attempt)
      throw new RequestError('NOT_FOUND', `job ${job.id} has no attempt ${attempt}`);
    return nothing(0);
  }
  let offset = query.offset;
  if (offset === undefined) {
    const whole = await blobs.read(uri, 0, 0);
    offset = Math.max(0, (whole?.size ?? 0) - query.tail);
  }
  const part = await blobs.read(uri, offset, query.offset === undefined ? query.tail : query.maxBytes);
  if (part === undefined) return nothing(offset);
  return {
    attempt,
    data: part.data,
    size: part.size,
    nextOffset: offset + part.data.length,
    state: job.state,
  };
}
