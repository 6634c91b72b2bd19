// Entry point of `pipeline-agent`, the agent image's entrypoint: vm-startup.sh runs it on every task
// VM with no arguments. The task comes from the metadata server; the agent runs it, reports, and
// deletes the VM itself (vm-agent.ts). Exit codes: 0 the task exited 0, 1 it did not (or the agent
// could not run it: the completion says why), 2 a wrong command line.
import { gcpAgentPorts } from './gcp-ports.ts';
import { runAgentOnVm } from './vm-agent.ts';

export const USAGE = `usage: pipeline-agent

Runs on a pipeline task VM, started by its start-up script (vm-startup.sh) with no arguments. Reads
the task from the metadata server (pipeline-task), runs its image through the Docker Engine API,
uploads the task's output to its log object, publishes one completion event, and deletes this VM.

Environment (none is set on a VM; tests point the agent at loopback doubles with them):
  AGENT_SHARED_DIR          the VM's folder of the shared files (default /var/lib/pipeline/shared)
  AGENT_STOP_GRACE_SECONDS  between SIGTERM and SIGKILL when the task is stopped (default 15)
  GCE_METADATA_HOST, METADATA_SERVER_DETECTION, STORAGE_EMULATOR_HOST, PUBSUB_EMULATOR_HOST,
  COMPUTE_API_ENDPOINT, PIPELINE_TOKEN_REGISTRIES`;

/** One JSON line on stdout, `severity` first (INFO unless the fields say otherwise), as Cloud Logging reads it. */
function log(message: string, fields: Record<string, unknown> = {}): void {
  process.stdout.write(`${JSON.stringify({ severity: 'INFO', message, ...fields })}\n`);
}

export async function main(argv: readonly string[], env: NodeJS.ProcessEnv): Promise<number> {
  if (argv.includes('--help') || argv.includes('-h')) {
    process.stdout.write(`${USAGE}\n`);
    return 0;
  }
  if (argv.length > 0) {
    process.stderr.write(`pipeline-agent: takes no arguments, got ${JSON.stringify(argv[0])}\n${USAGE}\n`);
    return 2;
  }
  if (env.PIPELINE_TASK !== undefined) {
    // Local mode's agent is the worker's (`pipeline-worker agent`), which runs the task in-process.
    process.stderr.write(
      'pipeline-agent: PIPELINE_TASK is for local mode (`pipeline-worker agent`); on a VM the task comes from the metadata server\n',
    );
    return 2;
  }
  const grace = env.AGENT_STOP_GRACE_SECONDS;
  const stopGraceSeconds = grace === undefined || grace === '' ? undefined : Number(grace);
  if (stopGraceSeconds !== undefined && !(Number.isInteger(stopGraceSeconds) && stopGraceSeconds >= 0)) {
    process.stderr.write(
      `pipeline-agent: AGENT_STOP_GRACE_SECONDS must be a whole number of seconds, got ${JSON.stringify(grace)}\n`,
    );
    return 2;
  }
  // Nothing may end the agent before it has reported and deleted its VM: a rejection a library left
  // unawaited is logged, and the run goes on (its own step fails, or waits, with a reason).
  process.on('unhandledRejection', (reason) =>
    log('unhandled rejection in the agent', {
      severity: 'CRITICAL',
      error: reason instanceof Error ? reason.message : String(reason),
    }),
  );
  // SIGTERM (the VM shutting down, `docker stop`) stops the task the same way a preemption does, and
  // the report and the delete still happen.
  const stop = new AbortController();
  const onTerm = () => stop.abort(new Error('the agent was stopped (SIGTERM): the VM is shutting down'));
  process.once('SIGTERM', onTerm);
  const outcome = await runAgentOnVm(
    gcpAgentPorts(log, stopGraceSeconds === undefined ? {} : { stopGraceSeconds }),
    stop.signal,
  );
  process.removeListener('SIGTERM', onTerm);
  log('agent done', { ...outcome });
  // A metadata long-poll may still be open; nothing else is left to do.
  setTimeout(() => process.exit(outcome.exitCode === 0 ? 0 : 1), 100).unref();
  return outcome.exitCode === 0 ? 0 : 1;
}
