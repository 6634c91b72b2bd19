// The cloud-run-job launcher: one execution of the worker's Cloud Run job (WORKER_JOB) per attempt,
// started with RunJob and overrides; it returns the execution's name without waiting for it to end.
//
// What an execution can override (RunJobRequest.Overrides): per container, env (merged into the
// job's env) and args; the task count; the task timeout. Not the image, and not cpu or memory: the
// resources come from the Cloud Run job's definition (terraform), whatever the template's cpu and
// memoryBytes say. The router sends to Cloud Run only what fits within Cloud Run's limits; a rule
// that needs more than the job is defined with should target a VM, or the job should be defined larger.
//
// Args: an args override replaces the job's args. Proto3 cannot tell an empty list from no list, so
// an empty one is simply not sent and the job's own args (normally none: the image's CMD) apply, as
// on a VM, where the agent runs the image with no Cmd. `clearArgs` would clear them; it is never
// needed for the worker job, whose definition has no args, so it is not sent either.
//
// Logs: Cloud Run keeps a task's stdout and stderr in Cloud Logging only, so the execution also gets
// LOGS_URI, and the worker uploads a copy of its output there (see jobs/worker/src/io/log-capture.ts).
//
// inspect and cancel take what launch returned: the execution's name, or, when RunJob's answer did
// not name the execution, the operation's name, which is resolved through the operation's metadata.
//
// RunJob goes out once, with a deadline. In @google-cloud/run 4.2.0, jobs_client_config.json gives
// RunJob the "non_idempotent" retry codes (line 43, an empty list at line 5), so gax does not resend
// it (google-gax 6.17 createApiCall.js line 192 retries only with retry codes); `retry: null` keeps
// it so whatever a later config says, since a resent RunJob is a second execution. The default
// timeout is 60 s (initial_rpc_timeout_millis, line 16); RUN_JOB_TIMEOUT_MS is shorter, so that a
// lost answer is known as lost soon. A failure that may have started the execution (no answer, or a
// 5xx) is a LaunchError with `ambiguous` (clients.ts, launchErrorFrom): find looks for it.
//
// A batch (launchBatch) is one execution of taskCount tasks, one per job, whose only env override
// is BATCH_ID and BATCH_MANIFEST_URI: each task reads its own job's env from the manifest by
// CLOUD_RUN_TASK_INDEX (packages/core/src/batch-manifest.ts). It goes out once, as a launch does.
//
// find lists the job's executions and matches the attempt by the env its RunJob set (JOB_ID and
// ATTEMPT, worker-env.ts; BATCH_ID for an attempt launched as a batch's task). The overrides show in
// the execution: RunJobRequest.overrides "will be applied to update the execution or task spec"
// (https://cloud.google.com/run/docs/reference/rest/v2/projects.locations.jobs/run), and the
// Execution's `template` is "the template used to create tasks for this execution", containers and
// their env included (https://cloud.google.com/run/docs/reference/rest/v2/projects.locations.jobs.executions).
// ListExecutions sorts "by creation time, descending", pages with pageSize and pageToken, and lists
// deleted (unexpired) executions with showDeleted
// (https://cloud.google.com/run/docs/reference/rest/v2/projects.locations.jobs.executions/list).
//
// inspect(execution, task) reads one task of a batch from the execution's task listing, which pages
// with pageSize and pageToken; gax follows nextPageToken itself (autoPaginate)
// (https://cloud.google.com/run/docs/reference/rest/v2/projects.locations.jobs.executions.tasks/list).
// A Task has its `index` in the execution, a `completionTime` once it completed, `conditions`, and a
// `lastAttemptResult` whose exitCode "may be unset if the container was unable to exit cleanly" and
// whose status says "If the status code is OK, then the attempt succeeded"
// (https://cloud.google.com/run/docs/reference/rest/v2/projects.locations.jobs.executions.tasks).
// A reconcile pass inspects the tasks of one execution one after another, so one listing answers
// the inspects of its execution's tasks for TASK_LISTING_TTL_MS: one ListTasks per execution and
// pass, not one per task.
import {
  BATCH_ID_ENV,
  BATCH_MANIFEST_ENV,
  CLOUD_RUN_JOB_LIMITS,
  currentBatchTask,
  LaunchError,
  type BatchLaunchRequest,
  type FoundLaunch,
  type Job,
  type LaunchRequest,
  type LaunchResult,
  type Launcher,
  type RunStatus,
} from '@pipeline/core';
import type { protos } from '@google-cloud/run';
import {
  apiErrorFacts,
  describeApiError,
  FAILED_PRECONDITION,
  isNotFound,
  PERMISSION_DENIED,
  launchErrorFrom,
  type ExecutionsClient,
  type JobsClient,
  type TasksClient,
} from './clients.ts';

