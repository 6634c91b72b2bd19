// The vm launcher: one Compute Engine VM per attempt, made for that task and gone after it. The VM
// boots Container-Optimized OS, whose start-up script (vm-startup.sh, the same for every VM) runs
// the agent container; the agent reads its task from the metadata key `pipeline-task`, runs the
// task's image, writes logs and the completion, and deletes the VM. Whatever happens to the agent,
// `maxRunDuration` with `instanceTerminationAction: DELETE` deletes the VM after the task's timeout
// plus a margin, so no VM outlives its task by long.
//
// The task travels as JSON data in metadata. Nothing task-specific is ever put into the start-up
// script or any other text a shell reads: an object name can hold quotes, `$(...)` and newlines.
//
// Idempotency: the instance name is made of the job id and the attempt, so a second delivery of the
// same event that gets this far tries to create the same instance and gets 409 (already exists),
// which means the first delivery created it: a success. (Compute's `requestId` is not used: within
// its window a retry with the same id returns the first, possibly failed, operation again.)
//
// inspect and cancel take what launch returned, `zones/Z/instances/NAME`. The VM deletes itself when
// its task ends, so a VM that is not found is `gone`; one that is stopping or stopped is counted as
// gone too: its task no longer runs and its exit code is not Compute's to tell (the reaper deletes
// what is left of it).
import fs from 'node:fs';
import { fileURLToPath } from 'node:url';
import {
  hasBuiltInGpus,
  isJobId,
  LaunchError,
  VM_METADATA_KEYS,
  type LaunchRequest,
  type Launcher,
  type RunStatus,
  type VmTask,
} from '@pipeline/core';
import type { protos } from '@google-cloud/compute';
import {
  ALREADY_EXISTS,
  apiErrorFacts,
  describeApiError,
  isNotFound,
  isRetryable,
  launchErrorFrom,
  type InstancesClient,
  type ZoneOperationsClient,
} from './clients.ts';

type Instance = protos.google.cloud.compute.v1.IInstance;
type Operation = protos.google.cloud.compute.v1.IOperation;

/** The start-up script every VM gets, read once per launcher. */
export const VM_STARTUP_SCRIPT_PATH = fileURLToPath(new URL('./vm-startup.sh', import.meta.url));

export interface ComputeEngineLauncherSettings {
  project: string;
  /** The zone the VMs run in, like europe-west1-b. */
  zone: string;
  /** The worker image (WORKER_IMAGE): the agent's image, and the task's when the template names none. */
  image: string;
  /** The VMs' service account: it pulls images, reads input, writes output and deletes its VM. */
  serviceAccount: string;
  /** A machine type for templates that name none, like e2-standard-4. */
  defaultMachineType: string;
  /** The boot image family; default cos-stable. */
  bootImageFamily?: string;
  /** The project of that family: cos-cloud (default), or yours for an image baked by scripts/bake-vm-image.sh. */
  bootImageProject?: string;
  bootDiskSizeGb?: number;
  /** Partial URLs (global/networks/N, regions/R/subnetworks/S); absent: the default network. */
  network?: string;
  subnetwork?: string;
  /** An external IP; without one the VM needs Cloud NAT (or Private Google Access) to pull images. */
  externalIp?: boolean;
  /** The timeout of a task whose template sets none; default 24 h. */
  defaultTimeoutSeconds?: number;
  /** Added to the task's timeout for the VM's maxRunDuration (boot, image pull, upload); default 600. */
  timeoutMarginSeconds?: number;
  /** The value of the `pipeline` label, by which the reconciler finds orphaned VMs; default 'true'. */
  pipelineLabel?: string;
  /** The start-up script; default the content of vm-startup.sh. */
  startupScript?: string;
  /** How many times to wait on the insert operation (about 2 min each) before giving up; default 5. */
  maxOperationWaits?: number;
  /** gs://bucket/prefix/ the agent copies into /tmp/worker before the task (SHARED_URI). */
  sharedUri?: string;
  /** The topic the agent publishes its completion event to (COMPLETIONS_TOPIC). */
  completionsTopic?: string;
  instances: () => Promise<Pick<InstancesClient, 'insert' | 'get' | 'delete'>>;
  operations: () => Promise<Pick<ZoneOperationsClient, 'wait'>>;
}

