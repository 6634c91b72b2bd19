// Runs the task's container through the Docker Engine API (dockerode on the mounted socket), never through
// a shell: the task's args and env are data, handed to the daemon as JSON. Pull, create, attach (before
// start, so no output is lost), start, wait, then remove while the exit code is already answered.
// Preemption or a timeout aborts the signal: the
// container gets SIGTERM, and SIGKILL only if it is still running `stopGraceSeconds` later (as
// `docker stop -t` does); the run still resolves with its exit code (137 after SIGKILL). A step that
// fails says which step and which image: "pulling IMAGE failed: ...".
import { Writable } from 'node:stream';
import type Dockerode from 'dockerode';

export interface RegistryAuth {
  username: string;
  password: string;
  serveraddress: string;
}

export interface ContainerSpec {
  image: string;
  args: string[];
  env: Record<string, string>;
  binds: string[];
  /** Host device paths the container gets at the same path (/dev/nvidia0, ...). */
  devices?: string[];
  registryAuth?: RegistryAuth;
  labels?: Record<string, string>;
  /** Between SIGTERM and SIGKILL when the run is stopped; default 10 s. Also the container's StopTimeout. */
  stopGraceSeconds?: number;
  /**
   * A folder to put first in LD_LIBRARY_PATH (a GPU driver's libraries), before the task's own value
   * or, when the task sets none, the image's: the image's CUDA paths are kept.
   */
  libraryPath?: string;
}

export type OutputStream = 'stdout' | 'stderr';
export type OutputSink = (stream: OutputStream, chunk: Buffer) => void;

export type ContainerStep = 'pulling' | 'reading' | 'creating a container of' | 'starting' | 'waiting for';

/** A step of the run failed; the message names the step and the image, then what the daemon said. */
export class ContainerStepError extends Error {
  readonly step: ContainerStep;
  readonly image: string;
  constructor(step: ContainerStep, image: string, reason: string, options?: { cause?: unknown }) {
    super(`${step} ${image} failed: ${reason}`, options);
    this.name = 'ContainerStepError';
    this.step = step;
    this.image = image;
  }
}

/** The daemon refused or failed the pull: the image is missing, access is denied, a layer broke. */
export class ImagePullError extends ContainerStepError {
  constructor(image: string, reason: string, options?: { cause?: unknown }) {
    super('pulling', image, reason, options);
    this.name = 'ImagePullError';
  }
}

const DEFAULT_STOP_GRACE_SECONDS = 10;

// After the container exits, the daemon closes the attach stream once the last output is copied; this
// bounds how long to wait for that, so a stuck stream cannot hold the exit code back.
const OUTPUT_DRAIN_GRACE_MS = 10_000;

/**
 * The credentials for pulling `image`, for Google's registries only (Artifact Registry, Container
 * Registry): the VM's access token must never be sent to any other registry. Docker Hub public images
 * need none. `alsoHosts` are registries that take the token too (a test's registry on loopback).
 */
export function registryAuthFor(
  image: string,
  accessToken: string,
  alsoHosts: readonly string[] = [],
): RegistryAuth | undefined {
  const host = registryHost(image)?.toLowerCase();
  if (host === undefined) return undefined;
  const google = host.endsWith('-docker.pkg.dev') || host === 'gcr.io' || host.endsWith('.gcr.io');
  if (!google && !alsoHosts.includes(host)) return undefined;
  return { username: 'oauth2accesstoken', password: accessToken, serveraddress: `https://${host}` };
}

/** Docker's rule: the first path component names a registry when it has a dot or a port, or is localhost. */
function registryHost(image: string): string | undefined {
  const slash = image.indexOf('/');
  if (slash < 0) return undefined;
  const first = image.slice(0, slash);
  return first.includes('.') || first.includes(':') || first === 'localhost' ? first : undefined;
}

/** A run's end: its exit code as soon as it is known, and its container's removal, which may come later. */
export interface ContainerRun {
  exitCode: number;
  /**
   * Settles (never rejects) once the container is removed. The exit code does not wait for it: a
   * removal deletes the container's file system, which takes seconds on a busy disk, and a preempted
   * VM has 30 s in all to stop the task and report.
   */
  removed: Promise<void>;
}

