// The body of POST /backfill, validated:
//   { "source": "gs://bucket/prefix/", "match": "**/*.csv", "since": "2026-01-01T00:00:00Z",
//     "failedOnly": false, "dryRun": false }
// or "bucket" and "prefix" instead of "source". Everything but the bucket is optional: no prefix is
// the whole bucket. A prefix is data (any characters, up to 1,024 bytes as object names are);
// `match` is a glob of glob.ts, matched against whole object names as rules match them.
import { compileGlob, type BackfillRequest } from '@pipeline/core';
import { RequestError } from './errors.ts';

export type BackfillBody = BackfillRequest & { dryRun: boolean };

const KEYS = new Set(['source', 'bucket', 'prefix', 'match', 'since', 'failedOnly', 'dryRun']);
/** Bucket names: 3 to 63 characters (222 with dots) of lowercase letters, digits, -, _ and . */
const BUCKET = /^[a-z0-9][a-z0-9._-]{1,220}[a-z0-9]$/;
const MAX_NAME_BYTES = 1024;

export function parseBackfillRequest(body: unknown): BackfillBody {
  if (typeof body !== 'object' || body === null || Array.isArray(body))
    invalid('the body must be a JSON object');
  const fields = body as Record<string, unknown>;
  for (const key of Object.keys(fields)) if (!KEYS.has(key)) invalid(`unknown field ${JSON.stringify(key)}`);
  const { bucket, prefix } = sourceOf(fields);
  if (!BUCKET.test(bucket)) invalid(`${JSON.stringify(bucket)} is not a bucket name`);
  if (prefix.includes('\0') || Buffer.byteLength(prefix, 'utf8') > MAX_NAME_BYTES)
    invalid('prefix must be at most 1,024 bytes, without NUL');
  const request: BackfillBody = {
    bucket,
    prefix,
    failedOnly: flag(fields, 'failedOnly'),
    dryRun: flag(fields, 'dryRun'),
  };
  if (fields.match !== undefined) {
    const { match } = fields;
    if (typeof match !== 'string' || match === '') invalid('match must be a glob like "**/*.csv"');
    try {
      compileGlob(match);
    } catch (err) {
      invalid(`match: ${(err as Error).message}`);
    }
    request.match = match;
  }
  if (fields.since !== undefined) {
    const { since } = fields;
    const time = typeof since === 'string' && /^\d{4}-\d\d-\d\dT/.test(since) ? Date.parse(since) : NaN;
    if (Number.isNaN(time)) invalid('since must be an ISO 8601 time like "2026-01-01T00:00:00Z"');
    request.since = new Date(time).toISOString();
  }
  return request;
}

function sourceOf(fields: Record<string, unknown>): { bucket: string; prefix: string } {
  const { source, bucket, prefix = '' } = fields;
  if (source !== undefined) {
    if (bucket !== undefined || fields.prefix !== undefined)
      invalid('give source, or bucket and prefix, not both');
    if (typeof source !== 'string') invalid('source must be a string like gs://bucket/prefix');
    const match = /^gs:\/\/([^/]+)(?:\/(.*))?$/s.exec(source);
    if (match === null) invalid('source must look like gs://bucket or gs://bucket/prefix');
    return { bucket: match[1], prefix: match[2] ?? '' };
  }
  if (typeof bucket !== 'string') invalid('give source ("gs://bucket/prefix"), or bucket');
  if (typeof prefix !== 'string') invalid('prefix must be a string');
  return { bucket, prefix };
}

function flag(fields: Record<string, unknown>, name: string): boolean {
  const value = fields[name];
  if (value === undefined) return false;
  if (typeof value !== 'boolean') invalid(`${name} must be true or false`);
  return value;
}

function invalid(message: string): never {
  throw new RequestError('INVALID', message);
}
