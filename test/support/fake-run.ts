// A loopback test double of the Cloud Run Admin API v2 (REST) for @google-cloud/run's JobsClient,
// ExecutionsClient and TasksClient with the REST transport:
// - `POST /v2/projects/P/locations/R/jobs/J:run` answers a long-running Operation whose metadata is
//   the Execution being started, as the real API does. The JSON must carry `@type`: gax decodes
//   `metadata` as a google.protobuf.Any, then the Any's bytes as an Execution.
// - `GET .../operations/OP` answers that operation again (with its metadata, always).
// - `GET .../jobs/J/executions` lists the job's executions newest first (pageSize, pageToken), as
//   the real API does ("Results are sorted by creation time, descending":
//   https://cloud.google.com/run/docs/reference/rest/v2/projects.locations.jobs.executions/list).
//   showDeleted is accepted and changes nothing: a forgotten execution is not listed.
// - `GET .../jobs/J/executions/E` answers the Execution in the state a test gave it (`settle`):
//   running until then, with the counts, completionTime and `Completed` condition Cloud Run sets.
//   Its `template` holds the container as the RunJob overrides made it (env, args, timeout): the
//   overrides "will be applied to update the execution or task spec" (RunJobRequest.overrides,
//   https://cloud.google.com/run/docs/reference/rest/v2/projects.locations.jobs/run). The double's
//   job has no env or args of its own, so the template's env is exactly the overrides' env.
// - `GET .../executions/E/tasks` lists its one task, with `lastAttemptResult` once it ended.
// - `POST .../executions/E:cancel` cancels a running execution and answers an Operation; one already
//   complete answers 400 FAILED_PRECONDITION. An unknown or forgotten execution answers 404.
// Enums go out as numbers when the client asks for `enum-encoding=int` (gax does), as names otherwise.
//
// For bursts (FakeRunOptions): a limit of running executions and a rate limit on RunJob, both
// answered 429 RESOURCE_EXHAUSTED; executions that succeed by themselves after a while; and a hook
// when an execution ends. Lost answers come from the recording server (recording-server.ts):
// `run.dropNextAnswers(1, isRunJob)` starts the execution, then resets the connection.
import { randomBytes } from 'node:crypto';
import {
  googleError,
  startRecordingServer,
  type ApiAnswer,
  type RecordedRequest,
  type RecordingServer,
} from './recording-server.ts';

export {
  googleError,
  startRecordingServer,
  type ApiAnswer,
  type RecordedRequest,
  type RecordingServer,
  type RequestMatcher,
} from './recording-server.ts';

export type ExecutionOutcome =
  | { phase: 'succeeded' }
  /** A failed task: its exit code, or the signal that ended it, and the message Cloud Run gives. */
  | { phase: 'failed'; exitCode?: number; termSignal?: number; message?: string }
  | { phase: 'cancelled' };

/** An execution that started, as onExecutionStarted sees it: its container as the overrides made it. */
export interface StartedExecution {
  name: string;
  job: string;
  env: Record<string, string>;
  args?: string[];
  timeoutSeconds?: number;
}

/** An execution that ended, as onExecutionEnded sees it. */
export interface EndedExecution {
  name: string;
  /** The container's env as the RunJob overrides set it (JOB_ID, ATTEMPT, ...). */
  env: Record<string, string>;
  outcome: ExecutionOutcome;
}

export interface FakeRunOptions {
  /**
   * RunJob answers 429 RESOURCE_EXHAUSTED while this many executions have not completed (Cloud
   * Run's "Maximum number of running Job executions" is 1000 per project and region:
   * https://cloud.google.com/run/quotas). The wording of the refusal is the double's own.
   */
  maxRunning?: number;
  /**
   * RunJob answers 429 RESOURCE_EXHAUSTED once this many were accepted in the last second, worded
   * as Google words its quota refusals (the real limit is "Job run requests per minute per region").
   */
  runJobsPerSecond?: number;
  /** An execution succeeds by itself (exit 0) this many seconds after it was started. */
  executionSeconds?: number;
  /** Called when an execution ends: by itself, by settle, or by a cancel. */
  onExecutionEnded?: (execution: EndedExecution) => void;
  /** Called when RunJob starts an execution (a host that runs its container, say; it settles it). */
  onExecutionStarted?: (execution: StartedExecution) => void;
  /** The job's image, as its executions' template names it. */
  jobImage?: string;
}

interface StoredExecution {
  name: string;
  job: string;
  createTime: string;
  /** Its place in creation order: the listing's order and page tokens. */
  seq: number;
  container: { name: string; env: Record<string, string>; args?: string[] };
  timeoutSeconds?: number;
  outcome?: ExecutionOutcome;
  completionTime?: string;
  timer?: NodeJS.Timeout;
}

