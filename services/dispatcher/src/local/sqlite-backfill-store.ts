// Backfill records in local mode: a node:sqlite table of their own, in a file of their own beside the
// ledger's (local/backfills.db). Not the ledger's file: the ledger holds one write transaction open for
// a whole turn of the event loop (sqlite-ledger.ts), and a second connection writing to that file in
// the same turn would wait for it synchronously, on the very event loop that must end the turn.
// Each write here is its own transaction: a backfill writes once or twice per page, not per object.
// The record is stored as JSON beside the columns queries need; writes are compare-and-set on version.
import { DatabaseSync } from 'node:sqlite';
import type { Backfill, BackfillStore } from '@pipeline/core';

export class SqliteBackfillStore implements BackfillStore {
  private readonly db: DatabaseSync;

  constructor(file: string) {
    this.db = new DatabaseSync(file);
    this.db.exec(`
      PRAGMA journal_mode = WAL;
      PRAGMA synchronous = NORMAL;
      PRAGMA busy_timeout = 5000;
      CREATE TABLE IF NOT EXISTS backfills (
        seq INTEGER PRIMARY KEY AUTOINCREMENT,
        id TEXT NOT NULL UNIQUE,
        state TEXT NOT NULL,
        version INTEGER NOT NULL,
        body TEXT NOT NULL
      );
      CREATE INDEX IF NOT EXISTS backfills_by_state ON backfills (state, seq);
    `);
  }

  async create(backfill: Backfill): Promise<boolean> {
    const result = this.db
      .prepare(
        'INSERT INTO backfills (id, state, version, body) VALUES (?, ?, ?, ?) ON CONFLICT (id) DO NOTHING',
      )
      .run(backfill.id, backfill.state, backfill.version, JSON.stringify(backfill));
    return result.changes === 1;
  }

  async get(id: string): Promise<Backfill | undefined> {
    const row = this.db.prepare('SELECT body FROM backfills WHERE id = ?').get(id) as
      { body: string } | undefined;
    return row === undefined ? undefined : (JSON.parse(row.body) as Backfill);
  }

  async update(next: Backfill): Promise<boolean> {
    const result = this.db
      .prepare('UPDATE backfills SET state = ?, version = ?, body = ? WHERE id = ? AND version = ?')
      .run(next.state, next.version, JSON.stringify(next), next.id, next.version - 1);
    return result.changes === 1;
  }

  async list(limit: number): Promise<Backfill[]> {
    const rows = this.db.prepare('SELECT body FROM backfills ORDER BY seq DESC LIMIT ?').all(limit) as {
      body: string;
    }[];
    return rows.map((row) => JSON.parse(row.body) as Backfill);
  }

  async running(limit: number): Promise<Backfill[]> {
    const rows = this.db
      .prepare("SELECT body FROM backfills WHERE state = 'RUNNING' ORDER BY seq LIMIT ?")
      .all(limit) as { body: string }[];
    return rows.map((row) => JSON.parse(row.body) as Backfill);
  }

  close(): void {
    this.db.close();
  }
}
