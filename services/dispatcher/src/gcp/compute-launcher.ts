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
// its window a retry with the same id returns the first, possibly failed, operation again.) An
// insert whose answer was lost (a timeout, a reset, a 5xx) is a LaunchError `ambiguous`: the VM may
// be coming. Trying it again is safe all the same: the redo's insert in that zone gets 409.
//
// Zones: the VM is tried in each of `zones` in turn, with the same name, while a zone is out of
// capacity (a stockout, compute-refusals.ts); the result's `refusals` says which zones refused and
// why. A spot VM that no zone can place is tried again as a standard VM where its rule allows
// (`standardIfNoSpot`). A quota refusal is regional and ends the launch: no other zone would do.
// Names are unique within a zone only, so with several zones a redo could make a second VM in an
// earlier zone that has capacity again: launch first looks in every zone (find) and adopts a VM of
// the attempt wherever it is.
//
// inspect and cancel take what launch returned, `zones/Z/instances/NAME`. The VM deletes itself when
// its task ends, so a VM that is not found is `gone`; one that is stopping or stopped is counted as
// gone too: its task no longer runs and its exit code is not Compute's to tell (the reaper deletes
// what is left of it).
import fs from 'node:fs';
import { fileURLToPath } from 'node:url';
import {
  DEFAULT_TASK_TIMEOUT_SECONDS,
  hasBuiltInGpus,
  isJobId,
  LaunchError,
  VM_METADATA_KEYS,
  type FoundLaunch,
  type Job,
  type LaunchRequest,
  type LaunchResult,
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
  type InstancesClient,
  type ZoneOperationsClient,
} from './clients.ts';
import { operationRefusal, requestRefusal, type InsertRefusal } from './compute-refusals.ts';

type Instance = protos.google.cloud.compute.v1.IInstance;
type Operation = protos.google.cloud.compute.v1.IOperation;

/** The start-up script every VM gets, read once per launcher. */
export const VM_STARTUP_SCRIPT_PATH = fileURLToPath(new URL('./vm-startup.sh', import.meta.url));

export interface ComputeEngineLauncherSettings {
  project: string;
  /** The zone the VMs run in, like europe-west1-b. */
  zone: string;
  /** The zones of the region to try, in order, while they are out of capacity; default [zone]. */
  zones?: string[];
  /** The task's image when the template names none: the worker image (WORKER_IMAGE), `logreg`. */
  image: string;
  /**
   * The VM agent's image (AGENT_IMAGE, jobs/agent), written to `pipeline-agent-image`: the start-up
   * script pulls and runs it, and it runs the task's image.
   */
  agentImage: string;
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
  /** How long the insert call itself may take before its answer counts as lost; default 60 s. */
  insertTimeoutMs?: number;
  /** gs://bucket/prefix/ the agent copies into /tmp/worker before the task (SHARED_URI). */
  sharedUri?: string;
  /** The topic the agent publishes its completion event to (COMPLETIONS_TOPIC). */
  completionsTopic?: string;
  instances: () => Promise<Pick<InstancesClient, 'insert' | 'get' | 'delete'>>;
  operations: () => Promise<Pick<ZoneOperationsClient, 'wait'>>;
}

const COS_PROJECT = 'cos-cloud';
const CLOUD_PLATFORM_SCOPE = 'https://www.googleapis.com/auth/cloud-platform';

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
// gRPC's PERMISSION_DENIED, as gax reports a 403 without a `status`.
const PERMISSION_DENIED = 7;
const EXECUTION = /^zones\/([a-z0-9-]+)\/instances\/([a-z]([-a-z0-9]*[a-z0-9])?)$/;

/** pipeline-<first 20 hex of the job id>-a<attempt>: a valid instance name, unique per attempt. */
export function instanceName(jobId: string, attempt: number): string {
  return `pipeline-${jobId.slice(0, 20)}-a${attempt}`;
}

type Refusal = InsertRefusal & { cause?: unknown };

