// Backfills, as the dispatcher runs them: list a bucket a page at a time (ObjectLister), take what the
// filters take, and hand each object version to the dispatcher's own intake, as its notification
// would have (Dispatcher.onStorageEvent: the same job id, router and launch queue), or, with
// failedOnly, retry its FAILED job (Dispatcher.retry). So a backfill of 100,000 objects makes
// 100,000 QUEUED jobs that launch as capacity allows, never more at once.
//
// A record in the BackfillStore (core's backfill.ts says its states) carries the page cursor and the
// counts, so that a backfill outlives the request that started it and the instance that served it:
// POST /backfill does pages for a few seconds, and every reconcile pass continues RUNNING backfills
// from their cursor. One step at a time holds the record's lease; a stepper that died leaves a lease
// that runs out, and the next pass lists that page again. The lease's owner is the stepper, not the
// process: one instance serves POST /backfill and a reconcile pass at once, and two steppers there
// would list the same page and count it by whichever finished first.
//
// A crash between submitting a page and saving the cursor costs nothing but time: the page is
// submitted again, and the ledger's claim (create-if-absent on the object version's job id) makes
// each of its jobs a duplicate, counted as skipped. A retry is guarded by the job's state the same
// way: a job retried already is no longer FAILED.
import { randomBytes } from 'node:crypto';
import {
  backfillAction,
  backfillFilter,
  backfillProgress,
  cancelBackfill,
  jobIdFor,
  newBackfill,
  NO_COUNTS,
  pageDone,
  pageFailed,
  takeStep,
  type Backfill,
  type BackfillCounts,
  type BackfillFailure,
  type BackfillFilter,
  type BackfillRequest,
  type BackfillStore,
  type ObjectLister,
  type ObjectPage,
  type StorageObject,
} from '@pipeline/core';
import type { Logger } from 'pino';
import type { Dispatcher } from './dispatcher.ts';
import { RequestError, RetryLaterError } from './errors.ts';

/** Objects a page asks for: bounded, so a step's memory and time are too. */
export const DEFAULT_PAGE_SIZE = 500;
/** How long listing one page may take before it counts as failed for now. */
const PAGE_TIMEOUT_MS = 30_000;
/** A step's lease: long enough for a page of submissions, short enough that a dead stepper is soon replaced. */
const STEP_LEASE_MS = 120_000;
/** Submissions of one page at once: the ledger's round trips overlap, the launch queue drains once. */
const PARALLEL_SUBMITS = 8;
/** How many RUNNING backfills a reconcile pass looks at. */
const RUNNING_AT_ONCE = 20;

export interface BackfillerPorts {
  store: BackfillStore;
  lister: ObjectLister;
  dispatcher: Dispatcher;
  logger: Logger;
  pageSize?: number;
  pageTimeoutMs?: number;
  leaseMs?: number;
}

/** What a reconcile pass did for backfills. */
export interface BackfillPassReport {
  /** Pages done, over every RUNNING backfill. */
  pages: number;
  /** Backfills that ended in this pass (DONE or FAILED). */
  ended: string[];
  errors: { id: string; error: string }[];
}

export class Backfiller {
  private readonly ports: BackfillerPorts;
  /** This process's name; each stepper's lease owner is it and a name of the stepper's own. */
  private readonly owner = randomBytes(8).toString('hex');

  constructor(ports: BackfillerPorts) {
    this.ports = ports;
  }

  private get dispatcher(): Dispatcher {
    return this.ports.dispatcher;
  }

  /** A new RUNNING backfill, advanced for up to `budgetMs` here; the record as it is then. */
  async start(request: BackfillRequest, budgetMs: number): Promise<Backfill> {
    this.check(request);
    const backfill = newBackfill(randomBytes(8).toString('hex'), request, this.dispatcher.iso());
    if (!(await this.ports.store.create(backfill))) throw new Error(`backfill ${backfill.id} exists already`);
    this.ports.logger.info({ backfill: backfill.id, ...request }, 'backfill started');
    return this.advance(backfill, Date.now() + budgetMs);
  }

