// A loopback test double of the Cloud Storage JSON API for @google-cloud/storage, at STORAGE_EMULATOR_HOST
// (paths /b/...) or apiEndpoint (/storage/v1/b/...). Objects live in memory; each write gets a higher
// generation, and old generations stay readable (as with versioning on). Metadata, media (x-goog-hash with
// real CRC32C and MD5, so the client validates downloads), listings (paged as objects.list pages, below), deletes, and media, multipart and
// resumable (also chunked) uploads with ifGenerationMatch and X-Goog-Hash checks; an upload's object
// appears only when the upload completes. Media reads honour `Range: bytes=A-B` (also `A-` and `-N`)
// with 206 or 416, and can be held back (`holdMedia`) to keep a reader waiting. Custom metadata given
// at upload (`metadata` of the object resource) is kept and answered. `onFinalized` is told of each
// object version as it is created, as Cloud Storage tells a notification configuration
// (OBJECT_FINALIZE: https://cloud.google.com/storage/docs/pubsub-notifications), with the resource
// and, for an overwrite, the generation it replaced. No gzip, ACLs or bucket resources.
import http from 'node:http';
import { once } from 'node:events';
import { createHash, randomUUID } from 'node:crypto';
import type { AddressInfo } from 'node:net';

interface Target {
  bucket: string;
  name: string;
  contentType?: string;
  /** Custom metadata, as the object resource's `metadata`. */
  metadata?: Record<string, string>;
  ifGenerationMatch?: string | null;
}

export interface StoredObject extends Target {
  body: Buffer;
  generation: string;
  timeCreated: string;
}

interface UploadSession extends Target {
  chunks: Buffer[];
  received: number;
  done?: StoredObject;
}

export type FakeGcs = Awaited<ReturnType<typeof startFakeGcs>>;

/** The object resource of a version (JSON API v1), as listings, reads and notifications carry it. */
export type ObjectResource = ReturnType<typeof objectResource>;

export interface FakeGcsOptions {
  /** Called once for each object version created, after it is readable. */
  onFinalized?: (object: ObjectResource, replaced?: { generation: string }) => void;
  /**
   * The most items one listing page holds, whatever maxResults asks: the real service may answer
   * fewer than asked (a client must follow nextPageToken, not count), and never more than 1,000.
   */
  maxPageItems?: number;
}

/** objects.list gives at most this many items a page (and this many when maxResults is not given). */
const MAX_LIST_RESULTS = 1000;
type Request = http.IncomingMessage;
type Response = http.ServerResponse;

const OCTETS = 'application/octet-stream';
const REASONS: Record<number, string> = { 400: 'invalid', 404: 'notFound', 412: 'conditionNotMet' };

function fail(status: number, message: string): never {
  throw Object.assign(new Error(message), { status });
}

const CRC32C_TABLE = Uint32Array.from({ length: 256 }, (_, n) => {
  for (let k = 0; k < 8; k++) n = n & 1 ? (n >>> 1) ^ 0x82f63b78 : n >>> 1;
  return n;
});

/** CRC32C (Castagnoli) as Cloud Storage reports it: 4 bytes big-endian, base64. */
export function crc32c(data: Uint8Array): string {
  let c = 0xffffffff;
  for (const byte of data) c = CRC32C_TABLE[(c ^ byte) & 0xff] ^ (c >>> 8);
  const out = Buffer.alloc(4);
  out.writeUInt32BE((c ^ 0xffffffff) >>> 0);
  return out.toString('base64');
}

const md5 = (data: Uint8Array) => createHash('md5').update(data).digest('base64');

