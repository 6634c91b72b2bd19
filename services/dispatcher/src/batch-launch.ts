// Batches in the launch queue: the queued jobs of a batching rule (routing rule `batch`) that the
// router sent to Cloud Run are gathered (@pipeline/core's gatherReady) before admission, and a ready
// batch is admitted as one Cloud Run execution, holding one slot and one runJob call. Launching it:
//   1. each job is written LAUNCHED as task i of the batch (a job cancelled meanwhile keeps its index,
//      and its manifest entry is null: its task does nothing);
//   2. the manifest is written to the output bucket (create-if-absent: the batch id derives from its
//      jobs and attempts, so a second writer writes the same bytes), within MANIFEST_DEADLINE_MS;
//   3. one runJob with taskCount N and the manifest's URI (Launcher.launchBatch).
// Every outcome of the launch is the single job's outcome, for each of the batch's jobs: adopted,
// queued again after a refusal (a capacity refusal teaches the ceiling once), looked for after a
// lost answer, or FAILED. Each job then goes its own way: its own completion, its own retry, which
// gathers with whatever is queued then, or launches alone.
import {
  BATCH_MANIFEST_PREFIX,
  batchManifestName,
  batchQueuedJob,
  batchKeyOf,
  gatherReady,
  launchFailed,
  launching,
  LaunchError,
  queuedJob,
  workerEnvironment,
  type BatchManifest,
  type BatchPolicy,
  type CapacityLimits,
  type Job,
  type QueuedJob,
  type Rule,
  type SlotHolder,
} from '@pipeline/core';
import type { Dispatcher } from './dispatcher.ts';
import { withinDeadline } from './deadline.ts';
import { writeJob } from './job-writes.ts';
import type { LaunchQueue } from './launch-queue.ts';

/** How long writing a manifest may take before the batch is queued again (a hung Storage call). */
export const MANIFEST_DEADLINE_MS = 10_000;

/** The head of the queue as admission sees it: single jobs and ready batches; jobs gathering are left out. */
export interface GatheredHead {
  queued: QueuedJob[];
  /** The jobs of each ready batch, by batch id, in task order. */
  batches: Map<string, Job[]>;
  /** When a batch still gathering closes (or a gathering job's backoff ends). */
  nextChangeAt?: string;
}

/** Gathers the head's batchable jobs; `canBatch`: the Cloud Run launcher launches batches. */
export function gatherHead(
  head: readonly Job[],
  rules: readonly Rule[],
  canBatch: boolean,
  now: string,
  defaultMachineType?: string,
): GatheredHead {
  const policies = new Map<string, BatchPolicy>();
  for (const rule of rules) if (rule.batch !== undefined) policies.set(rule.name, rule.batch);
  const batchable = (job: Job) =>
    canBatch && job.target === 'cloud-run-job' && job.rule !== undefined && policies.has(job.rule);
  const queued = head.filter((job) => !batchable(job)).map((job) => queuedJob(job, defaultMachineType));
  const candidates = head.filter(batchable);
  if (candidates.length === 0) return { queued, batches: new Map() };
  const byId = new Map(candidates.map((job) => [job.id, job]));
  const gathering = gatherReady(
    candidates.map((job) => ({
      jobId: job.id,
      attempt: job.attempt,
      rule: job.rule!,
      key: batchKeyOf(job),
      queuedAt: job.queue?.queuedAt ?? job.updatedAt,
      inputBytes: job.source.kind === 'object' ? job.source.object.size : 0,
      ...(job.queue?.notBefore === undefined ? {} : { notBefore: job.queue.notBefore }),
    })),
    (rule) => policies.get(rule),
    now,
  );
  for (const id of gathering.alone) queued.push(queuedJob(byId.get(id)!, defaultMachineType));
  const batches = new Map<string, Job[]>();
  for (const batch of gathering.batches) {
    const jobs = batch.members.map((id) => byId.get(id)!);
    batches.set(batch.batchId, jobs);
    queued.push(
      batchQueuedJob(
        batch.batchId,
        jobs.map((job) => queuedJob(job, defaultMachineType)),
      ),
    );
  }
  return {
    queued,
    batches,
    ...(gathering.nextChangeAt === undefined ? {} : { nextChangeAt: gathering.nextChangeAt }),
  };
}