const COS_PROJECT = 'cos-cloud';
const CLOUD_PLATFORM_SCOPE = 'https://www.googleapis.com/auth/cloud-platform';
// Operation error codes of passing conditions: no capacity in the zone now, quota, rate limits.
const RETRYABLE_OPERATION_ERRORS = new Set([
  'ZONE_RESOURCE_POOL_EXHAUSTED',
  'ZONE_RESOURCE_POOL_EXHAUSTED_WITH_DETAILS',
  'QUOTA_EXCEEDED',
  'RESOURCE_OPERATION_RATE_EXCEEDED',
]);

// Instance statuses (compute v1 Instance.Status). PENDING waits for capacity; PENDING_STOP is a
// graceful shutdown, during which the agent still runs and can report. Any status not listed here
// is unknown: a new one must be placed on purpose, not guessed.
const RUNNING_STATUSES = new Set([
  'PENDING',
  'PROVISIONING',
  'STAGING',
  'RUNNING',
  'REPAIRING',
  'PENDING_STOP',
]);
const STOPPED_STATUSES = new Set([
  'STOPPING',
  'STOPPED',
  'SUSPENDING',
  'SUSPENDED',
  'TERMINATED',
  'DEPROVISIONING',
]);
const EXECUTION = /^zones\/([a-z0-9-]+)\/instances\/([a-z]([-a-z0-9]*[a-z0-9])?)$/;

/** pipeline-<first 20 hex of the job id>-a<attempt>: a valid instance name, unique per attempt. */
export function instanceName(jobId: string, attempt: number): string {
  return `pipeline-${jobId.slice(0, 20)}-a${attempt}`;
}

export class ComputeEngineLauncher implements Launcher {
  private readonly settings: ComputeEngineLauncherSettings;
  private readonly startupScript: string;

  constructor(settings: ComputeEngineLauncherSettings) {
    this.settings = settings;
    this.startupScript = settings.startupScript ?? fs.readFileSync(VM_STARTUP_SCRIPT_PATH, 'utf8');
  }

  async launch(request: LaunchRequest): Promise<{ execution: string }> {
    const { job } = request;
    const { project, zone } = this.settings;
    if (!isJobId(job.id) || !Number.isInteger(job.attempt) || job.attempt < 1) {
      throw new LaunchError(`job ${job.id} attempt ${job.attempt} cannot name a VM`, false);
    }
    const name = instanceName(job.id, job.attempt);
    const execution = `zones/${zone}/instances/${name}`;
    const what = `VM ${execution} (job ${job.id}, attempt ${job.attempt})`;
    let operation: Operation;
    try {
      const instances = await this.settings.instances();
      const [lro] = await instances.insert({
        project,
        zone,
        instanceResource: this.instanceResource(request),
      });
      // Compute's insert is not a google.longrunning operation: the Compute Operation is here.
      operation = lro.latestResponse as Operation;
    } catch (err) {
      const facts = apiErrorFacts(err);
      // 409 without a `status` in the body maps to ABORTED in gax, hence the HTTP status check.
      if (
        facts.httpStatus === 409 ||
        facts.code === ALREADY_EXISTS ||
        facts.reasons.includes('alreadyExists')
      ) {
        return { execution }; // an earlier delivery created it
      }
      throw launchErrorFrom(err, `creating ${what}`);
    }
    await this.waitUntilDone(operation, what);
    return { execution };
  }

