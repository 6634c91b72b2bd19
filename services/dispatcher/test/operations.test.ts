// Operations through the HTTP API, with launchers that record what they were asked and answer
// inspect as told, and a clock the test moves: lost completions, timeouts, retries, preemptions,
// schedules, cancel, retry and logs.
import fs from 'node:fs';
import path from 'node:path';
import request from 'supertest';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { parseRoutingConfig, transition, type Job } from '@pipeline/core';
import { testApp } from './support.ts';

const T0 = Date.parse('2026-11-22T10:00:00.000Z');

const ROUTING = parseRoutingConfig({
  rules: [
    {
      name: 'spot-vm',
      match: { runtime: 'vm' },
      target: 'vm',
      job: { task: 'logreg', spot: true, timeout: '1h' },
      retry: { maxAttempts: 1, spotFallbackAfter: 3 },
    },
    {
      name: 'containers',
      target: 'cloud-run-job',
      job: { cpu: 1, memory: '2GiB', timeout: '1h' },
      retry: { maxAttempts: 3, backoff: '30s', noRetryExitCodes: [4] },
    },
  ],
});

type T = ReturnType<typeof testApp>;
let t: T;
let clock: number;
const advance = (seconds: number) => {
  clock += seconds * 1000;
};

beforeEach(() => {
  clock = T0;
  t = testApp('acme-pipeline-output', { routing: ROUTING, now: () => new Date(clock) });
});
afterEach(() => t.cleanup());

const job = async (id: string): Promise<Job> => (await t.ledger.get(id))!;
const reconcile = async () => (await request(t.app).post('/reconcile').expect(200)).body;
const completion = (jobId: string, attempt: number, exitCode: number, extra: object = {}) => ({
  message: {
    data: Buffer.from(
      JSON.stringify({ jobId, attempt, exitCode, finishedAt: new Date(clock).toISOString(), ...extra }),
    ).toString('base64'),
    messageId: `${jobId}-${attempt}-${exitCode}`,
  },
  subscription: 'projects/p/subscriptions/completions',
});
const complete = (jobId: string, attempt: number, exitCode: number, extra: object = {}) =>
  request(t.app)
    .post('/pubsub/completions')
    .send(completion(jobId, attempt, exitCode, extra))
    .expect(204);

async function submitTask(body: object = {}): Promise<string> {
  const res = await request(t.app)
    .post('/jobs')
    .send({ task: 'logreg', ...body })
    .expect(201);
  return res.body.id as string;
}