/** The LaunchError of a refusal that ends the launch, with the zones that refused before it. */
function refusalError(refusal: Refusal, what: string, refusals: readonly string[]): LaunchError {
  const before = refusals.length === 0 ? '' : ` (refused before: ${refusals.join('; ')})`;
  const message = `creating ${what} failed: ${refusal.why}${before}`;
  const { cause } = refusal;
  switch (refusal.kind) {
    case 'stockout':
    case 'capacity':
      return new LaunchError(message, true, { cause, capacity: true });
    case 'lost':
      return new LaunchError(
        `${message}; the insert may have reached Compute Engine, so the VM is looked for before it ` +
          'is created again (and an insert of the same name in that zone answers 409)',
        true,
        { cause, ambiguous: true },
      );
    case 'failed':
      return new LaunchError(message, refusal.retryable, { cause });
  }
}

export class ComputeEngineLauncher implements Launcher {
  private readonly settings: ComputeEngineLauncherSettings;
  private readonly startupScript: string;

  constructor(settings: ComputeEngineLauncherSettings) {
    this.settings = settings;
    this.startupScript = settings.startupScript ?? fs.readFileSync(VM_STARTUP_SCRIPT_PATH, 'utf8');
  }

  /** The zones VMs are tried in, in order. */
  get zones(): readonly string[] {
    const { zones } = this.settings;
    return zones === undefined || zones.length === 0 ? [this.settings.zone] : zones;
  }

  async launch(request: LaunchRequest): Promise<LaunchResult> {
    const { job } = request;
    if (!isJobId(job.id) || !Number.isInteger(job.attempt) || job.attempt < 1) {
      throw new LaunchError(`job ${job.id} attempt ${job.attempt} cannot name a VM`, false);
    }
    const name = instanceName(job.id, job.attempt);
    const what = (zone: string) =>
      `VM zones/${zone}/instances/${name} (job ${job.id}, attempt ${job.attempt})`;
    if (this.zones.length > 1) {
      const found = await this.lookEverywhere(name);
      if (found.kind === 'found') return { execution: found.execution, spot: found.spot };
      if (found.kind === 'unknown') {
        throw new LaunchError(`not creating VM ${name}: it may exist already, and ${found.reason}`, true);
      }
    }
    const spot = job.template?.spot ?? false;
    const models = spot && job.template?.standardIfNoSpot === true ? [true, false] : [spot];
    const refusals: string[] = [];
    for (const asSpot of models) {
      for (const zone of this.zones) {
        const execution = `zones/${zone}/instances/${name}`;
        const outcome = await this.insertIn(request, zone, asSpot, what(zone));
        const done = refusals.length === 0 ? { execution } : { execution, refusals };
        if (outcome === 'made') return { ...done, spot: asSpot };
        if (outcome === 'exists') {
          // An earlier delivery created it: as this one would, unless it fell back to standard.
          if (models.length === 1) return { ...done, spot: asSpot };
          const look = await this.lookIn(zone, name);
          return look.kind === 'found' ? { ...done, spot: look.spot } : done;
        }
        if (outcome.kind !== 'stockout') throw refusalError(outcome, what(zone), refusals);
        refusals.push(`${zone}${asSpot === spot ? '' : ' (standard)'}: ${outcome.why}`);
      }
    }
    const tried = models.length > 1 ? ' as spot, then as standard,' : '';
    throw new LaunchError(
      `no zone has capacity for VM ${name} (job ${job.id}, attempt ${job.attempt});${tried} ` +
        `refused by ${refusals.join('; ')}`,
      true,
      { capacity: true },
    );
  }

  /** The VM of the job's current attempt, in whichever zone it is. */
  async find(job: Job): Promise<FoundLaunch> {
    if (!isJobId(job.id) || !Number.isInteger(job.attempt) || job.attempt < 1) return { kind: 'absent' };
    const found = await this.lookEverywhere(instanceName(job.id, job.attempt));
    return found.kind === 'found' ? { kind: 'found', execution: found.execution } : found;
  }

  /** instances.get of NAME in every zone at once: found in one, 404 in all, or not known. */
  private async lookEverywhere(
    name: string,
  ): Promise<
    | { kind: 'found'; execution: string; spot: boolean }
    | { kind: 'absent' }
    | { kind: 'unknown'; reason: string }
  > {
    const looks = await Promise.all(this.zones.map((zone) => this.lookIn(zone, name)));
    const found = looks.find((look) => look.kind === 'found');
    if (found !== undefined) return found;
    const unknown = looks.flatMap((look) => (look.kind === 'unknown' ? [look.reason] : []));
    return unknown.length === 0 ? { kind: 'absent' } : { kind: 'unknown', reason: unknown.join('; ') };
  }