type Execution = protos.google.cloud.run.v2.IExecution;
type Task = protos.google.cloud.run.v2.ITask;

export interface CloudRunJobLauncherSettings {
  project: string;
  /** The Cloud Run region of the job, like europe-west1. */
  region: string;
  /** The Cloud Run job that runs the worker (WORKER_JOB). */
  job: string;
  /** The container to override, for a job with several; absent: the job's only container. */
  container?: string;
  /** The job's image (WORKER_IMAGE), if known: a template may name it; any other image cannot run here. */
  image?: string;
  /** The Run API clients, created on first use (see clients.ts: jobsClient, executionsClient, tasksClient). */
  client: () => Promise<Pick<JobsClient, 'runJob' | 'checkRunJobProgress'>>;
  executions: () => Promise<Pick<ExecutionsClient, 'getExecution' | 'cancelExecution' | 'listExecutions'>>;
  tasks: () => Promise<Pick<TasksClient, 'listTasks'>>;
  /** How long a RunJob's answer is waited for (RUN_JOB_TIMEOUT_MS unless a test says otherwise). */
  runJobTimeoutMs?: number;
  /** Executions per page of find's listing (FIND_PAGE_SIZE), and how many pages at most (FIND_MAX_PAGES). */
  findPageSize?: number;
  findMaxPages?: number;
  /** How long a listing of an execution's tasks serves inspect(execution, task) (TASK_LISTING_TTL_MS). */
  taskListingTtlMs?: number;
}

/** How long a RunJob's answer is waited for before it counts as lost. */
export const RUN_JOB_TIMEOUT_MS = 20_000;
/** How long any other call is waited for: the next pass (reconcile, or find) asks again. */
const CALL_TIMEOUT_MS = 30_000;
/**
 * find stops at executions created this long before the attempt's launchedAt: createTime is the
 * execution controller's clock, "not guaranteed to be set in happens-before order", and the
 * dispatcher's clock may differ from it.
 */
export const FIND_MARGIN_MS = 5 * 60_000;
export const FIND_PAGE_SIZE = 100;
/**
 * Pages enough for a job's retained executions (1,000 completed per job, plus up to 1,000 running
 * per region: https://cloud.google.com/run/quotas); past them find says unknown, never absent.
 */
export const FIND_MAX_PAGES = 25;
/**
 * How long one listing of an execution's tasks answers inspect(execution, task): long enough for a
 * reconcile pass over the batch's jobs, short enough that the next pass lists again. What it holds
 * is at most this stale: a task it says runs may have ended since, which the next pass sees.
 */
export const TASK_LISTING_TTL_MS = 5_000;

/**
 * The exit code inspect reports for a cancelled execution. Cloud Run stops the container of a
 * cancelled task with SIGTERM, and 128 + 15 is how a shell reports a process SIGTERM ended.
 */
export const CANCELLED_EXIT_CODE = 143;

const EXECUTION_NAME = /^projects\/[^/]+\/locations\/[^/]+\/jobs\/[^/]+\/executions\/[^/]+$/;
const OPERATION_NAME = /^projects\/[^/]+\/locations\/[^/]+\/operations\/[^/]+$/;

export class CloudRunJobLauncher implements Launcher {
  private readonly settings: CloudRunJobLauncherSettings;
  /** Listings of executions' tasks by execution name, for inspectTask; dropped when expired. */
  private readonly taskListings = new Map<string, { expiresAt: number; tasks: Promise<Task[]> }>();

  constructor(settings: CloudRunJobLauncherSettings) {
    this.settings = settings;
  }

  /** projects/P/locations/R/jobs/J */
  get jobName(): string {
    const { project, region, job } = this.settings;
    return `projects/${project}/locations/${region}/jobs/${job}`;
  }