describe('the reconciler', () => {
  it('closes a run whose completion was lost as its platform reports it, once', async () => {
    const id = await submitTask();
    const launched = await job(id);
    expect(launched).toMatchObject({ state: 'LAUNCHED', execution: 'recorded-1' });
    expect(await reconcile()).toMatchObject({ checked: 1, closed: [] }); // still running: nothing to do

    t.launchers['cloud-run-job'].statuses.set('recorded-1', { kind: 'ended', exitCode: 0 });
    const [first, second] = await Promise.all([reconcile(), reconcile()]); // two passes at once
    expect([...first.closed, ...second.closed]).toEqual([
      { id, state: 'SUCCEEDED', detail: 'the platform reports exit code 0; its completion never arrived' },
    ]);
    const closed = await job(id);
    expect(closed).toMatchObject({ state: 'SUCCEEDED', exitCode: 0 });
    expect(closed.attempts[0]).toMatchObject({ attempt: 1, outcome: 'succeeded', exitCode: 0 });

    await complete(id, 1, 0); // the completion turns up late: nothing changes
    expect((await job(id)).version).toBe(closed.version);
  });

  it('launches nothing once its queue is closed (the local pipeline stopping): jobs wait QUEUED', async () => {
    await t.dispatcher.queue.close();
    const id = await submitTask();
    expect(await job(id)).toMatchObject({ state: 'QUEUED' });
    expect(t.launchers['cloud-run-job'].launched).toHaveLength(0);
    expect(await t.dispatcher.queue.kick(1000)).toBe(false);
  });

  it('finds the _SUCCESS of a job routed before per-job prefixes where that job wrote it', async () => {
    const id = await submitTask();
    // As the ledger holds a job launched by an earlier version: its outputs under jobs/<id>/.
    const current = await job(id);
    const legacy = {
      ...current,
      version: current.version + 1,
      outputUri: `${path.join(t.dir, 'out', 'jobs', id)}/`,
    };
    expect(await t.ledger.update(legacy)).toBe(true);
    const marker = path.join(t.dir, 'out', 'jobs', id, '_SUCCESS');
    fs.mkdirSync(path.dirname(marker), { recursive: true });
    fs.writeFileSync(
      marker,
      JSON.stringify({ jobId: id, attempt: 1, finishedAt: new Date(clock).toISOString() }),
    );
    t.launchers['cloud-run-job'].statuses.set('recorded-1', { kind: 'gone' });
    await reconcile();
    advance(180);
    await reconcile();
    expect(await job(id)).toMatchObject({ state: 'SUCCEEDED', attempt: 1 });
  });

  it("retries a run its platform forgot without a completion or this attempt's _SUCCESS; succeeds with it", async () => {
    const id = await submitTask();
    t.launchers['cloud-run-job'].statuses.set('recorded-1', { kind: 'gone' });
    await reconcile(); // noticed gone: its completion may still be on its way
    expect(await job(id)).toMatchObject({ state: 'LAUNCHED', attempt: 1 });
    expect((await job(id)).attempts[0].goneAt).toBe('2026-11-22T10:00:00.000Z');
    advance(179);
    await reconcile();
    expect((await job(id)).state).toBe('LAUNCHED');
    advance(1);
    await reconcile();
    expect(await job(id)).toMatchObject({
      state: 'SCHEDULED',
      attempt: 2,
      runAt: '2026-11-22T10:03:30.000Z',
    });
    expect((await job(id)).attempts[0]).toMatchObject({ outcome: 'lost' });

    advance(29);
    expect((await reconcile()).launched).toEqual([]);
    advance(1);
    expect((await reconcile()).launched).toEqual([id]);
    const second = await job(id);
    expect(second).toMatchObject({ state: 'LAUNCHED', attempt: 2, execution: 'recorded-2' });
    expect(second.logsUri).toMatch(/logs\/attempt-2\.log$/);
    expect(t.launchers['cloud-run-job'].launched[1].env.ATTEMPT).toBe('2');

    // A marker of another attempt (the name is shared) does not count.
    const marker = path.join(t.dir, 'out', 'runs', id, '_SUCCESS');
    fs.mkdirSync(path.dirname(marker), { recursive: true });
    fs.writeFileSync(marker, JSON.stringify({ jobId: id, attempt: 1 }));
    t.launchers['cloud-run-job'].statuses.set('recorded-2', { kind: 'gone' });
    await reconcile();
    advance(180);
    await reconcile();
    expect(await job(id)).toMatchObject({ state: 'SCHEDULED', attempt: 3 });

    // Attempt 3 wrote its outputs, then its completion was lost and its execution forgotten.
    advance(120);
    await reconcile();
    expect(await job(id)).toMatchObject({ state: 'LAUNCHED', attempt: 3, execution: 'recorded-3' });
    fs.writeFileSync(
      marker,
      JSON.stringify({ jobId: id, attempt: 3, finishedAt: new Date(clock).toISOString() }),
    );
    t.launchers['cloud-run-job'].statuses.set('recorded-3', { kind: 'gone' });
    await reconcile();
    advance(180);
    await reconcile();
    expect(await job(id)).toMatchObject({ state: 'SUCCEEDED', attempt: 3 });
  });

  it('stops and fails a run past its timeout', async () => {
    const id = await submitTask();
    advance(3600 + 15 * 60); // the timeout plus the grace: not yet
    expect((await reconcile()).timedOut).toEqual([]);
    advance(1);
    const report = await reconcile();
    expect(report.timedOut).toEqual([id]);
    expect(t.launchers['cloud-run-job'].cancelled).toEqual(['recorded-1']);
    const failed = await job(id);
    expect(failed.state).toBe('FAILED'); // a timeout is not retried
    expect(failed.error).toMatch(/^timed out: still not ended at its deadline 2026-11-22T11:15:00.000Z/);
    expect(failed.attempts[0].outcome).toBe('timed-out');
  });

  it('takes over a claim whose dispatcher died before launching', async () => {
    const id = await submitTask({ runAt: new Date(T0 + 60_000).toISOString() });
    // Simulate a claimer that won SCHEDULED -> RECEIVED and died.
    const scheduled = await job(id);
    await t.ledger.update({
      ...scheduled,
      state: 'RECEIVED',
      version: scheduled.version + 1,
      updatedAt: new Date(T0).toISOString(),
    });
    advance(10 * 60);
    expect((await reconcile()).takenOver).toEqual([]);
    advance(1);
    const [a, b] = await Promise.all([reconcile(), reconcile()]);
    expect([...a.takenOver, ...b.takenOver]).toEqual([id]);
    expect(await job(id)).toMatchObject({ state: 'LAUNCHED', execution: 'recorded-1' });
    expect(t.launchers['cloud-run-job'].launched).toHaveLength(1);
  });
});

