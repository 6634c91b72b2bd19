// The ports a backfill needs besides the dispatcher's: its records, and a paged listing of a bucket.
// In a file of their own, beside ports.ts, so that the Ledger's port is not touched by them.
import type { Backfill } from './backfill.ts';
import type { StorageObject } from './events.ts';

/** Backfill records (backfill.ts): Firestore's own collection on Google Cloud, a sqlite table locally. */
export interface BackfillStore {
  /** Stores a new record (version 1); false if one has its id. */
  create(backfill: Backfill): Promise<boolean>;
  get(id: string): Promise<Backfill | undefined>;
  /** Stores `next` only if the stored record is still at version `next.version - 1` (compare-and-set). */
  update(next: Backfill): Promise<boolean>;
  /** The newest first, at most `limit`. */
  list(limit: number): Promise<Backfill[]>;
  /** The RUNNING ones, oldest first, at most `limit`: what a reconcile pass continues. */
  running(limit: number): Promise<Backfill[]>;
}

/** One page of a bucket's listing. */
export interface ObjectPage {
  /** The live version of each object, by name. */
  objects: StorageObject[];
  /** The next page's token; absent on the last page. */
  nextPageToken?: string;
}

/** Lists a bucket a page at a time, so that a bucket of a million objects is never held at once. */
export interface ObjectLister {
  /** At most `pageSize` objects whose names start with `prefix`, after `pageToken`'s page. */
  listPage(bucket: string, prefix: string, pageSize: number, pageToken?: string): Promise<ObjectPage>;
}
