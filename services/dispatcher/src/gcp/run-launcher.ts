// The cloud-run-job launcher: one execution of the worker's Cloud Run job (WORKER_JOB) per attempt,
// started with RunJob and overrides; it returns the execution's name without waiting for it to end.
//
// What an execution can override (RunJobRequest.Overrides): per container, env (merged into the
// job's env) and args; the task count; the task timeout. Not the image, and not cpu or memory: the
// resources come from the Cloud Run job's definition (terraform), whatever the template's cpu and
// memoryBytes say. The router sends to Cloud Run only what fits within Cloud Run's limits; a rule
// that needs more than the job is defined with should target a VM, or the job should be defined larger.
//
// Args: an args override replaces the job's args. Proto3 cannot tell an empty list from no list, so
// an empty one is simply not sent and the job's own args (normally none: the image's CMD) apply, as
// on a VM, where the agent runs the image with no Cmd. `clearArgs` would clear them; it is never
// needed for the worker job, whose definition has no args, so it is not sent either.
import { LaunchError, type LaunchRequest, type Launcher } from '@pipeline/core';
import { launchErrorFrom, type JobsClient } from './clients.ts';

export interface CloudRunJobLauncherSettings {
  project: string;
  /** The Cloud Run region of the job, like europe-west1. */
  region: string;
  /** The Cloud Run job that runs the worker (WORKER_JOB). */
  job: string;
  /** The container to override, for a job with several; absent: the job's only container. */
  container?: string;
  /** The job's image (WORKER_IMAGE), if known: a template may name it; any other image cannot run here. */
  image?: string;
  /** The Run API client, created on first use (see clients.ts: jobsClient). */
  client: () => Promise<Pick<JobsClient, 'runJob'>>;
}

/** The Cloud Run limit of a task's timeout (168 hours); longer work belongs on a VM. */
export const CLOUD_RUN_MAX_TIMEOUT_SECONDS = 168 * 3600;

export class CloudRunJobLauncher implements Launcher {
  private readonly settings: CloudRunJobLauncherSettings;

  constructor(settings: CloudRunJobLauncherSettings) {
    this.settings = settings;
  }

  /** projects/P/locations/R/jobs/J */
  get jobName(): string {
    const { project, region, job } = this.settings;
    return `projects/${project}/locations/${region}/jobs/${job}`;
  }

  async launch(request: LaunchRequest): Promise<{ execution: string }> {
    const { job, env, args } = request;
    const what = `Cloud Run job ${this.jobName} (job ${job.id}, attempt ${job.attempt})`;
    const image = job.template?.image;
    if (image !== undefined && image !== this.settings.image) {
      throw new LaunchError(
        `${what} cannot run image ${image}: a Cloud Run job execution runs its job's image; route jobs with their own image to a VM`,
        false,
      );
    }
    const timeoutSeconds = job.template?.timeoutSeconds;
    if (timeoutSeconds !== undefined && timeoutSeconds > CLOUD_RUN_MAX_TIMEOUT_SECONDS) {
      throw new LaunchError(`${what}: a timeout of ${timeoutSeconds} s is over Cloud Run's 168 h`, false);
    }
    const containerOverride = {
      ...(this.settings.container === undefined ? {} : { name: this.settings.container }),
      // Sorted, so that the same task always sends the same request.
      env: Object.keys(env)
        .sort()
        .map((name) => ({ name, value: env[name] })),
      ...(args.length > 0 ? { args } : {}),
    };
    let operation;
    try {
      const client = await this.settings.client();
      [operation] = await client.runJob({
        name: this.jobName,
        overrides: {
          containerOverrides: [containerOverride],
          taskCount: 1,
          ...(timeoutSeconds === undefined ? {} : { timeout: { seconds: timeoutSeconds } }),
        },
      });
    } catch (err) {
      throw launchErrorFrom(err, `running ${what}`);
    }
    // The operation's metadata is the Execution being started. Without it the execution did start
    // (RunJob succeeded), so the operation's name stands in: failing here would launch it twice.
    const execution = operation.metadata?.name ?? operation.name;
    if (execution === undefined || execution === null || execution === '') {
      throw new LaunchError(
        `${what} started, but the API named neither the execution nor its operation`,
        false,
      );
    }
    return { execution };
  }
}
