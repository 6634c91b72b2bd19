// On Cloud Run the worker publishes its own completion: checked on the Pub/Sub emulator.
import { parseCompletionEvent } from '@pipeline/core';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { PubSub, type Subscription } from '@google-cloud/pubsub';
import { describeWithEmulators, startEmulator, type Emulator } from '../../../test/support/emulators.ts';
import { runWorker } from '../../../test/support/run-worker.ts';

const SAMPLE = path.resolve(import.meta.dirname, '../data/financial_statements.csv');
const JOB = 'cd'.repeat(16);

describeWithEmulators(['pubsub'], 'the worker reports its end on Cloud Run', () => {
  let emulator: Emulator;
  let pubsub: PubSub;
  let subscription: Subscription;
  let dir: string;

  beforeAll(async () => {
    emulator = await startEmulator('pubsub');
    pubsub = new PubSub({ projectId: 'test-project', apiEndpoint: emulator.host });
    const [topic] = await pubsub.createTopic('completions');
    [subscription] = await topic.createSubscription('completions-pull');
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'worker-completion-'));
  }, 60_000);
  afterAll(async () => {
    await pubsub?.close();
    await emulator?.stop();
    fs.rmSync(dir, { recursive: true, force: true });
  });

  const env = () => ({
    COMPLETIONS_TOPIC: 'completions',
    GOOGLE_CLOUD_PROJECT: 'test-project',
    PUBSUB_EMULATOR_HOST: emulator.host,
    JOB_ID: JOB,
    ATTEMPT: '1',
    CLOUD_RUN_EXECUTION: 'pipeline-worker-abc12',
  });

  it('publishes one completion with exit code 0 after a run, and one with the reason after a failure', async () => {
    const ok = await runWorker(
      ['--input', SAMPLE, '--output', path.join(dir, 'ok'), '--exclude', 'fiscal_year'],
      env(),
    );
    expect(ok.code).toBe(0);
    const bad = await runWorker(
      ['--input', path.join(dir, 'missing.csv'), '--output', path.join(dir, 'bad')],
      env(),
    );
    expect(bad.code).toBe(3);
    const messages: Record<string, unknown>[] = [];
    for (let i = 0; i < 20 && messages.length < 2; i++) messages.push(...(await pullSome()));
    expect(messages.map((m) => m.exitCode).sort()).toEqual([0, 3]);
    const failure = messages.find((m) => m.exitCode === 3)!;
    expect(failure).toMatchObject({
      jobId: JOB,
      attempt: 1,
      execution: 'pipeline-worker-abc12',
      preempted: false,
    });
    expect(String(failure.error)).toContain('no such file');
    // What the worker wrote is what the dispatcher reads, with the one parser of core.
    expect(parseCompletionEvent(failure)).toMatchObject({
      kind: 'completion',
      completion: { jobId: JOB, attempt: 1, exitCode: 3, preempted: false },
    });
  });

  async function pullSome(): Promise<Record<string, unknown>[]> {
    const got: Record<string, unknown>[] = [];
    await new Promise<void>((resolve) => {
      const onMessage = (message: { data: Buffer; ack(): void }) => {
        got.push(JSON.parse(message.data.toString('utf8')));
        message.ack();
      };
      subscription.on('message', onMessage);
      setTimeout(() => {
        subscription.removeListener('message', onMessage);
        resolve();
      }, 500);
    });
    await subscription.close();
    return got;
  }
});
