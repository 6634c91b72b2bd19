// The Google API clients of the launchers: created on first use, one per process (per endpoint and
// auth client), and loaded with import() so that starting the dispatcher does not pay for them.
// Loading @google-cloud/compute's index costs about 1.4 s (it loads every Compute client and three
// API versions); the two v1 client modules used here cost about 0.3 s, so they are imported by path.
//
// Every client speaks REST (gax's "fallback" transport), also in production: Compute only has REST,
// and for Run it is the transport the tests exercise against loopback doubles, so what runs on
// Google Cloud is what was tested. `endpoint` (RUN_API_ENDPOINT / COMPUTE_API_ENDPOINT, as
// http://127.0.0.1:PORT) points a client elsewhere; gax then builds `${protocol}://${host}:${port}/...`.
import type { AuthClient } from 'google-auth-library';
import type { ExecutionsClient, JobsClient, TasksClient } from '@google-cloud/run';
import type { InstancesClient } from '@google-cloud/compute/build/src/v1/instances_client.js';
import type { ZoneOperationsClient } from '@google-cloud/compute/build/src/v1/zone_operations_client.js';
import { LaunchError } from '@pipeline/core';

export type { ExecutionsClient, JobsClient, TasksClient, InstancesClient, ZoneOperationsClient };

export interface GoogleClientSettings {
  /** Another address for the API, like http://127.0.0.1:8123; absent: Google's own endpoint. */
  endpoint?: string;
  /** The credentials to call with (tests: an OAuth2Client holding a fixed token); absent: ADC. */
  authClient?: AuthClient;
}

type ClientOptions = NonNullable<ConstructorParameters<typeof JobsClient>[0]>;

/** The gax options for the REST transport, at `endpoint` if there is one. */
export function restClientOptions(settings: GoogleClientSettings): ClientOptions {
  const options: ClientOptions = { fallback: true };
  if (settings.authClient !== undefined) options.authClient = settings.authClient;
  if (settings.endpoint !== undefined) {
    const url = new URL(settings.endpoint);
    if (url.protocol !== 'http:' && url.protocol !== 'https:') {
      throw new Error(`an API endpoint is http:// or https://, not ${settings.endpoint}`);
    }
    options.apiEndpoint = url.hostname;
    options.port = Number(url.port === '' ? (url.protocol === 'http:' ? 80 : 443) : url.port);
    options.protocol = url.protocol.slice(0, -1);
  }
  return options;
}

interface Closable {
  close(): Promise<void>;
}

const clients = new Map<string, Promise<Closable>>();
const authIds = new WeakMap<object, number>();
let lastAuthId = 0;

function cached<T extends Closable>(
  kind: string,
  settings: GoogleClientSettings,
  create: () => Promise<T>,
): Promise<T> {
  const { authClient } = settings;
  let authId = 0;
  if (authClient !== undefined) {
    authId = authIds.get(authClient) ?? ++lastAuthId;
    authIds.set(authClient, authId);
  }
  const key = `${kind} ${settings.endpoint ?? ''} ${authId}`;
  let client = clients.get(key);
  if (client === undefined) {
    client = create();
    clients.set(key, client);
    client.catch(() => clients.delete(key)); // a failed load is tried again on the next call
  }
  return client as Promise<T>;
}

export function jobsClient(settings: GoogleClientSettings): Promise<JobsClient> {
  return cached('run.jobs', settings, async () => {
    const { JobsClient } = await import('@google-cloud/run');
    return new JobsClient(restClientOptions(settings));
  });
}

export function executionsClient(settings: GoogleClientSettings): Promise<ExecutionsClient> {
  return cached('run.executions', settings, async () => {
    const { ExecutionsClient } = await import('@google-cloud/run');
    return new ExecutionsClient(restClientOptions(settings));
  });
}

export function tasksClient(settings: GoogleClientSettings): Promise<TasksClient> {
  return cached('run.tasks', settings, async () => {
    const { TasksClient } = await import('@google-cloud/run');
    return new TasksClient(restClientOptions(settings));
  });
}

export function instancesClient(settings: GoogleClientSettings): Promise<InstancesClient> {
  return cached('compute.instances', settings, async () => {
    const { InstancesClient } = await import('@google-cloud/compute/build/src/v1/instances_client.js');
    return new InstancesClient(restClientOptions(settings));
  });
}

export function zoneOperationsClient(settings: GoogleClientSettings): Promise<ZoneOperationsClient> {
  return cached('compute.zoneOperations', settings, async () => {
    const { ZoneOperationsClient } =
      await import('@google-cloud/compute/build/src/v1/zone_operations_client.js');
    return new ZoneOperationsClient(restClientOptions(settings));
  });
}

/** Closes every client made so far (at shutdown, and between tests). */
export async function closeGoogleClients(): Promise<void> {
  const open = [...clients.values()];
  clients.clear();
  await Promise.all(open.map(async (client) => (await client).close()));
}

