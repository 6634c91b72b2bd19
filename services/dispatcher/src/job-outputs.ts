// A job's outputs, read-only, for the dashboard and for people with curl:
//
//   GET /jobs/:id/outputs          what the job wrote under its own prefix of the output bucket
//   GET /jobs/:id/outputs/<name>   one of those objects, streamed (a predictions.csv can be hundreds of MB)
//
// Names are relative to the job's prefix (outputPrefix), and only names inside it are served: the
// name is data from a URL, so `..`, `.` and empty segments, NUL and absolute names are refused before
// anything is asked of the bucket. What is served is data too (a task's output, a log quoting an
// uploaded file): it is never given a type a browser would run, and the sandbox policy keeps it
// inert even if a browser guessed otherwise.
import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import type { Request, RequestHandler, Response } from 'express';
import type { Logger } from 'pino';
import { isJobId, writtenOutputPrefix, type BlobStore, type Job, type Ledger } from '@pipeline/core';
import { RequestError } from './errors.ts';

export interface JobOutputsPorts {
  ledger: Ledger;
  blobs: BlobStore;
  outputBucket: string;
  logger: Logger;
}

export interface JobOutput {
  /** Relative to the job's prefix: `predictions.csv`, `logs/attempt-1.log`. */
  name: string;
  size: number;
  updated?: string;
  contentType?: string;
}

export interface JobOutputList {
  /** The job's prefix in the output bucket. */
  prefix: string;
  /** How a task addresses that prefix (gs://bucket/prefix, or a folder in local mode). */
  uri: string;
  outputs: JobOutput[];
  /** Set when the listing stopped at `limit`: there may be more. */
  more?: true;
}

export const MAX_OUTPUTS = 1000;
/** How much of an object is read and sent at a time: one chunk is all a download holds in memory. */
export const READ_CHUNK_BYTES = 4 * 1024 * 1024;

/** Headers of every object served: no sniffing into a runnable type, no script, no use by other sites. */
export const OUTPUT_HEADERS = {
  'X-Content-Type-Options': 'nosniff',
  'Content-Security-Policy': "sandbox; default-src 'none'",
  'Cross-Origin-Resource-Policy': 'same-origin',
  // A retry writes the outputs again under the same names.
  'Cache-Control': 'no-store',
} as const;

async function knownJob(ledger: Ledger, id: string): Promise<Job> {
  const job = isJobId(id) ? await ledger.get(id) : undefined;
  if (job === undefined) throw new RequestError('NOT_FOUND', `no job ${id}`);
  return job;
}

export async function listJobOutputs(
  { ledger, blobs, outputBucket }: JobOutputsPorts,
  id: string,
  limit = MAX_OUTPUTS,
): Promise<JobOutputList> {
  const job = await knownJob(ledger, id);
  const prefix = writtenOutputPrefix(job, (p) => blobs.uri(outputBucket, p));
  const listed = await blobs.list(outputBucket, prefix, limit);
  const outputs = listed
    .filter((object) => object.name.startsWith(prefix) && object.name.length > prefix.length)
    .map(({ name, size, updated, contentType }) => ({
      name: name.slice(prefix.length),
      size,
      ...(updated === undefined ? {} : { updated }),
      ...(contentType === undefined ? {} : { contentType }),
    }));
  return {
    prefix,
    uri: blobs.uri(outputBucket, prefix),
    outputs,
    ...(listed.length >= limit ? { more: true as const } : {}),
  };
}

/**
 * The relative name an output URL names, or why it cannot name one. `segments` are the URL's path
 * segments after /outputs/, each already percent-decoded (so `a%2Fb` is one segment "a/b").
 */
export function relativeOutputName(segments: readonly string[]): string {
  const name = segments.join('/');
  if (name === '') throw new RequestError('INVALID', 'an output name is needed');
  if (name.includes('\0')) throw new RequestError('INVALID', 'an output name cannot hold NUL');
  if (name.startsWith('/'))
    throw new RequestError('INVALID', "an output name is relative to the job's prefix, not absolute");
  for (const segment of name.split('/')) {
    if (segment === '' || segment === '.' || segment === '..')
      throw new RequestError(
        'INVALID',
        `an output name cannot have an empty, "." or ".." segment: ${JSON.stringify(name)}`,
      );
  }
  return name;
}

/** How an output is served: its type, and whether the browser saves it rather than shows it. */
export function outputType(name: string): { contentType: string; attachment: boolean } {
  const extension = /\.([^./]+)$/.exec(name)?.[1]?.toLowerCase();
  switch (extension) {
    case 'csv':
      return { contentType: 'text/csv', attachment: true };
    case 'json':
      return { contentType: 'application/json', attachment: false };
    case 'log':
    case 'txt':
      return { contentType: 'text/plain; charset=utf-8', attachment: false };
    default:
      return { contentType: 'application/octet-stream', attachment: true };
  }
}

