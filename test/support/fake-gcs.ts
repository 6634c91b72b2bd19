// A loopback test double of the Cloud Storage JSON API, enough for @google-cloud/storage pointed at it with
// STORAGE_EMULATOR_HOST (paths /b/...) or apiEndpoint (paths /storage/v1/b/...). Objects live in memory; each
// write gets a new, higher generation, and old generations stay readable by number (as in a bucket with
// versioning on). Supported: object metadata; media reads with x-goog-hash (real CRC32C and MD5, so the
// client's download validation runs); listing by prefix; delete; media, multipart and resumable uploads
// (resumable also in chunks), with ifGenerationMatch and X-Goog-Hash checks. An upload's object appears only
// when the upload completes. Not supported: ranges, gzip, ACLs, metadata patches, buckets as resources.
import http from 'node:http';
import { createHash, randomUUID } from 'node:crypto';
import type { AddressInfo } from 'node:net';

export interface StoredObject {
  bucket: string;
  name: string;
  body: Buffer;
  generation: string;
  contentType?: string;
  md5Hash: string;
  crc32c: string;
  timeCreated: string;
}

export interface FakeGcs {
  /** Base URL, for STORAGE_EMULATOR_HOST or apiEndpoint. */
  url: string;
  put(bucket: string, name: string, body: Buffer | string, opts?: { contentType?: string }): { generation: string };
  /** The live version of an object. */
  get(bucket: string, name: string): { body: Buffer; generation: string; contentType?: string } | undefined;
  /** Names of the live objects of a bucket, sorted. */
  list(bucket: string): string[];
  /** Every object version ever created, in creation order. */
  created: readonly StoredObject[];
  requests: { method: string; url: string }[];
  close(): Promise<void>;
}

interface UploadSession {
  bucket: string;
  name: string;
  contentType?: string;
  ifGenerationMatch: string | null;
  chunks: Buffer[];
  received: number;
  done?: StoredObject;
}

type Request = http.IncomingMessage;
type Response = http.ServerResponse;

const REASONS: Record<number, string> = { 400: 'invalid', 404: 'notFound', 412: 'conditionNotMet' };

function fail(status: number, message: string): never {
  throw Object.assign(new Error(message), { status });
}

