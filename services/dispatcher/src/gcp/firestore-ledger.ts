// The ledger on Google Cloud: one Firestore document per job, its id the job's id. The claim is a
// create(), which fails with ALREADY_EXISTS when someone else has the job. Every other write reads the
// document, checks its version, and writes with a precondition on the update time it read: the server
// refuses the write if anything changed in between, so of many concurrent writers exactly one wins and
// the others find out at once, without the lock waits and retries of contended transactions.
//
// A job is stored as a Firestore map of its own fields, so state, version, createdAt and the rest are
// queryable; source, template and history are nested maps and arrays. Timestamps stay the ISO 8601
// UTC strings the core makes (toISOString), which sort as they read: newest first is createdAt
// descending, then the id descending for jobs created in the same millisecond.
//
// The outbox: a write that carries job events commits the job's document and one `<collection>-outbox/
// <eventId>` document per event in one batched write, which Firestore applies atomically (all or
// none, with the job document's precondition deciding for all): a job change is never stored without
// its events. The drain reads the oldest entries and deletes each once Pub/Sub took it.
import {
  FieldPath,
  FieldValue,
  type CollectionReference,
  type DocumentData,
  type DocumentReference,
  type DocumentSnapshot,
  type Firestore,
  type WriteBatch,
  type WriteResult,
  type Query,
  type Timestamp,
  type UpdateData,
} from '@google-cloud/firestore';
import {
  EMPTY_CAPACITY,
  claimLeaseRanOut,
  followingPrefix,
  type CapacityRecord,
  takeOver,
  type ClaimResult,
  type Job,
  type JobPage,
  type JobEvent,
  type JobState,
  type Ledger,
} from '@pipeline/core';

// gRPC status codes, as the client's errors carry them in `code`.
const NOT_FOUND = 5;
const ALREADY_EXISTS = 6;
const FAILED_PRECONDITION = 9;

/** How many jobs' update times an instance keeps, for writes without a read. */
const KNOWN_JOBS = 10_000;
/** Attempts at a claim whose job is deleted (by hand) between our create and our read. */
const CLAIM_ATTEMPTS = 3;
/** Firestore's most writes in one batched write. */
const MAX_BATCH_WRITES = 500;

export interface FirestoreLedgerOptions {
  firestore: Firestore;
  /** The collection of job documents; `jobs` unless told. */
  collection?: string;
}

export class FirestoreLedger implements Ledger {
  private readonly firestore: Firestore;
  private readonly jobs: CollectionReference;
  /** The job events not yet published (Ledger.pendingEvents): `<collection>-outbox/<eventId>`. */
  private readonly outbox: CollectionReference;
  /** The capacity record (capacity.ts): one document beside the collection, `<collection>-capacity/record`. */
  private readonly capacity: DocumentReference;

  constructor(options: FirestoreLedgerOptions) {
    const collection = options.collection ?? 'jobs';
    this.firestore = options.firestore;
    this.jobs = options.firestore.collection(collection);
    this.outbox = options.firestore.collection(`${collection}-outbox`);
    this.capacity = options.firestore.collection(`${collection}-capacity`).doc('record');
  }

  /** On Google Cloud, this needs the third composite index of FIRESTORE_INDEXES. */
  async queued(limit: number): Promise<Job[]> {
    const { docs } = await this.jobs
      .where('state', '==', 'QUEUED')
      .orderBy('queue.dueBy', 'asc')
      .limit(limit)
      .get();
    return docs.map(fromDocument);
  }

  async readCapacity(): Promise<CapacityRecord> {
    const snapshot = await this.capacity.get();
    if (!snapshot.exists) return EMPTY_CAPACITY;
    const record = snapshot.data() as CapacityRecord;
    this.capacityKnown = { version: record.version, updateTime: snapshot.updateTime! };
    return record;
  }

  /** The capacity record's version and update time as last read or written here. */
  private capacityKnown: { version: number; updateTime: Timestamp } | undefined;