/** Launches a batch whose slot this caller took; whatever happens, each job ends in a recorded state. */
export async function launchBatch(
  queue: LaunchQueue,
  d: Dispatcher,
  batchId: string,
  jobs: readonly Job[],
  holder: SlotHolder,
  limits: CapacityLimits,
): Promise<void> {
  const launchedAt = d.iso();
  const size = jobs.length;
  const mine = await Promise.all(
    jobs.map(async (queued, index) => {
      let taken = false;
      const launch = (current: Job) => {
        const next = launching(current, queued.attempt, launchedAt, { id: batchId, index, size });
        taken = next !== undefined;
        return next;
      };
      const direct = launch(queued)!;
      const job = (await writeJob(d.ports.ledger, queued, direct))
        ? direct
        : await d.mutate(queued.id, launch);
      if (job !== undefined && taken) return job;
      // Cancelled, or launched by someone else, while it was being admitted: it leaves the batch.
      await queue.release(queued.id);
      return undefined;
    }),
  );
  const launched = mine.filter((job): job is Job => job !== undefined);
  if (launched.length === 0) return;
  const { blobs, outputBucket } = d.ports;
  const manifestName = batchManifestName(batchId);
  const manifest: BatchManifest = {
    batchId,
    tasks: mine.map((job) =>
      job === undefined
        ? null
        : { jobId: job.id, attempt: job.attempt, env: { ...taskEnv(d, job), LOGS_URI: job.logsUri! } },
    ),
  };
  const log = d.ports.logger.child({ batchId, jobs: launched.length });
  try {
    await writeManifest(d, manifestName, manifest);
  } catch (err) {
    const message = `writing batch ${batchId}'s manifest ${blobs.uri(outputBucket, manifestName)} failed: ${(err as Error).message}`;
    const refusal = isPermissionRefusal(err)
      ? new LaunchError(
          `${message}; the dispatcher's service account needs storage.objects.create on ${BATCH_MANIFEST_PREFIX} in the output bucket (terraform/iam.tf)`,
          false,
        )
      : new LaunchError(message, true);
    log.warn({ err }, message);
    return queue.settleRefusedLaunch(launched, holder, refusal, limits);
  }
  const target = launched[0].target!;
  const launcher = d.ports.launchers[target];
  try {
    const result = await launcher.launchBatch!({
      batchId,
      manifestUri: blobs.uri(outputBucket, manifestName),
      jobs: mine.map((job, index) => job ?? jobs[index]),
      args: launched[0].template!.args,
      ...(launched[0].template!.timeoutSeconds === undefined
        ? {}
        : { timeoutSeconds: launched[0].template!.timeoutSeconds }),
    });
    log.info({ execution: result.execution, tasks: size }, 'batch launched');
    for (const job of launched) await d.inContext(job, () => queue.adopt(job, result.execution));
  } catch (err) {
    if (err instanceof LaunchError && (err.ambiguous || err.retryable))
      return queue.settleRefusedLaunch(launched, holder, err, limits);
    const error = `launch of batch ${batchId} on ${target} failed: ${(err as Error).message}`;
    const at = d.iso();
    for (const job of launched)
      await d.mutate(job.id, (current) => launchFailed(current, job.attempt, at, error));
    await queue.release(holder.jobId);
    log.error({ err }, error);
  }
}

/** What the job's task would have been given as a launch of its own (worker-env.ts). */
function taskEnv(d: Dispatcher, job: Job): Record<string, string> {
  const { blobs } = d.ports;
  const { source } = job;
  const inputUri = source.kind === 'object' ? blobs.uri(source.object.bucket, source.object.name) : undefined;
  return workerEnvironment(job, job.template!, { inputUri, outputUri: job.outputUri! });
}

async function writeManifest(d: Dispatcher, name: string, manifest: BatchManifest): Promise<void> {
  const { blobs, outputBucket } = d.ports;
  const data = Buffer.from(JSON.stringify(manifest));
  // false: it is there already, written by an earlier try of this same batch (the same bytes).
  await withinDeadline(
    blobs.putIf(outputBucket, name, data, 'application/json', '0'),
    MANIFEST_DEADLINE_MS,
    () => {
      throw new Error(`no answer within ${MANIFEST_DEADLINE_MS / 1000} s`);
    },
  );
}

/** A 403 from Cloud Storage: a grant is missing, and waiting will not bring it (gcs-blob-store.ts passes it on as it is). */
function isPermissionRefusal(err: unknown): boolean {
  return (err as { code?: unknown } | null)?.code === 403;
}
