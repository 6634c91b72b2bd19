// Cloud Storage as the dispatcher sees it: the current version of an object (for POST /jobs), gs://
// URIs for tasks, and parts of logs for the dashboard and the CLI. The client is created on first
// use, so it costs nothing at start-up; it follows the library's own conventions (Application
// Default Credentials, STORAGE_EMULATOR_HOST for a loopback server in tests).
import type { Storage } from '@google-cloud/storage';
import { parseObjectResource, type BlobStore, type StorageObject } from '@pipeline/core';

export class GcsBlobStore implements BlobStore {
  private client: Promise<Storage> | undefined;

  private storage(): Promise<Storage> {
    this.client ??= import('@google-cloud/storage').then(({ Storage }) => new Storage());
    return this.client;
  }

  /** The object's resource as the API gives it, or undefined if there is no such object. */
  private async metadata(storage: Storage, bucket: string, name: string) {
    try {
      return (await storage.bucket(bucket).file(name).getMetadata())[0];
    } catch (err) {
      if (isNotFound(err)) return undefined;
      throw err;
    }
  }

  async stat(bucket: string, name: string): Promise<StorageObject | undefined> {
    const metadata = await this.metadata(await this.storage(), bucket, name);
    if (metadata === undefined) return undefined;
    const object = parseObjectResource(metadata);
    if (typeof object === 'string')
      throw new Error(`Cloud Storage answered an unreadable object resource: ${object}`);
    return object;
  }

  uri(bucket: string, name: string): string {
    return `gs://${bucket}/${name}`;
  }

  async read(
    uri: string,
    offset: number,
    maxBytes: number,
  ): Promise<{ data: Buffer; size: number } | undefined> {
    const { bucket, name } = parseGsUri(uri);
    if (!Number.isSafeInteger(offset) || offset < 0 || !Number.isSafeInteger(maxBytes) || maxBytes < 0) {
      throw new Error(`cannot read ${uri} from ${offset}, at most ${maxBytes} bytes: not byte counts`);
    }
    const storage = await this.storage();
    // A log is rewritten while its task runs. The size and the bytes come from one generation; if
    // that generation was replaced between the two calls, the newer one is read instead, once.
    for (let tries = 1; ; tries++) {
      const metadata = await this.metadata(storage, bucket, name);
      if (metadata === undefined) return undefined;
      const size = Number(metadata.size);
      const end = Math.min(size, offset + maxBytes); // exclusive
      if (end <= offset) return { data: Buffer.alloc(0), size };
      try {
        const file = storage.bucket(bucket).file(name, { generation: metadata.generation });
        // `end` of download is inclusive; a range read is not hash-checked (the hashes are the whole object's).
        const [data] = await file.download({ start: offset, end: end - 1 });
        return { data, size };
      } catch (err) {
        if (isNotFound(err) && tries < 2) continue;
        throw err;
      }
    }
  }
}

/** gs://bucket/name, with a name that may hold any character (also `/`, spaces and newlines). */
function parseGsUri(uri: string): { bucket: string; name: string } {
  const match = /^gs:\/\/([^/]+)\/([\s\S]+)$/.exec(uri);
  if (match === null)
    throw new Error(`${JSON.stringify(uri)} is not a Cloud Storage object (gs://bucket/name)`);
  return { bucket: match[1], name: match[2] };
}

function isNotFound(err: unknown): boolean {
  return (err as { code?: unknown } | null)?.code === 404;
}