export type FakeRun = RecordingServer & {
  /** The executions started so far, by full name. */
  executions: string[];
  /** Ends an execution the way Cloud Run would report it from now on. */
  settle(execution: string, outcome: ExecutionOutcome): void;
  /** Forgets an execution: it answers 404 from now on (deleted, or never known). */
  forget(execution: string): void;
  /** The executions not completed yet. */
  running(): number;
  /** The most executions not completed at one time, so far. */
  peakRunning(): number;
  /** How many RunJob calls were refused (maxRunning, runJobsPerSecond). */
  refusedRunJobs(): number;
  /** The JOB_ID of each execution started, in order (one per execution). */
  executionJobIds(): string[];
  /** The next runs answer an operation without metadata, as if the Execution were not named yet. */
  runWithoutMetadata: boolean;
};

const RUN_JOB = /^\/v2\/projects\/([^/]+)\/locations\/([^/]+)\/jobs\/([^/:]+):run$/;
const OPERATION = /^\/v2\/(projects\/[^/]+\/locations\/[^/]+\/operations\/[^/:]+)$/;
const LIST_EXECUTIONS = /^\/v2\/(projects\/[^/]+\/locations\/[^/]+\/jobs\/[^/:]+)\/executions$/;
const EXECUTION =
  /^\/v2\/(projects\/[^/]+\/locations\/[^/]+\/jobs\/[^/]+\/executions\/[^/:]+)(:cancel|\/tasks)?$/;
const EXECUTION_TYPE = 'type.googleapis.com/google.cloud.run.v2.Execution';
const WORKER_IMAGE = 'europe-west1-docker.pkg.dev/acme/pipeline/worker:1';
const DEFAULT_PAGE_SIZE = 100;

/** A RunJob request, for failNext, dropNextAnswers and stallNextAnswers. */
export const isRunJob = (request: RecordedRequest) => request.method === 'POST' && RUN_JOB.test(request.path);
/** A ListExecutions request. */
export const isListExecutions = (request: RecordedRequest) =>
  request.method === 'GET' && LIST_EXECUTIONS.test(request.path);

// The enum values of google.cloud.run.v2.Condition, for answers with enum-encoding=int.
const CONDITION_STATES = {
  CONDITION_PENDING: 1,
  CONDITION_RECONCILING: 2,
  CONDITION_FAILED: 3,
  CONDITION_SUCCEEDED: 4,
};
const EXECUTION_REASONS = { NON_ZERO_EXIT_CODE: 2, CANCELLED: 3 };

interface RunJobBody {
  overrides?: {
    containerOverrides?: { name?: string; env?: { name: string; value?: string }[]; args?: string[] }[];
    timeout?: string;
  };
}

