// One Storage client per process, made on first use. Endpoint and credentials come from the client's
// own conventions: STORAGE_EMULATOR_HOST for a loopback server in tests, Application Default
// Credentials (the service account of the Cloud Run job or the VM) otherwise.
import type { Storage } from '@google-cloud/storage';

let client: Promise<Storage> | undefined;

export function storageClient(): Promise<Storage> {
  client ??= import('@google-cloud/storage').then(({ Storage }) => new Storage());
  return client;
}