  private async lookIn(zone: string, name: string) {
    const execution = `zones/${zone}/instances/${name}`;
    try {
      const instances = await this.settings.instances();
      const [instance] = await instances.get(
        { project: this.settings.project, zone, instance: name },
        { timeout: 30_000 },
      );
      const spot = instance.scheduling?.provisioningModel === 'SPOT';
      return { kind: 'found' as const, execution, spot };
    } catch (err) {
      const facts = apiErrorFacts(err);
      if (isNotFound(facts)) return { kind: 'absent' as const };
      const denied = facts.httpStatus === 403 || facts.code === PERMISSION_DENIED;
      const hint = facts.credentials
        ? 'the dispatcher has no credentials yet; the next look tries again'
        : denied
          ? `the dispatcher's account needs compute.instances.get on instances in ${zone} (terraform: the vm_launcher role, granted in zone and vm_fallback_zones)`
          : 'Compute did not answer; the next look asks again';
      return {
        kind: 'unknown' as const,
        reason: `reading VM ${execution} failed: ${describeApiError(err)}; ${hint}`,
      };
    }
  }

  /** One insert of the VM in ZONE and its operation: made, there already, or why not. */
  private async insertIn(
    request: LaunchRequest,
    zone: string,
    spot: boolean,
    what: string,
  ): Promise<'made' | 'exists' | Refusal> {
    const { project } = this.settings;
    let operation: Operation;
    try {
      const instances = await this.settings.instances();
      const [lro] = await instances.insert(
        { project, zone, instanceResource: this.instanceResource(request, zone, spot) },
        { timeout: this.settings.insertTimeoutMs ?? 60_000 },
      );
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
        return 'exists';
      }
      return { ...requestRefusal(err), cause: err };
    }
    const done = await this.waitUntilDone(operation, zone, what);
    const errors = done.error?.errors ?? [];
    if (errors.length === 0) return 'made';
    if (errors.some((e) => e.code === 'RESOURCE_ALREADY_EXISTS')) return 'exists';
    return operationRefusal(errors, done.httpErrorStatusCode ?? undefined);
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

  /**
   * The instance for one attempt of a task in ZONE, spot or not (default: the first zone, and what
   * the template says). The subnetwork is regional, the same in every zone of the region.
   */
  instanceResource(
    request: LaunchRequest,
    zone = this.zones[0],
    spot = request.job.template?.spot ?? false,
  ): Instance {
    const { job } = request;
    const { serviceAccount } = this.settings;
    const template = job.template;
    const timeoutSeconds =
      template?.timeoutSeconds ?? this.settings.defaultTimeoutSeconds ?? DEFAULT_TASK_TIMEOUT_SECONDS;
    const margin = this.settings.timeoutMarginSeconds ?? 600;
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
      [keys.agentImage]: this.settings.agentImage,
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

  /**
   * The insert operation once DONE. Waiting that fails, or outlasts maxOperationWaits, leaves the VM
   * maybe coming: an ambiguous LaunchError.
   */
  private async waitUntilDone(operation: Operation, zone: string, what: string): Promise<Operation> {
    const { project } = this.settings;
    const maxWaits = this.settings.maxOperationWaits ?? 5;
    const coming = 'the VM may still come up; look for it before creating it again';
    let current = operation;
    // The REST transport reports enums by name (the Compute client does not ask for numeric enums).
    for (let waits = 0; current.status !== 'DONE'; waits++) {
      if (waits === maxWaits || !current.name) {
        throw new LaunchError(
          `${what}: the insert is still ${current.status} after ${waits} waits; ${coming}`,
          true,
          { ambiguous: true },
        );
      }
      try {
        const operations = await this.settings.operations();
        [current] = await operations.wait({ project, zone, operation: current.name });
      } catch (err) {
        throw new LaunchError(
          `waiting for the creation of ${what} failed: ${describeApiError(err)}; ${coming}`,
          true,
          { cause: err, ambiguous: true },
        );
      }
    }
    return current;
  }
}
