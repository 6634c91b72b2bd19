// One Storage client per process, made on first use. Endpoint and credentials come from the client's
// own conventions: STORAGE_EMULATOR_HOST for a loopback server in tests, Application Default
// Credentials (the service account of the Cloud Run job or the VM) otherwise.
import type { Storage } from '@google-cloud/storage';
import { parseLocation } from './location.ts';

let client: Promise<Storage> | undefined;

export function storageClient(): Promise<Storage> {
  client ??= import('@google-cloud/storage').then(({ Storage }) => new Storage());
  return client;
}

/** Replaces the log object at `uri` (gs://bucket/name) with `content`. */
export async function saveLog(uri: string, content: Buffer): Promise<void> {
  const location = parseLocation(uri, 'the log URI');
  if (location.kind !== 'gcs' || location.name === '')
    throw new Error(`log URI ${uri} is not a gs:// object`);
  const storage = await storageClient();
  // One request per upload: a log is small, and a resumable session would double the requests.
  await storage
    .bucket(location.bucket)
    .file(location.name)
    .save(content, { resumable: false, contentType: 'text/plain; charset=utf-8' });
}
