// A loopback test double of the Cloud Run Admin API v2 (REST) for @google-cloud/run's JobsClient,
// ExecutionsClient and TasksClient with the REST transport:
// - `POST /v2/projects/P/locations/R/jobs/J:run` answers a long-running Operation whose metadata is
//   the Execution being started, as the real API does. The JSON must carry `@type`: gax decodes
//   `metadata` as a google.protobuf.Any, then the Any's bytes as an Execution.
// - `GET .../operations/OP` answers that operation again (with its metadata, always).
// - `GET .../jobs/J/executions/E` answers the Execution in the state a test gave it (`settle`):
//   running until then, with the counts, completionTime and `Completed` condition Cloud Run sets.
// - `GET .../executions/E/tasks` lists its one task, with `lastAttemptResult` once it ended.
// - `POST .../executions/E:cancel` cancels a running execution and answers an Operation; one already
//   complete answers 400 FAILED_PRECONDITION. An unknown or forgotten execution answers 404.
// Enums go out as numbers when the client asks for `enum-encoding=int` (gax does), as names otherwise.
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
  /**
   * The next `count` calls answer `answer` (e.g. googleError(429, 'slow down')) instead; with
   * `matching`, the next `count` calls it accepts, while the others are answered as usual.
   */
  failNext(count: number, answer: ApiAnswer, matching?: (request: RecordedRequest) => boolean): void;
  close(): Promise<void>;
}

/** A loopback server that records every request and answers with `route` (or a queued failure). */
export async function startRecordingServer(
  route: (request: RecordedRequest) => ApiAnswer,
): Promise<RecordingServer> {
  const requests: RecordedRequest[] = [];
  const failures: { answer: ApiAnswer; matching?: (request: RecordedRequest) => boolean }[] = [];
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
        const failure = failures.findIndex(({ matching }) => matching?.(recorded) ?? true);
        answer = failure < 0 ? route(recorded) : failures.splice(failure, 1)[0].answer;
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
    failNext(count, answer, matching) {
      for (let i = 0; i < count; i++) failures.push({ answer, matching });
    },
    async close() {
      server.closeAllConnections();
      server.close();
      await once(server, 'close');
    },
  };
}

export type ExecutionOutcome =
  | { phase: 'succeeded' }
  /** A failed task: its exit code, or the signal that ended it, and the message Cloud Run gives. */
  | { phase: 'failed'; exitCode?: number; termSignal?: number; message?: string }
  | { phase: 'cancelled' };

interface StoredExecution {
  name: string;
  job: string;
  createTime: string;
  outcome?: ExecutionOutcome;
  completionTime?: string;
}

export type FakeRun = RecordingServer & {
  /** The executions started so far, by full name. */
  executions: string[];
  /** Ends an execution the way Cloud Run would report it from now on. */
  settle(execution: string, outcome: ExecutionOutcome): void;
  /** Forgets an execution: it answers 404 from now on (deleted, or never known). */
  forget(execution: string): void;
  /** The next runs answer an operation without metadata, as if the Execution were not named yet. */
  runWithoutMetadata: boolean;
};

const RUN_JOB = /^\/v2\/projects\/([^/]+)\/locations\/([^/]+)\/jobs\/([^/:]+):run$/;
const OPERATION = /^\/v2\/(projects\/[^/]+\/locations\/[^/]+\/operations\/[^/:]+)$/;
const EXECUTION =
  /^\/v2\/(projects\/[^/]+\/locations\/[^/]+\/jobs\/[^/]+\/executions\/[^/:]+)(:cancel|\/tasks)?$/;
const EXECUTION_TYPE = 'type.googleapis.com/google.cloud.run.v2.Execution';

// The enum values of google.cloud.run.v2.Condition, for answers with enum-encoding=int.
const CONDITION_STATES = {
  CONDITION_PENDING: 1,
  CONDITION_RECONCILING: 2,
  CONDITION_FAILED: 3,
  CONDITION_SUCCEEDED: 4,
};
const EXECUTION_REASONS = { NON_ZERO_EXIT_CODE: 2, CANCELLED: 3 };

