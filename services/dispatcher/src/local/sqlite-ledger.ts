// The ledger of the local mode: one node:sqlite file. The claim is an INSERT that does nothing if the
// id exists; every other write is an UPDATE conditioned on the version it read (compare-and-set). The
// whole job is stored as JSON beside the columns that queries need.
//
// node:sqlite is synchronous, so each call does all its work at once, on the event loop, and a
// compare-and-set can never interleave with another. The writes of one turn of the event loop share
// one transaction, committed when the turn ends (setImmediate): 32 pushes at once append their
// claims to the WAL in one commit instead of 32, which costs a claim half as much. No call answers
// before what it wrote, and what it read, is committed: nobody acts on a write that could still be
// rolled back. A commit that fails rejects every call of its turn.
//
// Durability: WAL with synchronous=NORMAL. A commit is in the WAL once its write() returns, so a
// dispatcher that crashes or is killed loses nothing it answered; only the OS crashing or the power
// failing may roll back the last commits, never corrupting the file
// (https://www.sqlite.org/pragma.html#pragma_synchronous: "WAL mode is always consistent with
// synchronous=NORMAL"). What that can lose, the local mode makes again: the input watcher announces
// every file again at start (the same generation is the same job), and the reconciler closes runs
// that ended unseen. FULL would fsync every commit: 0.5 ms or more here, on the event loop.
//
// Checkpoints (copying the WAL into the file, with two fsyncs) run in a thread of their own, on
// their own connection, every CHECKPOINT_MS: run by a commit, as SQLite does by default every 1,000
// pages, each stopped the event loop for 30 ms here, a few times a second under load.
// Statements are prepared once, when first used.
//
// The outbox: job events are rows of `outbox`, inserted by the same call, and so in the same
// transaction, as the job change they come from: both are committed or neither.
import { DatabaseSync, type StatementSync } from 'node:sqlite';
// Not the global: a test that fakes timers must not stop the ledger's commits.
import { setImmediate } from 'node:timers';
import { Worker } from 'node:worker_threads';
import {
  EMPTY_CAPACITY,
  followingPrefix,
  claimLeaseRanOut,
  type CapacityRecord,
  takeOver,
  type ClaimResult,
  type Job,
  type JobPage,
  type JobEvent,
  type JobState,
  type Ledger,
} from '@pipeline/core';

const CHECKPOINT_MS = 200;

/**
 * The checkpointer's thread: a PASSIVE checkpoint (it never waits for, nor blocks, the writer)
 * every `intervalMs` until flags[0] is set; then it closes its connection and sets flags[1].
 */
const CHECKPOINTER = `
const { workerData } = require('node:worker_threads');
const { DatabaseSync } = require('node:sqlite');
const { file, flags: buffer, intervalMs } = workerData;
const flags = new Int32Array(buffer);
let db;
try {
  if (Atomics.load(flags, 0) === 0) {
    db = new DatabaseSync(file);
    db.exec('PRAGMA busy_timeout = 5000');
  }
  while (Atomics.load(flags, 0) === 0) {
    Atomics.wait(flags, 0, 0, intervalMs);
    if (Atomics.load(flags, 0) === 0) db.exec('PRAGMA wal_checkpoint(PASSIVE)');
  }
} finally {
  db?.close();
  Atomics.store(flags, 1, 1);
  Atomics.notify(flags, 1);
}
`;

/** The transaction of one turn of the event loop. */
interface Batch {
  committed: Promise<void>;
  resolve: () => void;
  reject: (err: unknown) => void;
}

export class SqliteLedger implements Ledger {
  /** How writes reach the disk, for reports. */
  static readonly durability = 'WAL, synchronous=NORMAL, one commit per turn of the event loop';
  private readonly db: DatabaseSync;
  private readonly statements = new Map<string, StatementSync>();
  private batch: Batch | undefined;
  private readonly file: string;
  /** The checkpointer's flags (stop, stopped), once it runs; null: none (in memory, or it failed). */
  private checkpointer: Int32Array | null | undefined;

  constructor(file: string) {
    this.file = file;
    this.db = new DatabaseSync(file);
    if (file === ':memory:' || file === '') this.checkpointer = null;
    this.db.exec(`
      PRAGMA journal_mode = WAL;
      PRAGMA synchronous = NORMAL;
      PRAGMA busy_timeout = 5000;
      CREATE TABLE IF NOT EXISTS jobs (
        seq INTEGER PRIMARY KEY AUTOINCREMENT,
        id TEXT NOT NULL UNIQUE,
        state TEXT NOT NULL,
        version INTEGER NOT NULL,
        updated_at TEXT NOT NULL,
        body TEXT NOT NULL
      );
      CREATE INDEX IF NOT EXISTS jobs_by_state ON jobs (state, seq);
      -- Only SUCCEEDED jobs, which the estimates read: other writes leave it alone. It replaces
      -- jobs_by_rule, which every write of every job updated.
      DROP INDEX IF EXISTS jobs_by_rule;
      CREATE INDEX IF NOT EXISTS jobs_succeeded ON jobs (json_extract(body, '$.rule'), seq)
        WHERE state = 'SUCCEEDED';
      CREATE INDEX IF NOT EXISTS jobs_queued ON jobs (json_extract(body, '$.queue.dueBy'), seq)
        WHERE state = 'QUEUED';
      CREATE TABLE IF NOT EXISTS outbox (
        seq INTEGER PRIMARY KEY AUTOINCREMENT,
        id TEXT NOT NULL UNIQUE,
        body TEXT NOT NULL
      );
      CREATE TABLE IF NOT EXISTS capacity (
        id INTEGER PRIMARY KEY CHECK (id = 1),
        version INTEGER NOT NULL,
        body TEXT NOT NULL
      );
    `);
  }

