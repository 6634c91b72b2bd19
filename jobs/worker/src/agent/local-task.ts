// The VM agent's entry point, `pipeline-worker agent`. On a VM it will read its task from the
// metadata key `pipeline-task` and run the task's container; in local mode (PIPELINE_TASK set by the
// local dispatcher) it runs the worker itself with the task's arguments and environment, which are
// data handed over as JSON, never a command line for a shell.
import { UsageError } from '../errors.ts';

export interface AgentTask {
  jobId: string;
  attempt: number;
  args: string[];
  env: Record<string, string>;
}

export function parseAgentTask(text: string | undefined): AgentTask {
  if (text === undefined || text === '') {
    throw new UsageError('the agent has no task: set PIPELINE_TASK (local mode) to the task JSON');
  }
  let task: unknown;
  try {
    task = JSON.parse(text);
  } catch {
    throw new UsageError('PIPELINE_TASK is not JSON');
  }
  const t = task as Partial<AgentTask>;
  const stringMap = (v: unknown) =>
    typeof v === 'object' &&
    v !== null &&
    !Array.isArray(v) &&
    Object.values(v).every((x) => typeof x === 'string');
  if (typeof t !== 'object' || t === null || typeof t.jobId !== 'string' || !Number.isInteger(t.attempt)) {
    throw new UsageError('PIPELINE_TASK needs jobId (string) and attempt (integer)');
  }
  if (!Array.isArray(t.args) || !t.args.every((a) => typeof a === 'string'))
    throw new UsageError('PIPELINE_TASK.args must be a list of strings');
  if (!stringMap(t.env)) throw new UsageError('PIPELINE_TASK.env must be an object of strings');
  return t as AgentTask;
}

/** The environment the task runs with: the agent's own, without the task JSON, plus the task's. */
export function taskEnvironment(agentEnv: NodeJS.ProcessEnv, task: AgentTask): NodeJS.ProcessEnv {
  const env = { ...agentEnv, ...task.env };
  delete env.PIPELINE_TASK;
  return env;
}