describe('retries', () => {
  it('retries an exit code that retries after its backoff, and fails at once on one that does not', async () => {
    const id = await submitTask();
    await complete(id, 1, 3);
    const waiting = await job(id);
    expect(waiting).toMatchObject({ state: 'SCHEDULED', attempt: 2, exitCode: 3 });
    expect(waiting.history.at(-1)?.detail).toBe(
      'the attempt failed with exit code 3 (failure 1 of 3): retrying in 30s',
    );
    advance(30);
    await reconcile();
    expect(await job(id)).toMatchObject({ state: 'LAUNCHED', attempt: 2 });
    await complete(id, 1, 3); // a repeat of attempt 1's report changes nothing
    expect((await job(id)).state).toBe('LAUNCHED');

    await complete(id, 2, 4);
    const failed = await job(id);
    expect(failed).toMatchObject({ state: 'FAILED', attempt: 2, exitCode: 4 });
    expect(failed.history.at(-1)?.detail).toBe(
      'the attempt failed with exit code 4: exit code 4 is not retried',
    );
    expect(failed.attempts.map((a) => [a.attempt, a.outcome, a.exitCode])).toEqual([
      [1, 'failed', 3],
      [2, 'failed', 4],
    ]);
  });

  it('fails after the last attempt', async () => {
    const id = await submitTask();
    for (const attempt of [1, 2, 3]) {
      await complete(id, attempt, 1);
      advance(600);
      await reconcile();
    }
    expect(await job(id)).toMatchObject({ state: 'FAILED', attempt: 3 });
    expect(t.launchers['cloud-run-job'].launched).toHaveLength(3);
  });

  it('runs on a standard VM after three preemptions on spot', async () => {
    // The spot rule matches objects whose metadata asks for a VM.
    const input = path.join(t.dir, 'in', 'big.csv');
    fs.mkdirSync(path.dirname(input), { recursive: true });
    fs.writeFileSync(input, 'a,label\n1,0\n');
    fs.mkdirSync(path.join(t.dir, '.metadata', 'acme-pipeline-input'), { recursive: true });
    fs.writeFileSync(
      path.join(t.dir, '.metadata', 'acme-pipeline-input', 'big.csv.json'),
      JSON.stringify({ metadata: { 'pipeline-runtime': 'vm' } }),
    );
    const created = await request(t.app)
      .post('/jobs')
      .send({ inputUri: 'gs://acme-pipeline-input/big.csv' })
      .expect(201);
    const id = created.body.id as string;
    for (const attempt of [1, 2, 3]) {
      await complete(id, attempt, 137, { preempted: true, error: 'preempted' });
    }
    const vm = t.launchers.vm.launched;
    expect(vm.map((l) => [l.job.attempt, l.job.template?.spot])).toEqual([
      [1, true],
      [2, true],
      [3, true],
      [4, false],
    ]);
    const fourth = await job(id);
    expect(fourth).toMatchObject({ state: 'LAUNCHED', attempt: 4 });
    expect(fourth.attempts.map((a) => [a.outcome, a.spot])).toEqual([
      ['preempted', true],
      ['preempted', true],
      ['preempted', true],
      [undefined, false],
    ]);
    // Preemptions do not use up the rule's single attempt: a failure now ends it.
    await complete(id, 4, 1);
    expect(await job(id)).toMatchObject({ state: 'FAILED', attempt: 4 });
  });
});

