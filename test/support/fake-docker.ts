// A loopback test double of the Docker Engine API on a unix socket, for dockerode: the subset the VM agent
// uses to run a task's container. Paths may carry a version prefix (/v1.47/...) or none. Per image, a
// script says what the container writes (stdout/stderr chunks, each after a delay), its exit code, whether
// it hangs until killed, and whether pulling it is denied. Attach streams use Docker's multiplexed framing
// (8-byte header: stream type, 3 zero bytes, big-endian length), sent close-delimited as the daemon does.
import http from 'node:http';
import os from 'node:os';
import path from 'node:path';
import { once } from 'node:events';
import { mkdtemp, rm } from 'node:fs/promises';
import { setTimeout as sleep } from 'node:timers/promises';

export interface OutputChunk {
  stream: 'stdout' | 'stderr';
  data: string | Buffer;
  delayMs?: number;
}

export interface ImageBehaviour {
  output?: OutputChunk[];
  exitCode?: number; // 0 unless told
  hangUntilKilled?: boolean; // after its output, runs until POST /kill
  ignoresSigterm?: boolean; // a kill with SIGTERM is recorded but does not end it (only SIGKILL does)
  env?: string[]; // the image's own Env, as GET /images/NAME/json reports it
  // 'http' (the default): 404 + JSON message, as the daemon answers when the registry refuses the manifest
  // before any progress was sent; 'stream': 200, progress, then an error line, as for a failure mid-pull.
  denyPull?: { via?: 'http' | 'stream'; status?: number; message?: string };
  /** DELETE /containers/{id} answers only once this settles, as a removal on a slow disk does. */
  removal?: Promise<void>;
}

export interface RecordedRequest {
  method: string;
  path: string; // without the version prefix or query
  query: Record<string, string>;
  body: unknown; // parsed JSON, or undefined when there was none
  registryAuth?: Record<string, unknown>; // the decoded X-Registry-Auth header
}

export interface FakeContainer {
  config: Record<string, unknown>; // the create body
  started: boolean;
  removed: boolean;
  exitCode?: number; // set when the scripted run ends
  killedWith?: string;
  /** Every signal sent to it, in order. */
  signals: string[];
}

interface Runtime {
  script: ImageBehaviour;
  attached: http.ServerResponse[];
  waiters: http.ServerResponse[];
}

export type FakeDocker = Awaited<ReturnType<typeof startFakeDocker>>;

const MULTIPLEXED = 'application/vnd.docker.multiplexed-stream';
const STREAM_TYPE = { stdout: 1, stderr: 2 } as const;

/** Docker's reference for fromImage + tag (the tag may be a digest), defaulting the tag to latest. */
export function imageKey(reference: string): string {
  if (reference.includes('@')) return reference;
  const lastPart = reference.slice(reference.lastIndexOf('/') + 1);
  return lastPart.includes(':') ? reference : `${reference}:latest`;
}

export function frame(stream: 'stdout' | 'stderr', data: Buffer): Buffer {
  const header = Buffer.alloc(8);
  header.writeUInt8(STREAM_TYPE[stream], 0);
  header.writeUInt32BE(data.length, 4);
  return Buffer.concat([header, data]);
}

function signalNumber(signal: string): number {
  if (/^\d+$/.test(signal)) return Number(signal);
  const name = (signal.startsWith('SIG') ? signal : `SIG${signal}`) as keyof typeof os.constants.signals;
  return os.constants.signals[name] ?? 9;
}

