// The recording server the loopback API doubles (fake-run.ts, fake-compute.ts) are built on: every
// request is kept (method, path, query, parsed JSON body, headers); the next N calls can be told to
// fail with a status and a Google-style error body, or to be handled and then lose their answer
// (the connection destroyed, or never answered), as a request does whose answer is lost on the way.
import http from 'node:http';
import { once } from 'node:events';
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

/** Which requests a queued behaviour applies to; absent: any. */
export type RequestMatcher = (request: RecordedRequest) => boolean;

export interface RecordingServer {
  /** http://127.0.0.1:PORT, for RUN_API_ENDPOINT / COMPUTE_API_ENDPOINT. */
  endpoint: string;
  requests: RecordedRequest[];
  /**
   * The next `count` calls answer `answer` (e.g. googleError(429, 'slow down')) instead; with
   * `matching`, the next `count` calls it accepts, while the others are answered as usual.
   */
  failNext(count: number, answer: ApiAnswer, matching?: RequestMatcher): void;
  /**
   * The next `count` calls (that `matching` accepts) are handled as usual (what they create exists),
   * then their connection is destroyed without an answer: the client sees a reset connection.
   */
  dropNextAnswers(count: number, matching?: RequestMatcher): void;
  /** Like dropNextAnswers, but the connection stays open and silent until the server closes. */
  stallNextAnswers(count: number, matching?: RequestMatcher): void;
  close(): Promise<void>;
}

type Queued =
  | { kind: 'fail'; answer: ApiAnswer; matching?: RequestMatcher }
  | { kind: 'drop' | 'stall'; matching?: RequestMatcher };

/** A loopback server that records every request and answers with `route` (or a queued behaviour). */
export async function startRecordingServer(
  route: (request: RecordedRequest) => ApiAnswer,
): Promise<RecordingServer> {
  const requests: RecordedRequest[] = [];
  const queued: Queued[] = [];
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
      const recorded: RecordedRequest = {
        method: req.method ?? '',
        path: url.pathname,
        query: url.searchParams,
        body,
        rawBody,
        headers: req.headers,
      };
      requests.push(recorded);
      const index = queued.findIndex(({ matching }) => matching?.(recorded) ?? true);
      const behaviour = index < 0 ? undefined : queued.splice(index, 1)[0];
      let answer: ApiAnswer;
      if (behaviour?.kind === 'fail') {
        answer = behaviour.answer;
      } else {
        try {
          answer = route(recorded);
        } catch (err) {
          answer = googleError(500, `the test double failed: ${(err as Error).message}`);
        }
      }
      if (behaviour?.kind === 'drop') {
        req.socket.destroy();
        return;
      }
      if (behaviour?.kind === 'stall') return;
      res.writeHead(answer.status, { 'content-type': 'application/json; charset=UTF-8' });
      res.end(JSON.stringify(answer.body));
    });
  });
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  const { port } = server.address() as AddressInfo;
  const queue = (count: number, item: Queued) => {
    for (let i = 0; i < count; i++) queued.push(item);
  };
  return {
    endpoint: `http://127.0.0.1:${port}`,
    requests,
    failNext: (count, answer, matching) => queue(count, { kind: 'fail', answer, matching }),
    dropNextAnswers: (count, matching) => queue(count, { kind: 'drop', matching }),
    stallNextAnswers: (count, matching) => queue(count, { kind: 'stall', matching }),
    async close() {
      server.closeAllConnections();
      server.close();
      await once(server, 'close');
    },
  };
}