export async function startFakeGcs(options: FakeGcsOptions = {}) {
  const live = new Map<string, StoredObject>(); // by `${bucket}/${name}`
  const versions: StoredObject[] = []; // every generation that can still be read
  const created: StoredObject[] = []; // every object version ever created, in order
  const sessions = new Map<string, UploadSession>();
  const requests: { method: string; url: string; range?: string }[] = [];
  /** Statuses the next listing requests answer with, one each (failListings). */
  const listingFailures: number[] = [];
  let mediaHeld: Promise<void> | undefined;
  let lastGeneration = BigInt(Date.now()) * 1000n; // microseconds, like real generations

  function store(target: Target, body: Buffer): StoredObject {
    const { bucket, name, contentType, metadata, ifGenerationMatch } = target;
    checkPrecondition({ bucket, name, ifGenerationMatch });
    const generation = String(++lastGeneration);
    const replaced = live.get(`${bucket}/${name}`);
    const object: StoredObject = {
      ...{ bucket, name, contentType, body, generation, timeCreated: new Date().toISOString() },
      ...(metadata === undefined ? {} : { metadata: stringValues(metadata) }),
    };
    live.set(`${bucket}/${name}`, object);
    versions.push(object);
    created.push(object);
    options.onFinalized?.(
      objectResource(object),
      replaced === undefined ? undefined : { generation: replaced.generation },
    );
    return object;
  }

  function checkPrecondition({ bucket, name, ifGenerationMatch = null }: Target): void {
    if (name === '') fail(400, 'Required object name is missing');
    const current = live.get(`${bucket}/${name}`)?.generation ?? '0'; // 0: the object must not exist
    if (ifGenerationMatch !== null && ifGenerationMatch !== current) fail(412, 'ifGenerationMatch failed');
  }

  function find(bucket: string, name: string, generation: string | null): StoredObject {
    const old = versions.find((o) => o.bucket === bucket && o.name === name && o.generation === generation);
    const object = generation === null ? live.get(`${bucket}/${name}`) : old;
    return object ?? fail(404, `No such object: ${bucket}/${name}`);
  }

  const liveIn = (bucket: string, prefix = '') =>
    [...live.values()]
      .filter((o) => o.bucket === bucket && o.name.startsWith(prefix))
      .sort((a, b) => (a.name < b.name ? -1 : 1));

  const resource = objectResource;

  function upload(req: Request, res: Response, bucket: string, body: Buffer, q: URLSearchParams): void {
    const [type, ifGenerationMatch] = [q.get('uploadType'), q.get('ifGenerationMatch')];
    const typeHeader = type === 'resumable' ? 'x-upload-content-type' : 'content-type';
    const contentType = req.headers[typeHeader] as string | undefined;
    let [metadata, data]: [Partial<Target>, Buffer] = [{ contentType }, body];
    if (type === 'multipart') {
      const boundary = /boundary=(?:"([^"]+)"|([^;\s]+))/.exec(contentType ?? '') ?? fail(400, 'no boundary');
      const parts = parseMultipart(body, boundary[1] ?? boundary[2]);
      if (parts.length !== 2) fail(400, `multipart upload has ${parts.length} parts, expected 2`);
      metadata = { contentType: parts[1].headers['content-type'], ...JSON.parse(parts[0].body.toString()) };
      data = parts[1].body;
    } else if (type === 'resumable' && body.length > 0) {
      metadata = { contentType, ...JSON.parse(body.toString()) };
    } else if (type !== 'media' && type !== 'resumable') fail(400, `unsupported uploadType ${type}`);
    const target = { ...metadata, bucket, name: q.get('name') ?? metadata.name ?? '', ifGenerationMatch };
    if (type !== 'resumable') {
      verifyHashes(req, data);
      return sendJson(res, 200, resource(store(target, data)));
    }
    checkPrecondition(target);
    const id = randomUUID();
    sessions.set(id, { ...target, chunks: [], received: 0 });
    const location = `${url}/upload/storage/v1/b/${bucket}/o?uploadType=resumable&upload_id=${id}`;
    res.writeHead(200, { Location: location, 'Content-Length': 0 }).end();
  }

  /** A PUT to a session: `Content-Range: bytes START-END/TOTAL` (END, TOTAL may be `*`) or `bytes *\/TOTAL`. */
  function resume(req: Request, res: Response, session: UploadSession, body: Buffer): void {
    if (session.done !== undefined) return sendJson(res, 200, resource(session.done));
    const header = req.headers['content-range'] ?? `bytes 0-*/${body.length}`;
    const [, start, end, totalText] =
      /^bytes (?:(\d+)-(\d+|\*)|\*)\/(\d+|\*)$/.exec(header) ?? fail(400, `bad Content-Range ${header}`);
    const first = start === undefined ? session.received : Number(start);
    const size = end === undefined ? 0 : end === '*' ? body.length : Number(end) - first + 1;
    if (size !== body.length) fail(400, `Content-Range ${header} but ${body.length} bytes`);
    if (first > session.received) fail(400, `Content-Range ${header}: no bytes ${session.received}-`);
    const resent = session.received - first; // bytes the server already has
    if (resent < body.length) session.chunks.push(body.subarray(resent));
    session.received = Math.max(session.received, first + body.length);
    // `bytes N-*/*` is the last request of an upload of unknown size: the object ends with this body.
    const total = totalText !== '*' ? Number(totalText) : end === '*' ? session.received : Infinity;
    if (session.received > total) fail(400, `received ${session.received} bytes, more than ${total}`);
    if (session.received < total) {
      const range = session.received > 0 ? { Range: `bytes=0-${session.received - 1}` } : {};
      return void res.writeHead(308, { ...range, 'Content-Length': 0 }).end();
    }
    const data = Buffer.concat(session.chunks);
    verifyHashes(req, data);
    session.done = store(session, data);
    sendJson(res, 200, resource(session.done));
  }

  async function handle(req: Request, res: Response): Promise<void> {
    const method = req.method ?? 'GET';
    const range = req.headers.range;
    requests.push({ method, url: req.url ?? '', ...(range === undefined ? {} : { range }) });
    const body = Buffer.concat((await req.toArray()) as Buffer[]);
    const { pathname, searchParams: q } = new URL(req.url ?? '/', 'http://fake-gcs');
    const path = pathname.replace(/^\/upload(?=\/)/, '').replace(/^\/storage\/v1(?=\/)/, '');
    const [, b, o] = /^\/b\/([^/]+)\/o(?:\/(.+))?$/.exec(path) ?? fail(404, `no route ${pathname}`);
    const [bucket, name] = [decodeURIComponent(b), decodeURIComponent(o ?? '')];
    const route = `${pathname.startsWith('/upload/') ? 'upload ' : ''}${method} ${o ? 'object' : 'bucket'}`;
    if (route === 'upload POST bucket') return upload(req, res, bucket, body, q);
    if (route === 'upload PUT bucket') {
      const id = q.get('upload_id') ?? '';
      return resume(req, res, sessions.get(id) ?? fail(404, `No upload session ${id}`), body);
    }
    if (route === 'GET bucket') return listObjects(res, bucket, q);
    if (route !== 'GET object' && route !== 'DELETE object') fail(405, `${route} is not in the fake`);
    // A held read waits before it looks the object up, so that it sees what happened meanwhile.
    if (method === 'GET' && q.get('alt') === 'media') await mediaHeld;
    const object = find(bucket, name, q.get('generation'));
    if (method === 'DELETE') {
      if (live.get(`${bucket}/${name}`) === object) live.delete(`${bucket}/${name}`);
      if (q.has('generation')) versions.splice(versions.indexOf(object), 1); // gone for good
      return void res.writeHead(204).end();
    }
    if (q.get('alt') !== 'media') return sendJson(res, 200, resource(object));
    const size = object.body.length;
    const headers = {
      'Content-Type': object.contentType ?? OCTETS,
      'x-goog-generation': object.generation,
      // The hashes are the whole object's, also for a range (as Cloud Storage sends them).
      'x-goog-hash': `crc32c=${crc32c(object.body)},md5=${md5(object.body)}`,
      'x-goog-stored-content-encoding': 'identity',
    };
    if (range === undefined) {
      res.writeHead(200, { ...headers, 'Content-Length': size });
      return void res.end(object.body);
    }
    const [first, last] = byteRange(range, size);
    if (first >= size || first > last) {
      res.writeHead(416, { 'Content-Range': `bytes */${size}` });
      return void res.end();
    }
    const part = object.body.subarray(first, last + 1);
    res.writeHead(206, {
      ...headers,
      'Content-Length': part.length,
      'Content-Range': `bytes ${first}-${last}/${size}`,
    });
    res.end(part);
  }

  /**
   * objects.list (https://cloud.google.com/storage/docs/json_api/v1/objects/list): the live objects
   * whose names start with `prefix`, in name order, at most maxResults of them (the service uses
   * maxResults or 1,000, whichever is smaller, and may give fewer), as
   * `{ kind: "storage#objects", items?, nextPageToken? }`: no `items` on an empty page, and a
   * nextPageToken while more remain, which the next request passes back as `pageToken` with the same
   * prefix. The token is opaque to clients; here it encodes the page's last name, so objects created
   * meanwhile after it appear on a later page. A token the fake did not make is a 400.
   */
  function listObjects(res: Response, bucket: string, q: URLSearchParams): void {
    const failure = listingFailures.shift();
    if (failure !== undefined) fail(failure, `listing ${bucket} failed (the test asked for it)`);
    const token = q.get('pageToken');
    const after = token === null || token === '' ? undefined : decodeListToken(token);
    const asked = q.get('maxResults') === null ? MAX_LIST_RESULTS : Number(q.get('maxResults'));
    if (!Number.isSafeInteger(asked) || asked < 1) fail(400, `Invalid maxResults ${q.get('maxResults')}`);
    const max = Math.min(asked, MAX_LIST_RESULTS, options.maxPageItems ?? Infinity);
    const all = liveIn(bucket, q.get('prefix') ?? '').filter((o) => after === undefined || o.name > after);
    const page = all.slice(0, max);
    const items = page.map(resource);
    const nextPageToken = all.length > max ? encodeListToken(page[page.length - 1].name) : undefined;
    sendJson(res, 200, {
      kind: 'storage#objects',
      ...(items.length > 0 && { items }),
      ...(nextPageToken !== undefined && { nextPageToken }),
    });
  }

  const server = http.createServer((req, res) => {
    handle(req, res).catch((err: Error & { status?: number }) => {
      const code = err.status ?? 500;
      const errors = [{ message: err.message, domain: 'global', reason: REASONS[code] ?? 'backendError' }];
      if (res.headersSent) res.destroy();
      else sendJson(res, code, { error: { code, message: err.message, errors } });
    });
  });
  await new Promise<void>((resolve, reject) => server.once('error', reject).listen(0, '127.0.0.1', resolve));
  const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;

  return {
    /** Base URL, for STORAGE_EMULATOR_HOST or apiEndpoint. */
    url,
    put(bucket: string, name: string, body: Buffer | string, opts: { contentType?: string } = {}) {
      return { generation: store({ bucket, name, ...opts }, Buffer.from(body)).generation };
    },
    /** The live version of an object. */
    get(bucket: string, name: string) {
      const object = live.get(`${bucket}/${name}`);
      return object && { body: object.body, generation: object.generation, contentType: object.contentType };
    },
    /** Names of the live objects of a bucket, sorted. */
    list: (bucket: string) => liveIn(bucket).map((o) => o.name),
    created: created as readonly StoredObject[],
    requests,
    /** The next `count` listing requests answer `status` (a 503: Cloud Storage failing for now). */
    failListings(count: number, status = 503) {
      for (let i = 0; i < count; i++) listingFailures.push(status);
    },
    /** The listing requests (objects.list) made so far, with their query. */
    listings: () =>
      requests
        .filter((r) => r.method === 'GET' && /\/b\/[^/]+\/o(?:\?|$)/.test(r.url))
        .map((r) => new URL(r.url, 'http://fake-gcs').searchParams),
    /** Media reads wait (their metadata does not) until the function returned is called. */
    holdMedia(): () => void {
      let release!: () => void;
      mediaHeld = new Promise<void>((resolve) => (release = resolve));
      return () => {
        mediaHeld = undefined;
        release();
      };
    },
    async close() {
      server.close();
      server.closeAllConnections();
      await once(server, 'close');
    },
  };
}

