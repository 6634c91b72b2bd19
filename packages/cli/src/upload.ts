// Uploads into the input bucket of a deployed pipeline, through @google-cloud/storage: the object's
// notification then starts its job, exactly as for any other upload. Credentials are Application
// Default Credentials (`gcloud auth application-default login`, which setup.sh asks for already).
// $PIPELINE_STORAGE_ENDPOINT points the client at another endpoint (a private one; a test server).
import type { Storage } from '@google-cloud/storage';
import { formatBytes } from '@pipeline/core';
import { Failure, type Io } from './errors.ts';
import { printable } from './format.ts';

export async function storageClient(env: NodeJS.ProcessEnv): Promise<Storage> {
  const { Storage } = await import('@google-cloud/storage');
  const apiEndpoint = env.PIPELINE_STORAGE_ENDPOINT;
  return new Storage(apiEndpoint === undefined || apiEndpoint === '' ? {} : { apiEndpoint });
}

/** Uploads `file` as gs://bucket/name with custom metadata; the new object's generation. */
export async function uploadFile(
  storage: Storage,
  target: { bucket: string; name: string },
  file: string,
  metadata: Record<string, string>,
  progress?: ProgressBar,
): Promise<string> {
  const { bucket, name } = target;
  let uploaded;
  try {
    [uploaded] = await storage.bucket(bucket).upload(file, {
      destination: name,
      metadata: Object.keys(metadata).length > 0 ? { metadata } : {},
      // A resumable upload reports its progress; a single-request one says nothing until it ends.
      resumable: progress !== undefined,
      ...(progress === undefined ? {} : { onUploadProgress: (e) => progress.update(e.bytesWritten) }),
    });
  } catch (err) {
    throw new Failure(`uploading ${file} to gs://${bucket}/${printable(name)} failed: ${storageError(err)}`, {
      cause: err,
    });
  }
  progress?.finish();
  const generation = uploaded.metadata.generation;
  if (generation === undefined || generation === null)
    throw new Failure(`Cloud Storage did not say the generation of gs://${bucket}/${printable(name)}`);
  return String(generation);
}

function storageError(err: unknown): string {
  const { message, code } = err as Error & { code?: unknown };
  if (message.includes('default credentials')) return `${message}; run gcloud auth application-default login`;
  if (code === 403) return `${message}; may your account write to this bucket?`;
  if (code === 404) return `${message}; is the bucket's name right? (terraform output input_bucket)`;
  return message;
}

/** Uploads of this size and more show a progress bar without being asked. */
export const PROGRESS_FROM_BYTES = 8 * 1024 * 1024;

/**
 * A progress bar on stderr. On a terminal it redraws one line (at most 10 times a second); elsewhere
 * (a log file, a CI job) it writes a line at each tenth, since a redrawn line would be noise there.
 */
export class ProgressBar {
  private readonly io: Io;
  private readonly label: string;
  private readonly total: number;
  private lastDrawn = 0;
  private lastTenth = -1;
  private done = 0;

  constructor(io: Io, label: string, total: number) {
    this.io = io;
    const shown = printable(label);
    this.label = shown.length > 40 ? `...${shown.slice(-37)}` : shown;
    this.total = total;
  }

  update(bytes: number): void {
    this.done = Math.min(bytes, this.total);
    if (this.io.stderr.isTTY) {
      if (Date.now() - this.lastDrawn < 100) return;
      this.lastDrawn = Date.now();
      this.io.stderr.write(`\r${this.line()}`);
      return;
    }
    const tenth = this.total === 0 ? 10 : Math.floor((this.done / this.total) * 10);
    if (tenth > this.lastTenth) {
      this.lastTenth = tenth;
      this.io.stderr.write(`${this.line()}\n`);
    }
  }

  finish(): void {
    this.lastDrawn = 0;
    this.update(this.total);
    if (this.io.stderr.isTTY) this.io.stderr.write('\n');
  }

  private line(): string {
    const fraction = this.total === 0 ? 1 : this.done / this.total;
    const filled = Math.round(fraction * 24);
    const bar = `[${'#'.repeat(filled)}${'-'.repeat(24 - filled)}]`;
    const percent = `${Math.floor(fraction * 100)}%`.padStart(4);
    return `${this.label}  ${bar} ${percent}  ${formatBytes(this.done)} of ${formatBytes(this.total)}`;
  }
}