export async function runContainer(
  docker: Dockerode,
  spec: ContainerSpec,
  output: OutputSink,
  signal?: AbortSignal,
): Promise<ContainerRun> {
  signal?.throwIfAborted();
  await pullImage(docker, spec.image, spec.registryAuth);
  signal?.throwIfAborted();
  const env = await step('reading', spec.image, () => environment(docker, spec));
  const grace = spec.stopGraceSeconds ?? DEFAULT_STOP_GRACE_SECONDS;
  const container = await step('creating a container of', spec.image, () =>
    docker.createContainer({
      Image: spec.image,
      // Without Cmd the image's own CMD applies: a task with no args runs the image as built.
      ...(spec.args.length > 0 ? { Cmd: spec.args } : {}),
      Env: Object.entries(env).map(([name, value]) => `${name}=${value}`),
      // What the daemon gives it when it stops the container itself (the VM shutting down).
      StopTimeout: Math.ceil(grace),
      Labels: spec.labels ?? {},
      Tty: false, // keeps stdout and stderr apart, in multiplexed frames
      AttachStdout: true,
      AttachStderr: true,
      HostConfig: {
        // The VM's own network, as the agent has it: the task reaches the metadata server and Google's
        // APIs as the VM does, with no dependence on Docker's bridge and NAT (the VM runs one task, so
        // there is nothing on it to keep the task apart from).
        NetworkMode: 'host',
        Binds: spec.binds,
        ...(spec.devices === undefined || spec.devices.length === 0
          ? {}
          : {
              Devices: spec.devices.map((device) => ({
                PathOnHost: device,
                PathInContainer: device,
                CgroupPermissions: 'rwm',
              })),
            }),
      },
    }),
  );
  // Best effort: a container left behind is cleaned up with the VM, and must not hide the result.
  const remove = () =>
    container.remove({ force: true }).then(
      () => undefined,
      () => undefined,
    );
  let attached: NodeJS.ReadableStream | undefined;
  let exitCode: number;
  try {
    attached = await step('starting', spec.image, () =>
      container.attach({ stream: true, stdout: true, stderr: true }),
    );
    const drained = demultiplex(docker, attached, output);
    signal?.throwIfAborted();
    await step('starting', spec.image, () => container.start());
    // Listening only once started: a signal sent before start would be refused and the run would go on.
    // Either may fail because the container has exited already, which is what they were for.
    const graceMs = grace * 1000;
    let killer: NodeJS.Timeout | undefined;
    const stop = () => {
      void container.kill({ signal: 'SIGTERM' }).catch(() => undefined);
      killer = setTimeout(() => void container.kill({ signal: 'SIGKILL' }).catch(() => undefined), graceMs);
    };
    signal?.addEventListener('abort', stop, { once: true });
    try {
      if (signal?.aborted) stop();
      const { StatusCode } = (await step('waiting for', spec.image, () => container.wait())) as {
        StatusCode: number;
      };
      await outputDrained(drained);
      exitCode = StatusCode;
    } finally {
      clearTimeout(killer);
      signal?.removeEventListener('abort', stop);
    }
  } catch (error) {
    destroy(attached);
    await remove();
    throw error;
  }
  destroy(attached);
  return { exitCode, removed: remove() };
}

/** The task's env, with `libraryPath` first in LD_LIBRARY_PATH (before the task's value, else the image's). */
async function environment(docker: Dockerode, spec: ContainerSpec): Promise<Record<string, string>> {
  if (spec.libraryPath === undefined) return spec.env;
  let current: string | undefined = spec.env.LD_LIBRARY_PATH;
  if (current === undefined) {
    const inspected = (await docker.getImage(spec.image).inspect()) as { Config?: { Env?: string[] | null } };
    const own = (inspected.Config?.Env ?? []).find((entry) => entry.startsWith('LD_LIBRARY_PATH='));
    current = own?.slice('LD_LIBRARY_PATH='.length);
  }
  const parts = (current ?? '').split(':').filter((part) => part !== '');
  if (parts.includes(spec.libraryPath)) return { ...spec.env, LD_LIBRARY_PATH: parts.join(':') };
  return { ...spec.env, LD_LIBRARY_PATH: [spec.libraryPath, ...parts].join(':') };
}