// gRPC status names by code: gax reports REST errors with these codes too, from the body's `status`
// or else mapped from the HTTP status (409 becomes ABORTED: see the Compute launcher).
const GRPC_NAMES = [
  'OK',
  'CANCELLED',
  'UNKNOWN',
  'INVALID_ARGUMENT',
  'DEADLINE_EXCEEDED',
  'NOT_FOUND',
  'ALREADY_EXISTS',
  'PERMISSION_DENIED',
  'RESOURCE_EXHAUSTED',
  'FAILED_PRECONDITION',
  'ABORTED',
  'OUT_OF_RANGE',
  'UNIMPLEMENTED',
  'INTERNAL',
  'UNAVAILABLE',
  'DATA_LOSS',
  'UNAUTHENTICATED',
] as const;
export const ALREADY_EXISTS = GRPC_NAMES.indexOf('ALREADY_EXISTS');
export const FAILED_PRECONDITION = GRPC_NAMES.indexOf('FAILED_PRECONDITION');
const NOT_FOUND = GRPC_NAMES.indexOf('NOT_FOUND');
const RETRYABLE_CODES = new Set(
  (['DEADLINE_EXCEEDED', 'RESOURCE_EXHAUSTED', 'ABORTED', 'INTERNAL', 'UNAVAILABLE'] as const).map((name) =>
    GRPC_NAMES.indexOf(name),
  ),
);
const RETRYABLE_HTTP = new Set([429, 500, 502, 503, 504]);
// Compute reports quota and rate limits as HTTP 403 with one of these reasons: passing conditions.
const RETRYABLE_REASONS = new Set(['quotaExceeded', 'rateLimitExceeded', 'userRateLimitExceeded']);

export interface ApiErrorFacts {
  code?: number;
  httpStatus?: number;
  /** The `errors[].reason` values of a Google error body (Compute sends them), and ErrorInfo's reason. */
  reasons: string[];
  message: string;
}

// gax keeps the raw error body under this global symbol (google-gax 6, fallbackServiceStub).
const RAW_PAYLOAD = Symbol.for('google-gax.rawHttpResponsePayload');

/** What a Google client's error says, read defensively: any of it may be missing. */
export function apiErrorFacts(err: unknown): ApiErrorFacts {
  const e = (typeof err === 'object' && err !== null ? err : {}) as Record<string | symbol, unknown>;
  const reasons: string[] = [];
  if (typeof e.reason === 'string') reasons.push(e.reason);
  let raw = e[RAW_PAYLOAD];
  if (typeof raw === 'string') {
    try {
      raw = JSON.parse(raw);
    } catch {
      raw = undefined;
    }
  }
  const errors = (raw as { error?: { errors?: unknown } } | undefined)?.error?.errors;
  if (Array.isArray(errors)) {
    for (const item of errors) {
      const reason = (item as { reason?: unknown } | null)?.reason;
      if (typeof reason === 'string') reasons.push(reason);
    }
  }
  return {
    code: typeof e.code === 'number' ? e.code : undefined,
    httpStatus: typeof e.httpStatusCode === 'number' ? e.httpStatusCode : undefined,
    reasons,
    message: err instanceof Error ? err.message : String(err),
  };
}

export function isRetryable(facts: ApiErrorFacts): boolean {
  return (
    (facts.code !== undefined && RETRYABLE_CODES.has(facts.code)) ||
    (facts.httpStatus !== undefined && RETRYABLE_HTTP.has(facts.httpStatus)) ||
    facts.reasons.some((reason) => RETRYABLE_REASONS.has(reason))
  );
}

/** 404 in any of its forms: the HTTP status, gax's NOT_FOUND, or Compute's `notFound` reason. */
export function isNotFound(facts: ApiErrorFacts): boolean {
  return facts.httpStatus === 404 || facts.code === NOT_FOUND || facts.reasons.includes('notFound');
}

/** A client's error for people: its message, then its status, HTTP status and reasons. */
export function describeApiError(err: unknown): string {
  const facts = apiErrorFacts(err);
  const status = [
    facts.code === undefined ? undefined : (GRPC_NAMES[facts.code] ?? `code ${facts.code}`),
    facts.httpStatus === undefined ? undefined : `HTTP ${facts.httpStatus}`,
    ...facts.reasons,
  ].filter((part) => part !== undefined);
  return status.length === 0 ? facts.message : `${facts.message} (${status.join(', ')})`;
}

/** A client's error as a LaunchError: `what` says what was being launched. */
export function launchErrorFrom(err: unknown, what: string): LaunchError {
  if (err instanceof LaunchError) return err;
  return new LaunchError(`${what} failed: ${describeApiError(err)}`, isRetryable(apiErrorFacts(err)), {
    cause: err,
  });
}
