// What Compute Engine does with an inserted instance, on the real Docker engine: each instance the
// Compute double creates boots as a "VM", a container of the COS stand-in (images.ts) that runs the
// instance's own `startup-script` metadata value (the real vm-startup.sh) as root, with COS's tools
// stubbed (cos.ts), the engine's socket as COS's own Docker, and a metadata server of its own (the
// metadata double) serving the instance's metadata, name, zone, project and service account token.
// The start-up script pulls the agent image from the registry with that token; the agent runs the
// task's image through the engine, reports, and deletes the instance through the Compute double.
//
// Spot preemption, as Compute documents it
// (https://cloud.google.com/compute/docs/instances/spot#preemption-process): the instance's
// `instance/preempted` metadata turns TRUE, the guest gets an ACPI soft-off (here: the agent's
// container is stopped with its 28 s stop timeout, as the shutting-down Docker daemon stops it), and
// 30 s later the VM is powered off; with `instanceTerminationAction: DELETE` the instance is then
// deleted. The box preempts a spot instance when `preempt` says so, as soon as its task runs.
import fs from 'node:fs';
import path from 'node:path';
import { docker, DOCKER_SOCKET } from '../support/docker-engine.ts';
import type { FakeCompute } from '../support/fake-compute.ts';
import { startFakeMetadata, type FakeMetadata } from '../support/fake-metadata.ts';
import { writeCosTools } from '../support/cos.ts';

/** The 30 s between a preemption's notice and the power-off. */
const PREEMPTION_NOTICE_MS = 30_000;

export interface VmHostOptions {
  compute: FakeCompute;
  /** The COS stand-in image. */
  cosImage: string;
  /** The VM service account's access token, which the registry takes. */
  token: string;
  project: string;
  /** What points the start-up script and the agent at the box (COMPUTE_API_ENDPOINT, ...). */
  env: Record<string, string>;
  label: string;
  /** A folder for the VMs' disks: shared folders, records and console output. */
  dir: string;
  /** Whether to preempt this spot instance once its task runs. */
  preempt?: (instance: Record<string, unknown>) => boolean;
}

export interface BootedVm {
  name: string;
  jobId: string;
  attempt: string;
  spot: boolean;
  preempted: boolean;
  /** The start-up script's exit code, once it ended. */
  exitCode?: number;
  bootedMs: number;
  endedMs?: number;
  /** Whether the stand-in's poweroff was called (the script could not delete the VM). */
  poweredOff?: boolean;
}

export class VmHost {
  readonly vms: BootedVm[] = [];
  private readonly options: VmHostOptions;
  private readonly tools: string;
  private readonly running = new Set<Promise<void>>();
  /** Each VM's run, by instance name, resolved when it ended. */
  private readonly ends = new Map<string, Promise<void>>();
  private readonly failures: string[] = [];

  constructor(options: VmHostOptions) {
    this.options = options;
    this.tools = writeCosTools(path.join(options.dir, 'cos-tools'));
  }

  /** The Compute double's onInstanceCreated. */
  boot(instance: Record<string, unknown>): void {
    const items =
      (instance.metadata as { items?: { key: string; value: string }[] } | undefined)?.items ?? [];
    const item = (key: string) => items.find((i) => i.key === key)?.value ?? '';
    const vm: BootedVm = {
      name: String(instance.name),
      jobId: item('pipeline-job-id'),
      attempt: item('pipeline-attempt'),
      spot: (instance.scheduling as { provisioningModel?: string } | undefined)?.provisioningModel === 'SPOT',
      preempted: false,
      bootedMs: Date.now(),
    };
    this.vms.push(vm);
    const run = this.run(instance, vm, items).catch((err: Error) => {
      this.failures.push(`${vm.name}: ${err.message}`);
    });
    this.running.add(run);
    this.ends.set(vm.name, run);
    void run.finally(() => this.running.delete(run));
  }

  /** The VMs of a job, once each has ended (a job's end is reported before its VM is gone). */
  async vmsOf(jobId: string): Promise<BootedVm[]> {
    const vms = this.vms.filter((vm) => vm.jobId === jobId);
    await Promise.all(vms.map((vm) => this.ends.get(vm.name)));
    return vms;
  }

  /** Waits for every VM booted so far to end; what went wrong in the host itself, if anything. */
  async settled(): Promise<string[]> {
    while (this.running.size > 0) await Promise.all([...this.running]);
    return [...this.failures];
  }

  /** Powers every VM off now: its stand-in, its agent and its task containers. */
  async powerOffAll(): Promise<void> {
    const names = this.vms.flatMap((vm) => [`box-vm-${vm.name}`, `box-agent-${vm.name}`]);
    const tasks = await Promise.all(this.vms.map((vm) => taskContainers(vm)));
    await removeContainers([...names, ...tasks.flat()]);
  }