describe('scheduled jobs', () => {
  it('launch when due and not before, once when two reconcilers run at once', async () => {
    const runAt = new Date(T0 + 5 * 60_000).toISOString();
    const id = await submitTask({ runAt });
    expect(await job(id)).toMatchObject({ state: 'SCHEDULED', runAt });
    advance(5 * 60 - 1);
    expect((await reconcile()).launched).toEqual([]);
    advance(1);
    const passes = await Promise.all([reconcile(), reconcile(), reconcile()]);
    expect(passes.flatMap((p) => p.launched)).toEqual([id]);
    expect(t.launchers['cloud-run-job'].launched).toHaveLength(1);
    expect(await job(id)).toMatchObject({ state: 'LAUNCHED', attempt: 1 });
  });

  it('repeat on a cron schedule: each occurrence launches once and makes the next', async () => {
    const res = await request(t.app).post('/jobs').send({ task: 'logreg', cron: '*/10 * * * *' }).expect(201);
    const first = res.body.job as Job;
    expect(first).toMatchObject({ state: 'SCHEDULED', runAt: '2026-11-22T10:10:00.000Z' });
    advance(10 * 60);
    const passes = await Promise.all([reconcile(), reconcile()]);
    expect(passes.flatMap((p) => p.launched)).toEqual([first.id]);
    const scheduled = (await request(t.app).get('/jobs?state=SCHEDULED').expect(200)).body.jobs as Job[];
    expect(scheduled.map((j) => [j.runAt, j.schedule?.cron])).toEqual([
      ['2026-11-22T10:20:00.000Z', '*/10 * * * *'],
    ]);
    advance(10 * 60);
    await Promise.all([reconcile(), reconcile()]);
    expect(t.launchers['cloud-run-job'].launched).toHaveLength(2);
  });

  it('keeps a series going when the claimer of an occurrence died before making the next', async () => {
    const res = await request(t.app).post('/jobs').send({ task: 'logreg', cron: '*/10 * * * *' }).expect(201);
    const first = res.body.job as Job;
    advance(10 * 60);
    // A claimer wins SCHEDULED -> RECEIVED and dies before making the next occurrence or launching.
    await t.ledger.update(transition(first, 'RECEIVED', new Date(clock).toISOString(), {}, 'due'));
    advance(10 * 60 + 1); // past the lease
    expect((await reconcile()).takenOver).toEqual([first.id]);
    const scheduled = (await request(t.app).get('/jobs?state=SCHEDULED').expect(200)).body.jobs as Job[];
    // The next time after the claim (10:10), not after now: the same occurrence the claimer would have made.
    expect(scheduled.map((j) => j.runAt)).toEqual(['2026-11-22T10:20:00.000Z']);
  });

  it('never schedules work on an object of the output bucket', async () => {
    const out = path.join(t.dir, 'out', 'result.csv');
    fs.mkdirSync(path.dirname(out), { recursive: true });
    fs.writeFileSync(out, 'a\n');
    const res = await request(t.app)
      .post('/jobs')
      .send({ inputUri: 'gs://acme-pipeline-output/result.csv', runAt: new Date(T0 + 60_000).toISOString() })
      .expect(400);
    expect(res.body.error).toBe('objects in the output bucket never start work');
  });

  it('refuses a bad schedule', async () => {
    const cron = await request(t.app).post('/jobs').send({ task: 'logreg', cron: '61 * * * *' }).expect(400);
    expect(cron.body.error).toBe('cron "61 * * * *": minute "61" is not in 0-59');
    const both = await request(t.app)
      .post('/jobs')
      .send({ task: 'logreg', cron: '* * * * *', runAt: '2026-11-23T00:00:00Z' })
      .expect(400);
    expect(both.body.error).toBe('give runAt or cron, not both');
    const when = await request(t.app).post('/jobs').send({ task: 'logreg', runAt: 'tomorrow' }).expect(400);
    expect(when.body.error).toMatch(/^runAt must be an ISO 8601 time/);
  });
});

