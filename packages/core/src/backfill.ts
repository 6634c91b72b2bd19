// Backfill: the object versions already in a bucket, under a prefix, each made the job its upload's
// notification would have made (the same id: jobIdFor), a page of the listing at a time. The ledger's
// claim is create-if-absent, so an object version that has a job keeps it and a second backfill makes
// nothing; `failedOnly` instead makes a new attempt of each FAILED job and leaves the rest alone.
//
// A backfill is a record of its own (BackfillStore, beside the ledger), advanced one page at a time
// by whoever holds its step lease: the request that started it, then each reconcile pass. Every
// write is a compare-and-set on its version, as a job's is. Its states:
//
//   RUNNING -> DONE (the listing ended) | CANCELLED (asked to stop) | FAILED (the listing was refused
//   for good: no such bucket, no permission). A page that fails for now keeps RUNNING and the cursor,
//   with the reason in lastError: the next pass lists that page again.
//
// Pure: what a listed object is (taken or not), what to do with it given its job, how a record
// changes. The dispatcher's backfill.ts does the listing and the submitting.
import { compileGlob, type GlobMatcher } from './glob.ts';
import type { StorageObject } from './events.ts';
import type { Job } from './job.ts';

export type BackfillState = 'RUNNING' | 'CANCELLED' | 'DONE' | 'FAILED';
export const BACKFILL_STATES: readonly BackfillState[] = ['RUNNING', 'CANCELLED', 'DONE', 'FAILED'];

/** What to backfill: a bucket's objects under `prefix`, optionally only some of them. */
export interface BackfillRequest {
  bucket: string;
  /** '' for the whole bucket. */
  prefix: string;
  /** Only names matching this glob (glob.ts), matched against the whole object name, as rules are. */
  match?: string;
  /** Only objects created at or after this ISO 8601 time. */
  since?: string;
  /** Only make new attempts of FAILED jobs; objects with no job, or another state, are left alone. */
  failedOnly: boolean;
}

/** What a backfill did so far; a dry run counts what it would do. */
export interface BackfillCounts {
  /** Objects the listing gave. */
  listed: number;
  /** Of those, the ones the filters took (prefix, match, since). */
  matched: number;
  /** New jobs made. */
  submitted: number;
  /** Objects left as they were: a job existed already (or, with failedOnly, it was not FAILED). */
  skipped: number;
  /** FAILED jobs run again as a new attempt (failedOnly). */
  retried: number;
  /** Objects whose submission failed; their names are in `failures` (the last few). */
  errors: number;
}

export const NO_COUNTS: BackfillCounts = {
  listed: 0,
  matched: 0,
  submitted: 0,
  skipped: 0,
  retried: 0,
  errors: 0,
};

/** An object the backfill could not submit: a later backfill (a no-op for the others) tries it again. */
export interface BackfillFailure {
  name: string;
  generation: string;
  error: string;
}

/** How many failures a record keeps: the newest. */
export const MAX_FAILURES = 10;

export interface Backfill extends BackfillRequest {
  id: string;
  /** Incremented by every write; the store's compare-and-set checks it. */
  version: number;
  state: BackfillState;
  /** The listing's page token for the next page; absent before the first page and after the last. */
  cursor?: string;
  /** Pages done. */
  pages: number;
  counts: BackfillCounts;
  createdAt: string;
  updatedAt: string;
  finishedAt?: string;
  /** Why it was CANCELLED or FAILED. */
  reason?: string;
  /** The last page that failed for now (listing timed out, 5xx): the cursor stayed, tried again. */
  lastError?: { at: string; message: string };
  failures?: BackfillFailure[];
  /** Who works on its next page, until when: one step at a time, and a dead stepper's lease runs out. */
  lease?: { owner: string; until: string };
}

export function newBackfill(id: string, request: BackfillRequest, at: string): Backfill {
  return {
    id,
    version: 1,
    state: 'RUNNING',
    bucket: request.bucket,
    prefix: request.prefix,
    ...(request.match === undefined ? {} : { match: request.match }),
    ...(request.since === undefined ? {} : { since: request.since }),
    failedOnly: request.failedOnly,
    pages: 0,
    counts: { ...NO_COUNTS },
    createdAt: at,
    updatedAt: at,
  };
}

/** Which listed objects a backfill takes: compiled once, applied to every object of every page. */
export type BackfillFilter = (object: StorageObject) => boolean;

/** Throws an Error naming the glob when `match` is not one. */
export function backfillFilter(request: Pick<BackfillRequest, 'prefix' | 'match' | 'since'>): BackfillFilter {
  const glob: GlobMatcher | undefined = request.match === undefined ? undefined : compileGlob(request.match);
  const since = request.since === undefined ? undefined : Date.parse(request.since);
  return (object) => {
    // The listing asked for the prefix; a listing that gives more is not believed.
    if (!object.name.startsWith(request.prefix)) return false;
    if (glob !== undefined && !glob.test(object.name)) return false;
    if (since !== undefined) {
      // An object whose creation time is unknown cannot be shown to be recent: not taken.
      const created = Date.parse(object.timeCreated ?? '');
      if (!(created >= since)) return false;
    }
    return true;
  };
}