  async inspect(execution: string): Promise<RunStatus> {
    const target = this.instanceOf(execution);
    if (typeof target === 'string') return { kind: 'unknown', reason: target };
    let instance: Instance;
    try {
      const instances = await this.settings.instances();
      // Bounded: the library would retry an unavailable GET for 10 minutes; the next pass asks again.
      [instance] = await instances.get(target, { timeout: 30_000 });
    } catch (err) {
      if (isNotFound(apiErrorFacts(err))) return { kind: 'gone' };
      return { kind: 'unknown', reason: `reading VM ${execution} failed: ${describeApiError(err)}` };
    }
    const status = instance.status ?? '';
    if (RUNNING_STATUSES.has(status)) return { kind: 'running' };
    if (STOPPED_STATUSES.has(status)) return { kind: 'gone' };
    return {
      kind: 'unknown',
      reason: `VM ${execution} has status ${status || '(none)'}, which is not known here`,
    };
  }

  async cancel(execution: string): Promise<void> {
    const target = this.instanceOf(execution);
    if (typeof target === 'string') throw new Error(`cannot cancel: ${target}`);
    let operation: Operation;
    try {
      const instances = await this.settings.instances();
      const [lro] = await instances.delete(target);
      operation = lro.latestResponse as Operation;
    } catch (err) {
      if (isNotFound(apiErrorFacts(err))) return; // deleted already: by its agent, or by maxRunDuration
      throw new Error(`deleting VM ${execution} failed: ${describeApiError(err)}`, { cause: err });
    }
    // Compute accepted the delete; it is not waited for. An operation that is already DONE with
    // errors is a refusal, though, and says so.
    const errors = operation?.error?.errors ?? [];
    if (errors.length > 0) {
      const why = errors.map((e) => `${e.code ?? 'UNKNOWN'}: ${e.message ?? ''}`).join('; ');
      throw new Error(`deleting VM ${execution} failed: ${why}`);
    }
  }

  /** The request fields for `zones/Z/instances/NAME` in this launcher's project, or why it is not one. */
  private instanceOf(execution: string): { project: string; zone: string; instance: string } | string {
    const match = EXECUTION.exec(execution);
    if (match === null) return `${execution} is not a VM of this launcher (zones/ZONE/instances/NAME)`;
    return { project: this.settings.project, zone: match[1], instance: match[2] };
  }

