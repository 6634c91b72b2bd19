// Both routes end to end in the cloud in a box (cloud-box.ts), with the real images: uploads through
// the `pipeline` command into the Storage double, whose notifications the Pub/Sub emulator pushes to
// the dispatcher's container, which launches Cloud Run tasks and VMs that run as containers, report
// their completions through Pub/Sub and delete their VMs. Each case checks what a user would: the
// outputs and `_SUCCESS` in the output bucket (or the reason of a failure), the job in the ledger as
// the API, the CLI and the dashboard show it; and at the end, that nothing is left running.
import fs from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { chromium } from 'playwright-core';
import { currentBatchTask, type Job } from '@pipeline/core';
import { describeWithDocker } from '../support/docker-engine.ts';
import { CHROMIUM, CHROMIUM_ARGS } from '../support/chromium.ts';
import { describeWithEmulators } from '../support/emulators.ts';
import { boxImages, CloudBox, INPUT_BUCKET, OUTPUT_BUCKET, type BoxImages } from './cloud-box.ts';

const ROOT = path.resolve(import.meta.dirname, '../..');
const SAMPLE = path.join(ROOT, 'jobs/worker/data/financial_statements.csv');
const WINE = path.join(ROOT, 'jobs/worker/data/wine.csv');
/** A batching rule before the shipped ones: its CSVs run as the tasks of one execution. */
const BATCH_RULE = {
  name: 'box-batch',
  match: { path: 'batched/**.csv' },
  target: 'cloud-run-job',
  job: { task: 'logreg', cpu: 2, memory: '4GiB', timeout: '1h' },
  // maxFiles closes it as the third file is queued; maxWait is there only if an upload is slow.
  batch: { maxFiles: 3, maxWait: '90s' },
};
/** Upload (or request) to `_SUCCESS`, per case, for the README. */
const timings: Record<string, number> = {};