  claim(job: Job, leaseMs: number, events: readonly JobEvent[] = []): Promise<ClaimResult> {
    return this.answer(() => {
      const inserted = this.write(
        'INSERT INTO jobs (id, state, version, updated_at, body) VALUES (?, ?, ?, ?, ?) ON CONFLICT (id) DO NOTHING',
      ).run(job.id, job.state, job.version, job.updatedAt, JSON.stringify(job));
      if (inserted.changes === 1) {
        this.storeEvents(events);
        return { claimed: true, job };
      }
      const existing = this.getNow(job.id);
      if (existing === undefined) throw new Error(`job ${job.id} vanished during its claim`);
      if (!claimLeaseRanOut(existing, job.updatedAt, leaseMs)) return { claimed: false, job: existing };
      const takenOver = takeOver(existing, job.updatedAt);
      return this.updateNow(takenOver)
        ? { claimed: true, job: takenOver }
        : { claimed: false, job: this.getNow(job.id)! };
    });
  }

  update(next: Job, events: readonly JobEvent[] = []): Promise<boolean> {
    return this.answer(() => {
      const written = this.updateNow(next);
      if (written) this.storeEvents(events);
      return written;
    });
  }

  pendingEvents(limit: number): Promise<JobEvent[]> {
    return this.answer(() => {
      const rows = this.statement('SELECT body FROM outbox ORDER BY seq LIMIT ?').all(limit) as {
        body: string;
      }[];
      return rows.map((row) => JSON.parse(row.body) as JobEvent);
    });
  }

  markPublished(eventIds: readonly string[]): Promise<void> {
    return this.answer(() => {
      for (const id of eventIds) this.write('DELETE FROM outbox WHERE id = ?').run(id);
    });
  }

  /** Into this turn's transaction, beside the job write just made (an id stored already stays as it is). */
  private storeEvents(events: readonly JobEvent[]): void {
    for (const event of events)
      this.write('INSERT INTO outbox (id, body) VALUES (?, ?) ON CONFLICT (id) DO NOTHING').run(
        event.eventId,
        JSON.stringify(event),
      );
  }

  get(id: string): Promise<Job | undefined> {
    return this.answer(() => this.getNow(id));
  }

  /** A range of the id's unique index: [prefix, the next prefix of its length). */
  withIdPrefix(prefix: string, limit: number): Promise<Job[]> {
    return this.answer(() => {
      const rows = this.statement('SELECT body FROM jobs WHERE id >= ? AND id < ? ORDER BY id LIMIT ?').all(
        prefix,
        followingPrefix(prefix),
        limit,
      ) as { body: string }[];
      return rows.map((row) => JSON.parse(row.body) as Job);
    });
  }

  list(query: { state?: JobState; limit: number; pageToken?: string }): Promise<JobPage> {
    return this.answer(() => {
      const before = query.pageToken === undefined ? Number.MAX_SAFE_INTEGER : decodeToken(query.pageToken);
      const rows = (
        query.state === undefined
          ? this.statement('SELECT seq, body FROM jobs WHERE seq < ? ORDER BY seq DESC LIMIT ?').all(
              before,
              query.limit + 1,
            )
          : this.statement(
              'SELECT seq, body FROM jobs WHERE state = ? AND seq < ? ORDER BY seq DESC LIMIT ?',
            ).all(query.state, before, query.limit + 1)
      ) as { seq: number; body: string }[];
      const page = rows.slice(0, query.limit);
      return {
        jobs: page.map((row) => JSON.parse(row.body) as Job),
        nextPageToken: rows.length > query.limit ? encodeToken(page[page.length - 1].seq) : undefined,
      };
    });
  }

  succeeded(rule: string, limit: number): Promise<Job[]> {
    return this.answer(() => {
      const rows = this.statement(
        "SELECT body FROM jobs INDEXED BY jobs_succeeded WHERE json_extract(body, '$.rule') = ? AND state = 'SUCCEEDED' ORDER BY seq DESC LIMIT ?",
      ).all(rule, limit) as { body: string }[];
      return rows.map((row) => JSON.parse(row.body) as Job);
    });
  }

  /**
   * The head of the queue, read in the order of jobs_queued. INDEXED BY: without statistics the
   * planner picks jobs_by_state and sorts every QUEUED job by its extracted dueBy (80 ms for 15,000),
   * and each drain reads the head.
   */
  queued(limit: number): Promise<Job[]> {
    return this.answer(() => {
      const rows = this.statement(
        "SELECT body FROM jobs INDEXED BY jobs_queued WHERE state = 'QUEUED' ORDER BY json_extract(body, '$.queue.dueBy'), seq LIMIT ?",
      ).all(limit) as { body: string }[];
      return rows.map((row) => JSON.parse(row.body) as Job);
    });
  }