  /**
   * The first write creates the document; every later one is preconditioned on the update time of the
   * version it replaces, read in the same call, so two writers of the same version cannot both win.
   */
  async writeCapacity(next: CapacityRecord): Promise<boolean> {
    const body = storable(next) as DocumentData;
    if (next.version === 1) {
      try {
        const result = await this.capacity.create(body);
        this.capacityKnown = { version: 1, updateTime: result.writeTime };
        return true;
      } catch (error) {
        if (codeOf(error) === ALREADY_EXISTS) return false;
        throw error;
      }
    }
    const known = this.capacityKnown;
    if (known !== undefined && known.version === next.version - 1) {
      // Read here at the version it replaces: the precondition on that update time is the whole check.
      const written = await wonRace(this.capacity.update(body, { lastUpdateTime: known.updateTime }));
      if (written === false) return false;
      if (written !== true) this.capacityKnown = { version: next.version, updateTime: written.writeTime };
      return true;
    }
    const snapshot = await this.capacity.get();
    if (!snapshot.exists || snapshot.get('version') !== next.version - 1) return false;
    const written = await wonRace(this.capacity.update(body, { lastUpdateTime: snapshot.updateTime }));
    if (written !== false && written !== true)
      this.capacityKnown = { version: next.version, updateTime: written.writeTime };
    return written !== false;
  }

  async claim(job: Job, leaseMs: number, events: readonly JobEvent[] = []): Promise<ClaimResult> {
    const ref = this.jobs.doc(job.id);
    for (let attempt = 1; attempt <= CLAIM_ATTEMPTS; attempt++) {
      try {
        const result = await this.withEvents(
          events,
          (batch) => batch.create(ref, toDocument(job)),
          () => ref.create(toDocument(job)),
        );
        this.remember(job, result.writeTime);
        return { claimed: true, job };
      } catch (error) {
        if (codeOf(error) !== ALREADY_EXISTS) throw error;
      }
      const snapshot = await ref.get();
      if (!snapshot.exists) continue;
      const existing = fromDocument(snapshot);
      if (!claimLeaseRanOut(existing, job.updatedAt, leaseMs)) return { claimed: false, job: existing };
      const takenOver = takeOver(existing, job.updatedAt);
      if (await this.replace(snapshot, takenOver)) return { claimed: true, job: takenOver };
      // Another caller took it over first (or it was deleted: then claim again).
      const winner = await this.get(job.id);
      if (winner !== undefined) return { claimed: false, job: winner };
    }
    throw new Error(`job ${job.id} kept vanishing during its claim`);
  }

  async update(next: Job, events: readonly JobEvent[] = []): Promise<boolean> {
    // Written or read here at the version this replaces: one write, preconditioned on the update
    // time then seen, does the compare-and-set without reading the document again.
    const known = this.known.get(next.id);
    if (known !== undefined && known.version === next.version - 1) {
      const fields: UpdateData<DocumentData> = toDocument(next);
      for (const key of known.keys) if (!(key in fields)) fields[key] = FieldValue.delete();
      const ref = this.jobs.doc(next.id);
      const precondition = { lastUpdateTime: known.updateTime };
      try {
        const result = await this.withEvents(
          events,
          (batch) => batch.update(ref, fields, precondition),
          () => ref.update(fields, precondition),
        );
        this.remember(next, result.writeTime);
        return true;
      } catch (error) {
        const code = codeOf(error);
        if (code !== FAILED_PRECONDITION && code !== NOT_FOUND) throw error;
        this.known.delete(next.id); // changed since: read it, below
      }
    }
    const snapshot = await this.jobs.doc(next.id).get();
    if (!snapshot.exists || snapshot.get('version') !== next.version - 1) return false;
    return this.replace(snapshot, next, events);
  }

  /** The oldest events first; their time, then their id, orders them (a single-field index). */
  async pendingEvents(limit: number): Promise<JobEvent[]> {
    const { docs } = await this.outbox.orderBy('at').orderBy(FieldPath.documentId()).limit(limit).get();
    return docs.map((doc) => JSON.parse(doc.get('event') as string) as JobEvent);
  }

  /** Deletes the entries in batches of Firestore's most writes per commit; one gone already is fine. */
  async markPublished(eventIds: readonly string[]): Promise<void> {
    for (let i = 0; i < eventIds.length; i += MAX_BATCH_WRITES) {
      const batch = this.firestore.batch();
      for (const id of eventIds.slice(i, i + MAX_BATCH_WRITES)) batch.delete(this.outbox.doc(id));
      await batch.commit();
    }
  }