  async launch(request: LaunchRequest): Promise<LaunchResult> {
    const { job, env, args } = request;
    const what = `Cloud Run job ${this.jobName} (job ${job.id}, attempt ${job.attempt})`;
    this.checkImage(what, job);
    const timeoutSeconds = job.template?.timeoutSeconds;
    checkTimeout(what, timeoutSeconds);
    // LOGS_URI is reserved (a template cannot set it): the worker uploads its output there.
    return this.runJob(what, { ...env, LOGS_URI: request.logsUri }, args, 1, timeoutSeconds);
  }

  /** One execution of one task per job; each task's env is its entry of the manifest. */
  async launchBatch(request: BatchLaunchRequest): Promise<LaunchResult> {
    const { batchId, manifestUri, jobs, args, timeoutSeconds } = request;
    const what = `Cloud Run job ${this.jobName} (batch ${batchId} of ${jobs.length} jobs)`;
    if (jobs.length === 0) throw new LaunchError(`${what}: a batch has at least one job`, false);
    for (const job of jobs) this.checkImage(`${what}, job ${job.id}`, job);
    checkTimeout(what, timeoutSeconds);
    const env = { [BATCH_ID_ENV]: batchId, [BATCH_MANIFEST_ENV]: manifestUri };
    return this.runJob(what, env, args, jobs.length, timeoutSeconds);
  }

  /** A template may name the job's image only: an execution cannot run another. */
  private checkImage(what: string, job: Job): void {
    const image = job.template?.image;
    if (image !== undefined && image !== this.settings.image) {
      throw new LaunchError(
        `${what} cannot run image ${image}: a Cloud Run job execution runs its job's image; route jobs with their own image to a VM`,
        false,
      );
    }
  }

  /** One RunJob with these overrides, sent once; the execution it started, or a LaunchError. */
  private async runJob(
    what: string,
    env: Record<string, string>,
    args: string[],
    taskCount: number,
    timeoutSeconds: number | undefined,
  ): Promise<LaunchResult> {
    const containerOverride = {
      ...(this.settings.container === undefined ? {} : { name: this.settings.container }),
      // Sorted, so that the same task always sends the same request.
      env: Object.keys(env)
        .sort()
        .map((name) => ({ name, value: env[name] })),
      ...(args.length > 0 ? { args } : {}),
    };
    let operation;
    try {
      const client = await this.settings.client();
      [operation] = await client.runJob(
        {
          name: this.jobName,
          overrides: {
            containerOverrides: [containerOverride],
            taskCount,
            ...(timeoutSeconds === undefined ? {} : { timeout: { seconds: timeoutSeconds } }),
          },
        },
        // Once, and not waited for longer than this: see the top of this file.
        { retry: null, timeout: this.settings.runJobTimeoutMs ?? RUN_JOB_TIMEOUT_MS },
      );
    } catch (err) {
      throw launchErrorFrom(err, `running ${what}`);
    }
    // The operation's metadata is the Execution being started. Without it the execution did start
    // (RunJob succeeded), so the operation's name stands in: failing here would launch it twice.
    const execution = operation.metadata?.name ?? operation.name;
    if (execution === undefined || execution === null || execution === '') {
      throw new LaunchError(
        `${what} started, but the API named neither the execution nor its operation`,
        false,
      );
    }
    return { execution };
  }