export async function startFakeRun(options: FakeRunOptions = {}): Promise<FakeRun> {
  const executions: string[] = [];
  let peak = 0;
  let refusedCount = 0;
  const stored = new Map<string, StoredExecution>();
  const operations = new Map<string, { name: string; execution: string }>();
  /** When the runs of the last second were accepted (ms), for runJobsPerSecond. */
  const accepted: number[] = [];
  let seq = 0;

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

  /** Why RunJob is refused now (maxRunning, runJobsPerSecond), or undefined. */
  function refusal(project: string, location: string): ApiAnswer | undefined {
    const { maxRunning, runJobsPerSecond } = options;
    if (maxRunning !== undefined && fake.running() >= maxRunning) {
      // The double's own wording: no real message for this limit was found to copy.
      return googleError(
        429,
        `Resource exhausted: project ${project} already has ${maxRunning} running job executions in region ${location}, the maximum. Wait for executions to complete; see https://cloud.google.com/run/quotas.`,
      );
    }
    const now = Date.now();
    while (accepted.length > 0 && accepted[0] <= now - 1000) accepted.shift();
    if (runJobsPerSecond !== undefined && accepted.length >= runJobsPerSecond) {
      // Worded as Google's quota refusals are (the metric and limit as the Cloud Run quotas page names them).
      return googleError(
        429,
        "Quota exceeded for quota metric 'Job run requests' and limit 'Job run requests per minute per region' of service 'run.googleapis.com' for consumer 'project_number:123456789012'.",
        {
          details: [
            {
              '@type': 'type.googleapis.com/google.rpc.ErrorInfo',
              reason: 'RATE_LIMIT_EXCEEDED',
              domain: 'googleapis.com',
              metadata: { service: 'run.googleapis.com', quota_location: location },
            },
          ],
        },
      );
    }
    return undefined;
  }

  function run(project: string, location: string, job: string, body: RunJobBody): ApiAnswer {
    const refused = refusal(project, location);
    if (refused !== undefined) {
      refusedCount++;
      return refused;
    }
    accepted.push(Date.now());
    const parent = `projects/${project}/locations/${location}`;
    // Cloud Run names an execution after its job with a 5-character suffix, unique among the job's
    // executions. Five hex characters collide in about one burst of 200 runs in 50 (1 - e^(-200²/2/16⁵)),
    // so the double draws again rather than overwrite an execution: an overwrite once made one job of a
    // burst seem to run twice and another never (the reconciler then closed it from the other's state).
    let name: string;
    do name = `${parent}/jobs/${job}/executions/${job}-${randomBytes(3).toString('hex').slice(0, 5)}`;
    while (stored.has(name));
    const override = body.overrides?.containerOverrides?.[0];
    const env = Object.fromEntries((override?.env ?? []).map((e) => [e.name, e.value ?? '']));
    const timeout = body.overrides?.timeout;
    const execution: StoredExecution = {
      name,
      job,
      createTime: new Date().toISOString(),
      seq: ++seq,
      container: {
        name: override?.name ?? 'worker',
        env,
        ...(override?.args ? { args: override.args } : {}),
      },
      ...(timeout === undefined ? {} : { timeoutSeconds: Number.parseFloat(timeout) }),
    };
    executions.push(name);
    stored.set(name, execution);
    peak = Math.max(peak, fake.running());
    options.onExecutionStarted?.({
      name,
      job,
      env: { ...env },
      ...(override?.args ? { args: [...override.args] } : {}),
      ...(execution.timeoutSeconds === undefined ? {} : { timeoutSeconds: execution.timeoutSeconds }),
    });
    if (options.executionSeconds !== undefined) {
      execution.timer = setTimeout(
        () => fake.settle(name, { phase: 'succeeded' }),
        options.executionSeconds * 1000,
      );
    }
    const operation = `${parent}/operations/${randomBytes(8).toString('hex')}`;
    operations.set(operation, { name: operation, execution: name });
    return { status: 200, body: operationBody(operation, execution, !fake.runWithoutMetadata) };
  }

  function executionBody(execution: StoredExecution, numericEnums: boolean) {
    const enumOf = (names: Record<string, number>, name: string) => (numericEnums ? names[name] : name);
    const { outcome, completionTime, container } = execution;
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
    const template = {
      containers: [
        {
          name: container.name,
          image: options.jobImage ?? WORKER_IMAGE,
          env: Object.entries(container.env).map(([name, value]) => ({ name, value })),
          ...(container.args === undefined ? {} : { args: container.args }),
        },
      ],
      maxRetries: 0,
      timeout: `${execution.timeoutSeconds ?? 600}s`,
    };
    return {
      name: execution.name,
      uid: execution.name.split('/').at(-1),
      job: execution.job,
      createTime: execution.createTime,
      startTime: execution.createTime,
      ...(completionTime === undefined ? {} : { completionTime }),
      taskCount: 1,
      parallelism: 1,
      template,
      ...counts,
      conditions: [
        { type: 'ResourcesAvailable', state: enumOf(CONDITION_STATES, 'CONDITION_SUCCEEDED') },
        { type: 'Started', state: enumOf(CONDITION_STATES, 'CONDITION_SUCCEEDED') },
        { type: 'Completed', ...completed, state: enumOf(CONDITION_STATES, completed.state) },
      ],
    };
  }

  /** One page of a job's executions, newest first; the page token is the last one's `seq`. */
  function listBody(jobName: string, query: URLSearchParams, numericEnums: boolean) {
    const pageSize = Number(query.get('pageSize') ?? '') || DEFAULT_PAGE_SIZE;
    const after = query.get('pageToken') ? Number(query.get('pageToken')) : Infinity;
    const newestFirst = [...stored.values()]
      .filter((e) => e.name.startsWith(`${jobName}/executions/`) && e.seq < after)
      .sort((a, b) => b.seq - a.seq);
    const page = newestFirst.slice(0, pageSize);
    const more = newestFirst.length > pageSize;
    return {
      executions: page.map((e) => executionBody(e, numericEnums)),
      ...(more ? { nextPageToken: String(page.at(-1)!.seq) } : {}),
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

  const server = await startRecordingServer(({ method, path, query, body }) => {
    const numericEnums = (query.get('$alt') ?? '').includes('enum-encoding=int');
    const running = RUN_JOB.exec(path);
    if (method === 'POST' && running !== null) {
      return run(running[1], running[2], running[3], (body ?? {}) as RunJobBody);
    }
    const operation = OPERATION.exec(path);
    const known = operation === null ? undefined : operations.get(operation[1]);
    if (method === 'GET' && known !== undefined) {
      return { status: 200, body: operationBody(known.name, stored.get(known.execution)!, true) };
    }
    const list = LIST_EXECUTIONS.exec(path);
    if (method === 'GET' && list !== null) {
      return { status: 200, body: listBody(list[1], query, numericEnums) };
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
  const closeServer = server.close;
  const fake: FakeRun = Object.assign(server, {
    executions,
    peakRunning: () => peak,
    refusedRunJobs: () => refusedCount,
    executionJobIds: () => executions.map((name) => stored.get(name)?.container.env.JOB_ID ?? ''),
    runWithoutMetadata: false,
    settle(name: string, outcome: ExecutionOutcome) {
      const execution = stored.get(name);
      if (execution === undefined) throw new Error(`the fake never started ${name}`);
      clearTimeout(execution.timer);
      execution.outcome = outcome;
      execution.completionTime = new Date().toISOString();
      options.onExecutionEnded?.({ name, env: { ...execution.container.env }, outcome });
    },
    forget(name: string) {
      clearTimeout(stored.get(name)?.timer);
      stored.delete(name);
    },
    running() {
      return [...stored.values()].filter((e) => e.completionTime === undefined).length;
    },
    async close() {
      for (const execution of stored.values()) clearTimeout(execution.timer);
      await closeServer();
    },
  });
  return fake;
}