  /**
   * The job's write alone (`single`), or with events: the job's write and one outbox document per
   * event in one batch, committed atomically; the job's write result either way. The event is kept
   * as its JSON text, so that nothing of it needs escaping for Firestore.
   */
  private async withEvents(
    events: readonly JobEvent[],
    write: (batch: WriteBatch) => void,
    single: () => Promise<WriteResult>,
  ): Promise<WriteResult> {
    if (events.length === 0) return single();
    const batch = this.firestore.batch();
    write(batch);
    for (const event of events)
      batch.set(this.outbox.doc(event.eventId), {
        event: JSON.stringify(event),
        at: event.at,
        jobId: event.jobId,
      });
    const [result] = await batch.commit();
    return result;
  }

  /** What this instance last wrote or read of a job: its version, update time and fields. */
  private readonly known = new Map<string, { version: number; updateTime: Timestamp; keys: string[] }>();

  private remember(job: Job, updateTime: Timestamp | undefined): void {
    if (updateTime === undefined) return;
    this.known.delete(job.id);
    this.known.set(job.id, { version: job.version, updateTime, keys: Object.keys(toDocument(job)) });
    if (this.known.size > KNOWN_JOBS) this.known.delete(this.known.keys().next().value!);
  }

  async get(id: string): Promise<Job | undefined> {
    const snapshot = await this.jobs.doc(id).get();
    if (!snapshot.exists) return undefined;
    const job = fromDocument(snapshot);
    this.remember(job, snapshot.updateTime);
    return job;
  }

  /** A range of document ids, which Firestore indexes by itself: [prefix, the next prefix of its length). */
  async withIdPrefix(prefix: string, limit: number): Promise<Job[]> {
    const { docs } = await this.jobs
      .where(FieldPath.documentId(), '>=', prefix)
      .where(FieldPath.documentId(), '<', followingPrefix(prefix))
      .orderBy(FieldPath.documentId())
      .limit(limit)
      .get();
    return docs.map(fromDocument);
  }

  /** On Google Cloud, the state filter needs the composite index of FIRESTORE_INDEXES. */
  async list(query: { state?: JobState; limit: number; pageToken?: string }): Promise<JobPage> {
    const after = query.pageToken === undefined ? undefined : decodePageToken(query.pageToken);
    let selection: Query =
      query.state === undefined ? this.jobs : this.jobs.where('state', '==', query.state);
    selection = selection.orderBy('createdAt', 'desc').orderBy(FieldPath.documentId(), 'desc');
    if (after !== undefined) selection = selection.startAfter(after.createdAt, after.id);
    const { docs } = await selection.limit(query.limit + 1).get();
    const jobs = docs.slice(0, query.limit).map(fromDocument);
    const last = jobs.at(-1);
    return {
      jobs,
      nextPageToken: docs.length > query.limit && last !== undefined ? encodePageToken(last) : undefined,
    };
  }

  /** On Google Cloud, this needs the second composite index of FIRESTORE_INDEXES. */
  async succeeded(rule: string, limit: number): Promise<Job[]> {
    const { docs } = await this.jobs
      .where('rule', '==', rule)
      .where('state', '==', 'SUCCEEDED')
      .orderBy('createdAt', 'desc')
      .limit(limit)
      .get();
    return docs.map(fromDocument);
  }

  /** Writes `next` over the document only if it has not changed since `snapshot` was read. */
  private async replace(
    snapshot: DocumentSnapshot,
    next: Job,
    events: readonly JobEvent[] = [],
  ): Promise<boolean> {
    const fields: UpdateData<DocumentData> = toDocument(next);
    // update() keeps fields it is not given: delete those the job no longer has, to replace it whole.
    for (const key of Object.keys(snapshot.data() ?? {})) {
      if (!(key in fields)) fields[key] = FieldValue.delete();
    }
    const precondition = { lastUpdateTime: snapshot.updateTime };
    const written = await wonRace(
      this.withEvents(
        events,
        (batch) => batch.update(snapshot.ref, fields, precondition),
        () => snapshot.ref.update(fields, precondition),
      ),
    );
    if (written !== false) this.remember(next, written === true ? undefined : written.writeTime);
    return written !== false;
  }
}

/** The write's result once done (true if it has none); false if the document changed or vanished since it was read. */
async function wonRace<T>(write: Promise<T>): Promise<T | true | false> {
  try {
    return (await write) ?? true;
  } catch (error) {
    const code = codeOf(error);
    if (code === FAILED_PRECONDITION || code === NOT_FOUND) return false;
    throw error;
  }
}

/**
 * The first id of `prefix`'s length after every id that starts with it: its last character counted
 * one up ("3f2a" -> "3f2b"). Job ids are ASCII, so Firestore's order of ids is JavaScript's.
 */