  /** The instance for one attempt of a task. */
  instanceResource(request: LaunchRequest): Instance {
    const { job } = request;
    const { zone, serviceAccount } = this.settings;
    const template = job.template;
    const timeoutSeconds = template?.timeoutSeconds ?? this.settings.defaultTimeoutSeconds ?? 24 * 3600;
    const margin = this.settings.timeoutMarginSeconds ?? 600;
    const spot = template?.spot ?? false;
    const accelerator = template?.accelerator;
    const machineType = template?.machineType ?? this.settings.defaultMachineType;
    const task: VmTask = {
      jobId: job.id,
      attempt: job.attempt,
      image: template?.image ?? this.settings.image,
      args: request.args,
      env: request.env,
      ...(job.outputUri === undefined ? {} : { outputUri: job.outputUri }),
      logsUri: request.logsUri,
      timeoutSeconds,
      ...(this.settings.sharedUri === undefined ? {} : { sharedUri: this.settings.sharedUri }),
      ...(accelerator === undefined ? {} : { gpus: accelerator.count }),
    };
    const keys = VM_METADATA_KEYS;
    const metadata: Record<string, string> = {
      [keys.task]: JSON.stringify(task),
      // Plain values beside the task, so the agent can report even a task it cannot read.
      [keys.jobId]: job.id,
      [keys.attempt]: String(job.attempt),
      ...(this.settings.completionsTopic === undefined
        ? {}
        : { [keys.completionsTopic]: this.settings.completionsTopic }),
      [keys.agentImage]: this.settings.image,
      'startup-script': this.startupScript,
      'google-logging-enabled': 'true',
      ...(accelerator === undefined ? {} : { [keys.gpu]: 'true' }),
    };
    const family = this.settings.bootImageFamily ?? 'cos-stable';
    return {
      name: instanceName(job.id, job.attempt),
      description: `pipeline job ${job.id}, attempt ${job.attempt}`,
      machineType: `zones/${zone}/machineTypes/${machineType}`,
      labels: {
        pipeline: this.settings.pipelineLabel ?? 'true',
        'job-id': job.id,
        attempt: String(job.attempt),
      },
      scheduling: {
        provisioningModel: spot ? 'SPOT' : 'STANDARD',
        // A restarted VM would run its start-up script, and so the task, again: never restart.
        automaticRestart: false,
        // Spot VMs and VMs with GPUs cannot live-migrate; the others may.
        onHostMaintenance: spot || accelerator !== undefined ? 'TERMINATE' : 'MIGRATE',
        instanceTerminationAction: 'DELETE',
        maxRunDuration: { seconds: timeoutSeconds + margin },
      },
      // An accelerator-optimized type (g2, a2) brings its GPUs; any other names them.
      ...(accelerator === undefined || hasBuiltInGpus(machineType)
        ? {}
        : {
            guestAccelerators: [
              {
                acceleratorType: `zones/${zone}/acceleratorTypes/${accelerator.type}`,
                acceleratorCount: accelerator.count,
              },
            ],
          }),
      disks: [
        {
          boot: true,
          autoDelete: true,
          initializeParams: {
            sourceImage: `projects/${this.settings.bootImageProject ?? COS_PROJECT}/global/images/family/${family}`,
            ...(this.settings.bootDiskSizeGb === undefined
              ? {}
              : { diskSizeGb: this.settings.bootDiskSizeGb }),
          },
        },
      ],
      shieldedInstanceConfig: { enableSecureBoot: true, enableVtpm: true, enableIntegrityMonitoring: true },
      networkInterfaces: [
        {
          ...(this.settings.network === undefined ? {} : { network: this.settings.network }),
          ...(this.settings.subnetwork === undefined ? {} : { subnetwork: this.settings.subnetwork }),
          ...(this.settings.externalIp === true
            ? { accessConfigs: [{ name: 'External NAT', type: 'ONE_TO_ONE_NAT' }] }
            : {}),
        },
      ],
      serviceAccounts: [{ email: serviceAccount, scopes: [CLOUD_PLATFORM_SCOPE] }],
      metadata: { items: Object.entries(metadata).map(([key, value]) => ({ key, value })) },
    };
  }

  /** Waits until the insert operation is DONE; an operation that ended with errors throws. */
  private async waitUntilDone(operation: Operation, what: string): Promise<void> {
    const { project, zone } = this.settings;
    const maxWaits = this.settings.maxOperationWaits ?? 5;
    let current = operation;
    // The REST transport reports enums by name (the Compute client does not ask for numeric enums).
    for (let waits = 0; current.status !== 'DONE'; waits++) {
      if (waits === maxWaits || !current.name) {
        // The VM may still come up; the next delivery's insert finds it (409) and succeeds.
        throw new LaunchError(`${what}: the insert is still ${current.status} after ${waits} waits`, true);
      }
      try {
        const operations = await this.settings.operations();
        [current] = await operations.wait({ project, zone, operation: current.name });
      } catch (err) {
        throw launchErrorFrom(err, `waiting for the creation of ${what}`);
      }
    }
    const errors = current.error?.errors ?? [];
    if (errors.length === 0) return;
    const codes = errors.map((e) => e.code ?? 'UNKNOWN');
    if (codes.includes('RESOURCE_ALREADY_EXISTS')) return;
    const retryable =
      codes.some((code) => RETRYABLE_OPERATION_ERRORS.has(code)) ||
      isRetryable({ httpStatus: current.httpErrorStatusCode ?? undefined, reasons: [], message: '' });
    const why = errors.map((e) => `${e.code ?? 'UNKNOWN'}: ${e.message ?? ''}`).join('; ');
    throw new LaunchError(`creating ${what} failed: ${why}`, retryable);
  }
}
