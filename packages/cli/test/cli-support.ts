// Running the `pipeline` command as a user does, in a child process with the loopback guard loaded,
// against a real local pipeline (or a loopback stand-in); or its cli() in this process, with its
// streams captured.
import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { parseRoutingConfig, type Job } from '@pipeline/core';
import { cli, Failure, HelpRequested, usageFor, UsageError } from '../src/cli.ts';
import { startLocalPipeline, type LocalPipeline } from '../../../services/dispatcher/src/local/pipeline.ts';
import { createLogger } from '../../../services/dispatcher/src/logger.ts';
import { LOOPBACK_GUARD, runGuarded, type WorkerRun } from '../../../test/support/run-worker.ts';
import { until } from '../../../test/support/until.ts';

export { until };

export const PIPELINE_BIN = path.resolve(import.meta.dirname, '../bin/pipeline.js');
export const CONFIG = path.resolve(import.meta.dirname, '../../../pipeline.config.json');
export const SAMPLE = path.resolve(import.meta.dirname, '../../../jobs/worker/data/financial_statements.csv');
/** A CSV the worker refuses with exit code 4 (bad data, not retried): its label has one class. */
export const ONE_CLASS_CSV = 'a,label\n1,x\n2,x\n';

export type CommandRun = WorkerRun;

/** `pipeline ARGS` with only PATH and `env` in its environment. */
export function pipelineCommand(args: string[], env: Record<string, string> = {}): Promise<CommandRun> {
  return runGuarded(PIPELINE_BIN, args, env);
}

/**
 * `pipeline ARGS` through cli() in this process, with the environment pipelineCommand gives the
 * process (PATH and `env`): what it writes, and the exit code with what bin/pipeline.js prints of
 * what it throws.
 */
export async function cliRun(args: string[], env: NodeJS.ProcessEnv = {}): Promise<CommandRun> {
  let stdout = '';
  let stderr = '';
  const io = {
    stdout: { write: (chunk: string | Uint8Array) => (stdout += Buffer.from(chunk).toString('utf8')) },
    stderr: { write: (chunk: string) => (stderr += chunk) },
  };
  let code: number;
  try {
    code = await cli(args, { PATH: process.env.PATH ?? '', METADATA_SERVER_DETECTION: 'none', ...env }, io);
  } catch (err) {
    if (err instanceof HelpRequested) {
      stdout += `${usageFor(err.command)}\n`;
      code = 0;
    } else if (err instanceof UsageError) {
      stderr += `pipeline: ${err.message}\n${usageFor(err.command)}\n`;
      code = 2;
    } else if (err instanceof Failure) {
      stderr += `pipeline: ${err.message}\n`;
      code = 1;
    } else {
      throw err;
    }
  }
  return { code, stdout, stderr };
}

/** The local pipeline on a temporary folder with the repository's routing rules, reconciling often. */
export async function startTestPipeline(): Promise<LocalPipeline & { removeAll(): Promise<void> }> {
  const root = fs.mkdtempSync(path.join(os.tmpdir(), 'pipeline-cli-'));
  const pipeline = await startLocalPipeline({
    root,
    routing: parseRoutingConfig(JSON.parse(fs.readFileSync(CONFIG, 'utf8'))),
    port: 0,
    logger: createLogger(undefined, 'silent'),
    nodeOptions: ['--import', LOOPBACK_GUARD],
    scanIntervalMs: 50,
    quietMs: 150,
    reconcileIntervalMs: 200, // scheduled jobs start within a fraction of a second of their time
  });
  return Object.assign(pipeline, {
    async removeAll() {
      await pipeline.stop();
      fs.rmSync(root, { recursive: true, force: true });
    },
  });
}

/** The job once `ready` says so of it. */
export function jobWhen(pipeline: LocalPipeline, id: string, ready: (job: Job) => boolean): Promise<Job> {
  return until(async () => {
    const job = await pipeline.ledger.get(id);
    return job !== undefined && ready(job) ? job : undefined;
  });
}

/** A loopback port nothing listens on: bound, then closed. */
export async function closedPort(): Promise<number> {
  const server = net.createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as net.AddressInfo;
  await new Promise((resolve) => server.close(resolve));
  return port;
}