  /**
   * What a backfill would do, counted page by page, making nothing and storing nothing. It stops at
   * the budget: then it is RUNNING, with the cursor where it stopped, and its counts so far.
   */
  async dryRun(request: BackfillRequest, budgetMs: number): Promise<Backfill> {
    this.check(request);
    const end = Date.now() + budgetMs;
    const filter = backfillFilter(request);
    let record = newBackfill('dry-run', request, this.dispatcher.iso());
    while (record.state === 'RUNNING' && Date.now() < end) {
      const leased = takeStep(record, this.owner, this.dispatcher.iso(), this.leaseMs)!;
      const page = await this.listPage(leased);
      if ('error' in page) {
        record = pageFailed(leased, this.owner, page.error, page.passing, this.dispatcher.iso())!;
        if (page.passing) break;
        continue;
      }
      const outcome = await this.countPage(leased, page, filter);
      record = pageDone(leased, this.owner, outcome, this.dispatcher.iso())!;
    }
    return record;
  }

  get(id: string): Promise<Backfill | undefined> {
    return this.ports.store.get(id);
  }

  list(limit: number): Promise<Backfill[]> {
    return this.ports.store.list(limit);
  }

  /** Stops a RUNNING backfill: its next step sees CANCELLED and does no more pages. */
  async cancel(id: string): Promise<Backfill> {
    for (;;) {
      const current = await this.ports.store.get(id);
      if (current === undefined) throw new RequestError('NOT_FOUND', `no backfill ${id}`);
      const next = cancelBackfill(current, this.dispatcher.iso());
      if (next === undefined)
        throw new RequestError(
          'CONFLICT',
          `backfill ${id} is ${current.state}; only a RUNNING one can be cancelled`,
        );
      if (await this.ports.store.update(next)) {
        this.ports.logger.info({ backfill: id }, 'backfill cancelled');
        return next;
      }
    }
  }

  /** The reconcile pass's part: every RUNNING backfill advanced, within `budgetMs` in all. */
  async continueRunning(budgetMs: number): Promise<BackfillPassReport> {
    const report: BackfillPassReport = { pages: 0, ended: [], errors: [] };
    const end = Date.now() + budgetMs;
    for (const backfill of await this.ports.store.running(RUNNING_AT_ONCE)) {
      if (Date.now() >= end) break;
      try {
        const after = await this.advance(backfill, end);
        report.pages += after.pages - backfill.pages;
        if (after.state === 'DONE' || after.state === 'FAILED') report.ended.push(after.id);
      } catch (err) {
        report.errors.push({ id: backfill.id, error: (err as Error).message });
        this.ports.logger.error({ err, backfill: backfill.id }, 'advancing the backfill failed');
      }
    }
    return report;
  }

  /**
   * Pages of `backfill` until it ends, the deadline passes, another stepper holds it, or a page fails
   * for now (the next pass tries again). The record as it is then.
   */
  private async advance(backfill: Backfill, end: number): Promise<Backfill> {
    const filter = backfillFilter(backfill);
    // This stepper's own: another stepper in this process (a request beside a reconcile pass) must
    // find the step held, as one in another instance does.
    const owner = `${this.owner}.${randomBytes(4).toString('hex')}`;
    let record = backfill;
    while (record.state === 'RUNNING' && Date.now() < end) {
      const leased = takeStep(record, owner, this.dispatcher.iso(), this.leaseMs);
      if (leased === undefined || !(await this.ports.store.update(leased))) {
        return (await this.ports.store.get(record.id)) ?? record; // another stepper, or cancelled
      }
      const page = await this.listPage(leased);
      const outcome = 'error' in page ? undefined : await this.submitPage(leased, page, filter);
      const written = await this.finishStep(leased.id, (current) =>
        'error' in page
          ? pageFailed(current, owner, page.error, page.passing, this.dispatcher.iso())
          : pageDone(current, owner, outcome!, this.dispatcher.iso()),
      );
      if (written === undefined) return (await this.ports.store.get(record.id)) ?? record;
      record = written;
      if ('error' in page) {
        this.ports.logger.warn(
          { backfill: record.id, error: page.error, state: record.state },
          'backfill page failed',
        );
        break;
      }
      this.ports.logger.info(
        { backfill: record.id, progress: backfillProgress(record) },
        'backfill page done',
      );
    }
    return record;
  }

  /**
   * Writes the end of a step with compare-and-set, retried on the record as it is (a cancel may have
   * come in between); undefined when the step is no longer this owner's.
   */
  private async finishStep(
    id: string,
    change: (current: Backfill) => Backfill | undefined,
  ): Promise<Backfill | undefined> {
    for (;;) {
      const current = await this.ports.store.get(id);
      if (current === undefined) return undefined;
      const next = change(current);
      if (next === undefined) return undefined;
      if (await this.ports.store.update(next)) return next;
    }
  }

