// The Google API clients of the launchers: created on first use, one per process (per endpoint and
// auth client), and loaded with import() so that starting the dispatcher does not pay for them.
// Loading @google-cloud/compute's index costs about 1.4 s (it loads every Compute client and three
// API versions); the two v1 client modules used here cost about 0.3 s, so they are imported by path.
//
// Every client speaks REST (gax's "fallback" transport), also in production: Compute only has REST,
// and for Run it is the transport the tests exercise against loopback doubles, so what runs on
// Google Cloud is what was tested. `endpoint` (RUN_API_ENDPOINT / COMPUTE_API_ENDPOINT, as
// http://127.0.0.1:PORT) points a client elsewhere; gax then builds `${protocol}://${host}:${port}/...`.
//
// Credentials are a step of their own, before any call. A gapic client looks up its credentials once,
// when it makes its service stub, and keeps the outcome: a client made while Application Default
// Credentials could not be found fails every call from then on, and each call also leaves an
// unhandled rejection behind (in @google-cloud/run 4.2 `runJob` does
// `this.initialize().catch(err => { throw err; })`, jobs_client.js line 757, which rejects with the
// stub's error and is never awaited; Node then ends the process). So a client is initialised when it
// is made, and one that fails is dropped from the cache and never called: the next use makes a new
// one, which looks again (a key file or gcloud's ADC file written since is found). And before each
// use its request headers are fetched (the access token, cached by the library until near its end),
// so a metadata server that does not answer for now is a CredentialsError here, not an error that
// gax reports with the metadata server's HTTP status as if the API had answered it (a 404 of the
// token would read as "no such execution").
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

/**
 * A Google client could not get credentials: none were found (no GOOGLE_APPLICATION_CREDENTIALS, no
 * gcloud ADC file, no metadata server), or fetching a token failed (the metadata server or the token
 * endpoint did not answer, or refused). Passing by nature (a metadata server that blinked, a key
 * being put in place), so a launch that meets it is retried; `cause` is the library's error.
 */
export class CredentialsError extends Error {
  readonly code = 'CREDENTIALS';
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'CredentialsError';
  }
}

/** What this file needs of a gapic client: its stub, its credentials, and closing it. */
interface GapicClient {
  initialize(): Promise<unknown>;
  /** A GoogleAuth (ADC), or the AuthClient given as `authClient`: both hand out request headers. */
  auth: { getRequestHeaders(url?: string): Promise<unknown> };
  close(): Promise<void>;
}

const clients = new Map<string, Promise<GapicClient>>();
const authIds = new WeakMap<object, number>();
let lastAuthId = 0;

function cached<T extends GapicClient>(
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
  let client = clients.get(key) as Promise<T> | undefined;
  if (client === undefined) {
    client = initialized(kind, create);
    clients.set(key, client);
    client.catch(() => clients.delete(key)); // a failed load, or no credentials: a new client next time
  }
  return client.then((ready) => withCredentials(kind, ready));
}

/** A new client whose stub (and so its credentials) is made; it throws CredentialsError if not. */
async function initialized<T extends GapicClient>(kind: string, create: () => Promise<T>): Promise<T> {
  const client = await create();
  try {
    await client.initialize();
  } catch (err) {
    // The stub's rejection stays inside this client, so it is dropped, not closed (closing awaits the
    // same stub) and never called. Stub creation fails only in getting credentials (or a universe
    // domain that does not match them): a CredentialsError either way.
    throw new CredentialsError(`the ${kind} client has no credentials: ${messageOf(err)}`, { cause: err });
  }
  return client;
}

/** The client, once its credentials give request headers now (a token from the library's cache, or a fresh one). */
async function withCredentials<T extends GapicClient>(kind: string, client: T): Promise<T> {
  try {
    await client.auth.getRequestHeaders();
  } catch (err) {
    throw new CredentialsError(`the ${kind} client could not get a token: ${messageOf(err)}`, {
      cause: err,
    });
  }
  return client;
}

