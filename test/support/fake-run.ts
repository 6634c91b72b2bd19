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
// - An execution has the overrides' taskCount of tasks (1 when absent), each with an outcome of its
//   own: `settleTask` ends one, `settle` ends every task not ended yet. The execution completes
//   when its last task ended.
// - `GET .../jobs/J/executions/E` answers the Execution in the state a test gave it: running until
//   its last task ended, with the counts over its tasks, completionTime and the `Completed` condition
//   Cloud Run sets (pending until then; then cancelled if a task was cancelled, else failed if one
//   failed, naming the first, else succeeded). Its `template` holds the container as the RunJob
//   overrides made it (env, args, timeout): the overrides "will be applied to update the execution
//   or task spec" (RunJobRequest.overrides,
//   https://cloud.google.com/run/docs/reference/rest/v2/projects.locations.jobs/run). The double's
//   job has no env or args of its own, so the template's env is exactly the overrides' env.
// - `GET .../executions/E/tasks` lists its tasks by index (pageSize, pageToken), each with its
//   `completionTime` and `lastAttemptResult` once it ended, and a `Completed` condition worded as
//   the execution's (the double's own wording for a task).
// - `POST .../executions/E:cancel` cancels a running execution (its tasks not ended yet end
//   cancelled) and answers an Operation; one already complete answers 400 FAILED_PRECONDITION. An
//   unknown or forgotten execution answers 404.
// Enums go out as numbers when the client asks for `enum-encoding=int` (gax does), as names otherwise.
//
// For bursts (FakeRunOptions): a limit of running executions and a rate limit on RunJob, both
// answered 429 RESOURCE_EXHAUSTED; executions whose tasks all succeed by themselves after a while;
// and a hook when an execution ends. Lost answers come from the recording server (recording-server.ts):
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
  /** How many tasks it runs (the overrides' taskCount, 1 when absent). */
  taskCount: number;
}

/** An execution that ended, as onExecutionEnded sees it. */
export interface EndedExecution {
  name: string;
  /** The container's env as the RunJob overrides set it (JOB_ID, ATTEMPT, ...). */
  env: Record<string, string>;
  /** The execution's: cancelled if a task was, else the first failed task's, else succeeded. */
  outcome: ExecutionOutcome;
  /** Each task's, by index. */
  tasks: ExecutionOutcome[];
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
  /** Every task of an execution succeeds by itself (exit 0) this many seconds after it was started. */
  executionSeconds?: number;
  /** Called when an execution ends: by itself, by settle, or by a cancel. */
  onExecutionEnded?: (execution: EndedExecution) => void;
  /** Called when RunJob starts an execution (a host that runs its container, say; it settles it). */
  onExecutionStarted?: (execution: StartedExecution) => void;
  /** The job's image, as its executions' template names it. */
  jobImage?: string;
  /** Tasks per page of a task listing whose request names no pageSize. */
  tasksPageSize?: number;
}

interface StoredTask {
  outcome?: ExecutionOutcome;
  completionTime?: string;
}

interface StoredExecution {
  name: string;
  job: string;
  createTime: string;
  /** Its place in creation order: the listing's order and page tokens. */
  seq: number;
  container: { name: string; env: Record<string, string>; args?: string[] };
  timeoutSeconds?: number;
  /** By index; the execution's completionTime is set when the last of them ended. */
  tasks: StoredTask[];
  completionTime?: string;
  timer?: NodeJS.Timeout;
}

export type FakeRun = RecordingServer & {
  /** The executions started so far, by full name. */
  executions: string[];
  /**
   * Ends every task of an execution not ended yet, the way Cloud Run would report it from now on;
   * an execution that already completed stays as it ended.
   */
  settle(execution: string, outcome: ExecutionOutcome): void;
  /** Ends task `index` of an execution (one not ended yet); the last task to end completes it. */
  settleTask(execution: string, index: number, outcome: ExecutionOutcome): void;
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
    taskCount?: number;
    timeout?: string;
  };
}

type EnumOf = (names: Record<string, number>, name: string) => string | number;
/** Enum values as numbers for a client that asked for `enum-encoding=int`, as names otherwise. */
const enumsOf =
  (numericEnums: boolean): EnumOf =>
  (names, name) =>
    numericEnums ? names[name] : name;

/**
 * The `Completed` condition of an execution or a task: pending while it runs, then as `outcome`
 * ended; a failure names `failedTask` (the task's own id, or an execution's first failed task's).
 */
function completedCondition(
  outcome: ExecutionOutcome | undefined,
  enumOf: EnumOf,
  of: 'execution' | 'task',
  failedTask: string,
) {
  const condition = (state: keyof typeof CONDITION_STATES, message: string, reason?: string) => ({
    type: 'Completed',
    state: enumOf(CONDITION_STATES, state),
    message,
    ...(reason === undefined ? {} : { executionReason: enumOf(EXECUTION_REASONS, reason) }),
  });
  if (outcome === undefined) {
    return condition(
      'CONDITION_PENDING',
      of === 'execution' ? 'Waiting for the tasks to finish.' : 'Running.',
    );
  }
  if (outcome.phase === 'succeeded') {
    return condition(
      'CONDITION_SUCCEEDED',
      `${of === 'execution' ? 'Execution' : 'Task'} completed successfully.`,
    );
  }
  if (outcome.phase === 'cancelled') {
    return condition('CONDITION_FAILED', `The ${of} was cancelled.`, 'CANCELLED');
  }
  const why = outcome.message ?? 'The container exited with an error.';
  return condition(
    'CONDITION_FAILED',
    `Task ${failedTask} failed with message: ${why}`,
    'NON_ZERO_EXIT_CODE',
  );
}