/** The page token of a listing: opaque to clients, here the page's last name. */
function encodeListToken(lastName: string): string {
  return Buffer.from(`after:${lastName}`, 'utf8').toString('base64url');
}

function decodeListToken(token: string): string {
  const text = Buffer.from(token, 'base64url').toString('utf8');
  if (!text.startsWith('after:')) fail(400, `Invalid pageToken ${token}`);
  return text.slice('after:'.length);
}

function objectResource({
  bucket,
  name,
  body,
  generation,
  contentType,
  metadata,
  timeCreated,
}: StoredObject) {
  return {
    ...{ kind: 'storage#object', id: `${bucket}/${name}/${generation}`, bucket, name, generation },
    ...{ metageneration: '1', size: String(body.length), contentType: contentType ?? OCTETS },
    ...{ md5Hash: md5(body), crc32c: crc32c(body), timeCreated, updated: timeCreated },
    ...(metadata === undefined ? {} : { metadata }),
  };
}

/** Custom metadata values are strings on Cloud Storage; a number or boolean given is kept as its text. */
function stringValues(metadata: Record<string, unknown>): Record<string, string> {
  return Object.fromEntries(Object.entries(metadata).map(([key, value]) => [key, String(value)]));
}

function sendJson(res: Response, status: number, value: unknown): void {
  const text = JSON.stringify(value);
  res.writeHead(status, { 'Content-Type': 'application/json', 'Content-Length': Buffer.byteLength(text) });
  res.end(text);
}

