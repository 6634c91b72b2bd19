// The agent's Cloud Storage: one client per process, made on first use, with the client's own
// conventions (STORAGE_EMULATOR_HOST for a loopback server in tests, the VM's service account through
// Application Default Credentials otherwise). The worker has its own (jobs/worker/src/io/gcs.ts): the
// two images share no code that imports a Google library, and this is all of it.
import type { Storage } from '@google-cloud/storage';

let client: Promise<Storage> | undefined;

export function storageClient(): Promise<Storage> {
  client ??= import('@google-cloud/storage').then(({ Storage }) => new Storage());
  return client;
}

/** gs://BUCKET/NAME as its bucket and name (NAME may be empty or a prefix); a throw for anything else. */
export function gsLocation(uri: string, what: string): { bucket: string; name: string } {
  const match = /^gs:\/\/([a-z0-9][a-z0-9._-]{1,220}[a-z0-9])(?:\/(.*))?$/s.exec(uri);
  if (match === null) throw new Error(`${what} ${uri} is not a gs:// URI of a valid bucket`);
  return { bucket: match[1]!, name: match[2] ?? '' };
}

/** Replaces the log object at `uri` (gs://bucket/name) with `content`. */
export async function saveLog(uri: string, content: Buffer): Promise<void> {
  const location = gsLocation(uri, 'the log URI');
  if (location.name === '') throw new Error(`log URI ${uri} is not a gs:// object`);
  const storage = await storageClient();
  // One request per upload: a log is small, and a resumable session would double the requests.
  await storage
    .bucket(location.bucket)
    .file(location.name)
    .save(content, { resumable: false, contentType: 'text/plain; charset=utf-8' });
}