export async function startFakeDocker(options: { apiVersion?: string } = {}) {
  const apiVersion = options.apiVersion ?? '1.47';
  const dir = await mkdtemp(path.join(os.tmpdir(), 'fake-docker-'));
  const socketPath = path.join(dir, 'docker.sock');
  const requests: RecordedRequest[] = [];
  const pulled: string[] = [];
  const containers = new Map<string, FakeContainer>();
  const runtimes = new Map<string, Runtime>();
  const scripts = new Map<string, ImageBehaviour>();
  let lastId = 0;

  const scriptFor = (image: string) => scripts.get(imageKey(image)) ?? {};

  function json(res: http.ServerResponse, status: number, body: unknown): void {
    res.writeHead(status, { 'Content-Type': 'application/json', 'Api-Version': apiVersion });
    res.end(JSON.stringify(body));
  }

  function emit(id: string, chunk: OutputChunk): void {
    const bytes = frame(chunk.stream, Buffer.from(chunk.data));
    for (const res of runtimes.get(id)!.attached) res.write(bytes);
  }

  function finish(id: string, exitCode: number): void {
    const container = containers.get(id)!;
    if (container.exitCode !== undefined) return;
    container.exitCode = exitCode;
    const runtime = runtimes.get(id)!;
    for (const res of runtime.waiters.splice(0)) json(res, 200, { StatusCode: exitCode, Error: null });
    // The daemon closes attach streams independently of answering wait; closing them a little later
    // catches a client that returns the exit code before it has read all the output.
    const attached = runtime.attached.splice(0);
    setTimeout(() => attached.forEach((res) => res.end()), 20).unref();
  }

  async function play(id: string): Promise<void> {
    const { script } = runtimes.get(id)!;
    for (const chunk of script.output ?? []) {
      await sleep(chunk.delayMs ?? 0, undefined, { ref: false });
      if (containers.get(id)!.exitCode !== undefined) return; // killed meanwhile
      emit(id, chunk);
    }
    if (!script.hangUntilKilled) finish(id, script.exitCode ?? 0);
  }

  function pull(req: RecordedRequest, res: http.ServerResponse): void {
    const { fromImage = '', tag = '' } = req.query;
    const separator = tag.startsWith('sha256:') ? '@' : ':';
    const image = tag === '' ? imageKey(fromImage) : `${fromImage}${separator}${tag}`;
    const denied = scriptFor(image).denyPull;
    const message =
      denied?.message ??
      `pull access denied for ${fromImage}, repository does not exist or may require 'docker login': ` +
        'denied: requested access to the resource is denied';
    if (denied !== undefined && denied.via !== 'stream') return json(res, denied.status ?? 404, { message });
    res.writeHead(200, { 'Content-Type': 'application/json', 'Api-Version': apiVersion });
    res.write(`${JSON.stringify({ status: `Pulling from ${fromImage}`, id: tag || 'latest' })}\r\n`);
    if (denied !== undefined) {
      res.end(`${JSON.stringify({ errorDetail: { message }, error: message })}\r\n`);
      return;
    }
    pulled.push(image);
    res.write(`${JSON.stringify({ status: 'Digest: sha256:' + '0'.repeat(64) })}\r\n`);
    res.end(`${JSON.stringify({ status: `Status: Downloaded newer image for ${image}` })}\r\n`);
  }

  function containerRoute(req: RecordedRequest, res: http.ServerResponse, id: string, action: string): void {
    const container = containers.get(id);
    const runtime = runtimes.get(id);
    if (container === undefined || runtime === undefined || container.removed) {
      return json(res, 404, { message: `No such container: ${id}` });
    }
    const running = container.started && container.exitCode === undefined;
    const route = `${req.method} ${action}`;
    if (route === 'POST start') {
      if (container.started) return void res.writeHead(304).end();
      container.started = true;
      res.writeHead(204).end();
      void play(id);
    } else if (route === 'POST attach') {
      // The daemon answers at once and holds the connection open: the client attaches before start.
      res.useChunkedEncodingByDefault = false;
      res.shouldKeepAlive = false;
      res.writeHead(200, { 'Content-Type': MULTIPLEXED, 'Api-Version': apiVersion });
      res.flushHeaders();
      if (container.exitCode !== undefined) res.end();
      else runtime.attached.push(res);
    } else if (route === 'POST wait') {
      // Only next-exit waits for a container that has not started; not-running (the default) does not.
      const waits = running || (!container.started && req.query.condition === 'next-exit');
      if (waits) runtime.waiters.push(res);
      else json(res, 200, { StatusCode: container.exitCode ?? 0, Error: null });
    } else if (route === 'POST kill') {
      if (!running)
        return json(res, 409, { message: `Cannot kill container: ${id}: container is not running` });
      const signal = req.query.signal ?? 'SIGKILL';
      container.signals.push(signal);
      res.writeHead(204).end();
      if (signal === 'SIGTERM' && runtime.script.ignoresSigterm === true) return;
      container.killedWith = signal;
      finish(id, 128 + signalNumber(signal));
    } else if (route === 'DELETE ') {
      // DELETE /containers/{id}: the action is empty
      const force = req.query.force === 'true' || req.query.force === '1';
      if (running && !force) {
        return json(res, 409, {
          message: `cannot remove container "${id}": container is running: stop the container before removing or force remove`,
        });
      }
      if (running) finish(id, 137);
      for (const attached of runtime.attached.splice(0)) attached.end();
      const removed = () => {
        container.removed = true;
        res.writeHead(204).end();
      };
      if (runtime.script.removal === undefined) removed();
      else void runtime.script.removal.then(removed);
    } else {
      json(res, 404, { message: 'page not found' });
    }
  }

  async function handle(incoming: http.IncomingMessage, res: http.ServerResponse): Promise<void> {
    const url = new URL(incoming.url ?? '/', 'http://docker');
    const chunks: Buffer[] = [];
    for await (const chunk of incoming) chunks.push(chunk as Buffer);
    const text = Buffer.concat(chunks).toString('utf8');
    const auth = incoming.headers['x-registry-auth'];
    const req: RecordedRequest = {
      method: incoming.method ?? 'GET',
      path: url.pathname.replace(/^\/v\d+\.\d+(?=\/)/, ''),
      query: Object.fromEntries(url.searchParams),
      body: text === '' ? undefined : JSON.parse(text),
    };
    // dockerode sends base64url of the JSON; Node's base64 decoder accepts both alphabets.
    if (typeof auth === 'string') req.registryAuth = JSON.parse(Buffer.from(auth, 'base64').toString('utf8'));
    requests.push(req);

    const containerMatch = /^\/containers\/([^/]+)(?:\/([a-z]+))?$/.exec(req.path);
    if (req.path === '/_ping') {
      res.writeHead(200, { 'Content-Type': 'text/plain', 'Api-Version': apiVersion }).end('OK');
    } else if (req.method === 'POST' && req.path === '/images/create') {
      pull(req, res);
    } else if (req.method === 'GET' && /^\/images\/.+\/json$/.test(req.path)) {
      const name = decodeURIComponent(req.path.slice('/images/'.length, -'/json'.length));
      json(res, 200, { Id: `sha256:${name}`, Config: { Env: scriptFor(name).env ?? [] } });
    } else if (req.method === 'POST' && req.path === '/containers/create') {
      const config = (req.body ?? {}) as Record<string, unknown>;
      const id = (++lastId).toString(16).padStart(64, '0');
      containers.set(id, { config, started: false, removed: false, signals: [] });
      runtimes.set(id, { script: scriptFor(String(config.Image)), attached: [], waiters: [] });
      json(res, 201, { Id: id, Warnings: [] });
    } else if (containerMatch !== null) {
      containerRoute(req, res, containerMatch[1], containerMatch[2] ?? '');
    } else {
      json(res, 404, { message: 'page not found' });
    }
  }

  const server = http.createServer((req, res) => {
    handle(req, res).catch((error: unknown) => json(res, 500, { message: String(error) }));
  });
  server.listen(socketPath);
  await once(server, 'listening');

  return {
    socketPath,
    requests,
    pulled,
    containers,
    /** What `image` does when pulled and run; unscripted images pull fine, write nothing and exit 0. */
    script(image: string, behaviour: ImageBehaviour): void {
      scripts.set(imageKey(image), behaviour);
    },
    async close(): Promise<void> {
      for (const [id, container] of containers) if (container.started) finish(id, 137);
      server.closeAllConnections();
      server.close();
      await rm(dir, { recursive: true, force: true });
    },
  };
}
