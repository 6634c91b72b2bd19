// How every writer changes a job, the dispatcher, the launch queue and the reconciler alike: read it,
// compute the next job (a transition from @pipeline/core), write it with compare-and-set, and on a
// conflict go round again on the newer job.
import type { Job, Ledger } from '@pipeline/core';

/** How often a write goes round again before it gives up on a job that keeps changing. */
export const MAX_CONFLICT_RETRIES = 20;

/**
 * Reads job `id`, applies `change` (undefined: nothing to do), writes with compare-and-set, retries
 * on conflict. The job as written, or as read when there was nothing to do; undefined: no such job.
 */
export async function mutate(
  ledger: Ledger,
  id: string,
  change: (job: Job) => Job | undefined,
): Promise<Job | undefined> {
  for (let attempt = 0; attempt < MAX_CONFLICT_RETRIES; attempt++) {
    const current = await ledger.get(id);
    if (current === undefined) return undefined;
    const next = change(current);
    if (next === undefined) return current;
    if (await ledger.update(next)) return next;
  }
  throw new Error(`job ${id}: too many concurrent changes`);
}
