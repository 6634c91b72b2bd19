// The real Docker engine of this machine (Debian's docker.io; .ci/run starts it as
// `dockerd --storage-driver=vfs --bridge=none --iptables=false --ip-masq=false`), and the small
// images the tests build on it. Nothing is pulled from the internet: a base image is made from a root
// file system with `docker import`. Containers run with `--network none` or `--network host` only.
// Where no engine answers, Docker suites are skipped with a visible message; with CI=true a missing
// engine fails instead.
import { execFile, execFileSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { describe } from 'vitest';

export const DOCKER_SOCKET = '/var/run/docker.sock';
const BUSYBOX_APPLETS = ['sh', 'echo', 'cat', 'sleep', 'env', 'id', 'kill', 'ls', 'test', 'true'];
/** A static busybox: `sh`, `sleep`, `cat`, `kill` and friends, for tasks that are shell one-liners. */
export const BUSYBOX_IMAGE = `pipeline-test/busybox:${createHash('sha256').update(BUSYBOX_APPLETS.join()).digest('hex').slice(0, 12)}`;

let engine: string | undefined | null;
/** The engine's version, or undefined when none answers on the socket. */
export function dockerEngineVersion(): string | undefined {
  if (engine !== undefined) return engine ?? undefined;
  try {
    engine = execFileSync('docker', ['version', '--format', '{{.Server.Version}}'], {
      timeout: 10_000,
      stdio: ['ignore', 'pipe', 'ignore'],
    })
      .toString()
      .trim();
  } catch {
    engine = null;
  }
  return engine ?? undefined;
}

/** `describe` when a Docker engine answers; otherwise a skipped suite that says why (or, in CI, a failure). */
export function describeWithDocker(name: string, body: () => void): void {
  if (dockerEngineVersion() !== undefined) {
    describe(name, body);
    return;
  }
  const why = `no Docker engine answers on ${DOCKER_SOCKET} (apt-get install docker.io; see .ci/run)`;
  if (process.env.CI === 'true') throw new Error(`CI needs a Docker engine: ${why}`);
  process.stderr.write(`SKIPPED Docker suite "${name}": ${why}\n`);
  describe.skip(`${name} (skipped: ${why})`, body);
}

export interface DockerResult {
  stdout: string;
  stderr: string;
}

/** The docker CLI with an argument list (never a shell), `input` on its stdin. */
export function docker(
  args: string[],
  options: { input?: string | Buffer; env?: NodeJS.ProcessEnv; timeoutMs?: number; cwd?: string } = {},
): Promise<DockerResult> {
  return new Promise((resolve, reject) => {
    const child = execFile(
      'docker',
      args,
      {
        env: options.env ?? process.env,
        cwd: options.cwd,
        timeout: options.timeoutMs ?? 300_000,
        maxBuffer: 64 << 20,
      },
      (error, stdout, stderr) => {
        if (error === null) return resolve({ stdout: String(stdout), stderr: String(stderr) });
        // The end of stdout too: a container's own account of its failure is often there.
        const said = `${String(stdout).slice(-4000)}\n${String(stderr) || error.message}`.trim();
        reject(new Error(`docker ${args.join(' ')}: ${said}`, { cause: error }));
      },
    );
    child.stdin?.end(options.input);
  });
}

export async function imageExists(ref: string): Promise<boolean> {
  try {
    await docker(['image', 'inspect', ref]);
    return true;
  } catch {
    return false;
  }
}

/** Removes images from the engine (so the next run must pull them again); missing ones are fine. */
export async function removeImages(...refs: string[]): Promise<void> {
  await Promise.all(refs.map((ref) => docker(['image', 'rm', '--force', ref]).catch(() => undefined)));
}

/**
 * BUSYBOX_IMAGE, imported once from Debian's static busybox (package busybox-static): a root file
 * system of one binary and its applets' links, with /tmp. Built only when the engine lacks it.
 */
export async function ensureBusyboxImage(): Promise<string> {
  if (await imageExists(BUSYBOX_IMAGE)) return BUSYBOX_IMAGE;
  const busybox = ['/bin/busybox', '/usr/bin/busybox'].find((file) => fs.existsSync(file));
  if (busybox === undefined) throw new Error('busybox is not installed: apt-get install busybox-static');
  await importRootFs(BUSYBOX_IMAGE, ['ENV PATH=/bin'], (root) => {
    fs.mkdirSync(path.join(root, 'bin'));
    fs.mkdirSync(path.join(root, 'tmp'), { mode: 0o1777 });
    fs.copyFileSync(busybox, path.join(root, 'bin/busybox'));
    fs.chmodSync(path.join(root, 'bin/busybox'), 0o755);
    for (const applet of BUSYBOX_APPLETS) fs.symlinkSync('busybox', path.join(root, 'bin', applet));
  });
  return BUSYBOX_IMAGE;
}

/**
 * `docker import` as `tag` of a root file system that `fill` writes into an empty folder; `changes`
 * are Dockerfile instructions for the image (ENV, CMD).
 */
export async function importRootFs(
  tag: string,
  changes: string[],
  fill: (root: string) => void,
): Promise<void> {
  const root = fs.mkdtempSync(path.join(os.tmpdir(), 'rootfs-'));
  try {
    fs.chmodSync(root, 0o755); // mkdtemp's 0700 would become the image's `/`, closed to non-root users
    fill(root);
    const tar = execFileSync('tar', ['--numeric-owner', '-C', root, '-c', '.'], { maxBuffer: 1 << 30 });
    await docker(['import', ...changes.flatMap((change) => ['--change', change]), '-', tag], { input: tar });
  } finally {
    fs.rmSync(root, { recursive: true, force: true });
  }
}

/**
 * After a build of `tag`: the other tags of its repository (older builds of the same image; an image
 * a container still uses stays) and the engine's dangling images of over a day ago (older builds'
 * stages) go. Newer ones stay: they are the next build's cache (its `npm ci` layer), and a build
 * running now, in another test file, may be using them.
 */
export async function removeOtherTags(tag: string): Promise<void> {
  const repository = tag.slice(0, tag.lastIndexOf(':'));
  const { stdout } = await docker(['images', '--format', '{{.Repository}}:{{.Tag}}', repository]);
  const older = stdout.split('\n').filter((ref) => ref.startsWith(`${repository}:`) && ref !== tag);
  if (older.length > 0) await docker(['image', 'rm', ...older]).catch(() => undefined);
  await docker(['image', 'prune', '--force', '--filter', 'until=24h']);
}
