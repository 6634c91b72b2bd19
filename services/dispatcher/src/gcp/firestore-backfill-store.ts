// Backfill records on Google Cloud: one Firestore document each, in a collection of their own beside
// the ledger's (`<ledger collection>-backfills`). The record is kept whole as JSON in `body`, beside
// the fields that queries read (state, createdAt) and the version. A write reads the document, checks
// the version, and writes with a precondition on the update time it read, as the ledger does for
// jobs: of two writers of the same version, exactly one wins. A backfill writes once or twice per
// page of 500 objects, so the read before each write costs little.
//
// Queries need no composite index: the newest first orders by one field, and the RUNNING ones are an
// equality filter alone, ordered here (there are a handful).
import type { CollectionReference, Firestore } from '@google-cloud/firestore';
import type { Backfill, BackfillStore } from '@pipeline/core';

// gRPC status codes, as the client's errors carry them in `code`.
const NOT_FOUND = 5;
const ALREADY_EXISTS = 6;
const FAILED_PRECONDITION = 9;

export class FirestoreBackfillStore implements BackfillStore {
  private readonly backfills: CollectionReference;

  constructor(options: { firestore: Firestore; collection: string }) {
    this.backfills = options.firestore.collection(options.collection);
  }

  async create(backfill: Backfill): Promise<boolean> {
    try {
      await this.backfills.doc(backfill.id).create(documentOf(backfill));
      return true;
    } catch (error) {
      if (codeOf(error) === ALREADY_EXISTS) return false;
      throw error;
    }
  }

  async get(id: string): Promise<Backfill | undefined> {
    const snapshot = await this.backfills.doc(id).get();
    return snapshot.exists ? recordOf(snapshot.data()) : undefined;
  }

  async update(next: Backfill): Promise<boolean> {
    const snapshot = await this.backfills.doc(next.id).get();
    if (!snapshot.exists || snapshot.get('version') !== next.version - 1) return false;
    try {
      await snapshot.ref.update(documentOf(next), { lastUpdateTime: snapshot.updateTime });
      return true;
    } catch (error) {
      const code = codeOf(error);
      if (code === FAILED_PRECONDITION || code === NOT_FOUND) return false;
      throw error;
    }
  }

  async list(limit: number): Promise<Backfill[]> {
    const { docs } = await this.backfills.orderBy('createdAt', 'desc').limit(limit).get();
    return docs.map((doc) => recordOf(doc.data()));
  }

  async running(limit: number): Promise<Backfill[]> {
    const { docs } = await this.backfills.where('state', '==', 'RUNNING').limit(limit).get();
    return docs
      .map((doc) => recordOf(doc.data()))
      .sort((a, b) => (a.createdAt < b.createdAt ? -1 : a.createdAt > b.createdAt ? 1 : 0));
  }
}

function documentOf(backfill: Backfill) {
  return {
    state: backfill.state,
    version: backfill.version,
    createdAt: backfill.createdAt,
    body: JSON.stringify(backfill),
  };
}

function recordOf(data: Record<string, unknown> | undefined): Backfill {
  return JSON.parse(String(data?.body)) as Backfill;
}

function codeOf(error: unknown): unknown {
  return typeof error === 'object' && error !== null ? (error as { code?: unknown }).code : undefined;
}
