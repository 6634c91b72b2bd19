// How the Compute launcher reads an instances.insert that did not make its VM: refused by the API
// at once (an HTTP error), or accepted and then ended with errors in its zone operation.
//
// - A stockout: this zone has no capacity for the VM now; another zone of the region may. Compute
//   says ZONE_RESOURCE_POOL_EXHAUSTED or ZONE_RESOURCE_POOL_EXHAUSTED_WITH_DETAILS ("Try a different
//   zone, or try again later"), and a quota increase does not help:
//   https://cloud.google.com/compute/docs/troubleshooting/troubleshooting-resource-availability
// - Capacity: a regional quota (QUOTA_EXCEEDED, 403 quotaExceeded) or a rate limit (429,
//   RESOURCE_OPERATION_RATE_EXCEEDED). Quotas are per region (https://cloud.google.com/compute/resource-usage),
//   so another zone cannot help; it passes when VMs end or the limit is raised.
// - Lost: the request may have reached Compute and its answer was lost (a timeout, a reset
//   connection, a 5xx). The VM may be coming; the launch is looked for before it is made again.
// - Anything else is a failure, retryable or not as its HTTP status says.
import { apiErrorFacts, describeApiError, isRetryable, type ApiErrorFacts } from './clients.ts';

export type InsertRefusal =
  | { kind: 'stockout'; why: string }
  | { kind: 'capacity'; why: string }
  | { kind: 'lost'; why: string }
  | { kind: 'failed'; why: string; retryable: boolean };

const STOCKOUTS = ['ZONE_RESOURCE_POOL_EXHAUSTED', 'ZONE_RESOURCE_POOL_EXHAUSTED_WITH_DETAILS'];
const CAPACITY_CODES = new Set(['QUOTA_EXCEEDED', 'RESOURCE_OPERATION_RATE_EXCEEDED']);
const CAPACITY_REASONS = new Set(['quotaExceeded', 'rateLimitExceeded', 'userRateLimitExceeded']);
// gRPC codes gax gives a call without an HTTP answer: DEADLINE_EXCEEDED (the deadline passed) and
// UNAVAILABLE (any transport failure, google-gax fallbackServiceStub's _toGoogleError).
const DEADLINE_EXCEEDED = 4;
const UNAVAILABLE = 14;
// Transport errors that happen before a request is sent: no connection was ever made.
const NOT_SENT = new Set(['ECONNREFUSED', 'ENOTFOUND', 'EAI_AGAIN', 'ENETUNREACH', 'EHOSTUNREACH']);

interface OperationError {
  code?: string | null;
  message?: string | null;
}

/** An insert operation that ended DONE with `errors` (none of them RESOURCE_ALREADY_EXISTS). */
export function operationRefusal(errors: readonly OperationError[], httpStatus?: number): InsertRefusal {
  const codes = errors.map((e) => e.code ?? 'UNKNOWN');
  const why = errors.map((e) => `${e.code ?? 'UNKNOWN'}: ${e.message ?? ''}`).join('; ');
  if (codes.some((code) => STOCKOUTS.includes(code))) return { kind: 'stockout', why };
  if (codes.some((code) => CAPACITY_CODES.has(code))) return { kind: 'capacity', why };
  const retryable = isRetryable({ httpStatus, reasons: [], message: '' });
  return { kind: 'failed', why, retryable };
}

/** An insert call that threw (not 409: the caller adopts that). */
export function requestRefusal(err: unknown): InsertRefusal {
  const facts = apiErrorFacts(err);
  const why = describeApiError(err);
  const said = [...facts.reasons, facts.message];
  if (STOCKOUTS.some((code) => said.some((text) => text.includes(code)))) return { kind: 'stockout', why };
  if (
    facts.httpStatus === 429 ||
    facts.reasons.some((reason) => CAPACITY_REASONS.has(reason)) ||
    facts.message.includes('QUOTA_EXCEEDED')
  ) {
    return { kind: 'capacity', why };
  }
  if (mayHaveArrived(facts, err)) return { kind: 'lost', why };
  return { kind: 'failed', why, retryable: isRetryable(facts) };
}

/** Whether a failed call may have reached the API before its answer was lost. */
function mayHaveArrived(facts: ApiErrorFacts, err: unknown): boolean {
  if (facts.credentials === true) return false; // stopped before any request
  if (facts.httpStatus !== undefined) return facts.httpStatus >= 500;
  if (facts.code === DEADLINE_EXCEEDED) return true;
  if (facts.code === UNAVAILABLE) return !causeCodes(err).some((code) => NOT_SENT.has(code));
  return false;
}

/** The string `code`s along an error's cause chain (gax wraps gaxios, which wraps node's error). */
function causeCodes(err: unknown): string[] {
  const codes: string[] = [];
  let current: unknown = err;
  for (let depth = 0; depth < 5 && typeof current === 'object' && current !== null; depth++) {
    const { code, cause } = current as { code?: unknown; cause?: unknown };
    if (typeof code === 'string') codes.push(code);
    current = cause;
  }
  return codes;
}
