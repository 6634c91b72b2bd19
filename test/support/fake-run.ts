// A loopback test double of the Cloud Run Admin API v2 (REST) for @google-cloud/run's JobsClient with
// the REST transport: `POST /v2/projects/P/locations/R/jobs/J:run` answers a long-running Operation
// whose metadata is the Execution being started, as the real API does. The JSON must carry `@type`:
// gax decodes `metadata` as a google.protobuf.Any, then the Any's bytes as an Execution.
//
// Also the recording server both doubles (this one and fake-compute.ts) are built on: every request
// is kept (method, path, query, parsed JSON body, headers), and the next N calls can be told to fail
// with a status and a Google-style error body.
import http from 'node:http';
import { once } from 'node:events';
import { randomBytes } from 'node:crypto';
import type { AddressInfo } from 'node:net';

export interface RecordedRequest {
  method: string;
  path: string;
  query: URLSearchParams;
  /** The body parsed as JSON; undefined when empty or not JSON. */
  body: unknown;
  rawBody: string;
  headers: http.IncomingHttpHeaders;
}

export interface ApiAnswer {
  status: number;
  body: unknown;
}

/** The canonical status names of HTTP statuses, as Google's JSON errors carry them. */
const STATUS_NAMES: Record<number, string> = {
  400: 'INVALID_ARGUMENT',
  401: 'UNAUTHENTICATED',
  403: 'PERMISSION_DENIED',
  404: 'NOT_FOUND',
  409: 'ALREADY_EXISTS',
  429: 'RESOURCE_EXHAUSTED',
  500: 'INTERNAL',
  503: 'UNAVAILABLE',
  504: 'DEADLINE_EXCEEDED',
};

/** A Google JSON error: `{ error: { code, message, status } }` (Compute adds errors[] instead). */
export function googleError(status: number, message: string, extra: Record<string, unknown> = {}): ApiAnswer {
  return { status, body: { error: { code: status, message, status: STATUS_NAMES[status], ...extra } } };
}

export interface RecordingServer {
  /** http://127.0.0.1:PORT, for RUN_API_ENDPOINT / COMPUTE_API_ENDPOINT. */
  endpoint: string;
  requests: RecordedRequest[];
  /** The next `count` calls answer `answer` (e.g. googleError(429, 'slow down')) instead. */
  failNext(count: number, answer: ApiAnswer): void;
  close(): Promise<void>;
}

/** A loopback server that records every request and answers with `route` (or a queued failure). */
export async function startRecordingServer(
  route: (request: RecordedRequest) => ApiAnswer,
): Promise<RecordingServer> {
  const requests: RecordedRequest[] = [];
  const failures: ApiAnswer[] = [];
  const server = http.createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (chunk: Buffer) => chunks.push(chunk));
    req.on('end', () => {
      const rawBody = Buffer.concat(chunks).toString('utf8');
      let body: unknown;
      try {
        body = rawBody === '' ? undefined : JSON.parse(rawBody);
      } catch {
        body = undefined;
      }
      const url = new URL(req.url ?? '/', 'http://fake');
      const request = {
        method: req.method ?? '',
        path: url.pathname,
        query: url.searchParams,
        body,
        rawBody,
      };
      const recorded: RecordedRequest = { ...request, headers: req.headers };
      requests.push(recorded);
      let answer: ApiAnswer;
      try {
        answer = failures.shift() ?? route(recorded);
      } catch (err) {
        answer = googleError(500, `the test double failed: ${(err as Error).message}`);
      }
      res.writeHead(answer.status, { 'content-type': 'application/json; charset=UTF-8' });
      res.end(JSON.stringify(answer.body));
    });
  });
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  const { port } = server.address() as AddressInfo;
  return {
    endpoint: `http://127.0.0.1:${port}`,
    requests,
    failNext(count, answer) {
      for (let i = 0; i < count; i++) failures.push(answer);
    },
    async close() {
      server.closeAllConnections();
      server.close();
      await once(server, 'close');
    },
  };
}

export type FakeRun = RecordingServer & {
  /** The executions started so far, by full name. */
  executions: string[];
};

const RUN_JOB = /^\/v2\/projects\/([^/]+)\/locations\/([^/]+)\/jobs\/([^/:]+):run$/;

export async function startFakeRun(): Promise<FakeRun> {
  const executions: string[] = [];
  const server = await startRecordingServer(({ method, path }) => {
    const match = RUN_JOB.exec(path);
    if (method !== 'POST' || match === null) return googleError(404, `no route ${method} ${path}`);
    const [, project, location, job] = match;
    const parent = `projects/${project}/locations/${location}`;
    const execution = `${parent}/jobs/${job}/executions/${job}-${randomBytes(3).toString('hex').slice(0, 5)}`;
    executions.push(execution);
    return {
      status: 200,
      body: {
        name: `${parent}/operations/${randomBytes(8).toString('hex')}`,
        metadata: {
          '@type': 'type.googleapis.com/google.cloud.run.v2.Execution',
          name: execution,
          job,
          createTime: new Date().toISOString(),
          taskCount: 1,
        },
        done: false,
      },
    };
  });
  return Object.assign(server, { executions });
}