function messageOf(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
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
  // A client still being made may yet fail (no credentials): there is nothing of it to close then.
  const made = await Promise.all(open.map((client) => client.catch(() => undefined)));
  await Promise.all(made.map((client) => client?.close()));
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
export const PERMISSION_DENIED = GRPC_NAMES.indexOf('PERMISSION_DENIED');
const NOT_FOUND = GRPC_NAMES.indexOf('NOT_FOUND');
const RETRYABLE_CODES = new Set(
  (['DEADLINE_EXCEEDED', 'RESOURCE_EXHAUSTED', 'ABORTED', 'INTERNAL', 'UNAVAILABLE'] as const).map((name) =>
    GRPC_NAMES.indexOf(name),
  ),
);
const RETRYABLE_HTTP = new Set([429, 500, 502, 503, 504]);
// Compute reports quota and rate limits as HTTP 403 with one of these reasons: passing conditions.
const RETRYABLE_REASONS = new Set(['quotaExceeded', 'rateLimitExceeded', 'userRateLimitExceeded']);
// Refusals that say the platform is full, not that the request was wrong: the reasons above, and the
// ErrorInfo reason Google's APIs give a quota refusal (gax puts it on the error as `reason`).
const CAPACITY_REASONS = new Set([...RETRYABLE_REASONS, 'RATE_LIMIT_EXCEEDED']);
const RESOURCE_EXHAUSTED = GRPC_NAMES.indexOf('RESOURCE_EXHAUSTED');
// No answer, or one that says the server failed on the way: the request may have been carried out.
const AMBIGUOUS_CODES = new Set(
  (['UNKNOWN', 'DEADLINE_EXCEEDED', 'INTERNAL', 'UNAVAILABLE'] as const).map((name) =>
    GRPC_NAMES.indexOf(name),
  ),
);
const AMBIGUOUS_HTTP = new Set([500, 502, 503, 504]);
// Transport failures before anything was sent: no connection (refused) or no address (DNS). Any other
// (ECONNRESET, socket hang up, ETIMEDOUT, EPIPE) may come after the request went out.
const NOT_SENT = new Set(['ECONNREFUSED', 'ENOTFOUND', 'EAI_AGAIN']);

export interface ApiErrorFacts {
  code?: number;
  httpStatus?: number;
  /** The `errors[].reason` values of a Google error body (Compute sends them), and ErrorInfo's reason. */
  reasons: string[];
  message: string;
  /** A CredentialsError: the API was never asked, so none of the above is the API's. */
  credentials?: boolean;
  /**
   * The system error of a call that got no answer (ECONNRESET, ECONNREFUSED, ...), from the error's
   * causes: gax reports them all as UNAVAILABLE, with gaxios's error, then node-fetch's, as causes.
   */
  transport?: string;
}

// gax keeps the raw error body under this global symbol (google-gax 6, fallbackServiceStub).
const RAW_PAYLOAD = Symbol.for('google-gax.rawHttpResponsePayload');

/** What a Google client's error says, read defensively: any of it may be missing. */
export function apiErrorFacts(err: unknown): ApiErrorFacts {
  if (err instanceof CredentialsError) return { reasons: [], message: err.message, credentials: true };
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
  const transport = systemErrorOf(err);
  return {
    code: typeof e.code === 'number' ? e.code : undefined,
    httpStatus: typeof e.httpStatusCode === 'number' ? e.httpStatusCode : undefined,
    reasons,
    message: err instanceof Error ? err.message : String(err),
    ...(transport === undefined ? {} : { transport }),
  };
}

/** The first system error code (E...) among an error's causes. */
function systemErrorOf(err: unknown): string | undefined {
  let cause = (err as { cause?: unknown } | null)?.cause;
  for (let depth = 0; depth < 5 && typeof cause === 'object' && cause !== null; depth++) {
    const code = (cause as { code?: unknown }).code;
    if (typeof code === 'string' && /^E[A-Z0-9_]+$/.test(code)) return code;
    cause = (cause as { cause?: unknown }).cause;
  }
  return undefined;
}

export function isRetryable(facts: ApiErrorFacts): boolean {
  return (
    facts.credentials === true ||
    (facts.code !== undefined && RETRYABLE_CODES.has(facts.code)) ||
    (facts.httpStatus !== undefined && RETRYABLE_HTTP.has(facts.httpStatus)) ||
    facts.reasons.some((reason) => RETRYABLE_REASONS.has(reason))
  );
}

/** A refusal that says the platform is full (429, RESOURCE_EXHAUSTED, a quota or rate limit). */
export function isCapacity(facts: ApiErrorFacts): boolean {
  if (facts.credentials === true) return false;
  return (
    facts.httpStatus === 429 ||
    facts.code === RESOURCE_EXHAUSTED ||
    facts.reasons.some((reason) => CAPACITY_REASONS.has(reason))
  );
}

/**
 * The request may have reached the API and been carried out, its answer lost: a timeout, a reset
 * connection, a 5xx. Not when nothing was sent: no credentials, a refused connection, no DNS answer.
 */
export function isAmbiguous(facts: ApiErrorFacts): boolean {
  if (facts.credentials === true) return false;
  if (facts.httpStatus !== undefined) return AMBIGUOUS_HTTP.has(facts.httpStatus);
  if (facts.transport !== undefined && NOT_SENT.has(facts.transport)) return false;
  return facts.code !== undefined && AMBIGUOUS_CODES.has(facts.code);
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
    facts.transport,
  ].filter((part) => part !== undefined);
  return status.length === 0 ? facts.message : `${facts.message} (${status.join(', ')})`;
}

/**
 * A client's error as a LaunchError: `what` says what was being launched. A full platform is
 * `capacity`; a lost answer is `ambiguous` (look for the launch before making it again); both, and
 * any passing condition, are retryable.
 */
export function launchErrorFrom(err: unknown, what: string): LaunchError {
  if (err instanceof LaunchError) return err;
  const facts = apiErrorFacts(err);
  const capacity = isCapacity(facts);
  const ambiguous = !capacity && isAmbiguous(facts);
  const retryable = capacity || ambiguous || isRetryable(facts);
  const lost = ambiguous ? '; it may have been carried out before its answer was lost' : '';
  return new LaunchError(`${what} failed: ${describeApiError(err)}${lost}`, retryable, {
    cause: err,
    ambiguous,
    capacity,
  });
}
