// Runs the real worker command in a child process, as a user or the container would, with the
// loopback-only guard loaded into it.
import { spawn } from 'node:child_process';
import path from 'node:path';

const root = path.resolve(import.meta.dirname, '../..');
export const WORKER_BIN = path.join(root, 'jobs/worker/bin/pipeline-worker.js');
export const LOOPBACK_GUARD = path.join(root, 'test/support/loopback-only.ts');

export interface WorkerRun {
  code: number | null;
  stdout: string;
  stderr: string;
}

export function runWorker(args: string[], env: Record<string, string> = {}): Promise<WorkerRun> {
  return runGuarded(WORKER_BIN, args, env);
}

/** `bin ARGS` on this Node with the guard loaded, with only PATH and `env` in its environment. */
export function runGuarded(
  bin: string,
  args: string[],
  env: Record<string, string> = {},
): Promise<WorkerRun> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, ['--import', LOOPBACK_GUARD, bin, ...args], {
      env: { PATH: process.env.PATH ?? '', METADATA_SERVER_DETECTION: 'none', ...env },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d) => (stdout += d));
    child.stderr.on('data', (d) => (stderr += d));
    child.on('error', reject);
    child.on('close', (code) => resolve({ code, stdout, stderr }));
  });
}

/**
 * The worker's `main(args, env)` in this process, with what it writes to stdout and stderr caught:
 * what runWorker reports, without starting a process (its start-up is most of a small run's time).
 * The environment is runWorker's: PATH, detection off, and `env`.
 */
export async function runWorkerInProcess(
  args: string[],
  env: Record<string, string> = {},
): Promise<WorkerRun> {
  const { main } = await import('../../jobs/worker/src/cli.ts');
  const caught = { stdout: '', stderr: '' };
  const streams = [
    [process.stdout, 'stdout'],
    [process.stderr, 'stderr'],
  ] as const;
  const originals = streams.map(([stream]) => stream.write);
  for (const [stream, name] of streams) {
    stream.write = ((chunk: string | Uint8Array, ...rest: unknown[]) => {
      caught[name] += typeof chunk === 'string' ? chunk : Buffer.from(chunk).toString('utf8');
      const done = rest.find((r) => typeof r === 'function') as (() => void) | undefined;
      done?.();
      return true;
    }) as typeof stream.write;
  }
  try {
    const code = await main(args, {
      PATH: process.env.PATH ?? '',
      METADATA_SERVER_DETECTION: 'none',
      ...env,
    });
    return { code, ...caught };
  } finally {
    streams.forEach(([stream], i) => (stream.write = originals[i]));
  }
}
