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