  /**
   * The execution of `job`'s current attempt, looked for among the job's executions (newest first)
   * down to those created before the attempt's launch (less FIND_MARGIN_MS), or to the end. Absent
   * only when the listing covered that whole time; a RunJob still under way on Cloud Run's side
   * when find lists is not seen, so find is for after the launch's timeout.
   */
  async find(job: Job): Promise<FoundLaunch> {
    const batch = currentBatchTask(job);
    const of = batch === undefined ? '' : ` (task ${batch.index} of batch ${batch.id})`;
    const what = `the execution of job ${job.id} attempt ${job.attempt}${of} among those of ${this.jobName}`;
    const launchedAt = Date.parse(job.attempts?.find((a) => a.attempt === job.attempt)?.launchedAt ?? '');
    // Without the attempt's launch time, only the end of the listing covers it.
    const since = Number.isNaN(launchedAt) ? undefined : launchedAt - FIND_MARGIN_MS;
    const pageSize = this.settings.findPageSize ?? FIND_PAGE_SIZE;
    const maxPages = this.settings.findMaxPages ?? FIND_MAX_PAGES;
    let pageToken: string | undefined;
    for (let page = 0; page < maxPages; page++) {
      let executions: Execution[];
      let nextPageToken: string | null | undefined;
      try {
        const client = await this.settings.executions();
        // showDeleted: an execution deleted since it started did start; launching again would be a second run.
        [executions, , { nextPageToken }] = await client.listExecutions(
          { parent: this.jobName, pageSize, showDeleted: true, ...(pageToken ? { pageToken } : {}) },
          { autoPaginate: false, timeout: CALL_TIMEOUT_MS },
        );
      } catch (err) {
        return { kind: 'unknown', reason: `looking for ${what} failed: ${listingProblem(err)}` };
      }
      const found = executions.find((execution) => this.ranAttempt(execution, job));
      if (found?.name) return { kind: 'found', execution: found.name };
      if (since !== undefined && executions.some((execution) => createdBefore(execution, since))) {
        return { kind: 'absent' }; // newest first: the rest are older still
      }
      if (!nextPageToken) return { kind: 'absent' };
      pageToken = nextPageToken;
    }
    return {
      kind: 'unknown',
      reason: `${what}: not in the newest ${maxPages * pageSize} executions, which do not reach back to its launch`,
    };
  }

  /**
   * Whether the execution's container (the overridden one) has this attempt's JOB_ID and ATTEMPT,
   * or, for an attempt launched as a batch's task, the batch's BATCH_ID.
   */
  private ranAttempt(execution: Execution, job: Job): boolean {
    const { container } = this.settings;
    const batch = currentBatchTask(job);
    return (execution.template?.containers ?? [])
      .filter((c) => container === undefined || c.name === container)
      .some((c) => {
        const env = new Map((c.env ?? []).map((e) => [e.name, e.value]));
        if (batch !== undefined) return env.get(BATCH_ID_ENV) === batch.id;
        return env.get('JOB_ID') === job.id && env.get('ATTEMPT') === String(job.attempt);
      });
  }

  async inspect(execution: string, task?: number): Promise<RunStatus> {
    const resolved = await this.resolve(execution);
    if (typeof resolved !== 'string') return resolved;
    if (task !== undefined) return this.inspectTask(resolved, task);
    let found: Execution;
    try {
      const client = await this.settings.executions();
      // Bounded, as for Compute: the next reconcile pass asks again.
      [found] = await client.getExecution({ name: resolved }, { timeout: CALL_TIMEOUT_MS });
    } catch (err) {
      if (isNotFound(apiErrorFacts(err))) return { kind: 'gone' };
      return {
        kind: 'unknown',
        reason: `reading Cloud Run execution ${resolved} failed: ${describeApiError(err)}`,
      };
    }
    // Cloud Run sets completionTime when the last task ended (or the cancellation did); before that
    // the execution is queued, running or being cancelled.
    if (!found.completionTime) return { kind: 'running' };
    const finishedAt = isoTime(found.completionTime);
    const ended = { kind: 'ended' as const, ...(finishedAt === undefined ? {} : { finishedAt }) };
    const message = completedMessage(found.conditions);
    // The execution as a whole: it succeeded only when every task did (a batch's execution has one
    // task per job; one failed task is its failure, however many others succeeded).
    const [succeeded, failed, cancelled] = [
      found.succeededCount,
      found.failedCount,
      found.cancelledCount,
    ].map((count) => count ?? 0);
    if (failed === 0 && cancelled === 0 && succeeded >= Math.max(1, found.taskCount ?? 1)) {
      return { ...ended, exitCode: 0 };
    }
    if (failed === 0 && cancelled >= 1) {
      return { ...ended, exitCode: CANCELLED_EXIT_CODE, error: 'the execution was cancelled' };
    }
    if (failed >= 1) {
      // The exit code is the task's, not the execution's: read it from the task's last attempt.
      // Listed afresh, not from the cache of inspectTask: a listing from before the task ended has
      // no exit code to read.
      let tasks: Task[];
      try {
        const client = await this.settings.tasks();
        [tasks] = await client.listTasks({ parent: resolved }, { timeout: CALL_TIMEOUT_MS });
      } catch (err) {
        // Not "ended" without it: the retry policy depends on the exit code; the next pass asks again.
        return {
          kind: 'unknown',
          reason: `Cloud Run execution ${resolved} failed, but its tasks could not be read: ${describeApiError(err)}`,
        };
      }
      for (const task of tasks) {
        const exitCode = exitCodeOf(task.lastAttemptResult);
        if (exitCode === undefined) continue;
        const why =
          message ?? nonEmpty(task.lastAttemptResult?.status?.message) ?? completedMessage(task.conditions);
        return { ...ended, exitCode, error: why ?? `exit code ${exitCode}` };
      }
      return { ...ended, exitCode: 1, error: message ?? 'the task failed without an exit code' };
    }
    return {
      ...ended,
      exitCode: 1,
      error: message ?? 'the execution completed without a succeeded, failed or cancelled task',
    };
  }

