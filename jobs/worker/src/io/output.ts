// Outputs in a local folder or under a gs:// prefix, each appearing under its final name only when it
// is complete: a local file is written under a temporary name and renamed; a Cloud Storage upload
// creates the object only when it is finalized, and an aborted upload creates nothing.
import fs from 'node:fs';
import path from 'node:path';
import { randomBytes } from 'node:crypto';
import { once } from 'node:events';
import type { Writable } from 'node:stream';
import { IoError } from '../errors.ts';
import { describe, type Location } from './location.ts';
import { storageClient } from './gcs.ts';
import { gcsReason } from './input.ts';

export interface OutputFile {
  /** Writes a chunk, waiting when the destination is slower than the producer. */
  write(chunk: Uint8Array): Promise<void>;
  /** Finishes the file and makes it visible under its final name. */
  commit(): Promise<void>;
  /** Gives up: nothing appears under the final name. */
  abort(): Promise<void>;
}

export interface OutputFolder {
  uri: string;
  create(name: string, contentType: string): Promise<OutputFile>;
  remove(name: string): Promise<void>;
}

export function openOutput(location: Location): OutputFolder {
  return location.kind === 'local' ? localFolder(location.path) : gcsFolder(location.bucket, location.name);
}

/** Writes a whole small file (JSON, a marker) at once. */
export async function writeWhole(
  folder: OutputFolder,
  name: string,
  contentType: string,
  text: string,
): Promise<void> {
  const file = await folder.create(name, contentType);
  try {
    await file.write(Buffer.from(text, 'utf8'));
    await file.commit();
  } catch (err) {
    await file.abort();
    throw err;
  }
}

function localFolder(dir: string): OutputFolder {
  return {
    uri: dir,
    async create(name) {
      const final = path.join(dir, name);
      const temporary = path.join(dir, `.${name}.${randomBytes(6).toString('hex')}.partial`);
      try {
        await fs.promises.mkdir(dir, { recursive: true });
      } catch (err) {
        throw new IoError(`cannot create output folder ${dir}: ${(err as Error).message}`, { cause: err });
      }
      const stream = fs.createWriteStream(temporary, { flags: 'wx' });
      return streamFile(
        stream,
        `${final}`,
        async () => fs.promises.rename(temporary, final),
        async () => {
          await fs.promises.rm(temporary, { force: true });
        },
      );
    },
    async remove(name) {
      await fs.promises.rm(path.join(dir, name), { force: true });
    },
  };
}

function gcsFolder(bucket: string, prefix: string): OutputFolder {
  const base = prefix === '' || prefix.endsWith('/') ? prefix : `${prefix}/`;
  const uri = describe({ kind: 'gcs', bucket, name: base });
  return {
    uri,
    async create(name, contentType) {
      const storage = await storageClient();
      const file = storage.bucket(bucket).file(base + name);
      const stream = file.createWriteStream({ resumable: true, contentType, metadata: { contentType } });
      return streamFile(
        stream,
        `${uri}${name}`,
        async () => {},
        async () => {},
      );
    },
    async remove(name) {
      const storage = await storageClient();
      try {
        await storage
          .bucket(bucket)
          .file(base + name)
          .delete({ ignoreNotFound: true });
      } catch (err) {
        throw new IoError(`cannot remove ${uri}${name}: ${gcsReason(err)}`, { cause: err });
      }
    },
  };
}

/** Adapts a writable stream: backpressure on write, errors as IoError, a hook after it finishes. */
function streamFile(
  stream: Writable,
  name: string,
  afterFinish: () => Promise<void>,
  afterAbort: () => Promise<void>,
): OutputFile {
  let failure: unknown;
  stream.on('error', (err) => (failure ??= err));
  const check = () => {
    if (failure !== undefined) {
      throw new IoError(`cannot write ${name}: ${reasonOf(failure)}`, { cause: failure });
    }
  };
  /** Resolves on `event`, or when the stream fails or closes first (the failure is recorded). */
  const settle = async (event: 'drain' | 'finish') => {
    const listening = new AbortController(); // removes the losing listener, so none pile up
    try {
      const { signal } = listening;
      await Promise.race([once(stream, event, { signal }), once(stream, 'close', { signal })]);
    } catch (err) {
      failure ??= err;
    } finally {
      listening.abort();
    }
    if (stream.destroyed && !stream.writableFinished) failure ??= new Error('the upload stream closed early');
  };
  return {
    async write(chunk) {
      check();
      if (!stream.write(chunk)) await settle('drain');
      check();
    },
    async commit() {
      check();
      stream.end();
      await settle('finish');
      check();
      try {
        await afterFinish();
      } catch (err) {
        throw new IoError(`cannot write ${name}: ${reasonOf(err)}`, { cause: err });
      }
    },
    async abort() {
      stream.destroy(new Error('aborted'));
      await afterAbort();
    },
  };
}

/** The Storage library can fail a stream with a plain object (a server's error body), not an Error. */
function reasonOf(err: unknown): string {
  if (err instanceof Error) return err.message;
  if (typeof err === 'object' && err !== null && 'message' in err) return String(err.message);
  return JSON.stringify(err) ?? String(err);
}