  private async run(
    instance: Record<string, unknown>,
    vm: BootedVm,
    items: { key: string; value: string }[],
  ): Promise<void> {
    const { compute, cosImage, token, project, env, label } = this.options;
    const zone = String(instance.zone).split('/').at(-1)!;
    const metadata = await startFakeMetadata(
      {
        'project/project-id': project,
        'project/numeric-project-id': '123456789012',
        'instance/name': vm.name,
        'instance/zone': `projects/123456789012/zones/${zone}`,
        'instance/service-accounts/default/email': serviceAccountOf(instance),
        ...Object.fromEntries(items.map(({ key, value }) => [`instance/attributes/${key}`, value])),
      },
      { token },
    );
    const disk = path.join(this.options.dir, vm.name);
    const record = path.join(disk, 'record');
    const shared = path.join(disk, 'shared'); // the same path for the VM, the agent and the task
    fs.mkdirSync(record, { recursive: true });
    const script = path.join(disk, 'startup-script');
    fs.writeFileSync(script, items.find((i) => i.key === 'startup-script')?.value ?? 'exit 1');
    const container = `box-vm-${vm.name}`;
    const agent = `box-agent-${vm.name}`;
    const boxEnv = { ...env, GCE_METADATA_HOST: metadata.host, AGENT_SHARED_DIR: shared };
    let preemption: Preemption | undefined;
    try {
      await docker([
        'run',
        '--detach',
        '--name',
        container,
        '--label',
        `pipeline-box=${label}`,
        '--network',
        'host',
        ...['-v', `${DOCKER_SOCKET}:${DOCKER_SOCKET}`, '-v', '/usr:/usr:ro'],
        ...['-v', `${this.tools}:/opt/stubs:ro`, '-v', `${record}:/opt/record`, '-v', `${shared}:${shared}`],
        ...['-v', `${script}:/startup-script:ro`],
        ...[
          '--env',
          'PATH=/opt/stubs:/usr/local/bin:/usr/bin:/bin',
          '--env',
          `AGENT_CONTAINER_NAME=${agent}`,
        ],
        ...Object.entries(boxEnv).flatMap(([name, value]) => ['--env', `${name}=${value}`]),
        cosImage,
        '/bin/bash',
        '/startup-script',
      ]);
      if (vm.spot && this.options.preempt?.(instance) === true)
        preemption = preemptWhenTaskRuns(vm, metadata, container, agent);
      const { stdout } = await docker(['wait', container], { timeoutMs: 3_600_000 });
      vm.exitCode = Number(stdout.trim());
    } finally {
      vm.endedMs = Date.now();
      preemption?.cancel();
      const console = await docker(['logs', '--timestamps', container]).catch((err: Error) => ({
        stdout: '',
        stderr: err.message,
      }));
      // A VM powered off takes its containers with it.
      await removeContainers([container, agent, ...(await taskContainers(vm))]);
      await metadata.close();
      vm.poweredOff = fs.existsSync(path.join(record, 'poweroff'));
      // The box's folder is gone if the box was stopped meanwhile.
      fs.writeFile(path.join(disk, 'console.log'), `${console.stdout}${console.stderr}`, () => undefined);
    }
    const left = compute.instances.get(vm.name);
    if (left === undefined || !(vm.preempted || vm.poweredOff)) return;
    // A preempted or powered-off instance is TERMINATED; Compute then deletes one whose
    // scheduling.instanceTerminationAction is DELETE, and keeps one with STOP (the default).
    const action = (left.scheduling as { instanceTerminationAction?: string } | undefined)
      ?.instanceTerminationAction;
    if (vm.preempted && action === 'DELETE') compute.instances.delete(vm.name);
    else left.status = 'TERMINATED';
  }
}

interface Preemption {
  cancel(): void;
}

/** Preempts the VM as soon as its task's container runs: the notice, the soft-off, the power-off. */
function preemptWhenTaskRuns(
  vm: BootedVm,
  metadata: FakeMetadata,
  container: string,
  agent: string,
): Preemption {
  let cancelled = false;
  let powerOff: NodeJS.Timeout | undefined;
  const poll = async () => {
    while (!cancelled) {
      if ((await taskContainers(vm, true)).length > 0) break;
      await new Promise((resolve) => setTimeout(resolve, 200));
    }
    if (cancelled) return;
    vm.preempted = true;
    metadata.preempt();
    powerOff = setTimeout(
      () => void docker(['kill', container]).catch(() => undefined),
      PREEMPTION_NOTICE_MS,
    );
    await docker(['stop', '--time', '28', agent]).catch(() => undefined);
  };
  void poll();
  return {
    cancel() {
      cancelled = true;
      clearTimeout(powerOff);
    },
  };
}

/** The task containers the agent started for this VM's attempt (running ones only, if asked). */
async function taskContainers(vm: BootedVm, runningOnly = false): Promise<string[]> {
  const { stdout } = await docker([
    'ps',
    '--quiet',
    ...(runningOnly ? [] : ['--all']),
    '--filter',
    `label=pipeline-job-id=${vm.jobId}`,
    '--filter',
    `label=pipeline-attempt=${vm.attempt}`,
  ]).catch(() => ({ stdout: '' }));
  return stdout.split('\n').filter(Boolean);
}

async function removeContainers(names: string[]): Promise<void> {
  await Promise.all(names.map((name) => docker(['rm', '--force', name]).catch(() => undefined)));
}

function serviceAccountOf(instance: Record<string, unknown>): string {
  const accounts = instance.serviceAccounts as { email?: string }[] | undefined;
  return accounts?.[0]?.email ?? 'default';
}