function codeOf(error: unknown): unknown {
  return typeof error === 'object' && error !== null ? (error as { code?: unknown }).code : undefined;
}

// The document of a job. Firestore refuses `undefined` unless the client was made with
// `ignoreUndefinedProperties: true`, and the caller makes the client, so optional fields that are
// absent are left out here. Top-level keys are the Job's own field names; keys of nested maps can come
// from outside (object metadata, env) and Firestore refuses some (empty, or reserved like `__x__`), so
// those are escaped with a leading `~` (and so is a key that already starts with one).

function toDocument(job: Job): DocumentData {
  return storable(job, false) as DocumentData;
}

function fromDocument(snapshot: DocumentSnapshot): Job {
  return readable(snapshot.data(), false) as Job;
}

function storable(value: unknown, escapeKeys = true): unknown {
  if (Array.isArray(value)) return value.map((item) => storable(item));
  if (!isPlainObject(value)) return value;
  return Object.fromEntries(
    Object.entries(value)
      .filter(([, field]) => field !== undefined)
      .map(([key, field]) => [escapeKeys ? escapeKey(key) : key, storable(field)]),
  );
}

function readable(value: unknown, unescapeKeys = true): unknown {
  if (Array.isArray(value)) return value.map((item) => readable(item));
  if (!isPlainObject(value)) return value;
  return Object.fromEntries(
    Object.entries(value).map(([key, field]) => [unescapeKeys ? unescapeKey(key) : key, readable(field)]),
  );
}

function isPlainObject(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && Object.getPrototypeOf(value) === Object.prototype;
}

function escapeKey(key: string): string {
  return key === '' || key.startsWith('~') || /^__.*__$/s.test(key) ? `~${key}` : key;
}

function unescapeKey(key: string): string {
  return key.startsWith('~') ? key.slice(1) : key;
}

// The page token: the sort key of the last job of the page, as base64url JSON. Opaque to callers.

interface Cursor {
  createdAt: string;
  id: string;
}

function encodePageToken(job: Job): string {
  const cursor: Cursor = { createdAt: job.createdAt, id: job.id };
  return Buffer.from(JSON.stringify(cursor)).toString('base64url');
}

/** Throws RangeError on a token this ledger did not make. */
export function decodePageToken(token: string): Cursor {
  let cursor: unknown;
  try {
    cursor = JSON.parse(Buffer.from(token, 'base64url').toString('utf8'));
  } catch {
    cursor = undefined;
  }
  if (
    !isPlainObject(cursor) ||
    typeof cursor.createdAt !== 'string' ||
    typeof cursor.id !== 'string' ||
    cursor.id === '' ||
    cursor.id.includes('/')
  ) {
    throw new RangeError('pageToken is not one this server gave out');
  }
  return { createdAt: cursor.createdAt, id: cursor.id };
}

/**
 * The indexes the ledger needs on Google Cloud, in the shape of firestore.indexes.json. Listing by
 * state orders by createdAt within an equality filter, which needs a composite index (Firestore adds
 * `__name__` DESCENDING as its last field by itself); so does reading a rule's SUCCEEDED jobs, newest
 * first, for duration estimates. Template, history and attempts are never queried: exempt from
 * single-field indexing, they cost no index writes.
 */
export function firestoreIndexes(collection = 'jobs') {
  return {
    indexes: [
      {
        collectionGroup: collection,
        queryScope: 'COLLECTION',
        fields: [
          { fieldPath: 'state', order: 'ASCENDING' },
          { fieldPath: 'createdAt', order: 'DESCENDING' },
        ],
      },
      {
        collectionGroup: collection,
        queryScope: 'COLLECTION',
        fields: [
          { fieldPath: 'state', order: 'ASCENDING' },
          { fieldPath: 'queue.dueBy', order: 'ASCENDING' },
        ],
      },
      {
        collectionGroup: collection,
        queryScope: 'COLLECTION',
        fields: [
          { fieldPath: 'rule', order: 'ASCENDING' },
          { fieldPath: 'state', order: 'ASCENDING' },
          { fieldPath: 'createdAt', order: 'DESCENDING' },
        ],
      },
    ],
    fieldOverrides: ['template', 'history', 'attempts'].map((fieldPath) => ({
      collectionGroup: collection,
      fieldPath,
      ttl: false,
      indexes: [],
    })),
  };
}

export const FIRESTORE_INDEXES = firestoreIndexes();
