// The ledger of the local mode: one node:sqlite file. The claim is an INSERT that does nothing if the
// id exists; every other write is an UPDATE conditioned on the version it read (compare-and-set). The
// whole job is stored as JSON beside the columns that queries need.
import { DatabaseSync } from 'node:sqlite';
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
  private readonly db: DatabaseSync;

  constructor(file: string) {
    this.db = new DatabaseSync(file);
    this.db.exec(`
      PRAGMA journal_mode = WAL;
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
    const inserted = this.db
      .prepare(
        'INSERT INTO jobs (id, state, version, updated_at, body) VALUES (?, ?, ?, ?, ?) ON CONFLICT (id) DO NOTHING',
      )
      .run(job.id, job.state, job.version, job.updatedAt, JSON.stringify(job));
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
    const result = this.db
      .prepare(
        'UPDATE jobs SET state = ?, version = ?, updated_at = ?, body = ? WHERE id = ? AND version = ?',
      )
      .run(next.state, next.version, next.updatedAt, JSON.stringify(next), next.id, next.version - 1);
    return result.changes === 1;
  }

  async release(job: Job): Promise<boolean> {
    return (
      this.db.prepare('DELETE FROM jobs WHERE id = ? AND version = ?').run(job.id, job.version).changes === 1
    );
  }

  async get(id: string): Promise<Job | undefined> {
    const row = this.db.prepare('SELECT body FROM jobs WHERE id = ?').get(id) as { body: string } | undefined;
    return row === undefined ? undefined : (JSON.parse(row.body) as Job);
  }

  async list(query: { state?: JobState; limit: number; pageToken?: string }): Promise<JobPage> {
    const before = query.pageToken === undefined ? Number.MAX_SAFE_INTEGER : decodeToken(query.pageToken);
    const rows = (
      query.state === undefined
        ? this.db
            .prepare('SELECT seq, body FROM jobs WHERE seq < ? ORDER BY seq DESC LIMIT ?')
            .all(before, query.limit + 1)
        : this.db
            .prepare('SELECT seq, body FROM jobs WHERE state = ? AND seq < ? ORDER BY seq DESC LIMIT ?')
            .all(query.state, before, query.limit + 1)
    ) as { seq: number; body: string }[];
    const page = rows.slice(0, query.limit);
    return {
      jobs: page.map((row) => JSON.parse(row.body) as Job),
      nextPageToken: rows.length > query.limit ? encodeToken(page[page.length - 1].seq) : undefined,
    };
  }

  async succeeded(rule: string, limit: number): Promise<Job[]> {
    const rows = this.db
      .prepare(
        "SELECT body FROM jobs WHERE json_extract(body, '$.rule') = ? AND state = 'SUCCEEDED' ORDER BY seq DESC LIMIT ?",
      )
      .all(rule, limit) as { body: string }[];
    return rows.map((row) => JSON.parse(row.body) as Job);
  }

  async queued(limit: number): Promise<Job[]> {
    const rows = this.db
      .prepare(
        "SELECT body FROM jobs WHERE state = 'QUEUED' ORDER BY json_extract(body, '$.queue.dueBy'), seq LIMIT ?",
      )
      .all(limit) as { body: string }[];
    return rows.map((row) => JSON.parse(row.body) as Job);
  }

  async readCapacity(): Promise<CapacityRecord> {
    const row = this.db.prepare('SELECT body FROM capacity WHERE id = 1').get() as
      { body: string } | undefined;
    return row === undefined ? EMPTY_CAPACITY : (JSON.parse(row.body) as CapacityRecord);
  }

  async writeCapacity(next: CapacityRecord): Promise<boolean> {
    const body = JSON.stringify(next);
    const result =
      next.version === 1
        ? this.db
            .prepare('INSERT INTO capacity (id, version, body) VALUES (1, 1, ?) ON CONFLICT (id) DO NOTHING')
            .run(body)
        : this.db
            .prepare('UPDATE capacity SET version = ?, body = ? WHERE id = 1 AND version = ?')
            .run(next.version, body, next.version - 1);
    return result.changes === 1;
  }

  close(): void {
    this.db.close();
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