/** The first and last byte (inclusive) of `bytes=A-B`, `bytes=A-` or `bytes=-N`, the last cut to the object. */
function byteRange(header: string, size: number): [number, number] {
  const [, start, end] = /^bytes=(\d*)-(\d*)$/.exec(header) ?? fail(400, `unsupported Range ${header}`);
  if (start === '' && end === '') fail(400, `unsupported Range ${header}`);
  if (start === '') return [Math.max(0, size - Number(end)), size - 1]; // the last N bytes
  return [Number(start), Math.min(size - 1, end === '' ? Infinity : Number(end))];
}

/** Checks an X-Goog-Hash request header (`crc32c=...,md5=...`) against the bytes of the object. */
function verifyHashes(req: Request, body: Buffer): void {
  for (const [, type, value] of String(req.headers['x-goog-hash'] ?? '').matchAll(/(\w+)=([^,]+)/g)) {
    const actual = type === 'crc32c' ? crc32c(body) : type === 'md5' ? md5(body) : value;
    if (actual !== value) fail(400, `X-Goog-Hash ${type}=${value}, but the data has ${actual}`);
  }
}

/** multipart/related (RFC 2046): `--B CRLF headers CRLF CRLF body CRLF --B ... CRLF --B--`. */
function parseMultipart(body: Buffer, boundary: string): { headers: Record<string, string>; body: Buffer }[] {
  const sections = body.toString('latin1').split(`--${boundary}`); // latin1: one char per byte
  if (sections.length < 3 || !sections.at(-1)?.startsWith('--')) fail(400, 'multipart without boundaries');
  return sections.slice(1, -1).map((section) => {
    const split = section.indexOf('\r\n\r\n');
    if (split < 0 || !section.startsWith('\r\n') || !section.endsWith('\r\n')) fail(400, 'bad part');
    const fields = section.slice(2, split).matchAll(/^([^:\r\n]+):[ \t]*(.*)$/gm);
    const headers = Object.fromEntries([...fields].map(([, key, value]) => [key.toLowerCase(), value]));
    return { headers, body: Buffer.from(section.slice(split + 4, -2), 'latin1') };
  });
}