const CRC32C_TABLE = Uint32Array.from({ length: 256 }, (_, n) => {
  let c = n;
  for (let k = 0; k < 8; k++) c = c & 1 ? (c >>> 1) ^ 0x82f63b78 : c >>> 1;
  return c >>> 0;
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

export async function startFakeGcs(): Promise<FakeGcs> {
  const live = new Map<string, StoredObject>(); // by `${bucket}/${name}`
  const versions: StoredObject[] = []; // every generation that can still be read
  const created: StoredObject[] = [];
  const sessions = new Map<string, UploadSession>();
  const requests: { method: string; url: string }[] = [];
  let lastGeneration = BigInt(Date.now()) * 1000n; // microseconds, like real generations
  let url = '';

  function checkPrecondition(bucket: string, name: string, ifGenerationMatch: string | null): void {
    if (ifGenerationMatch === null) return;
    const current = live.get(`${bucket}/${name}`);
    const met = ifGenerationMatch === '0' ? current === undefined : current?.generation === ifGenerationMatch;
    if (!met) fail(412, `At least one of the pre-conditions you specified did not hold (ifGenerationMatch)`);
  }

  function store(bucket: string, name: string, body: Buffer, contentType?: string, ifGenerationMatch?: string | null) {
    if (name === '') fail(400, 'Required object name is missing');
    checkPrecondition(bucket, name, ifGenerationMatch ?? null);
    lastGeneration += 1n;
    const generation = String(lastGeneration);
    const timeCreated = new Date().toISOString();
    const object = { bucket, name, body, generation, contentType, md5Hash: md5(body), crc32c: crc32c(body), timeCreated };
    live.set(`${bucket}/${name}`, object);
    versions.push(object);
    created.push(object);
    return object;
  }

  function find(bucket: string, name: string, generation: string | null): StoredObject {
    const object =
      generation === null
        ? live.get(`${bucket}/${name}`)
        : versions.find((o) => o.bucket === bucket && o.name === name && o.generation === generation);
    return object ?? fail(404, `No such object: ${bucket}/${name}${generation === null ? '' : `#${generation}`}`);
  }

  const resource = ({ body, contentType, ...o }: StoredObject) => ({
    kind: 'storage#object',
    id: `${o.bucket}/${o.name}/${o.generation}`,
    ...o,
    metageneration: '1',
    size: String(body.length),
    contentType: contentType ?? 'application/octet-stream',
    updated: o.timeCreated,
  });

  function upload(req: Request, res: Response, bucket: string, body: Buffer, q: URLSearchParams): void {
    const type = q.get('uploadType');
    const ifGenerationMatch = q.get('ifGenerationMatch');
    if (type === 'media') {
      verifyHashes(req, body);
      const contentType = req.headers['content-type'];
      return sendJson(res, 200, resource(store(bucket, q.get('name') ?? '', body, contentType, ifGenerationMatch)));
    }
    if (type === 'multipart') {
      const boundary = /boundary=(?:"([^"]+)"|([^;\s]+))/.exec(req.headers['content-type'] ?? '');
      const parts = parseMultipart(body, boundary?.[1] ?? boundary?.[2] ?? fail(400, 'no multipart boundary'));
      if (parts.length !== 2) fail(400, `multipart upload has ${parts.length} parts, expected 2`);
      const metadata = JSON.parse(parts[0].body.toString('utf8')) as { name?: string; contentType?: string };
      const [name, media] = [q.get('name') ?? metadata.name ?? '', parts[1].body];
      verifyHashes(req, media);
      const contentType = metadata.contentType ?? parts[1].headers['content-type'];
      return sendJson(res, 200, resource(store(bucket, name, media, contentType, ifGenerationMatch)));
    }
    if (type !== 'resumable') fail(400, `unsupported uploadType ${type}`);
    const metadata = (body.length > 0 ? JSON.parse(body.toString('utf8')) : {}) as { name?: string; contentType?: string };
    const name = q.get('name') ?? metadata.name ?? fail(400, 'Required object name is missing');
    checkPrecondition(bucket, name, ifGenerationMatch);
    const contentType = (req.headers['x-upload-content-type'] as string | undefined) ?? metadata.contentType;
    const id = randomUUID();
    sessions.set(id, { bucket, name, contentType, ifGenerationMatch, chunks: [], received: 0 });
    const location = `${url}/upload/storage/v1/b/${encodeURIComponent(bucket)}/o?uploadType=resumable&upload_id=${id}`;
    res.writeHead(200, { Location: location, 'Content-Length': 0 }).end();
  }

  /** A PUT to a session, with `Content-Range: bytes START-END/TOTAL` (END, TOTAL may be `*`) or `bytes *\/TOTAL`. */
  function resume(req: Request, res: Response, session: UploadSession, body: Buffer): void {
    if (session.done !== undefined) return sendJson(res, 200, resource(session.done));
    const header = req.headers['content-range'] ?? `bytes 0-*/${body.length}`;
    const range = /^bytes (?:(\d+)-(\d+|\*)|\*)\/(\d+|\*)$/.exec(header) ?? fail(400, `bad Content-Range ${header}`);
    const [, start, end, totalText] = range;
    if (start === undefined) {
      if (body.length > 0) fail(400, `Content-Range ${header} with a body`);
    } else {
      if (end !== '*' && Number(end) - Number(start) + 1 !== body.length) fail(400, `${header} but ${body.length} bytes`);
      if (Number(start) > session.received) fail(400, `${header} starts after the ${session.received} bytes received`);
      const resent = session.received - Number(start); // bytes the server already has
      if (resent < body.length) session.chunks.push(body.subarray(resent));
      session.received = Math.max(session.received, Number(start) + body.length);
    }
    // `bytes N-*/*` is the last request of an upload of unknown size: the object ends with this body.
    const total = totalText !== '*' ? Number(totalText) : end === '*' ? session.received : undefined;
    if (total !== undefined && session.received > total) fail(400, `${session.received} bytes, more than ${total}`);
    if (total === undefined || session.received < total) {
      const range = session.received > 0 ? { Range: `bytes=0-${session.received - 1}` } : {};
      return void res.writeHead(308, { ...range, 'Content-Length': 0 }).end();
    }
    const data = Buffer.concat(session.chunks);
    verifyHashes(req, data);
    session.done = store(session.bucket, session.name, data, session.contentType, session.ifGenerationMatch);
    sendJson(res, 200, resource(session.done));
  }

  async function handle(req: Request, res: Response): Promise<void> {
    const method = req.method ?? 'GET';
    requests.push({ method, url: req.url ?? '' });
    const body = await readBody(req);
    const target = new URL(req.url ?? '/', 'http://fake-gcs');
    const q = target.searchParams;
    const isUpload = target.pathname.startsWith('/upload/');
    const path = target.pathname.replace(/^\/upload/, '').replace(/^\/storage\/v1/, '');
    const match = /^\/b\/([^/]+)\/o(?:\/(.+))?$/.exec(path) ?? fail(404, `no route for ${method} ${target.pathname}`);
    const bucket = decodeURIComponent(match[1]);
    const name = match[2] === undefined ? undefined : decodeURIComponent(match[2]);
    const route = `${isUpload ? 'upload ' : ''}${method} ${name === undefined ? 'bucket' : 'object'}`;
    if (route === 'upload POST bucket') return upload(req, res, bucket, body, q);
    if (route === 'upload PUT bucket') {
      const session = sessions.get(q.get('upload_id') ?? '') ?? fail(404, `no upload session ${q.get('upload_id')}`);
      return resume(req, res, session, body);
    }
    if (route === 'GET bucket') {
      const prefix = q.get('prefix') ?? '';
      const items = [...live.values()].filter((o) => o.bucket === bucket && o.name.startsWith(prefix));
      items.sort((a, b) => (a.name < b.name ? -1 : 1));
      return sendJson(res, 200, { kind: 'storage#objects', ...(items.length > 0 && { items: items.map(resource) }) });
    }
    if (name === undefined || (route !== 'GET object' && route !== 'DELETE object')) {
      return fail(405, `${method} ${target.pathname} is not supported by the fake`);
    }
    const object = find(bucket, name, q.get('generation'));
    if (method === 'DELETE') {
      if (live.get(`${bucket}/${name}`) === object) live.delete(`${bucket}/${name}`);
      if (q.has('generation')) versions.splice(versions.indexOf(object), 1); // a noncurrent version is gone too
      return void res.writeHead(204).end();
    }
    if (q.get('alt') !== 'media') return sendJson(res, 200, resource(object));
    res.writeHead(200, {
      'Content-Type': object.contentType ?? 'application/octet-stream',
      'Content-Length': object.body.length,
      'x-goog-generation': object.generation,
      'x-goog-metageneration': '1',
      'x-goog-hash': `crc32c=${object.crc32c},md5=${object.md5Hash}`,
      'x-goog-stored-content-encoding': 'identity',
      'x-goog-stored-content-length': object.body.length,
    });
    res.end(object.body);
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
  url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;

  return {
    url,
    put: (bucket, name, body, opts = {}) => ({ generation: store(bucket, name, Buffer.from(body), opts.contentType).generation }),
    get(bucket, name) {
      const object = live.get(`${bucket}/${name}`);
      return object && { body: object.body, generation: object.generation, contentType: object.contentType };
    },
    list: (bucket) => [...live.values()].filter((o) => o.bucket === bucket).map((o) => o.name).sort(),
    created,
    requests,
    close: () =>
      new Promise<void>((resolve, reject) => {
        server.close((err) => (err ? reject(err) : resolve()));
        server.closeAllConnections();
      }),
  };
}

function sendJson(res: Response, status: number, value: unknown): void {
  const text = JSON.stringify(value);
  res.writeHead(status, { 'Content-Type': 'application/json; charset=UTF-8', 'Content-Length': Buffer.byteLength(text) });
  res.end(text);
}

/** Checks an X-Goog-Hash request header (`crc32c=...,md5=...`) against the bytes of the object. */
function verifyHashes(req: Request, body: Buffer): void {
  for (const pair of String(req.headers['x-goog-hash'] ?? '').split(',').filter(Boolean)) {
    const [type, value] = [pair.slice(0, pair.indexOf('=')).trim(), pair.slice(pair.indexOf('=') + 1).trim()];
    const actual = type === 'crc32c' ? crc32c(body) : type === 'md5' ? md5(body) : value;
    if (actual !== value) fail(400, `Provided ${type} hash "${value}" doesn't match calculated hash "${actual}"`);
  }
}

async function readBody(req: Request): Promise<Buffer> {
  const chunks: Buffer[] = [];
  for await (const chunk of req) chunks.push(chunk as Buffer);
  return Buffer.concat(chunks);
}

/** multipart/related (RFC 2046): `--B CRLF headers CRLF CRLF body CRLF --B ... CRLF --B--`. */
function parseMultipart(body: Buffer, boundary: string): { headers: Record<string, string>; body: Buffer }[] {
  const parts: { headers: Record<string, string>; body: Buffer }[] = [];
  const delimiter = Buffer.from(`\r\n--${boundary}`);
  let at = body.indexOf(`--${boundary}`);
  if (at < 0) fail(400, 'multipart body without its boundary');
  at += delimiter.length - 2;
  while (body.subarray(at, at + 2).toString() !== '--') {
    const next = body.indexOf(delimiter, at);
    if (next < 0) fail(400, 'multipart body without its closing boundary');
    const part = body.subarray(at, next);
    const split = part.indexOf('\r\n\r\n');
    if (split < 0) fail(400, 'multipart part without a blank line after its headers');
    const headers: Record<string, string> = {};
    for (const line of part.subarray(0, split).toString('utf8').split('\r\n')) {
      const colon = line.indexOf(':');
      if (colon > 0) headers[line.slice(0, colon).trim().toLowerCase()] = line.slice(colon + 1).trim();
    }
    parts.push({ headers, body: part.subarray(split + 4) });
    at = next + delimiter.length;
  }
  return parts;
}
