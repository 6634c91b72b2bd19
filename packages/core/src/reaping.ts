// Which pipeline VMs to delete: the backstop that keeps a VM from outliving its work when its agent
// could not delete it (crashed, lost its credentials) and `maxRunDuration` did not either. Pure: the
// caller lists the instances and reads their jobs; this decides.
//
// A VM is the pipeline's only when its `pipeline` label has this deployment's value: anything else in
// the project (another deployment's VMs, people's VMs) is never touched. One of ours is deleted when
//   (a) its work is over: its job is final, or a newer attempt replaced it, for `graceSeconds` (the
//       agent reports the end before it uploads its logs and deletes its VM: give it that time);
//   (b) it ran past its deadline: created + the task's timeout + the margin its maxRunDuration got;
//   (c) no job owns it: the ledger has no job for its `job-id` label (or the label is not a job id)
//       and it is older than `graceSeconds`.
// The dispatcher writes a job's attempt to the ledger before it creates the attempt's VM, so a job
// read after the listing is never older than the VMs that listing saw.
import { isJobId } from './job-id.ts';
import { FINAL_STATES, type Job } from './job.ts';

export interface PipelineInstance {
  name: string;
  zone: string;
  labels: Record<string, string>;
  /** When Compute created it (RFC 3339). */
  createdAt: string;
  status: string;
}

export interface ReapOptions {
  /** The value of the `pipeline` label this deployment's VMs carry. */
  pipelineLabel: string;
  /** How long a VM may stay after its work is over, or while no job owns it; default in callers 300. */
  graceSeconds: number;
  /**
   * How long an instance the ledger does not know is left alone (default: graceSeconds). Longer than
   * Pub/Sub's redelivery backoff: after a launch refused for now, the claim is released until the
   * redelivery claims it again, and the instance of an insert that completed anyway waits for it.
   */
  unknownGraceSeconds?: number;
  /** The timeout of a task whose template sets none. */
  defaultTimeoutSeconds: number;
  /** Added to the timeout for the deadline, as for the VM's maxRunDuration (boot, pull, upload). */
  marginSeconds: number;
}

export interface ReapDecision {
  instance: PipelineInstance;
  reason: string;
}

/** The instances to delete, each with why; `jobsById` holds the job of each `job-id` label looked up. */
export function instancesToReap(
  instances: readonly PipelineInstance[],
  jobsById: Map<string, Job | undefined>,
  now: Date,
  options: ReapOptions,
): ReapDecision[] {
  const decisions: ReapDecision[] = [];
  for (const instance of instances) {
    if (instance.labels.pipeline !== options.pipelineLabel) continue;
    // Already going away (its agent or maxRunDuration is deleting it); a VM that only stopped is
    // TERMINATED by the next run and reaped then.
    if (instance.status === 'STOPPING') continue;
    const reason = reasonToReap(instance, jobsById, now.getTime(), options);
    if (reason !== undefined) decisions.push({ instance, reason });
  }
  return decisions;
}

function reasonToReap(
  instance: PipelineInstance,
  jobsById: Map<string, Job | undefined>,
  now: number,
  options: ReapOptions,
): string | undefined {
  const graceMs = options.graceSeconds * 1000;
  // NaN when Compute's timestamp cannot be read: then no rule that needs the VM's age applies.
  const created = Date.parse(instance.createdAt);
  const jobId = instance.labels['job-id'];
  const job = jobId !== undefined && isJobId(jobId) ? jobsById.get(jobId) : undefined;

  if (job !== undefined) {
    const over = workOver(instance, job);
    // From when the ledger last changed (the job became final, or the next attempt began).
    const overSince = Math.max(Date.parse(job.updatedAt), Number.isNaN(created) ? 0 : created);
    if (over !== undefined && now - overSince >= graceMs) return over;
  }

  const timeoutSeconds = job?.template?.timeoutSeconds ?? options.defaultTimeoutSeconds;
  const deadline = created + (timeoutSeconds + options.marginSeconds) * 1000;
  if (now > deadline) {
    return `ran past its deadline of ${new Date(deadline).toISOString()} (created ${instance.createdAt}, timeout ${timeoutSeconds} s + margin ${options.marginSeconds} s)`;
  }

  if (job === undefined && now - created >= (options.unknownGraceSeconds ?? options.graceSeconds) * 1000) {
    if (jobId === undefined) return `it has no job-id label (created ${instance.createdAt})`;
    if (!isJobId(jobId)) return `its job-id label ${JSON.stringify(jobId)} is not a job id`;
    return `the ledger has no job ${jobId} (created ${instance.createdAt})`;
  }
  return undefined;
}

/** Why the VM's work is over, or undefined while its attempt may still be running. */
function workOver(instance: PipelineInstance, job: Job): string | undefined {
  if (FINAL_STATES.includes(job.state)) return `job ${job.id} is ${job.state}`;
  const label = instance.labels.attempt;
  const attempt = label !== undefined && /^[1-9][0-9]{0,8}$/.test(label) ? Number(label) : undefined;
  if (attempt === undefined) {
    return `its attempt label ${JSON.stringify(label ?? null)} names no attempt of job ${job.id}`;
  }
  if (job.attempt > attempt) return `job ${job.id} is at attempt ${job.attempt}, past this VM's ${attempt}`;
  // An attempt newer than the ledger's cannot have been launched (the ledger is written first): a VM
  // claiming one was not made by this dispatcher for this job.
  if (job.attempt < attempt)
    return `job ${job.id} has no attempt ${attempt} (the ledger is at ${job.attempt})`;
  return undefined;
}
