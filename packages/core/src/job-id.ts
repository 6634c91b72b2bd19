// The job id of an object version: a stable hash of bucket/object#generation. Every delivery of the
// same notification, and a POST /jobs naming the same object generation, maps to the same job, which
// is what makes the ledger's create-if-absent a claim.
import { createHash } from 'node:crypto';

export function jobIdFor(bucket: string, name: string, generation: string): string {
  return createHash('sha256').update(`${bucket}/${name}#${generation}`, 'utf8').digest('hex').slice(0, 32);
}

export function isJobId(value: string): boolean {
  return /^[0-9a-f]{32}$/.test(value);
}

/** The id of one occurrence of a schedule: the same for every reconciler that makes it, so it is made once. */
export function occurrenceId(seriesId: string, runAt: string): string {
  return createHash('sha256').update(`${seriesId}@${runAt}`, 'utf8').digest('hex').slice(0, 32);
}

/**
 * The job of a run of an object version with parameters of its own (POST /jobs "params"): the same
 * for the same object version and parameters, so a repeated request is a duplicate, not a second run.
 */
export function paramsRunId(objectJobId: string, params: Record<string, string>): string {
  // Names match their rule in any case (routing/params.ts), so they are named here in one case.
  const entries = Object.entries(params).map(([name, value]) => [name.toUpperCase(), value]);
  const canonical = JSON.stringify(entries.sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)));
  return createHash('sha256').update(`${objectJobId}?${canonical}`, 'utf8').digest('hex').slice(0, 32);
}

/** The least string after every string that starts with `prefix`: the end of an id-range query. */
export function followingPrefix(prefix: string): string {
  if (prefix === '') throw new RangeError('an id prefix must not be empty');
  return prefix.slice(0, -1) + String.fromCharCode(prefix.charCodeAt(prefix.length - 1) + 1);
}