describe('cancel and retry', () => {
  it('cancel stops the execution on its platform; the job ends CANCELLED and can be retried', async () => {
    const id = await submitTask();
    const res = await request(t.app).post(`/jobs/${id}/cancel`).expect(200);
    expect(res.body).toMatchObject({ id, state: 'CANCELLED' });
    expect(t.launchers['cloud-run-job'].cancelled).toEqual(['recorded-1']);
    expect((await job(id)).attempts[0].outcome).toBe('cancelled');

    const again = await request(t.app).post(`/jobs/${id}/cancel`).expect(409);
    expect(again.body.error).toBe(`job ${id} is CANCELLED; only a job not yet ended can be cancelled`);
    await complete(id, 1, 143); // the stopped run's own report changes nothing
    expect((await job(id)).state).toBe('CANCELLED');

    const retried = await request(t.app).post(`/jobs/${id}/retry`).expect(200);
    expect(retried.body).toMatchObject({ state: 'LAUNCHED', attempt: 2, execution: 'recorded-2' });
    const conflict = await request(t.app).post(`/jobs/${id}/retry`).expect(409);
    expect(conflict.body.error).toBe(`job ${id} is LAUNCHED; only FAILED or CANCELLED jobs can be retried`);
  });

  it('stops what a launch under way started, when the job was cancelled meanwhile', async () => {
    const run = t.launchers['cloud-run-job'];
    let release!: () => void;
    run.gate = new Promise((resolve) => (release = resolve));
    const submitted = request(t.app)
      .post('/jobs')
      .send({ task: 'logreg' })
      .then((res) => res);
    const id = await (async () => {
      for (;;) {
        const { jobs } = await t.ledger.list({ state: 'LAUNCHED', limit: 1 });
        if (jobs[0] !== undefined) return jobs[0].id;
        await new Promise((resolve) => setTimeout(resolve, 5));
      }
    })();
    const res = await request(t.app).post(`/jobs/${id}/cancel`).expect(200);
    expect(res.body).toMatchObject({ state: 'CANCELLED' });
    expect(run.cancelled).toEqual([]); // nothing to stop yet
    release();
    await submitted;
    expect(run.cancelled).toEqual(['recorded-1']);
    expect(await job(id)).toMatchObject({ state: 'CANCELLED', execution: 'recorded-1' });
  });

  it('stops the new attempt too when a retry launched it while the old one was being stopped', async () => {
    const id = await submitTask();
    const run = t.launchers['cloud-run-job'];
    run.onCancel = async (execution) => {
      // The old attempt reports a preemption just as it is stopped: attempt 2 launches at once.
      if (execution === 'recorded-1') await complete(id, 1, 137, { preempted: true });
    };
    const res = await request(t.app).post(`/jobs/${id}/cancel`).expect(200);
    expect(res.body).toMatchObject({ state: 'CANCELLED', attempt: 2, execution: 'recorded-2' });
    expect(run.cancelled).toEqual(['recorded-1', 'recorded-2']);
    expect((await job(id)).history.at(-1)?.detail).toBe('cancelled by request; recorded-2 was stopped');
  });

  it('cancel of a scheduled job never launches it', async () => {
    const id = await submitTask({ runAt: new Date(T0 + 60_000).toISOString() });
    await request(t.app).post(`/jobs/${id}/cancel`).expect(200);
    advance(120);
    await reconcile();
    expect(t.launchers['cloud-run-job'].launched).toHaveLength(0);
    expect((await job(id)).state).toBe('CANCELLED');
  });

  it('answers 404 for a job that does not exist', async () => {
    await request(t.app)
      .post(`/jobs/${'f'.repeat(32)}/cancel`)
      .expect(404);
    await request(t.app).post('/jobs/nope/retry').expect(404);
  });
});