  /** Task `index` of a batch's execution, from the execution's (cached) task listing. */
  private async inspectTask(execution: string, index: number): Promise<RunStatus> {
    let tasks: Task[];
    try {
      tasks = await this.listTasks(execution);
    } catch (err) {
      if (isNotFound(apiErrorFacts(err))) return { kind: 'gone' };
      return {
        kind: 'unknown',
        reason: `listing the tasks of Cloud Run execution ${execution} failed: ${describeApiError(err)}`,
      };
    }
    // proto3's JSON may leave out an index of 0, the default.
    const found = tasks.find((t) => (t.index ?? 0) === index);
    if (found === undefined) {
      return {
        kind: 'unknown',
        reason: `Cloud Run execution ${execution} lists no task ${index} (it lists ${tasks.length})`,
      };
    }
    return taskStatus(found);
  }

  /**
   * All the tasks of an execution (every page), one listing per execution within
   * taskListingTtlMs: concurrent and later inspects of its tasks share it. A failed listing is not
   * kept, so the next inspect asks again.
   */
  private listTasks(execution: string): Promise<Task[]> {
    const now = Date.now();
    for (const [name, kept] of this.taskListings) if (kept.expiresAt <= now) this.taskListings.delete(name);
    const kept = this.taskListings.get(execution);
    if (kept !== undefined) return kept.tasks;
    const tasks = (async () => {
      const client = await this.settings.tasks();
      const [listed] = await client.listTasks(
        { parent: execution },
        { autoPaginate: true, timeout: CALL_TIMEOUT_MS },
      );
      return listed;
    })();
    const entry = { expiresAt: now + (this.settings.taskListingTtlMs ?? TASK_LISTING_TTL_MS), tasks };
    this.taskListings.set(execution, entry);
    tasks.catch(() => {
      if (this.taskListings.get(execution) === entry) this.taskListings.delete(execution);
    });
    return tasks;
  }

  async cancel(execution: string): Promise<void> {
    const resolved = await this.resolve(execution);
    if (typeof resolved !== 'string') {
      if (resolved.kind === 'gone') return;
      throw new Error(`cannot cancel ${execution}: ${resolved.reason}`);
    }
    try {
      const client = await this.settings.executions();
      // Returns once Cloud Run accepted the cancellation; the operation is not waited for.
      await client.cancelExecution({ name: resolved });
    } catch (err) {
      const facts = apiErrorFacts(err);
      // Gone, or already complete (FAILED_PRECONDITION): either way it no longer runs.
      if (isNotFound(facts) || facts.code === FAILED_PRECONDITION) return;
      throw new Error(`cancelling Cloud Run execution ${resolved} failed: ${describeApiError(err)}`, {
        cause: err,
      });
    }
  }

  /** The execution's name; for an operation's name, the execution its metadata names, or a status. */
  private async resolve(execution: string): Promise<string | Unresolved> {
    if (EXECUTION_NAME.test(execution)) return execution;
    if (!OPERATION_NAME.test(execution)) {
      return { kind: 'unknown', reason: `${execution} names neither a Cloud Run execution nor an operation` };
    }
    try {
      const client = await this.settings.client();
      const operation = await client.checkRunJobProgress(execution);
      const name = operation.metadata?.name;
      if (name) return name;
      return { kind: 'unknown', reason: `operation ${execution} does not name its execution yet` };
    } catch (err) {
      if (isNotFound(apiErrorFacts(err))) return { kind: 'gone' };
      return { kind: 'unknown', reason: `reading operation ${execution} failed: ${describeApiError(err)}` };
    }
  }
}