export async function startFakeRun(): Promise<FakeRun> {
  const executions: string[] = [];
  const stored = new Map<string, StoredExecution>();
  const operations = new Map<string, { name: string; execution: string }>();

  function operationBody(name: string, execution: StoredExecution, withMetadata: boolean) {
    const metadata = {
      '@type': EXECUTION_TYPE,
      name: execution.name,
      job: execution.job,
      createTime: execution.createTime,
      taskCount: 1,
    };
    return { name, ...(withMetadata ? { metadata } : {}), done: execution.completionTime !== undefined };
  }

  function run(project: string, location: string, job: string): ApiAnswer {
    const parent = `projects/${project}/locations/${location}`;
    const name = `${parent}/jobs/${job}/executions/${job}-${randomBytes(3).toString('hex').slice(0, 5)}`;
    const execution = { name, job, createTime: new Date().toISOString() };
    executions.push(name);
    stored.set(name, execution);
    const operation = `${parent}/operations/${randomBytes(8).toString('hex')}`;
    operations.set(operation, { name: operation, execution: name });
    return { status: 200, body: operationBody(operation, execution, !fake.runWithoutMetadata) };
  }

  function executionBody(execution: StoredExecution, numericEnums: boolean) {
    const enumOf = (names: Record<string, number>, name: string) => (numericEnums ? names[name] : name);
    const { outcome, completionTime } = execution;
    const counts = {
      succeededCount: outcome?.phase === 'succeeded' ? 1 : 0,
      failedCount: outcome?.phase === 'failed' ? 1 : 0,
      cancelledCount: outcome?.phase === 'cancelled' ? 1 : 0,
      runningCount: outcome === undefined ? 1 : 0,
    };
    const completed = (() => {
      const task = `${execution.name.split('/').at(-1)}-task0`;
      if (outcome === undefined)
        return { state: 'CONDITION_PENDING', message: 'Waiting for the tasks to finish.' };
      if (outcome.phase === 'succeeded')
        return { state: 'CONDITION_SUCCEEDED', message: 'Execution completed successfully.' };
      if (outcome.phase === 'cancelled') {
        const executionReason = enumOf(EXECUTION_REASONS, 'CANCELLED');
        return { state: 'CONDITION_FAILED', message: 'The execution was cancelled.', executionReason };
      }
      const executionReason = enumOf(EXECUTION_REASONS, 'NON_ZERO_EXIT_CODE');
      const why = outcome.message ?? 'The container exited with an error.';
      return {
        state: 'CONDITION_FAILED',
        message: `Task ${task} failed with message: ${why}`,
        executionReason,
      };
    })();
    return {
      name: execution.name,
      uid: execution.name.split('/').at(-1),
      job: execution.job,
      createTime: execution.createTime,
      startTime: execution.createTime,
      ...(completionTime === undefined ? {} : { completionTime }),
      taskCount: 1,
      parallelism: 1,
      ...counts,
      conditions: [
        { type: 'ResourcesAvailable', state: enumOf(CONDITION_STATES, 'CONDITION_SUCCEEDED') },
        { type: 'Started', state: enumOf(CONDITION_STATES, 'CONDITION_SUCCEEDED') },
        { type: 'Completed', ...completed, state: enumOf(CONDITION_STATES, completed.state) },
      ],
    };
  }

  function tasksBody(execution: StoredExecution) {
    const { outcome } = execution;
    let lastAttemptResult: Record<string, unknown> | undefined;
    if (outcome?.phase === 'succeeded') lastAttemptResult = { status: {}, exitCode: 0 };
    if (outcome?.phase === 'failed') {
      lastAttemptResult = {
        status: { code: 2, message: outcome.message ?? 'The container exited with an error.' },
        ...(outcome.exitCode === undefined ? {} : { exitCode: outcome.exitCode }),
        ...(outcome.termSignal === undefined ? {} : { termSignal: outcome.termSignal }),
      };
    }
    const id = `${execution.name.split('/').at(-1)}-task0`;
    const task = {
      name: `${execution.name}/tasks/${id}`,
      job: execution.job,
      execution: execution.name,
      index: 0,
      createTime: execution.createTime,
      ...(execution.completionTime === undefined ? {} : { completionTime: execution.completionTime }),
      ...(lastAttemptResult === undefined ? {} : { lastAttemptResult }),
    };
    return { tasks: [task] };
  }

  function cancel(execution: StoredExecution): ApiAnswer {
    if (execution.completionTime !== undefined) {
      return googleError(400, `Execution ${execution.name} has already completed.`, {
        status: 'FAILED_PRECONDITION',
      });
    }
    fake.settle(execution.name, { phase: 'cancelled' });
    const parent = execution.name.split('/jobs/')[0];
    const operation = `${parent}/operations/${randomBytes(8).toString('hex')}`;
    return { status: 200, body: operationBody(operation, execution, true) };
  }

  const server = await startRecordingServer(({ method, path, query }) => {
    const numericEnums = (query.get('$alt') ?? '').includes('enum-encoding=int');
    const running = RUN_JOB.exec(path);
    if (method === 'POST' && running !== null) return run(running[1], running[2], running[3]);
    const operation = OPERATION.exec(path);
    const known = operation === null ? undefined : operations.get(operation[1]);
    if (method === 'GET' && known !== undefined) {
      return { status: 200, body: operationBody(known.name, stored.get(known.execution)!, true) };
    }
    const match = EXECUTION.exec(path);
    const execution = match === null ? undefined : stored.get(match[1]);
    if (match !== null && execution === undefined) return googleError(404, `Execution ${match[1]} not found`);
    if (execution !== undefined && method === 'GET' && match![2] === undefined) {
      return { status: 200, body: executionBody(execution, numericEnums) };
    }
    if (execution !== undefined && method === 'GET' && match![2] === '/tasks') {
      return { status: 200, body: tasksBody(execution) };
    }
    if (execution !== undefined && method === 'POST' && match![2] === ':cancel') return cancel(execution);
    return googleError(404, `no route ${method} ${path}`);
  });
  const fake: FakeRun = Object.assign(server, {
    executions,
    runWithoutMetadata: false,
    settle(name: string, outcome: ExecutionOutcome) {
      const execution = stored.get(name);
      if (execution === undefined) throw new Error(`the fake never started ${name}`);
      execution.outcome = outcome;
      execution.completionTime = new Date().toISOString();
    },
    forget(name: string) {
      stored.delete(name);
    },
  });
  return fake;
}