describe('GET /jobs/:id/logs', () => {
  it('serves the tail, or from an offset, of the attempt log', async () => {
    const id = await submitTask();
    const { logsUri } = await job(id);
    const empty = await request(t.app).get(`/jobs/${id}/logs`).expect(200);
    expect(empty.text).toBe('');
    expect(empty.headers['x-log-size']).toBe('0');
    fs.mkdirSync(path.dirname(logsUri!), { recursive: true });
    fs.writeFileSync(logsUri!, 'line one\nline two\nline three\n');
    const tail = await request(t.app).get(`/jobs/${id}/logs?tail=11`).expect(200);
    expect(tail.text).toBe('line three\n');
    expect(tail.headers).toMatchObject({
      'x-log-size': '29',
      'x-next-offset': '29',
      'x-attempt': '1',
      'x-job-state': 'LAUNCHED',
    });
    expect(tail.headers['content-type']).toBe('text/plain; charset=utf-8');
    const from = await request(t.app).get(`/jobs/${id}/logs?offset=9`).expect(200);
    expect(from.text).toBe('line two\nline three\n');
    await request(t.app).get(`/jobs/${id}/logs?attempt=2`).expect(404);
    await request(t.app).get(`/jobs/${id}/logs?offset=-1`).expect(400);

    // While attempt 2 waits out its backoff, its log is empty, not attempt 1's.
    await complete(id, 1, 3);
    expect((await job(id)).state).toBe('SCHEDULED');
    const waiting = await request(t.app).get(`/jobs/${id}/logs`).expect(200);
    expect([waiting.text, waiting.headers['x-attempt']]).toEqual(['', '2']);
    const first = await request(t.app).get(`/jobs/${id}/logs?attempt=1`).expect(200);
    expect(first.text).toBe('line one\nline two\nline three\n');
  });
});

describe('local mode (no identity checks)', () => {
  it('refuses a change requested by another site, and lets tools and the page itself through', async () => {
    const id = await submitTask({ runAt: new Date(T0 + 60_000).toISOString() });
    const foreign = await request(t.app)
      .post(`/jobs/${id}/cancel`)
      .set('Origin', 'https://evil.example')
      .expect(403);
    expect(foreign.body.error).toBe('requests from another site may not change anything here');
    await request(t.app).post(`/jobs/${id}/cancel`).set('Sec-Fetch-Site', 'cross-site').expect(403);
    expect((await job(id)).state).toBe('SCHEDULED');
    await request(t.app).get('/jobs').set('Origin', 'https://evil.example').expect(200);
    await request(t.app)
      .post(`/jobs/${id}/cancel`)
      .set('Host', '127.0.0.1:8080')
      .set('Origin', 'http://127.0.0.1:8080')
      .set('Sec-Fetch-Site', 'same-origin')
      .expect(200);
  });

  it('answers only to host names of this machine (no DNS rebinding)', async () => {
    const res = await request(t.app).get('/jobs').set('Host', 'rebind.evil.example:8080').expect(403);
    expect(res.body.error).toBe('this local pipeline answers only to localhost, 127.0.0.1, [::1]');
    await request(t.app).get('/jobs').set('Host', 'localhost:8080').expect(200);
    await request(t.app).get('/jobs').set('Host', '[::1]:8080').expect(200);
  });
});
