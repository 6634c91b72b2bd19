// On Cloud Run, the worker reports its own end: one completion event (@pipeline/core's
// CompletionEvent) on COMPLETIONS_TOPIC (set in the job's definition), which the dispatcher's
// /pubsub/completions records. On a VM the agent reports instead, and locally the dispatcher sees the
// process end: neither sets the topic for it.
import { completionAttributes, type CompletionEvent } from '@pipeline/core/messages';

export interface WorkerEnd {
  exitCode: number;
  startedAt: string;
  finishedAt: string;
  error?: string;
}

/** Publishes the completion if this run is a pipeline job with a completions topic; says so on stderr if it can't. */
export async function reportCompletion(env: NodeJS.ProcessEnv, end: WorkerEnd): Promise<void> {
  const topic = env.COMPLETIONS_TOPIC;
  const jobId = env.JOB_ID;
  if (topic === undefined || topic === '' || jobId === undefined || jobId === '') return;
  const attempt = Number(env.ATTEMPT ?? '1');
  const message: CompletionEvent = {
    jobId,
    attempt,
    exitCode: end.exitCode,
    startedAt: end.startedAt,
    finishedAt: end.finishedAt,
    preempted: false,
    ...(env.CLOUD_RUN_EXECUTION === undefined ? {} : { execution: env.CLOUD_RUN_EXECUTION }),
    ...(end.error === undefined ? {} : { error: end.error }),
  };
  try {
    const { PubSub } = await import('@google-cloud/pubsub');
    const pubsub = new PubSub(env.GOOGLE_CLOUD_PROJECT ? { projectId: env.GOOGLE_CLOUD_PROJECT } : {});
    try {
      await pubsub.topic(topic).publishMessage({ json: message, attributes: completionAttributes(message) });
    } finally {
      await pubsub.close();
    }
  } catch (err) {
    // The task's own outcome stands; the dispatcher's reconciler closes jobs whose report was lost.
    process.stderr.write(
      `pipeline-worker: could not publish the completion to ${topic}: ${(err as Error).message}\n`,
    );
  }
}
