// Cloud Storage as the dispatcher sees it: the current version of an object (for POST /jobs), and
// gs:// URIs for tasks. The client is created on first use, so it costs nothing at start-up.
import type { Storage } from '@google-cloud/storage';
import { parseObjectResource, type BlobStore, type StorageObject } from '@pipeline/core';

export class GcsBlobStore implements BlobStore {
  private client: Promise<Storage> | undefined;

  async stat(bucket: string, name: string): Promise<StorageObject | undefined> {
    this.client ??= import('@google-cloud/storage').then(({ Storage }) => new Storage());
    const storage = await this.client;
    let metadata;
    try {
      [metadata] = await storage.bucket(bucket).file(name).getMetadata();
    } catch (err) {
      if ((err as { code?: unknown }).code === 404) return undefined;
      throw err;
    }
    const object = parseObjectResource(metadata);
    if (typeof object === 'string')
      throw new Error(`Cloud Storage answered an unreadable object resource: ${object}`);
    return object;
  }

  uri(bucket: string, name: string): string {
    return `gs://${bucket}/${name}`;
  }
}
