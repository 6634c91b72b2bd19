// Entry point of `pipeline-worker` and of the worker container, the default `logreg` task. Exit codes:
// 0 success, 1 unexpected failure, 2 wrong arguments or environment, 3 input unreadable or outputs
// unwritable, 4 data that cannot make a model. A failure prints one line on stderr and leaves no _SUCCESS.
import { parseWorkerConfig, USAGE } from './config.ts';
import { UsageError, WorkerError } from './errors.ts';
import { runLogreg } from './logreg/run.ts';
import { parseLocalAgentTask, TaskError } from '@pipeline/core/messages';
import { taskEnvironment } from './local-task.ts';
import { reportCompletion } from './completion.ts';
import { batchTask } from './batch-task.ts';
import { captureLogs } from './io/log-capture.ts';
import { logLine } from './log.ts';

function log(message: string, fields: Record<string, unknown> = {}): void {
  process.stdout.write(logLine(message, fields));
}

export async function main(argv: readonly string[], env: NodeJS.ProcessEnv): Promise<number> {
  if (argv[0] === 'agent') {
    // Local mode's VM agent: the task comes in PIPELINE_TASK and runs in this process. On a VM the
    // agent is its own image (jobs/agent, `pipeline-agent`), which reads the task from metadata.
    let task;
    try {
      task = parseLocalAgentTask(env.PIPELINE_TASK);
    } catch (err) {
      // Without one this is not local mode: a VM's agent is `pipeline-agent`, the agent image's.
      const hint = env.PIPELINE_TASK === undefined ? ' (on a VM the agent is pipeline-agent)' : '';
      process.stderr.write(`pipeline-worker agent: ${(err as Error).message}${hint}\n`);
      return err instanceof TaskError ? 2 : 1; // 2, as for any usage error
    }
    log('agent running its task', { jobId: task.jobId, attempt: task.attempt });
    return main(task.args, taskEnvironment(env, task));
  }
  if (argv.includes('--help') || argv.includes('-h')) {
    process.stdout.write(`${USAGE}\n`);
    return 0;
  }
  // A task of a batch runs its own job's env, LOGS_URI included: read before the log is captured.
  const task = await batchTask(env, log);
  if (task.kind === 'exit') return task.exitCode;
  return runTask(argv, task.env);
}

/** The task itself, with its env: the log captured, the work done, the completion reported. */
async function runTask(argv: readonly string[], env: NodeJS.ProcessEnv): Promise<number> {
  // On Cloud Run only (LOGS_URI=gs://...): the VM agent and the local mode keep the log themselves.
  const logs = captureLogs(env);
  const startedAt = new Date().toISOString();
  let exitCode = 0;
  let reason: string | undefined;
  try {
    const config = parseWorkerConfig(argv, env);
    const summary = await runLogreg(config, (message, fields) =>
      log(message, { jobId: config.jobId, ...fields }),
    );
    log('done', { ...summary });
  } catch (err) {
    exitCode = err instanceof WorkerError ? err.exitCode : 1;
    reason = (err instanceof Error ? err.message : String(err)).replaceAll('\n', ' ');
    process.stderr.write(`pipeline-worker: ${reason}\n`);
    if (err instanceof UsageError) process.stderr.write(`${USAGE}\n`);
    if (!(err instanceof WorkerError) && err instanceof Error && err.stack)
      process.stderr.write(`${err.stack}\n`);
  }
  // The log is complete before the completion is reported, so whoever reads it after sees it all.
  await logs?.close();
  await reportCompletion(env, {
    exitCode,
    startedAt,
    finishedAt: new Date().toISOString(),
    ...(reason === undefined ? {} : { error: reason }),
  });
  return exitCode;
}
