// The ledger of the local mode: one node:sqlite file. The claim is an INSERT that does nothing if the
// id exists; every other write is an UPDATE conditioned on the version it read (compare-and-set). The
// whole job is stored as JSON beside the columns that queries need.
//
// Durability: WAL with synchronous=NORMAL. A commit is in the WAL once its write() returns, so a
// dispatcher that crashes or is killed loses nothing; only the OS crashing or the power failing may
// roll back the last commits, never corrupting the file (https://www.sqlite.org/pragma.html#pragma_synchronous:
// "WAL mode is always consistent with synchronous=NORMAL"). What that can lose, the local mode makes
// again: the input watcher announces every file again at start (the same generation is the same job),
// and the reconciler closes runs that ended unseen. FULL would fsync every commit, one per claim:
// 2-3 ms each here, on the event loop, since node:sqlite is synchronous.
// Statements are prepared once, when first used.
import { DatabaseSync, type StatementSync } from 'node:sqlite';
import {
  EMPTY_CAPACITY,
  claimLeaseRanOut,
  type CapacityRecord,
  takeOver,
  type ClaimResult,
  type Job,
  type JobPage,
  type JobState,
  type Ledger,
} from '@pipeline/core';

export class SqliteLedger implements Ledger {
  /** How writes reach the disk, for reports. */
  static readonly durability = 'WAL, synchronous=NORMAL';
  private readonly db: DatabaseSync;
  private readonly statements = new Map<string, StatementSync>();

  constructor(file: string) {
    this.db = new DatabaseSync(file);
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
      CREATE INDEX IF NOT EXISTS jobs_by_rule ON jobs (json_extract(body, '$.rule'), state, seq);
      CREATE INDEX IF NOT EXISTS jobs_queued ON jobs (json_extract(body, '$.queue.dueBy'), seq)
        WHERE state = 'QUEUED';
      CREATE TABLE IF NOT EXISTS capacity (
        id INTEGER PRIMARY KEY CHECK (id = 1),
        version INTEGER NOT NULL,
        body TEXT NOT NULL
      );
    `);
  }

  async claim(job: Job, leaseMs: number): Promise<ClaimResult> {
    const inserted = this.statement(
      'INSERT INTO jobs (id, state, version, updated_at, body) VALUES (?, ?, ?, ?, ?) ON CONFLICT (id) DO NOTHING',
    ).run(job.id, job.state, job.version, job.updatedAt, JSON.stringify(job));
    if (inserted.changes === 1) return { claimed: true, job };
    const existing = await this.get(job.id);
    if (existing === undefined) throw new Error(`job ${job.id} vanished during its claim`);
    if (!claimLeaseRanOut(existing, job.updatedAt, leaseMs)) return { claimed: false, job: existing };
    const takenOver = takeOver(existing, job.updatedAt);
    return (await this.update(takenOver))
      ? { claimed: true, job: takenOver }
      : { claimed: false, job: (await this.get(job.id))! };
  }

  async update(next: Job): Promise<boolean> {
    const result = this.statement(
      'UPDATE jobs SET state = ?, version = ?, updated_at = ?, body = ? WHERE id = ? AND version = ?',
    ).run(next.state, next.version, next.updatedAt, JSON.stringify(next), next.id, next.version - 1);
    return result.changes === 1;
  }

  async release(job: Job): Promise<boolean> {
    return (
      this.statement('DELETE FROM jobs WHERE id = ? AND version = ?').run(job.id, job.version).changes === 1
    );
  }

  async get(id: string): Promise<Job | undefined> {
    const row = this.statement('SELECT body FROM jobs WHERE id = ?').get(id) as { body: string } | undefined;
    return row === undefined ? undefined : (JSON.parse(row.body) as Job);
  }

  async list(query: { state?: JobState; limit: number; pageToken?: string }): Promise<JobPage> {
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
  }

  async succeeded(rule: string, limit: number): Promise<Job[]> {
    const rows = this.statement(
      "SELECT body FROM jobs WHERE json_extract(body, '$.rule') = ? AND state = 'SUCCEEDED' ORDER BY seq DESC LIMIT ?",
    ).all(rule, limit) as { body: string }[];
    return rows.map((row) => JSON.parse(row.body) as Job);
  }

  /**
   * The head of the queue, read in the order of jobs_queued. INDEXED BY: without statistics the
   * planner picks jobs_by_state and sorts every QUEUED job by its extracted dueBy (80 ms for 15,000),
   * and each drain reads the head.
   */
  async queued(limit: number): Promise<Job[]> {
    const rows = this.statement(
      "SELECT body FROM jobs INDEXED BY jobs_queued WHERE state = 'QUEUED' ORDER BY json_extract(body, '$.queue.dueBy'), seq LIMIT ?",
    ).all(limit) as { body: string }[];
    return rows.map((row) => JSON.parse(row.body) as Job);
  }

  async readCapacity(): Promise<CapacityRecord> {
    const row = this.statement('SELECT body FROM capacity WHERE id = 1').get() as
      { body: string } | undefined;
    return row === undefined ? EMPTY_CAPACITY : (JSON.parse(row.body) as CapacityRecord);
  }

  async writeCapacity(next: CapacityRecord): Promise<boolean> {
    const body = JSON.stringify(next);
    const result =
      next.version === 1
        ? this.statement(
            'INSERT INTO capacity (id, version, body) VALUES (1, 1, ?) ON CONFLICT (id) DO NOTHING',
          ).run(body)
        : this.statement('UPDATE capacity SET version = ?, body = ? WHERE id = 1 AND version = ?').run(
            next.version,
            body,
            next.version - 1,
          );
    return result.changes === 1;
  }

  close(): void {
    this.db.close();
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

function encodeToken(seq: number): string {
  return Buffer.from(`seq:${seq}`).toString('base64url');
}

/** Throws on a token this ledger did not make. */
export function decodeToken(token: string): number {
  const match = /^seq:(\d+)$/.exec(Buffer.from(token, 'base64url').toString('utf8'));
  if (match === null) throw new RangeError('pageToken is not one this server gave out');
  return Number(match[1]);
}
