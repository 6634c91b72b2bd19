// How every writer changes a job, the dispatcher, the launch queue and the reconciler alike: read it,
// compute the next job (a transition from @pipeline/core), write it with compare-and-set, and on a
// conflict go round again on the newer job. Every write goes through writeJob or claimJob, which
// hand the ledger the job events the change makes (core's eventsFor): the ledger stores them in the
// same atomic write, its outbox, so a job change is never stored without its events, nor the reverse.
import { eventsFor, type ClaimResult, type Job, type Ledger } from '@pipeline/core';

/** How often a write goes round again before it gives up on a job that keeps changing. */
export const MAX_CONFLICT_RETRIES = 20;

/**
 * Writes `next` over `before` (the job as read: compare-and-set on its version), with the events of
 * that change in the outbox. False when another writer changed the job first.
 */
export function writeJob(ledger: Ledger, before: Job, next: Job): Promise<boolean> {
  const events = eventsFor(before, next);
  return events.length === 0 ? ledger.update(next) : ledger.update(next, events);
}

/** Claims `job` (creates it if no job has its id), with the events of its creation in the outbox. */
export function claimJob(ledger: Ledger, job: Job, leaseMs: number): Promise<ClaimResult> {
  const events = eventsFor(undefined, job);
  return events.length === 0 ? ledger.claim(job, leaseMs) : ledger.claim(job, leaseMs, events);
}

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
    if (await writeJob(ledger, current, next)) return next;
  }
  throw new Error(`job ${id}: too many concurrent changes`);
}
