// Cloud Storage as the dispatcher sees it: the current version of an object (for POST /jobs), gs://
// URIs for tasks, and parts of logs for the dashboard and the CLI. The client is created on first
// use, so it costs nothing at start-up; it follows the library's own conventions (Application
// Default Credentials, STORAGE_EMULATOR_HOST for a loopback server in tests).
//
// When Cloud Storage cannot be asked or answers "not now" (no credentials, no connection, 401, 408,
// 429, 5xx), stat and read throw RetryLaterError: POST /jobs answers 503 and the caller tries again.
// Without credentials the library sends the request unauthenticated and, on the 401, reports its
// "Could not load the default credentials" error, which carries no HTTP status.
import type { Storage, StorageOptions } from '@google-cloud/storage';
import {
  parseObjectResource,
  type BlobStore,
  type ListedObject,
  type ObjectLister,
  type ObjectPage,
  type StorageObject,
} from '@pipeline/core';
import { RetryLaterError } from '../errors.ts';

export class GcsBlobStore implements BlobStore, ObjectLister {
  private client: Promise<Storage> | undefined;
  private readonly options: StorageOptions;

  /** `options` for the Storage client (tests: an apiEndpoint); default: the library's own. */
  constructor(options: StorageOptions = {}) {
    this.options = options;
  }

  private storage(): Promise<Storage> {
    this.client ??= import('@google-cloud/storage').then(({ Storage }) => new Storage(this.options));
    return this.client;
  }

  /** The object's resource as the API gives it, or undefined if there is no such object. */
  private async metadata(storage: Storage, bucket: string, name: string) {
    try {
      return (await storage.bucket(bucket).file(name).getMetadata())[0];
    } catch (err) {
      if (isNotFound(err)) return undefined;
      throw forNow(err, `reading gs://${bucket}/${name}`);
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
        throw forNow(err, `reading ${uri}`);
      }
    }
  }
  async list(bucket: string, prefix: string, limit: number): Promise<ListedObject[]> {
    const storage = await this.storage();
    try {
      // One page: a job's outputs are a handful of objects; `limit` bounds a task that wrote thousands.
      const [files] = await storage
        .bucket(bucket)
        .getFiles({ prefix, maxResults: limit, autoPaginate: false });
      return files.map(({ name, metadata }) => ({
        name,
        size: Number(metadata.size ?? 0),
        ...(metadata.updated === undefined ? {} : { updated: String(metadata.updated) }),
        ...(metadata.contentType === undefined ? {} : { contentType: String(metadata.contentType) }),
      }));
    } catch (err) {
      throw forNow(err, `listing gs://${bucket}/${prefix}`);
    }
  }

  /**
   * One page of objects.list (https://cloud.google.com/storage/docs/json_api/v1/objects/list): at
   * most `pageSize` items (the API gives at most 1,000, and may give fewer than asked), and the
   * opaque nextPageToken while there are more. A backfill keeps that token as its cursor. Needs
   * storage.objects.list on the bucket (roles/storage.objectViewer has it: terraform/iam.tf).
   */
  async listPage(bucket: string, prefix: string, pageSize: number, pageToken?: string): Promise<ObjectPage> {
    const storage = await this.storage();
    try {
      const [files, nextQuery] = await storage.bucket(bucket).getFiles({
        prefix,
        maxResults: pageSize,
        autoPaginate: false,
        ...(pageToken === undefined ? {} : { pageToken }),
      });
      // Each item is the object resource a notification carries; one that cannot be read as one
      // (no generation, say) is no object version to make a job of.
      const objects = files
        .map(({ metadata }) => parseObjectResource(metadata))
        .filter((object): object is StorageObject => typeof object !== 'string');
      const next = (nextQuery as { pageToken?: unknown } | null | undefined)?.pageToken;
      return { objects, ...(typeof next === 'string' && next !== '' ? { nextPageToken: next } : {}) };
    } catch (err) {
      throw forNow(err, `listing gs://${bucket}/${prefix}`);
    }
  }

  async get(bucket: string, name: string): Promise<{ data: Buffer; generation: string } | undefined> {
    const storage = await this.storage();
    // The bytes and the generation of one version: if it was replaced between the two calls, the
    // newer one is read instead, once.
    for (let tries = 1; ; tries++) {
      const metadata = await this.metadata(storage, bucket, name);
      if (metadata === undefined) return undefined;
      const generation = String(metadata.generation);
      try {
        const [data] = await storage.bucket(bucket).file(name, { generation }).download();
        return { data, generation };
      } catch (err) {
        if (isNotFound(err) && tries < 2) continue;
        throw forNow(err, `reading gs://${bucket}/${name}`);
      }
    }
  }

  /**
   * A single-request upload with ifGenerationMatch: Cloud Storage answers 412 when the object is no
   * longer at that generation, and ifGenerationMatch=0 means "only if it does not exist"
   * (https://cloud.google.com/storage/docs/request-preconditions). Overwriting needs
   * storage.objects.delete besides storage.objects.create.
   */
  async putIf(
    bucket: string,
    name: string,
    data: Buffer,
    contentType: string,
    ifGeneration: string,
  ): Promise<boolean> {
    const storage = await this.storage();
    try {
      await storage
        .bucket(bucket)
        .file(name)
        .save(data, {
          resumable: false,
          contentType,
          preconditionOpts: { ifGenerationMatch: ifGeneration },
        });
      return true;
    } catch (err) {
      if ((err as { code?: unknown } | null)?.code === 412) return false;
      throw forNow(err, `writing gs://${bucket}/${name}`);
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

/**
 * A RetryLaterError for an error that says Cloud Storage could not be asked or refused for now; any
 * other error as it is. The library gives an API answer's HTTP status as a numeric `code`; an error
 * without one never got an answer (credentials, connection).
 */
function forNow(err: unknown, what: string): unknown {
  const code = (err as { code?: unknown } | null)?.code;
  const passing =
    typeof code === 'number' ? code === 401 || code === 408 || code === 429 || code >= 500 : true;
  if (!passing) return err;
  const message = err instanceof Error ? err.message : String(err);
  return new RetryLaterError(`Cloud Storage, ${what}, failed for now: ${message}`, { cause: err });
}
