// The VM agent's entry point in local mode, `pipeline-worker agent` with PIPELINE_TASK set by the
// local dispatcher (the task's JSON: @pipeline/core's LocalAgentTask): the agent runs the worker
// itself with the task's arguments and environment, which are data handed over as JSON, never a
// command line for a shell.
import type { LocalAgentTask } from '@pipeline/core/messages';

/** The environment the task runs with: the agent's own, without the task JSON, plus the task's. */
export function taskEnvironment(agentEnv: NodeJS.ProcessEnv, task: LocalAgentTask): NodeJS.ProcessEnv {
  const env = { ...agentEnv, ...task.env };
  delete env.PIPELINE_TASK;
  return env;
}