  /** The record's next page, or why it could not be listed (and whether that passes). */
  private async listPage(backfill: Backfill): Promise<ObjectPage | { error: string; passing: boolean }> {
    const { lister } = this.ports;
    const timeoutMs = this.ports.pageTimeoutMs ?? PAGE_TIMEOUT_MS;
    let timer: NodeJS.Timeout | undefined;
    const timeout = new Promise<never>((_resolve, reject) => {
      timer = setTimeout(
        () => reject(new RetryLaterError(`listing the page took more than ${timeoutMs / 1000} s`)),
        timeoutMs,
      );
    });
    try {
      return await Promise.race([
        lister.listPage(backfill.bucket, backfill.prefix, this.pageSize, backfill.cursor),
        timeout,
      ]);
    } catch (err) {
      const message = `listing gs://${backfill.bucket}/${backfill.prefix}: ${(err as Error).message}`;
      return { error: message, passing: err instanceof RetryLaterError };
    } finally {
      clearTimeout(timer);
    }
  }

  /** Each taken object of the page through the dispatcher's intake (or its retry), a few at once. */
  private async submitPage(backfill: Backfill, page: ObjectPage, filter: BackfillFilter) {
    const counts: BackfillCounts = { ...NO_COUNTS, listed: page.objects.length };
    const failures: BackfillFailure[] = [];
    const taken = page.objects.filter(filter);
    counts.matched = taken.length;
    const pending = [...taken];
    await Promise.all(
      Array.from({ length: Math.min(PARALLEL_SUBMITS, pending.length) }, async () => {
        for (let object = pending.shift(); object !== undefined; object = pending.shift()) {
          try {
            counts[await this.submitOne(object, backfill.failedOnly)]++;
          } catch (err) {
            counts.errors++;
            failures.push({
              name: object.name,
              generation: object.generation,
              error: (err as Error).message,
            });
          }
        }
      }),
    );
    return {
      counts,
      failures,
      ...(page.nextPageToken === undefined ? {} : { nextCursor: page.nextPageToken }),
    };
  }

  /** One object version: which count it adds to. */
  private async submitOne(
    object: StorageObject,
    failedOnly: boolean,
  ): Promise<'submitted' | 'retried' | 'skipped'> {
    const { dispatcher } = this;
    if (!failedOnly) {
      // The claim is the check: a version with a job already is a duplicate, and nothing is launched.
      const intake = await dispatcher.onStorageEvent({ eventType: 'OBJECT_FINALIZE', object });
      return intake.outcome === 'created' ? 'submitted' : 'skipped';
    }
    const id = jobIdFor(object.bucket, object.name, object.generation);
    if (backfillAction(await dispatcher.ports.ledger.get(id), true) !== 'retry') return 'skipped';
    try {
      await dispatcher.retry(id);
      return 'retried';
    } catch (err) {
      // Retried by someone else in between (a second backfill, a person): no longer FAILED.
      if (err instanceof RequestError && err.code === 'CONFLICT') return 'skipped';
      throw err;
    }
  }

  /** A dry run's page: what each taken object's job says would happen, nothing made. */
  private async countPage(backfill: Backfill, page: ObjectPage, filter: BackfillFilter) {
    const counts: BackfillCounts = { ...NO_COUNTS, listed: page.objects.length };
    for (const object of page.objects.filter(filter)) {
      counts.matched++;
      const job = await this.dispatcher.ports.ledger.get(
        jobIdFor(object.bucket, object.name, object.generation),
      );
      const action = backfillAction(job, backfill.failedOnly);
      counts[action === 'create' ? 'submitted' : action === 'retry' ? 'retried' : 'skipped']++;
    }
    return {
      counts,
      failures: [],
      ...(page.nextPageToken === undefined ? {} : { nextCursor: page.nextPageToken }),
    };
  }

  /** What no backfill may be of: the output bucket (its objects never start work). */
  private check(request: BackfillRequest): void {
    if (request.bucket === this.dispatcher.ports.outputBucket)
      throw new RequestError(
        'INVALID',
        'objects in the output bucket never start work: backfill the input bucket',
      );
  }

  private get pageSize(): number {
    return this.ports.pageSize ?? DEFAULT_PAGE_SIZE;
  }

  private get leaseMs(): number {
    return this.ports.leaseMs ?? STEP_LEASE_MS;
  }
}