/**
 * Content-Disposition for saving `name`: its last segment, as a quoted ASCII filename with anything
 * that could end the quote or the header (quotes, backslashes, control characters, non-ASCII)
 * replaced, and the exact name in filename* (RFC 6266) for browsers that read it.
 */
export function attachmentDisposition(name: string): string {
  const base = name.slice(name.lastIndexOf('/') + 1);
  const ascii =
    base
      .replace(/[^A-Za-z0-9._ -]/g, '_')
      .replace(/^[. ]+/, '')
      .slice(0, 200) || 'download';
  const exact = encodeURIComponent(base).replace(/['()*]/g, (c) => `%${c.charCodeAt(0).toString(16)}`);
  return `attachment; filename="${ascii}"; filename*=UTF-8''${exact}`;
}

/**
 * The object's bytes from `offset` to `size`, a chunk at a time. Reading stops, and the response is
 * cut short, if the object goes away or changes size under the download (a task writing it again):
 * the client sees a broken download rather than a mix of two versions.
 */
async function* chunks(blobs: BlobStore, uri: string, size: number, first: Buffer): AsyncGenerator<Buffer> {
  let offset = first.length;
  if (first.length > 0) yield first;
  while (offset < size) {
    const part = await blobs.read(uri, offset, Math.min(READ_CHUNK_BYTES, size - offset));
    if (part === undefined) throw new Error(`${uri} went away during the download`);
    if (part.size !== size)
      throw new Error(`${uri} changed during the download (${size} bytes, now ${part.size})`);
    if (part.data.length === 0) throw new Error(`${uri} ended at ${offset} of ${size} bytes`);
    offset += part.data.length;
    yield part.data;
  }
}

export async function sendJobOutput(
  ports: JobOutputsPorts,
  id: string,
  segments: readonly string[],
  req: Request,
  res: Response,
): Promise<void> {
  const name = relativeOutputName(segments);
  const job = await knownJob(ports.ledger, id);
  const whole = writtenOutputPrefix(job, (p) => ports.blobs.uri(ports.outputBucket, p)) + name;
  // stat first: it says "no such object" for a folder of the local mode too, which read cannot.
  const object = await ports.blobs.stat(ports.outputBucket, whole);
  const uri = ports.blobs.uri(ports.outputBucket, whole);
  const first = object === undefined ? undefined : await ports.blobs.read(uri, 0, READ_CHUNK_BYTES);
  if (first === undefined) throw new RequestError('NOT_FOUND', `job ${id} has no output ${name}`);
  const { contentType, attachment } = outputType(name);
  // setHeader, not res.set: Express would add "charset=utf-8" to a CSV, whose bytes are the input's.
  res.status(200);
  for (const [header, value] of Object.entries({
    ...OUTPUT_HEADERS,
    'Content-Type': contentType,
    'Content-Length': String(first.size),
    ...(attachment ? { 'Content-Disposition': attachmentDisposition(name) } : {}),
  }))
    res.setHeader(header, value);
  if (req.method === 'HEAD') {
    res.end();
    return;
  }
  // One chunk buffered ahead at most; when the client goes away, pipeline stops the reading.
  const body = Readable.from(chunks(ports.blobs, uri, first.size, first.data), {
    objectMode: false,
    highWaterMark: 1,
  });
  try {
    await pipeline(body, res);
  } catch (err) {
    // The status went out with the first byte: all that is left is to cut the response short.
    if (!res.destroyed) res.destroy(err as Error);
    if ((err as NodeJS.ErrnoException).code !== 'ERR_STREAM_PREMATURE_CLOSE')
      ports.logger.warn({ err, jobId: id, output: name }, 'output download cut short');
  }
}

/** The two routes' handlers, for app.ts to mount behind its caller check. */
export function jobOutputsHandlers(ports: JobOutputsPorts): { list: RequestHandler; send: RequestHandler } {
  return {
    list: async (req, res) => {
      const limit = req.query.limit === undefined ? MAX_OUTPUTS : Number(req.query.limit);
      if (!Number.isInteger(limit) || limit < 1 || limit > MAX_OUTPUTS)
        throw new RequestError('INVALID', `limit must be 1 to ${MAX_OUTPUTS}`);
      res.set('Cache-Control', 'no-store').json(await listJobOutputs(ports, String(req.params.id), limit));
    },
    send: async (req, res) => {
      // Express gives a wildcard's segments as an array, each percent-decoded.
      const raw = (req.params as Record<string, unknown>).name;
      const segments = Array.isArray(raw) ? raw.map(String) : [String(raw ?? '')];
      await sendJobOutput(ports, String(req.params.id), segments, req, res);
    },
  };
}