/** Cloud Run's limit of a task's timeout (168 hours), as the router knows it: longer work belongs on a VM. */
function checkTimeout(what: string, timeoutSeconds: number | undefined): void {
  const maxSeconds = CLOUD_RUN_JOB_LIMITS.timeoutSeconds;
  if (timeoutSeconds !== undefined && timeoutSeconds > maxSeconds) {
    throw new LaunchError(
      `${what}: a timeout of ${timeoutSeconds} s is over Cloud Run's ${maxSeconds / 3600} h`,
      false,
    );
  }
}

/**
 * A task's status: running until its completionTime is set; then its exit code, 128 + the signal
 * that ended it, the cancel exit code for a cancelled task, 0 for an attempt whose status is OK.
 * gax decodes the condition's enums as their names.
 */
function taskStatus(task: Task): RunStatus {
  if (!task.completionTime) return { kind: 'running' };
  const finishedAt = isoTime(task.completionTime);
  const ended = { kind: 'ended' as const, ...(finishedAt === undefined ? {} : { finishedAt }) };
  const completed = task.conditions?.find((condition) => condition.type === 'Completed');
  const result = task.lastAttemptResult;
  if (completed?.executionReason === 'CANCELLED') {
    return { ...ended, exitCode: CANCELLED_EXIT_CODE, error: 'the task was cancelled' };
  }
  const why = nonEmpty(completed?.message) ?? nonEmpty(result?.status?.message);
  const exitCode = exitCodeOf(result);
  if (exitCode !== undefined) return { ...ended, exitCode, error: why ?? `exit code ${exitCode}` };
  const failed = completed?.state === 'CONDITION_FAILED' || (result?.status?.code ?? 0) !== 0;
  if (!failed && (result || completed?.state === 'CONDITION_SUCCEEDED')) return { ...ended, exitCode: 0 };
  return { ...ended, exitCode: 1, error: why ?? 'the task ended without an exit code' };
}

/** A failed listing for people: what to do about a refusal, else what the client said. */
function listingProblem(err: unknown): string {
  const facts = apiErrorFacts(err);
  const described = describeApiError(err);
  if (facts.httpStatus === 403 || facts.code === PERMISSION_DENIED) {
    return `${described}; the dispatcher's service account needs run.executions.list on the job (roles/run.viewer, terraform/iam.tf)`;
  }
  return described;
}

/** Created before `since` (ms); an execution without a createTime is not. */
function createdBefore(execution: Execution, since: number): boolean {
  if (!execution.createTime) return false;
  const created = Date.parse(isoTime(execution.createTime) ?? '');
  return !Number.isNaN(created) && created < since;
}

/** Why an execution string names no execution: it is gone, or asking failed. */
type Unresolved = Extract<RunStatus, { kind: 'gone' | 'unknown' }>;
type Condition = protos.google.cloud.run.v2.ICondition;
type AttemptResult = protos.google.cloud.run.v2.ITaskAttemptResult;

/** The message of the `Completed` condition, which says why an execution or task failed. */
function completedMessage(conditions: Condition[] | null | undefined): string | undefined {
  return nonEmpty(conditions?.find((condition) => condition.type === 'Completed')?.message);
}

/**
 * A failed attempt's exit code; 128 + the signal when the system killed the container (as a shell
 * reports it); undefined when neither is set (proto3 reads an unset exit code as 0).
 */
function exitCodeOf(result: AttemptResult | null | undefined): number | undefined {
  if (result?.exitCode) return result.exitCode;
  if (result?.termSignal) return 128 + result.termSignal;
  return undefined;
}

/** A protobuf Timestamp (seconds as a string, from gax) as an ISO time. */
function isoTime(timestamp: protos.google.protobuf.ITimestamp): string | undefined {
  const millis = Number(timestamp.seconds ?? 0) * 1000 + Math.floor((timestamp.nanos ?? 0) / 1e6);
  return Number.isFinite(millis) && millis > 0 ? new Date(millis).toISOString() : undefined;
}

function nonEmpty(text: string | null | undefined): string | undefined {
  return text === null || text === undefined || text === '' ? undefined : text;
}