describeWithDocker('the cloud in a box', () => {
  describeWithEmulators(['pubsub', 'firestore'], 'both routes with the real images', () => {
    let images: BoxImages;
    let box: CloudBox;
    let dir: string;
    const ended: Record<string, Job> = {};

    beforeAll(async () => {
      images = await boxImages();
      // Spot capacity is being reclaimed for one object: every spot VM of its job is preempted.
      box = await CloudBox.start(images, {
        preempt: (instance) => JSON.stringify(instance.metadata).includes(`gs://${INPUT_BUCKET}/preempted/`),
        rules: [BATCH_RULE],
      });
      dir = path.join(box.dir, 'inputs');
      fs.mkdirSync(dir);
    }, 1_200_000);

    afterAll(async () => {
      process.stderr.write(`cloud box, upload to _SUCCESS: ${JSON.stringify(timings)}\n`);
      await box?.stop();
    }, 120_000);

    describe.concurrent('cases', () => {
      it('the sample CSV, uploaded with `pipeline submit --bucket`, runs as a Cloud Run task', async () => {
        const started = Date.now();
        const { job, generation } = await submit(SAMPLE, 'samples/financial_statements.csv');
        const done = await expectLanded(job, `samples/financial_statements.csv/${generation}/`);
        expect(done.target).toBe('cloud-run-job');
        expect(box.runHost.executions.filter((e) => e.jobId === job)).toHaveLength(1);
        timings['Cloud Run task (sample CSV, 418 KB)'] = successAt(done) - started;
        ended.cloudRun = done;
      });

      it('three CSVs of a batching rule run as the three tasks of one Cloud Run execution', async () => {
        const started = Date.now();
        const names = [0, 1, 2].map((i) => `batched/part-${i}.csv`);
        const submitted = await Promise.all(names.map((name) => submit(SAMPLE, name)));
        const done = await Promise.all(
          submitted.map(({ job, generation }, i) => expectLanded(job, `${names[i]}/${generation}/`)),
        );
        timings['Cloud Run batch of 3 (sample CSV each, to the last)'] =
          Math.max(...done.map(successAt)) - started;
        // One batch of three: each job's attempt was a task of it, the tasks 0, 1 and 2.
        const batches = done.map((job) => currentBatchTask(job));
        expect(new Set(batches.map((b) => b?.id)).size).toBe(1);
        expect(batches.map((b) => [b?.index, b?.size]).sort()).toEqual([
          [0, 3],
          [1, 3],
          [2, 3],
        ]);
        // Run as the host ran them: one execution, a container per task with its index, each exit 0
        // (a task's completion can land before the host has seen its container exit).
        const tasks = box.runHost.executions.filter((e) => e.batchId === batches[0]!.id);
        for (let i = 0; i < 600 && tasks.some((t) => t.exitCode === undefined); i++)
          await new Promise((resolve) => setTimeout(resolve, 100));
        expect(new Set(tasks.map((t) => t.name)).size).toBe(1);
        expect(tasks.map((t) => [t.task, t.taskCount, t.exitCode]).sort()).toEqual([
          [0, 3, 0],
          [1, 3, 0],
          [2, 3, 0],
        ]);
        for (const job of done) expect(job.target).toBe('cloud-run-job');
        ended.batch = done[0]!;
      });

      it('a CSV with pipeline-runtime: vm runs on a spot VM, which deletes itself', async () => {
        const started = Date.now();
        // The wine's class is its first column: a per-job parameter that the rule allows.
        const { job, generation } = await submit(WINE, 'vm/wine.csv', [
          '--runtime',
          'vm',
          '--param',
          'TARGET_COLUMN=cultivar',
        ]);
        const done = await expectLanded(job, `vm/wine.csv/${generation}/`);
        timings['VM (wine CSV, 12 KB)'] = successAt(done) - started;
        expect(done.target).toBe('vm');
        const vms = await box.vmHost.vmsOf(job);
        expect(vms.map((vm) => [vm.spot, vm.preempted, vm.exitCode, vm.poweredOff])).toEqual([
          [true, false, 0, false],
        ]);
        expect(box.compute.deleted).toContain(vms[0]!.name);
        ended.vm = done;
      });

      it('a container run from POST /jobs runs its image with its args on a VM', async () => {
        box.gcs.put('box-data', 'wine.csv', fs.readFileSync(WINE), { contentType: 'text/csv' });
        const started = Date.now();
        const created = await box.api('POST', '/jobs', {
          image: box.workerImage,
          args: ['--input', 'gs://box-data/wine.csv', '--target', 'cultivar'],
        });
        expect(created.status, JSON.stringify(created.body)).toBe(201);
        const job = (created.body as Job).id;
        const done = await expectLanded(job, `runs/${job}/`);
        // A run that names an image goes to a VM: a Cloud Run execution cannot override its job's image.
        expect(done.target).toBe('vm');
        const model = JSON.parse(box.gcs.get(OUTPUT_BUCKET, `runs/${job}/model.json`)!.body.toString());
        expect(model.target).toBe('cultivar');
        timings['VM container run (POST /jobs, wine CSV)'] = successAt(done) - started;
        ended.container = done;
      });

      it('a task that exits 3 is retried, and its second attempt succeeds', async () => {
        const started = Date.now();
        const created = await box.api('POST', '/jobs', {
          image: box.taskImage,
          args: ['sh', '-c', 'echo "attempt $ATTEMPT"; test "$ATTEMPT" -ge 2 || exit 3'],
        });
        expect(created.status, JSON.stringify(created.body)).toBe(201);
        const job = (created.body as Job).id;
        const done = await box.waitForEnd(job, 600_000);
        expect(done.state, JSON.stringify(done.history)).toBe('SUCCEEDED');
        timings['VM task, exit 3, retried after the 30 s backoff (to its end)'] =
          Date.parse(done.finishedAt!) - started;
        expect(done.attempts.map((a) => [a.attempt, a.outcome, a.exitCode])).toEqual([
          [1, 'failed', 3],
          [2, 'succeeded', 0],
        ]);
        // The reason of the failure, from the task's own output, and each attempt's log in the bucket.
        expect(done.attempts[0]!.error).toContain('attempt 1');
        const log = (n: number) =>
          box.gcs.get(OUTPUT_BUCKET, `runs/${job}/logs/attempt-${n}.log`)?.body.toString();
        expect(log(1)).toContain('attempt 1');
        expect(log(2)).toContain('attempt 2');
        expect(await box.vmHost.vmsOf(job)).toHaveLength(2);
        ended.retried = done;
      });

      it('a spot VM preempted three times falls back to a standard VM, which finishes', async () => {
        // Big enough that the task is still running when the preemption comes.
        const file = path.join(dir, 'statements.csv');
        const [header, ...rows] = fs.readFileSync(SAMPLE, 'utf8').trimEnd().split('\n');
        fs.writeFileSync(file, `${[header, ...Array.from({ length: 40 }, () => rows).flat()].join('\n')}\n`);
        const started = Date.now();
        const { job, generation } = await submit(file, 'preempted/statements.csv', ['--runtime', 'vm']);
        const done = await expectLanded(job, `preempted/statements.csv/${generation}/`, 840_000);
        timings['VM preempted 3 times, then standard (5.5 MB CSV)'] = successAt(done) - started;
        expect(done.attempts.map((a) => a.outcome)).toEqual([
          'preempted',
          'preempted',
          'preempted',
          'succeeded',
        ]);
        const vms = await box.vmHost.vmsOf(job);
        expect(vms.map((vm) => [vm.spot, vm.preempted])).toEqual([
          [true, true],
          [true, true],
          [true, true],
          [false, false],
        ]);
        ended.preempted = done;
      });
    });

    it('the CLI and the dashboard show every job, and nothing is left running', async () => {
      const jobs = Object.values(ended);
      expect(jobs).toHaveLength(6);
      for (const job of jobs) {
        const shown = await box.cli(['job', job.id]);
        expect(shown.code, shown.stderr).toBe(0);
        expect(shown.stdout).toContain(job.id);
        expect(shown.stdout).toMatch(/SUCCEEDED/);
      }
      const listed = await box.cli(['jobs', '--state', 'SUCCEEDED']);
      for (const job of jobs) expect(listed.stdout).toContain(job.id.slice(0, 8));

      const browser = await chromium.launch({ executablePath: CHROMIUM, args: CHROMIUM_ARGS });
      try {
        const page = await browser.newPage();
        await page.goto(`${box.url}/#/jobs`);
        for (const job of jobs)
          await page.locator(`tr[data-id="${job.id}"][data-state="SUCCEEDED"]`).waitFor({ timeout: 20_000 });
      } finally {
        await browser.close();
      }

      // Every job's transitions reached the job-events topic, its end with its outputs; the state
      // attribute, which a subscription's filter reads, is the event's; an event id names one
      // transition (a redelivery repeats it whole).
      const { received, malformed } = box.jobEvents;
      expect(malformed).toEqual([]);
      for (const job of jobs) {
        const own = received.filter(({ event }) => event.jobId === job.id).map(({ event }) => event);
        expect(
          own.map((event) => event.state),
          job.id,
        ).toEqual(expect.arrayContaining(['QUEUED', 'LAUNCHED', 'SUCCEEDED']));
        const result = own.find((event) => event.state === 'SUCCEEDED');
        expect(result?.outputs?.startsWith(`gs://${OUTPUT_BUCKET}/`), job.id).toBe(true);
      }
      const byId = new Map<string, string>();
      for (const { event, attributes } of received) {
        expect(attributes).toMatchObject({ state: event.state, eventId: event.eventId, jobId: event.jobId });
        const key = `${event.jobId} ${event.state} ${event.version}`;
        expect(byId.get(event.eventId) ?? key, event.eventId).toBe(key);
        byId.set(event.eventId, key);
      }

      expect(await box.settled()).toEqual([]);
      expect(await box.leftovers()).toEqual({ containers: [], instances: [], executions: 0 });
      const deadLetters = await box.api('GET', '/deadletters');
      expect(deadLetters.body).toEqual({ messages: [] });
    }, 120_000);

    it('catches a broken contract: a dispatcher that reads the completion under another name', async () => {
      // The dispatcher's image with core's completion parser renamed (jobId read as job_id), as if one
      // side of the message had changed without the other: the worker's report is refused, and the
      // job is closed only by the reconciler, which the suite's check does not take for a pass.
      const parser = path.join(box.dir, 'completion.ts');
      const source = fs.readFileSync(path.join(ROOT, 'packages/core/src/completion.ts'), 'utf8');
      fs.writeFileSync(parser, source.replaceAll('c.jobId', 'c.job_id'));
      fs.chmodSync(parser, 0o644);
      await box.startDispatcher(images.dispatcher, [
        { host: parser, container: '/app/packages/core/src/completion.ts' },
      ]);
      const { job, generation } = await submit(SAMPLE, 'contract/statements.csv');
      const failure = await expectLanded(job, `contract/statements.csv/${generation}/`).then(
        () => undefined,
        (err: Error) => err,
      );
      expect(failure?.message).toMatch(/not by its completion/);
      expect(failure?.message).toContain('malformed completion refused: the completion has no valid jobId');
    }, 420_000);

    /** Uploads FILE as NAME through `pipeline submit --bucket`; the job and the object's generation. */
    async function submit(file: string, name: string, flags: string[] = []) {
      const result = await box.cli([
        'submit',
        file,
        '--bucket',
        INPUT_BUCKET,
        '--name',
        name,
        '--json',
        ...flags,
      ]);
      expect(result.code, result.stderr).toBe(0);
      const submitted = JSON.parse(result.stdout.trim().split('\n').at(-1)!) as {
        job: string;
        generation: string;
      };
      return submitted;
    }

    /**
     * The job SUCCEEDED as its own completion reported it, and its outputs are complete: `_SUCCESS`
     * under `prefix`, naming the job and its last attempt. A job that the reconciler had to close
     * (its completion was lost or refused) does not pass: the path of the message failed.
     */
    async function expectLanded(id: string, prefix: string, timeoutMs = 300_000): Promise<Job> {
      const job = await box.waitForEnd(id, timeoutMs);
      if (job.state !== 'SUCCEEDED')
        throw new Error(`job ${id} is ${job.state}: ${job.error ?? ''} ${JSON.stringify(job.history)}`);
      const success = job.history.findLast((h) => h.to === 'SUCCEEDED');
      if (success?.detail !== 'exit code 0') {
        const refused = (await box.dispatcherLog())
          .split('\n')
          .filter((line) => line.includes('malformed completion refused'))
          .map((line) => `malformed completion refused: ${JSON.parse(line).reason}`);
        // What each VM's console (the start-up script's and the agent's lines) ended with.
        const consoles = (await box.vmHost.vmsOf(id)).map((vm) => {
          const file = path.join(box.dir, 'vms', vm.name, 'console.log');
          const text = fs.existsSync(file) ? fs.readFileSync(file, 'utf8') : '(no console)';
          return `${vm.name}: …${text.slice(-1200)}`;
        });
        throw new Error(
          `job ${id} was closed by the reconciler, not by its completion (${success?.detail}); ${[...new Set(refused)].join('; ')}\n${consoles.join('\n')}`,
        );
      }
      const marker = box.gcs.get(OUTPUT_BUCKET, `${prefix}_SUCCESS`);
      if (marker === undefined) throw new Error(`no ${prefix}_SUCCESS in gs://${OUTPUT_BUCKET}`);
      expect(JSON.parse(marker.body.toString())).toMatchObject({ jobId: id, attempt: job.attempt });
      expect(box.gcs.get(OUTPUT_BUCKET, `${prefix}model.json`)).toBeDefined();
      return job;
    }

    /** When the job's `_SUCCESS` was written, by the Storage double's clock. */
    function successAt(job: Job): number {
      const name = job.outputUri!.replace(`gs://${OUTPUT_BUCKET}/`, '');
      const created = box.gcs.created.findLast(
        (o) => o.bucket === OUTPUT_BUCKET && o.name === `${name}_SUCCESS`,
      );
      return Date.parse(created!.timeCreated);
    }
  });
});
