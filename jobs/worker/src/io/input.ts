// The input, readable as a stream of byte chunks as many times as the task needs (the logistic
// regression reads it twice: once to load the numbers, once to copy the rows into the predictions).
// Each read sees the same bytes: a Cloud Storage object is read at one fixed generation, and a local
// file is checked for a change of size or modification time. A local file's generation, as the local
// mode of the pipeline names it, is its modification time in nanoseconds.
import fs from 'node:fs';
import { IoError } from '../errors.ts';
import { describe, type Location } from './location.ts';
import { storageClient } from './gcs.ts';

export interface InputSource {
  uri: string;
  size: number;
  /** The Cloud Storage generation read, if the input is an object. */
  generation?: string;
  read(): AsyncIterable<Uint8Array>;
}

const CHUNK_BYTES = 1 << 20;

export async function openInput(location: Location, generation?: string): Promise<InputSource> {
  return location.kind === 'local'
    ? openLocal(location.path, generation)
    : openObject(location.bucket, location.name, generation);
}

async function openLocal(path: string, generation?: string): Promise<InputSource> {
  const before = await statFile(path);
  if (generation !== undefined && before.mtimeNs.toString() !== generation) {
    throw new IoError(`input ${path} is no longer generation ${generation}: it was written again`);
  }
  return {
    uri: path,
    size: Number(before.size),
    generation,
    async *read() {
      const now = await statFile(path);
      if (now.size !== before.size || now.mtimeNs !== before.mtimeNs) {
        throw new IoError(`input ${path} changed while it was being processed`);
      }
      try {
        yield* fs.createReadStream(path, { highWaterMark: CHUNK_BYTES }) as AsyncIterable<Buffer>;
      } catch (err) {
        throw new IoError(`cannot read input ${path}: ${(err as Error).message}`, { cause: err });
      }
    },
  };
}

async function statFile(path: string): Promise<fs.BigIntStats> {
  let stats: fs.BigIntStats;
  try {
    stats = await fs.promises.stat(path, { bigint: true });
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    const why =
      code === 'ENOENT' ? 'no such file' : code === 'EACCES' ? 'permission denied' : (err as Error).message;
    throw new IoError(`cannot read input ${path}: ${why}`, { cause: err });
  }
  if (!stats.isFile()) throw new IoError(`cannot read input ${path}: not a regular file`);
  return stats;
}

async function openObject(bucket: string, name: string, generation?: string): Promise<InputSource> {
  const uri = describe({ kind: 'gcs', bucket, name });
  if (name === '') throw new IoError(`cannot read input ${uri}: no object name`);
  const storage = await storageClient();
  const options = generation === undefined ? {} : { generation };
  let metadata;
  try {
    [metadata] = await storage.bucket(bucket).file(name, options).getMetadata();
  } catch (err) {
    throw new IoError(`cannot read input ${uri}: ${gcsReason(err)}`, { cause: err });
  }
  const pinned = String(metadata.generation);
  const file = storage.bucket(bucket).file(name, { generation: pinned });
  return {
    uri,
    size: Number(metadata.size),
    generation: pinned,
    async *read() {
      try {
        yield* file.createReadStream() as AsyncIterable<Buffer>;
      } catch (err) {
        throw new IoError(`cannot read input ${uri}#${pinned}: ${gcsReason(err)}`, { cause: err });
      }
    },
  };
}

export function gcsReason(err: unknown): string {
  const code = (err as { code?: unknown }).code;
  if (code === 404) return 'no such object (or generation)';
  if (code === 403 || code === 401) return `access denied (${code})`;
  return (err as Error).message;
}
