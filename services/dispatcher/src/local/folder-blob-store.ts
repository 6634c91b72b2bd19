// Buckets of the local mode: one folder each under local/ (input, output, shared). An object's
// generation is its file's modification time in nanoseconds, so writing the same path again makes a
// new generation, as an upload does. Custom metadata (e.g. pipeline-runtime=vm) and a content type
// can be given in a sidecar file, local/.metadata/<bucket>/<name>.json, which `pipeline submit`
// writes before it moves the file into place.
import fs from 'node:fs';
import path from 'node:path';
import type { BlobStore, StorageObject } from '@pipeline/core';

const CONTENT_TYPES: Record<string, string> = {
  '.csv': 'text/csv',
  '.tsv': 'text/tab-separated-values',
  '.json': 'application/json',
  '.txt': 'text/plain',
  '.parquet': 'application/vnd.apache.parquet',
  '.png': 'image/png',
  '.jpg': 'image/jpeg',
};

/** The content type a file's extension implies, as an upload tool would set it. */
export function contentTypeOf(name: string): string {
  return CONTENT_TYPES[path.extname(name).toLowerCase()] ?? 'application/octet-stream';
}

export interface ObjectSidecar {
  contentType?: string;
  metadata?: Record<string, string>;
}

export class FolderBlobStore implements BlobStore {
  readonly root: string;
  private readonly buckets: Map<string, string>;

  /** `buckets`: bucket name to folder. */
  constructor(root: string, buckets: Record<string, string>) {
    this.root = root;
    this.buckets = new Map(Object.entries(buckets));
  }

  folder(bucket: string): string {
    const folder = this.buckets.get(bucket);
    if (folder === undefined)
      throw new Error(
        `no local bucket named ${JSON.stringify(bucket)} (known: ${[...this.buckets.keys()].join(', ')})`,
      );
    return folder;
  }

  uri(bucket: string, name: string): string {
    return objectPath(this.folder(bucket), name) + (name.endsWith('/') ? '/' : '');
  }

  sidecarPath(bucket: string, name: string): string {
    return `${objectPath(path.join(this.root, '.metadata', bucket), name)}.json`;
  }

  async stat(bucket: string, name: string): Promise<StorageObject | undefined> {
    let stats: fs.BigIntStats;
    try {
      stats = await fs.promises.stat(objectPath(this.folder(bucket), name), { bigint: true });
    } catch (err) {
      if (
        (err as NodeJS.ErrnoException).code === 'ENOENT' ||
        (err as NodeJS.ErrnoException).code === 'ENOTDIR'
      )
        return undefined;
      throw err;
    }
    if (!stats.isFile()) return undefined;
    const sidecar = await this.readSidecar(bucket, name);
    return {
      bucket,
      name,
      generation: stats.mtimeNs.toString(),
      size: Number(stats.size),
      contentType: sidecar.contentType ?? contentTypeOf(name),
      metadata: sidecar.metadata ?? {},
      timeCreated: new Date(Number(stats.mtimeMs)).toISOString(),
    };
  }

  /** `uri` is a path this store made (uri()): it must lie inside the store's root. */
  async read(
    uri: string,
    offset: number,
    maxBytes: number,
  ): Promise<{ data: Buffer; size: number } | undefined> {
    const file = path.resolve(uri);
    if (!file.startsWith(path.resolve(this.root) + path.sep)) {
      throw new Error(`${uri} is not inside the local buckets at ${this.root}`);
    }
    let handle: fs.promises.FileHandle;
    try {
      handle = await fs.promises.open(file, 'r');
    } catch (err) {
      const code = (err as NodeJS.ErrnoException).code;
      if (code === 'ENOENT' || code === 'ENOTDIR') return undefined;
      throw err;
    }
    try {
      const size = (await handle.stat()).size;
      const length = Math.max(0, Math.min(maxBytes, size - offset));
      const data = Buffer.alloc(length);
      const { bytesRead } = length === 0 ? { bytesRead: 0 } : await handle.read(data, 0, length, offset);
      return { data: data.subarray(0, bytesRead), size };
    } finally {
      await handle.close();
    }
  }

  private async readSidecar(bucket: string, name: string): Promise<ObjectSidecar> {
    try {
      const parsed = JSON.parse(
        await fs.promises.readFile(this.sidecarPath(bucket, name), 'utf8'),
      ) as ObjectSidecar;
      return typeof parsed === 'object' && parsed !== null ? parsed : {};
    } catch {
      return {};
    }
  }
}

/**
 * The file of an object. Object names are data: any bytes but "." and ".." segments, which would
 * leave the bucket's folder, are refused.
 */
export function objectPath(folder: string, name: string): string {
  const segments = name.split('/');
  if (name === '' || name.includes('\0') || segments.some((s) => s === '.' || s === '..')) {
    throw new Error(`object name ${JSON.stringify(name)} cannot be stored in a local folder`);
  }
  return path.join(folder, ...segments.filter((s) => s !== ''));
}
