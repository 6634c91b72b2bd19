// `npm start` / `pipeline start`: the local pipeline on 127.0.0.1. On the first start (no local/
// folder yet) it drops the bundled sample into the input folder, so a new user sees a job run and
// its results land; it prints where each job's results are as it ends. What it prints is escaped as
// the CLI's output is (printable): object names, paths and errors are data, and a newline or an
// escape sequence in one must not reach the terminal raw.
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import type { Job } from '@pipeline/core';
import { createLogger } from '../logger.ts';
import { installProcessGuards } from '../process-guard.ts';
import { loadRoutingConfig } from '../routing-config.ts';
import { printable } from '../printable.ts';
import { startLocalPipeline, type LocalPipeline, type LocalPipelineOptions } from './pipeline.ts';

const REPO = path.resolve(import.meta.dirname, '../../../..');
export const SAMPLE = path.join(REPO, 'jobs/worker/data/financial_statements.csv');

export interface LocalSettings {
  dir: string;
  port: number;
  host: string;
  config: string;
  /** LOCAL_CAPACITY: tasks run at once; the others wait QUEUED. Default: the machine's cores. */
  capacity: number;
}

export function localSettings(env: NodeJS.ProcessEnv, flags: Partial<LocalSettings> = {}): LocalSettings {
  const port = flags.port ?? Number(env.PORT ?? 8080);
  if (!Number.isInteger(port) || port < 0 || port > 65535)
    throw new Error(`PORT must be a port number, got ${env.PORT}`);
  const capacity = flags.capacity ?? Number(env.LOCAL_CAPACITY ?? os.availableParallelism());
  if (!Number.isInteger(capacity) || capacity < 1 || capacity > 1000)
    throw new Error(`LOCAL_CAPACITY must be a whole number from 1 to 1000, got ${env.LOCAL_CAPACITY}`);
  return {
    capacity,
    dir: path.resolve(flags.dir ?? env.LOCAL_DIR ?? path.join(REPO, 'local')),
    port,
    host: flags.host ?? env.HOST ?? '127.0.0.1',
    config: path.resolve(flags.config ?? env.PIPELINE_CONFIG ?? path.join(REPO, 'pipeline.config.json')),
  };
}

/** A line for the terminal, on stderr. */
const toStderr = (line: string) => process.stderr.write(`${line}\n`);

/**
 * Starts the pipeline and tells the user, through `say` (stderr), what happens, each line escaped
 * (printable); JSON logs go to stdout.
 */
export async function runLocal(
  settings: LocalSettings,
  say: (line: string) => void = toStderr,
  overrides: Partial<LocalPipelineOptions> = {},
): Promise<LocalPipeline> {
  const tell = (line: string) => say(printable(line));
  const routing = loadRoutingConfig(settings.config);
  const firstStart = !fs.existsSync(settings.dir);
  const pipeline = await startLocalPipeline({
    root: settings.dir,
    routing,
    port: settings.port,
    host: settings.host,
    capacity: settings.capacity,
    logger: createLogger(),
    onJobEnded: (job) => tell(endedLine(job)),
    onJobInterrupted: (job) =>
      tell(
        `pipeline: job ${job.id} interrupted; it runs again at the next start, still attempt ${job.attempt}`,
      ),
    ...overrides,
  });
  tell(
    `pipeline: listening on ${pipeline.url} (GET /jobs lists jobs); drop files into ${path.join(settings.dir, 'input')}`,
  );
  if (firstStart) {
    const target = path.join(pipeline.blobs.folder('input'), path.basename(SAMPLE));
    const temporary = path.join(path.dirname(target), `.${path.basename(SAMPLE)}.partial`);
    fs.copyFileSync(SAMPLE, temporary);
    fs.renameSync(temporary, target);
    // Its job writes under <object>/<generation>/, the generation being the copy's modification time.
    const generation = fs.statSync(target, { bigint: true }).mtimeNs.toString();
    const results = path.join(settings.dir, 'output', path.basename(SAMPLE), generation);
    tell(`pipeline: first start: copied the sample into ${target}; its results will land in ${results}/`);
  }
  return pipeline;
}

/** What `npm start` says when a job ends (before escaping): where its results or its logs are. */
export function endedLine(job: Job): string {
  const where = job.outputUri === undefined ? '' : readable(job.outputUri);
  if (job.state === 'SUCCEEDED') return `pipeline: job ${job.id} SUCCEEDED; results in ${where}`;
  const logs = job.logsUri === undefined ? where : readable(job.logsUri);
  const why = job.error?.trim().split('\n').pop() ?? '';
  return `pipeline: job ${job.id} ${job.state} (exit code ${job.exitCode ?? 'none'}): ${why}; logs in ${logs}`;
}

/** A path relative to the working folder when it lies inside it, else as it is. */
function readable(file: string): string {
  const relative = path.relative(process.cwd(), file);
  return relative === '' || relative.startsWith('..') || path.isAbsolute(relative) ? file : relative;
}

/**
 * Runs until SIGINT or SIGTERM, then stops taking work and ends the running tasks, which are
 * recorded as interrupted and run again, as the same attempt, at the next start. A second signal
 * while it stops changes nothing: the stop is bounded (a task gets SIGKILL after its grace), and
 * dying halfway would leave tasks running and their jobs recorded as running. An error that escapes
 * every await is logged at CRITICAL severity (process-guard.ts): a stray rejection leaves it running,
 * an uncaught exception ends it with exit code 1.
 */
export async function runLocalUntilSignal(settings: LocalSettings): Promise<void> {
  const logger = createLogger();
  installProcessGuards(logger);
  const tell = (line: string) => toStderr(printable(line));
  // Listened for before the start: a signal while it starts stops it once it has started, instead
  // of killing it halfway.
  let received: NodeJS.Signals | undefined;
  let signalled!: (signal: NodeJS.Signals) => void;
  const first = new Promise<NodeJS.Signals>((resolve) => (signalled = resolve));
  const onSignal = (signal: NodeJS.Signals) => {
    if (received !== undefined) {
      tell(`pipeline: ${signal}: already stopping; its tasks get SIGKILL after their grace`);
      return;
    }
    received = signal;
    signalled(signal);
  };
  process.on('SIGINT', onSignal);
  process.on('SIGTERM', onSignal);
  try {
    const pipeline = await runLocal(settings, toStderr, { logger });
    const signal = await first;
    tell(`pipeline: ${signal}: stopping; running tasks are ended, and run again at the next start`);
    await pipeline.stop(`the local pipeline stopped (${signal})`);
  } finally {
    process.off('SIGINT', onSignal);
    process.off('SIGTERM', onSignal);
  }
  tell('pipeline: stopped');
}
