// The region's Compute Engine quotas for the queue: regions.get, read at most every few minutes
// (quotas change when someone raises them, usage when VMs come and go; the capacity record counts
// this deployment's own VMs in between), and read again at once after a QUOTA_EXCEEDED (`refresh`).
// What they leave this deployment is core's regionLimits. A failed read is an answer, 'unknown'
// with the reason, never an exception: admission then goes on without the quota, as before.
//
// The client is the v1 regions client module, imported by path and created on first use as
// clients.ts does for instances (the package's index costs over a second of start-up). It is made
// here, not in clients.ts, with the same rules: credentials are settled when it is made (a client
// that found none is dropped and never called), and fetched again before each read.
import type { RegionsClient } from '@google-cloud/compute/build/src/v1/regions_client.js';
import { regionLimits, type OwnUsage, type RegionLimits, type RegionQuota } from '@pipeline/core';
import {
  CredentialsError,
  describeApiError,
  restClientOptions,
  type GoogleClientSettings,
} from './clients.ts';

export type { RegionsClient };

/** Five minutes: the default age after which the quotas are read again. */
export const DEFAULT_QUOTA_MAX_AGE_MS = 5 * 60_000;
/** A failed read is not tried again sooner than this (every admission pass would ask). */
const FAILED_READ_HOLD_MS = 30_000;

export type QuotaRead =
  | { kind: 'known'; quotas: RegionQuota[]; readAt: string }
  | { kind: 'unknown'; reason: string; readAt: string };

export type LimitsRead =
  | { kind: 'known'; limits: RegionLimits; readAt: string }
  | { kind: 'unknown'; reason: string; readAt: string };

export interface RegionQuotaReaderSettings {
  project: string;
  region: string;
  regions: () => Promise<Pick<RegionsClient, 'get'>>;
  /** How long a read is used before regions.get is asked again; default 5 minutes. */
  maxAgeMs?: number;
  /** How long one read may take, the library's retries included; default 30 s. */
  readTimeoutMs?: number;
  /** The clock (tests: a fake one). */
  now?: () => number;
}

export class RegionQuotaReader {
  private readonly settings: RegionQuotaReaderSettings;
  private last: { read: QuotaRead; at: number } | undefined;
  private reading: Promise<QuotaRead> | undefined;

  constructor(settings: RegionQuotaReaderSettings) {
    this.settings = settings;
  }

  /** The quotas as last read, or read now if that is older than maxAgeMs. */
  async quotas(): Promise<QuotaRead> {
    const now = this.now();
    if (this.last !== undefined) {
      const { read, at } = this.last;
      const maxAge = this.settings.maxAgeMs ?? DEFAULT_QUOTA_MAX_AGE_MS;
      const hold = read.kind === 'known' ? maxAge : Math.min(maxAge, FAILED_READ_HOLD_MS);
      if (now - at < hold) return read;
    }
    return this.refresh();
  }

  /** Reads the quotas now (after a QUOTA_EXCEEDED); callers at the same time share one read. */
  refresh(): Promise<QuotaRead> {
    this.reading ??= this.read().finally(() => (this.reading = undefined));
    return this.reading;
  }

  /** What the quotas leave this deployment's VMs, given what they hold now. */
  async limits(ours: OwnUsage): Promise<LimitsRead> {
    const read = await this.quotas();
    if (read.kind === 'unknown') return read;
    return { kind: 'known', limits: regionLimits(read.quotas, ours), readAt: read.readAt };
  }

  private async read(): Promise<QuotaRead> {
    const { project, region } = this.settings;
    const at = this.now();
    const readAt = new Date(at).toISOString();
    let read: QuotaRead;
    try {
      const client = await this.settings.regions();
      // Bounded: the library would retry an unavailable GET for 10 minutes; the next pass asks again.
      const timeout = this.settings.readTimeoutMs ?? 30_000;
      const [answer] = await client.get({ project, region }, { timeout });
      read = { kind: 'known', quotas: quotasOf(answer.quotas ?? []), readAt };
    } catch (err) {
      const reason = `reading the quotas of ${region} (regions.get) failed: ${describeApiError(err)}`;
      read = { kind: 'unknown', reason, readAt };
    }
    this.last = { read, at };
    return read;
  }

  private now(): number {
    return (this.settings.now ?? Date.now)();
  }
}

/** The entries that have a metric and numbers (every field of a proto answer may be absent). */
function quotasOf(raw: readonly { metric?: string | null; limit?: number | null; usage?: number | null }[]) {
  return raw.flatMap((quota) =>
    typeof quota.metric === 'string' && typeof quota.limit === 'number'
      ? [{ metric: quota.metric, limit: quota.limit, usage: quota.usage ?? 0 }]
      : [],
  );
}

const clients = new Map<string, Promise<RegionsClient>>();
const authIds = new WeakMap<object, number>();
let lastAuthId = 0;

/** The regions client for these settings: one per endpoint and auth client, made on first use. */
export function regionsClient(settings: GoogleClientSettings): Promise<RegionsClient> {
  const { authClient } = settings;
  let authId = 0;
  if (authClient !== undefined) {
    authId = authIds.get(authClient) ?? ++lastAuthId;
    authIds.set(authClient, authId);
  }
  const key = `${settings.endpoint ?? ''} ${authId}`;
  let client = clients.get(key);
  if (client === undefined) {
    client = made(settings);
    clients.set(key, client);
    client.catch(() => clients.delete(key)); // no credentials: a new client next time
  }
  return client.then(async (ready) => {
    try {
      await ready.auth.getRequestHeaders();
    } catch (err) {
      throw new CredentialsError(`the compute.regions client could not get a token: ${messageOf(err)}`, {
        cause: err,
      });
    }
    return ready;
  });
}

async function made(settings: GoogleClientSettings): Promise<RegionsClient> {
  const { RegionsClient } = await import('@google-cloud/compute/build/src/v1/regions_client.js');
  const client = new RegionsClient(restClientOptions(settings));
  try {
    await client.initialize();
  } catch (err) {
    // Dropped, not closed: closing awaits the same failed stub (see clients.ts).
    throw new CredentialsError(`the compute.regions client has no credentials: ${messageOf(err)}`, {
      cause: err,
    });
  }
  return client;
}

/** Closes the regions clients made so far (at shutdown, and between tests). */
export async function closeRegionsClients(): Promise<void> {
  const open = [...clients.values()];
  clients.clear();
  const ready = await Promise.all(open.map((client) => client.catch(() => undefined)));
  await Promise.all(ready.map((client) => client?.close()));
}

function messageOf(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}
