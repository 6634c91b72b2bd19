// What Cloud Run does with an execution, on the real Docker engine: the Run double (fake-run.ts)
// accepts RunJob, and this host runs its one task as a container of the job's image, pulled from the
// registry, with the job's own env, the execution's overrides (env, args) and the variables Cloud Run
// sets for a task (https://cloud.google.com/run/docs/container-contract#jobs-env-vars:
// CLOUD_RUN_JOB, CLOUD_RUN_EXECUTION, CLOUD_RUN_TASK_INDEX, CLOUD_RUN_TASK_ATTEMPT,
// CLOUD_RUN_TASK_COUNT). The container runs as its image's user on the host network; a task past its
// timeout is killed. Its exit settles the execution in the double, as Cloud Run reports it: exit 0
// succeeded, any other code failed with that code. A cancelled execution's container is killed.
import fs from 'node:fs';
import path from 'node:path';
import { docker } from '../support/docker-engine.ts';
import type { EndedExecution, ExecutionOutcome, StartedExecution } from '../support/fake-run.ts';

export interface RunHostOptions {
  /** The job's image, as its registry names it. */
  image: string;
  /** A docker CLI config logged in to that registry (Cloud Run's service agent pulls it). */
  dockerConfig: string;
  /** The job's own env (terraform's job definition), then what points the task at the box. */
  env: Record<string, string>;
  /** The label every container of the box carries (`pipeline-box=VALUE`). */
  label: string;
  /** Where each execution's container output is kept, as NAME.log. */
  logDir: string;
  settle(execution: string, outcome: ExecutionOutcome): void;
}

export interface HostedExecution {
  name: string;
  container: string;
  jobId: string;
  attempt: string;
  /** The container's exit code, once it ended; undefined while it runs. */
  exitCode?: number;
  startedMs: number;
  endedMs?: number;
  /** Cancelled through the API: the double already says so, and the container's end changes nothing. */
  cancelled?: boolean;
}

export class RunHost {
  readonly executions: HostedExecution[] = [];
  private readonly options: RunHostOptions;
  private pulled: Promise<unknown> | undefined;
  private readonly running = new Set<Promise<void>>();
  private readonly failures: string[] = [];

  constructor(options: RunHostOptions) {
    this.options = options;
    fs.mkdirSync(options.logDir, { recursive: true });
  }

  /** The Run double's onExecutionStarted. */
  start(execution: StartedExecution): void {
    const short = execution.name.split('/').at(-1)!;
    const hosted: HostedExecution = {
      name: execution.name,
      container: `box-run-${short}`,
      jobId: execution.env.JOB_ID ?? '',
      attempt: execution.env.ATTEMPT ?? '',
      startedMs: Date.now(),
    };
    this.executions.push(hosted);
    const run = this.run(execution, hosted).catch((err: Error) => {
      this.failures.push(`${short}: ${err.message}`);
      this.options.settle(execution.name, {
        phase: 'failed',
        message: `the box could not run it: ${err.message}`,
      });
    });
    this.running.add(run);
    void run.finally(() => this.running.delete(run));
  }

  /** The Run double's onExecutionEnded: a cancelled execution's container is stopped. */
  ended(execution: EndedExecution): void {
    if (execution.outcome.phase !== 'cancelled') return;
    const hosted = this.executions.find((e) => e.name === execution.name);
    if (hosted === undefined || hosted.exitCode !== undefined) return;
    hosted.cancelled = true;
    void docker(['kill', hosted.container]).catch(() => undefined);
  }

  /** Waits for every container started so far to end; what went wrong in the host itself, if anything. */
  async settled(): Promise<string[]> {
    while (this.running.size > 0) await Promise.all([...this.running]);
    return [...this.failures];
  }

  private async run(execution: StartedExecution, hosted: HostedExecution): Promise<void> {
    const { image, dockerConfig, env, label, logDir } = this.options;
    this.pulled ??= docker(['--config', dockerConfig, 'pull', '--quiet', image]);
    await this.pulled;
    const taskEnv = {
      ...env,
      ...execution.env,
      CLOUD_RUN_JOB: execution.job,
      CLOUD_RUN_EXECUTION: execution.name.split('/').at(-1)!,
      CLOUD_RUN_TASK_INDEX: '0',
      CLOUD_RUN_TASK_ATTEMPT: '0',
      CLOUD_RUN_TASK_COUNT: '1',
    };
    await docker([
      'run',
      '--detach',
      '--name',
      hosted.container,
      '--label',
      `pipeline-box=${label}`,
      '--network',
      'host',
      ...Object.entries(taskEnv).flatMap(([name, value]) => ['--env', `${name}=${value}`]),
      image,
      ...(execution.args ?? []),
    ]);
    const timeoutMs = (execution.timeoutSeconds ?? 600) * 1000;
    let timedOut = false;
    const timer = setTimeout(() => {
      timedOut = true;
      void docker(['kill', hosted.container]).catch(() => undefined);
    }, timeoutMs);
    try {
      const { stdout } = await docker(['wait', hosted.container], { timeoutMs: timeoutMs + 60_000 });
      hosted.exitCode = Number(stdout.trim());
    } finally {
      clearTimeout(timer);
      hosted.endedMs = Date.now();
    }
    const logs = await docker(['logs', hosted.container]).catch((err: Error) => ({
      stdout: '',
      stderr: err.message,
    }));
    fs.writeFileSync(path.join(logDir, `${hosted.container}.log`), `${logs.stdout}${logs.stderr}`);
    await docker(['rm', '--force', hosted.container]).catch(() => undefined);
    if (hosted.cancelled === true) return;
    // As Cloud Run words it: the task's message (fake-run.ts puts it after "Task ... failed with message:").
    if (timedOut)
      this.options.settle(execution.name, {
        phase: 'failed',
        message: `The configured timeout was reached.`,
      });
    else if (hosted.exitCode === 0) this.options.settle(execution.name, { phase: 'succeeded' });
    else
      this.options.settle(execution.name, {
        phase: 'failed',
        exitCode: hosted.exitCode,
        message: `The container exited with an error.`,
      });
  }
}
