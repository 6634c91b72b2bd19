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
import fs from 'node:fs';
import { fileURLToPath } from 'node:url';
import { isJobId, LaunchError, type LaunchRequest, type Launcher } from '@pipeline/core';
import type { protos } from '@google-cloud/compute';
import {
  ALREADY_EXISTS,
  apiErrorFacts,
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
  instances: () => Promise<Pick<InstancesClient, 'insert'>>;
  operations: () => Promise<Pick<ZoneOperationsClient, 'wait'>>;
}

/** What the agent reads from the metadata key `pipeline-task`. */
export interface VmTask {
  jobId: string;
  attempt: number;
  image: string;
  args: string[];
  env: Record<string, string>;
  outputUri?: string;
  logsUri: string;
  timeoutSeconds: number;
  sharedUri?: string;
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

  /** The instance for one attempt of a task. */
  instanceResource(request: LaunchRequest): Instance {
    const { job } = request;
    const { zone, serviceAccount } = this.settings;
    const template = job.template;
    const timeoutSeconds = template?.timeoutSeconds ?? this.settings.defaultTimeoutSeconds ?? 24 * 3600;
    const margin = this.settings.timeoutMarginSeconds ?? 600;
    const spot = template?.spot ?? false;
    const accelerator = template?.accelerator;
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
    };
    const metadata: Record<string, string> = {
      'pipeline-task': JSON.stringify(task),
      // Plain values beside the task, so the agent can report even a task it cannot read.
      'pipeline-job-id': job.id,
      'pipeline-attempt': String(job.attempt),
      ...(this.settings.completionsTopic === undefined
        ? {}
        : { 'pipeline-completions-topic': this.settings.completionsTopic }),
      'pipeline-agent-image': this.settings.image,
      'startup-script': this.startupScript,
      'google-logging-enabled': 'true',
      ...(accelerator === undefined ? {} : { 'pipeline-gpu': 'true' }),
    };
    const family = this.settings.bootImageFamily ?? 'cos-stable';
    return {
      name: instanceName(job.id, job.attempt),
      description: `pipeline job ${job.id}, attempt ${job.attempt}`,
      machineType: `zones/${zone}/machineTypes/${template?.machineType ?? this.settings.defaultMachineType}`,
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
      ...(accelerator === undefined
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
