// The load generator of the dispatcher benchmarks, in a worker thread of its own: Pub/Sub is another
// machine, so the client's work (building requests, reading answers) must not share the event loop
// of the server it measures. `load(request)` posts distinct OBJECT_FINALIZE pushes, `concurrency` at
// a time: `count` of them, or as many as `seconds` allow. It returns each one's latency (ms), the
// statuses, the wall time and how many were answered within it.
import http from 'node:http';
import { Worker, isMainThread, parentPort, workerData } from 'node:worker_threads';

export interface LoadRequest {
  url: string;
  /** Object names are `${prefix}/file-${i}.csv`: distinct within a run and across runs. */
  prefix: string;
  /** Stop after this many pushes... */
  count?: number;
  /** ...or send no more after this many seconds (the wall time is then this, whatever is still in flight). */
  seconds?: number;
  concurrency: number;
}

export interface LoadResult {
  latencies: number[];
  seconds: number;
  /** Pushes answered within `seconds`. */
  answered: number;
  statuses: Record<number, number>;
}

/** A Cloud Storage OBJECT_FINALIZE notification as Pub/Sub pushes it (JSON_API_V1 payload). */
export function pushBody(prefix: string, i: number): string {
  const resource = {
    bucket: 'acme-pipeline-input',
    name: `${prefix}/file-${i}.csv`,
    generation: String(1_000_000 + i),
    size: '2048',
    contentType: 'text/csv',
    metadata: {},
  };
  return JSON.stringify({
    message: {
      data: Buffer.from(JSON.stringify(resource)).toString('base64'),
      attributes: {
        bucketId: resource.bucket,
        objectId: resource.name,
        objectGeneration: resource.generation,
        eventType: 'OBJECT_FINALIZE',
        payloadFormat: 'JSON_API_V1',
      },
      messageId: `${prefix}-${i}`,
    },
    subscription: 'projects/acme-prod/subscriptions/uploads-push',
  });
}

/** POSTs `body` on a kept-alive connection of `agent`; the status once the answer is read. */
function post(agent: http.Agent, url: URL, body: string): Promise<number> {
  return new Promise((resolve, reject) => {
    const request = http.request(
      url,
      {
        method: 'POST',
        agent,
        headers: { 'content-type': 'application/json', 'content-length': Buffer.byteLength(body) },
      },
      (response) => {
        response.on('data', () => {});
        response.on('end', () => resolve(response.statusCode ?? 0));
        response.on('error', reject);
      },
    );
    request.on('error', reject);
    request.end(body);
  });
}

async function run({ url, prefix, count, seconds, concurrency }: LoadRequest): Promise<LoadResult> {
  // node:http with kept-alive connections costs the client less than fetch does: the generator
  // should never be what limits the server.
  const agent = new http.Agent({ keepAlive: true, maxSockets: concurrency });
  const target = new URL(`${url}/pubsub/push`);
  const latencies: number[] = [];
  const statuses: Record<number, number> = {};
  let next = 0;
  let answered = 0;
  const started = performance.now();
  const deadline = seconds === undefined ? Infinity : started + seconds * 1000;
  const more = () => (count === undefined || next < count) && performance.now() < deadline;
  await Promise.all(
    Array.from({ length: concurrency }, async () => {
      while (more()) {
        const body = pushBody(prefix, next++);
        const t = performance.now();
        const status = await post(agent, target, body);
        const end = performance.now();
        latencies.push(end - t);
        if (end <= deadline) answered++;
        statuses[status] = (statuses[status] ?? 0) + 1;
      }
    }),
  );
  const wall = seconds ?? (performance.now() - started) / 1000;
  agent.destroy();
  return { latencies, seconds: wall, answered, statuses };
}

/** Runs one load in a new worker thread, and ends the thread. */
export async function load(request: LoadRequest): Promise<LoadResult> {
  const worker = new Worker(new URL(import.meta.url), { workerData: request });
  try {
    return await new Promise<LoadResult>((resolve, reject) => {
      worker.once('message', resolve);
      worker.once('error', reject);
      worker.once('exit', (code) => reject(new Error(`the load worker exited with ${code}`)));
    });
  } finally {
    await worker.terminate();
  }
}

if (!isMainThread && parentPort !== null) {
  parentPort.postMessage(await run(workerData as LoadRequest));
}