  readCapacity(): Promise<CapacityRecord> {
    return this.answer(() => {
      const row = this.statement('SELECT body FROM capacity WHERE id = 1').get() as
        { body: string } | undefined;
      return row === undefined ? EMPTY_CAPACITY : (JSON.parse(row.body) as CapacityRecord);
    });
  }

  writeCapacity(next: CapacityRecord): Promise<boolean> {
    return this.answer(() => {
      const body = JSON.stringify(next);
      const result =
        next.version === 1
          ? this.write(
              'INSERT INTO capacity (id, version, body) VALUES (1, 1, ?) ON CONFLICT (id) DO NOTHING',
            ).run(body)
          : this.write('UPDATE capacity SET version = ?, body = ? WHERE id = 1 AND version = ?').run(
              next.version,
              body,
              next.version - 1,
            );
      return result.changes === 1;
    });
  }

  /** Commits what this turn wrote, then closes the file (the last connection: SQLite checkpoints it all). */
  close(): void {
    if (this.batch !== undefined) this.commit(this.batch);
    const flags = this.checkpointer;
    this.checkpointer = null;
    if (flags) {
      Atomics.store(flags, 0, 1);
      Atomics.notify(flags, 0);
      Atomics.wait(flags, 1, 0, 10_000); // a checkpoint under way ends first
    }
    this.db.close();
  }

  private getNow(id: string): Job | undefined {
    const row = this.statement('SELECT body FROM jobs WHERE id = ?').get(id) as { body: string } | undefined;
    return row === undefined ? undefined : (JSON.parse(row.body) as Job);
  }

  private updateNow(next: Job): boolean {
    const result = this.write(
      'UPDATE jobs SET state = ?, version = ?, updated_at = ?, body = ? WHERE id = ? AND version = ?',
    ).run(next.state, next.version, next.updatedAt, JSON.stringify(next), next.id, next.version - 1);
    return result.changes === 1;
  }

  /** Does `work` now; its answer once the turn's transaction (if `work` saw one) is committed. */
  private async answer<T>(work: () => T): Promise<T> {
    const result = work();
    if (this.batch !== undefined) await this.batch.committed;
    return result;
  }

  /** `sql`, a write, inside this turn's transaction (begun if need be). */
  private write(sql: string): StatementSync {
    if (this.batch === undefined) {
      this.db.exec('BEGIN IMMEDIATE');
      let resolve!: () => void;
      let reject!: (err: unknown) => void;
      const committed = new Promise<void>((yes, no) => {
        resolve = yes;
        reject = no;
      });
      committed.catch(() => {}); // its callers are told, each through its own await
      const batch: Batch = { committed, resolve, reject };
      this.batch = batch;
      setImmediate(() => this.commit(batch));
    }
    return this.statement(sql);
  }

  private commit(batch: Batch): void {
    if (this.batch !== batch) return; // committed already, by close()
    this.batch = undefined;
    if (this.checkpointer === undefined) this.startCheckpointer();
    try {
      this.db.exec('COMMIT');
      batch.resolve();
    } catch (err) {
      try {
        this.db.exec('ROLLBACK');
      } catch {
        // SQLite rolled it back itself
      }
      batch.reject(err);
    }
  }

  /** Checkpoints from now on in a thread of their own; if it cannot run, commits checkpoint again. */
  private startCheckpointer(): void {
    const flags = new Int32Array(new SharedArrayBuffer(8));
    this.db.exec('PRAGMA wal_autocheckpoint = 0');
    this.checkpointer = flags;
    const worker = new Worker(CHECKPOINTER, {
      eval: true,
      workerData: { file: this.file, flags: flags.buffer, intervalMs: CHECKPOINT_MS },
    });
    worker.unref();
    worker.once('error', () => {
      if (this.checkpointer !== flags) return; // closed
      this.checkpointer = null;
      this.db.exec('PRAGMA wal_autocheckpoint = 1000');
    });
  }

  /** `sql` prepared, once per ledger. */
  private statement(sql: string): StatementSync {
    let statement = this.statements.get(sql);
    if (statement === undefined) {
      statement = this.db.prepare(sql);
      this.statements.set(sql, statement);
    }
    return statement;
  }
}

/**
 * The first text of `prefix`'s length after every text that starts with it: its last character
 * counted one up ("3f2a" -> "3f2b"). Ids are ASCII, which SQLite and JavaScript order alike.
 */
function encodeToken(seq: number): string {
  return Buffer.from(`seq:${seq}`).toString('base64url');
}

/** Throws on a token this ledger did not make. */
export function decodeToken(token: string): number {
  const match = /^seq:(\d+)$/.exec(Buffer.from(token, 'base64url').toString('utf8'));
  if (match === null) throw new RangeError('pageToken is not one this server gave out');
  return Number(match[1]);
}