/** What to do with a taken object, given the job its version has (or none). */
export type BackfillAction = 'create' | 'retry' | 'skip';

export function backfillAction(existing: Job | undefined, failedOnly: boolean): BackfillAction {
  if (failedOnly) return existing?.state === 'FAILED' ? 'retry' : 'skip';
  return existing === undefined ? 'create' : 'skip';
}

/** The counts with `page`'s added. */
export function addCounts(total: BackfillCounts, page: BackfillCounts): BackfillCounts {
  return {
    listed: total.listed + page.listed,
    matched: total.matched + page.matched,
    submitted: total.submitted + page.submitted,
    skipped: total.skipped + page.skipped,
    retried: total.retried + page.retried,
    errors: total.errors + page.errors,
  };
}

/**
 * The record as `owner` takes its next page, or undefined when it may not: it is not RUNNING, or
 * another owner's lease has not run out.
 */
export function takeStep(
  backfill: Backfill,
  owner: string,
  at: string,
  leaseMs: number,
): Backfill | undefined {
  if (backfill.state !== 'RUNNING') return undefined;
  const { lease } = backfill;
  if (lease !== undefined && lease.owner !== owner && Date.parse(lease.until) > Date.parse(at))
    return undefined;
  return bump({ ...backfill, lease: { owner, until: new Date(Date.parse(at) + leaseMs).toISOString() } }, at);
}

/** What one page did: its counts, the failures among its objects, and the next page's token. */
export interface PageOutcome {
  counts: BackfillCounts;
  failures: BackfillFailure[];
  /** Absent: that was the last page. */
  nextCursor?: string;
}

/**
 * The record after `owner` did a page: counts added, the cursor moved on, DONE after the last page.
 * Undefined when `owner` no longer holds the step (its lease ran out and another took it, which lists
 * the same page again: counting this one too would count the page twice). A backfill cancelled while
 * its page ran keeps CANCELLED, with what the page did counted.
 */
export function pageDone(
  backfill: Backfill,
  owner: string,
  outcome: PageOutcome,
  at: string,
): Backfill | undefined {
  if (backfill.lease?.owner !== owner) return undefined;
  const { lease: _lease, lastError: _lastError, cursor: _cursor, ...rest } = backfill;
  const failures = [...(backfill.failures ?? []), ...outcome.failures].slice(-MAX_FAILURES);
  const last = outcome.nextCursor === undefined;
  const done = backfill.state === 'RUNNING' && last;
  return bump(
    {
      ...rest,
      ...(outcome.nextCursor === undefined ? {} : { cursor: outcome.nextCursor }),
      pages: backfill.pages + 1,
      counts: addCounts(backfill.counts, outcome.counts),
      ...(failures.length === 0 ? {} : { failures }),
      ...(done ? { state: 'DONE' as const, finishedAt: at } : {}),
    },
    at,
  );
}

/**
 * The record after listing a page failed. `passing` (a timeout, 429, 5xx): it stays RUNNING at the
 * same cursor, the reason kept in lastError, for the next pass. Otherwise (no such bucket, no
 * permission) it is FAILED with the reason. Undefined when `owner` no longer holds the step.
 */
export function pageFailed(
  backfill: Backfill,
  owner: string,
  message: string,
  passing: boolean,
  at: string,
): Backfill | undefined {
  if (backfill.lease?.owner !== owner) return undefined;
  const { lease: _lease, ...rest } = backfill;
  if (passing || backfill.state !== 'RUNNING') return bump({ ...rest, lastError: { at, message } }, at);
  return bump({ ...rest, state: 'FAILED', reason: message, finishedAt: at }, at);
}

/** The record cancelled; undefined when it has ended already (DONE, FAILED or CANCELLED). */
export function cancelBackfill(backfill: Backfill, at: string, reason = 'cancelled'): Backfill | undefined {
  if (backfill.state !== 'RUNNING') return undefined;
  return bump({ ...backfill, state: 'CANCELLED', reason, finishedAt: at }, at);
}

/** One line of progress, for people: the CLI and the logs. */
export function backfillProgress(backfill: Backfill): string {
  const { counts } = backfill;
  const what = backfill.failedOnly ? `${counts.retried} retried` : `${counts.submitted} new jobs`;
  const errors = counts.errors === 0 ? '' : `, ${counts.errors} errors`;
  const pages = `${backfill.pages} page${backfill.pages === 1 ? '' : 's'}`;
  return `${backfill.state}: ${pages}, ${counts.listed} listed, ${counts.matched} matched, ${what}, ${counts.skipped} skipped${errors}`;
}

function bump(backfill: Backfill, at: string): Backfill {
  return { ...backfill, version: backfill.version + 1, updatedAt: at };
}
