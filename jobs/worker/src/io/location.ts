// Where the input comes from and where outputs go: a local path, or gs://bucket/object.
import { UsageError } from '../errors.ts';

export type Location = { kind: 'local'; path: string } | { kind: 'gcs'; bucket: string; name: string };

// Bucket names: 3-63 (222 with dots) lowercase letters, digits, dashes, underscores and dots.
const BUCKET = /^[a-z0-9][a-z0-9._-]{1,220}[a-z0-9]$/;

export function parseLocation(uri: string, what: string): Location {
  if (uri.trim() === '') throw new UsageError(`${what} is empty`);
  if (!uri.startsWith('gs://')) {
    if (/^[a-z][a-z0-9+.-]*:\/\//i.test(uri)) {
      throw new UsageError(`${what} "${uri}" is neither a local path nor a gs:// URI`);
    }
    return { kind: 'local', path: uri };
  }
  const rest = uri.slice('gs://'.length);
  const slash = rest.indexOf('/');
  const bucket = slash < 0 ? rest : rest.slice(0, slash);
  const name = slash < 0 ? '' : rest.slice(slash + 1);
  if (!BUCKET.test(bucket)) throw new UsageError(`${what} "${uri}" does not name a valid bucket`);
  return { kind: 'gcs', bucket, name };
}

export function describe(location: Location): string {
  return location.kind === 'local' ? location.path : `gs://${location.bucket}/${location.name}`;
}
