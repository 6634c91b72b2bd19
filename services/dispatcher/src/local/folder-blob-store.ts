// Buckets of the local mode: one folder each under local/ (input, output, shared). An object's
// generation is its file's modification time in nanoseconds, so writing the same path again makes a
// new generation, as an upload does. Custom metadata (e.g. pipeline-runtime=vm) and a content type
// can be given in a sidecar file, local/.metadata/<bucket>/<name>.json, which `pipeline submit`
// writes before it moves the file into place.
import fs from 'node:fs';
import path from 'node:path';
import type { BlobStore, ListedObject, ObjectLister, ObjectPage, StorageObject } from '@pipeline/core';

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

export class FolderBlobStore implements BlobStore, ObjectLister {
  readonly root: string;
  private readonly buckets: Map<string, string>;
  /** putIf's compare and write, one at a time: the local pipeline is one process. */
  private writes: Promise<unknown> = Promise.resolve();

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
    // Its real path: a link written into a bucket folder must not lead outside the buckets.
    const file = await ifThere(fs.promises.realpath(path.resolve(uri)));
    if (file === undefined) return undefined;
    const root = await fs.promises.realpath(this.root);
    if (!file.startsWith(root + path.sep)) {
      throw new Error(`${uri} is not inside the local buckets at ${this.root}`);
    }
    const handle = await openIfThere(file);
    if (handle === undefined) return undefined;
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

  async list(bucket: string, prefix: string, limit: number): Promise<ListedObject[]> {
    const folder = this.folder(bucket);
    // The folder the prefix names, or the one holding the files a partial last segment starts.
    const cut = prefix.lastIndexOf('/');
    const start = cut < 0 ? folder : objectPath(folder, prefix.slice(0, cut + 1));
    const found: ListedObject[] = [];
    let entries: fs.Dirent[];
    try {
      entries = await fs.promises.readdir(start, { recursive: true, withFileTypes: true });
    } catch (err) {
      const code = (err as NodeJS.ErrnoException).code;
      if (code === 'ENOENT' || code === 'ENOTDIR') return [];
      throw err;
    }
    for (const entry of entries) {
      if (!entry.isFile() || entry.name.startsWith('.pipeline-write-')) continue;
      const file = path.join(entry.parentPath, entry.name);
      const name = path.relative(folder, file).split(path.sep).join('/');
      if (!name.startsWith(prefix)) continue;
      const stats = await fs.promises.stat(file);
      found.push({
        name,
        size: stats.size,
        updated: stats.mtime.toISOString(),
        contentType: contentTypeOf(name),
      });
    }
    return found.sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0)).slice(0, limit);
  }

  /**
   * A page of the bucket's objects under `prefix`, by name, as Cloud Storage's objects.list pages
   * them: the token names the page's last object, and the next page starts after it. The names of the
   * folder are read for each page (a laptop's folder, not a bucket of millions); only the page's own
   * files are looked at. Names with a segment starting with "." are skipped, as the input watcher
   * skips them: files still being written by `pipeline submit`, and sidecars.
   */
  async listPage(bucket: string, prefix: string, pageSize: number, pageToken?: string): Promise<ObjectPage> {
    const folder = this.folder(bucket);
    const after = pageToken === undefined ? undefined : Buffer.from(pageToken, 'base64url').toString('utf8');
    const cut = prefix.lastIndexOf('/');
    const start = cut < 0 ? folder : objectPath(folder, prefix.slice(0, cut + 1));
    let entries: fs.Dirent[];
    try {
      entries = await fs.promises.readdir(start, { recursive: true, withFileTypes: true });
    } catch (err) {
      const code = (err as NodeJS.ErrnoException).code;
      if (code === 'ENOENT' || code === 'ENOTDIR') return { objects: [] };
      throw err;
    }
    const names = entries
      .filter((entry) => entry.isFile())
      .map((entry) =>
        path.relative(folder, path.join(entry.parentPath, entry.name)).split(path.sep).join('/'),
      )
      .filter((name) => name.startsWith(prefix) && !name.split('/').some((s) => s.startsWith('.')))
      .filter((name) => after === undefined || name > after)
      .sort();
    const page = names.slice(0, pageSize);
    const objects: StorageObject[] = [];
    for (const name of page) {
      const object = await this.stat(bucket, name);
      if (object !== undefined) objects.push(object); // gone since the folder was read
    }
    const more = names.length > pageSize;
    return { objects, ...(more ? { nextPageToken: Buffer.from(page.at(-1)!).toString('base64url') } : {}) };
  }

  async get(bucket: string, name: string): Promise<{ data: Buffer; generation: string } | undefined> {
    const file = objectPath(this.folder(bucket), name);
    const handle = await openIfThere(file);
    if (handle === undefined) return undefined;
    try {
      // One open file: the bytes and the generation are of the same version, even if a putIf
      // renames a new one into place meanwhile.
      const stats = await handle.stat({ bigint: true });
      return { data: await handle.readFile(), generation: stats.mtimeNs.toString() };
    } finally {
      await handle.close();
    }
  }

  /** Compare and write under one lock; the new file is renamed into place, so readers see all or nothing. */
  async putIf(
    bucket: string,
    name: string,
    data: Buffer,
    _contentType: string,
    ifGeneration: string,
  ): Promise<boolean> {
    const file = objectPath(this.folder(bucket), name);
    const write = this.writes.then(async () => {
      const current = await this.stat(bucket, name);
      if ((current?.generation ?? '0') !== ifGeneration) return false;
      await fs.promises.mkdir(path.dirname(file), { recursive: true });
      const temporary = path.join(path.dirname(file), `.pipeline-write-${process.pid}-${Date.now()}`);
      await fs.promises.writeFile(temporary, data);
      // The generation is the modification time, which the file system keeps in coarse ticks: a
      // version written in the same tick as the one it replaces is dated a millisecond later, so
      // that a compare-and-set against the old one fails, as on Cloud Storage.
      if (current !== undefined) {
        const written = await fs.promises.stat(temporary, { bigint: true });
        if (written.mtimeNs <= BigInt(current.generation)) {
          const later = new Date(Number(BigInt(current.generation) / 1_000_000n) + 1);
          await fs.promises.utimes(temporary, later, later);
        }
      }
      await fs.promises.rename(temporary, file);
      return true;
    });
    this.writes = write.catch(() => undefined);
    return write;
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

/** What `work` finds, or undefined if the path (or a folder on it) does not exist. */
async function ifThere<T>(work: Promise<T>): Promise<T | undefined> {
  try {
    return await work;
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if (code === 'ENOENT' || code === 'ENOTDIR') return undefined;
    throw err;
  }
}

function openIfThere(file: string): Promise<fs.promises.FileHandle | undefined> {
  return ifThere(fs.promises.open(file, 'r'));
}