/** A task's id, as its name ends: the execution's short name, `-task`, its index. */
const taskId = (execution: string, index: number) => `${execution.split('/').at(-1)}-task${index}`;

/** The execution's outcome from its tasks' (all ended): see EndedExecution.outcome. */
function executionOutcome(tasks: ExecutionOutcome[]): ExecutionOutcome {
  return (
    tasks.find((t) => t.phase === 'cancelled') ??
    tasks.find((t) => t.phase === 'failed') ?? { phase: 'succeeded' }
  );
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
      taskCount: execution.tasks.length,
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
    const taskCount = body.overrides?.taskCount ?? 1;
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
      tasks: Array.from({ length: taskCount }, () => ({})),
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
      taskCount,
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
    const enumOf = enumsOf(numericEnums);
    const { tasks, completionTime, container } = execution;
    const counted = (phase: ExecutionOutcome['phase']) =>
      tasks.filter((t) => t.outcome?.phase === phase).length;
    const counts = {
      succeededCount: counted('succeeded'),
      failedCount: counted('failed'),
      cancelledCount: counted('cancelled'),
      runningCount: tasks.filter((t) => t.outcome === undefined).length,
    };
    const outcome = completionTime === undefined ? undefined : executionOutcome(tasks.map((t) => t.outcome!));
    const failedTask = tasks.findIndex((t) => t.outcome?.phase === 'failed');
    const completed = completedCondition(outcome, enumOf, 'execution', taskId(execution.name, failedTask));
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
      taskCount: tasks.length,
      parallelism: tasks.length,
      template,
      ...counts,
      conditions: [
        { type: 'ResourcesAvailable', state: enumOf(CONDITION_STATES, 'CONDITION_SUCCEEDED') },
        { type: 'Started', state: enumOf(CONDITION_STATES, 'CONDITION_SUCCEEDED') },
        completed,
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

  /** One page of an execution's tasks by index; the page token is the next task's index. */
  function tasksBody(execution: StoredExecution, query: URLSearchParams, numericEnums: boolean) {
    const pageSize = Number(query.get('pageSize') ?? '') || (options.tasksPageSize ?? DEFAULT_PAGE_SIZE);
    const from = Number(query.get('pageToken') ?? '') || 0;
    const page = execution.tasks.slice(from, from + pageSize).map((stored, i) => {
      const index = from + i;
      const { outcome, completionTime } = stored;
      let lastAttemptResult: Record<string, unknown> | undefined;
      if (outcome?.phase === 'succeeded') lastAttemptResult = { status: {}, exitCode: 0 };
      if (outcome?.phase === 'failed') {
        lastAttemptResult = {
          status: { code: 2, message: outcome.message ?? 'The container exited with an error.' },
          ...(outcome.exitCode === undefined ? {} : { exitCode: outcome.exitCode }),
          ...(outcome.termSignal === undefined ? {} : { termSignal: outcome.termSignal }),
        };
      }
      const id = taskId(execution.name, index);
      return {
        name: `${execution.name}/tasks/${id}`,
        job: execution.job,
        execution: execution.name,
        index,
        createTime: execution.createTime,
        ...(completionTime === undefined ? {} : { completionTime }),
        ...(lastAttemptResult === undefined ? {} : { lastAttemptResult }),
        conditions: [completedCondition(outcome, enumsOf(numericEnums), 'task', id)],
      };
    });
    const next = from + pageSize;
    return { tasks: page, ...(next < execution.tasks.length ? { nextPageToken: String(next) } : {}) };
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

  function known(name: string): StoredExecution {
    const execution = stored.get(name);
    if (execution === undefined) throw new Error(`the fake never started ${name}`);
    return execution;
  }

  /** Ends one task; the last one to end completes the execution, which onExecutionEnded hears. */
  function endTask(execution: StoredExecution, index: number, outcome: ExecutionOutcome) {
    const now = new Date().toISOString();
    execution.tasks[index] = { outcome, completionTime: now };
    if (execution.tasks.some((t) => t.outcome === undefined)) return;
    clearTimeout(execution.timer);
    execution.completionTime = now;
    const tasks = execution.tasks.map((t) => t.outcome!);
    options.onExecutionEnded?.({
      name: execution.name,
      env: { ...execution.container.env },
      outcome: executionOutcome(tasks),
      tasks,
    });
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
      return { status: 200, body: tasksBody(execution, query, numericEnums) };
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
      const execution = known(name);
      execution.tasks.forEach((task, index) => {
        if (task.outcome === undefined) endTask(execution, index, outcome);
      });
    },
    settleTask(name: string, index: number, outcome: ExecutionOutcome) {
      const execution = known(name);
      const task = execution.tasks[index];
      if (task === undefined) throw new Error(`${name} has no task ${index}`);
      if (task.outcome !== undefined) throw new Error(`task ${index} of ${name} already ended`);
      endTask(execution, index, outcome);
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