/** Runs one step; a failure becomes a ContainerStepError that names it (an aborted run stays as it is). */
async function step<T>(name: ContainerStep, image: string, work: () => Promise<T>): Promise<T> {
  try {
    return await work();
  } catch (error) {
    if (error instanceof ContainerStepError) throw error;
    throw new ContainerStepError(name, image, daemonMessage(error as Error), { cause: error });
  }
}

interface PullEvent {
  status?: string;
  error?: string;
  errorDetail?: { message?: string };
}

async function pullImage(docker: Dockerode, image: string, auth: RegistryAuth | undefined): Promise<void> {
  let progress: NodeJS.ReadableStream;
  try {
    progress = await docker.pull(image, auth === undefined ? {} : { authconfig: auth });
  } catch (error) {
    // An answer from the daemon (denied, not found) or no daemon at all: either way the pull failed.
    throw new ImagePullError(image, daemonMessage(error as Error), { cause: error });
  }
  // Read the progress lines ourselves: modem.followProgress reports a stream that carries an error line
  // as a success, and throws from inside its data handler on a line that is not JSON.
  let pending = '';
  try {
    for await (const chunk of progress) {
      pending += chunk.toString();
      const lines = pending.split('\n');
      pending = lines.pop() ?? '';
      for (const line of lines) {
        const event = parseEvent(line);
        if (event?.error !== undefined || event?.errorDetail !== undefined) {
          throw new ImagePullError(image, event.errorDetail?.message ?? event.error ?? 'pull failed');
        }
      }
    }
  } catch (error) {
    if (error instanceof ImagePullError) throw error;
    throw new ImagePullError(image, `the progress stream broke: ${(error as Error).message}`, {
      cause: error,
    });
  }
}

function parseEvent(line: string): PullEvent | undefined {
  try {
    return JSON.parse(line) as PullEvent;
  } catch {
    return undefined; // blank or partial lines carry no verdict
  }
}

/** docker-modem wraps the daemon's JSON `message` as "(HTTP code 404) unexpected - <message> ". */
function daemonMessage(error: Error): string {
  const match = /^\(HTTP code \d+\) [^-]*- ([\s\S]*?) ?$/.exec(error.message);
  return match?.[1] ?? error.message;
}

/** Splits the multiplexed attach stream; resolves when the daemon closes it. */
function demultiplex(docker: Dockerode, attached: NodeJS.ReadableStream, output: OutputSink): Promise<void> {
  const sink = (stream: OutputStream) =>
    new Writable({
      write(chunk: Buffer, _encoding, done) {
        output(stream, chunk);
        done();
      },
    });
  const drained = new Promise<void>((resolve, reject) => {
    attached.once('end', resolve);
    attached.once('close', resolve);
    attached.once('error', reject);
  });
  // Handled here too, so a stream error while start or wait is pending is not an unhandled rejection;
  // the caller still sees it when it awaits the returned promise.
  drained.catch(() => undefined);
  docker.modem.demuxStream(attached, sink('stdout'), sink('stderr'));
  return drained;
}

async function outputDrained(drained: Promise<void>): Promise<void> {
  let timer: NodeJS.Timeout | undefined;
  const grace = new Promise<void>((resolve) => (timer = setTimeout(resolve, OUTPUT_DRAIN_GRACE_MS)));
  try {
    await Promise.race([drained, grace]);
  } finally {
    clearTimeout(timer);
  }
}

function destroy(stream: NodeJS.ReadableStream | undefined): void {
  if (stream !== undefined && 'destroy' in stream && typeof stream.destroy === 'function') stream.destroy();
}
