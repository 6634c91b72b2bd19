import fs from 'node:fs';
import path from 'node:path';
import request from 'supertest';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { jobIdFor, parseRoutingConfig, type Job } from '@pipeline/core';
import { testApp } from './support.ts';

const FIXTURE = JSON.parse(
  fs.readFileSync(
    path.resolve(import.meta.dirname, '../../../packages/core/test/fixtures/gcs-object-finalize.push.json'),
    'utf8',
  ),
);
const RESOURCE = JSON.parse(Buffer.from(FIXTURE.message.data, 'base64').toString('utf8'));

/** A push body for an object, in the fixture's shape. */
function push(object: Partial<typeof RESOURCE> & { eventType?: string } = {}) {
  const { eventType = 'OBJECT_FINALIZE', ...fields } = object;
  const resource = { ...RESOURCE, ...fields };
  return {
    ...FIXTURE,
    message: {
      ...FIXTURE.message,
      attributes: {
        ...FIXTURE.message.attributes,
        eventType,
        bucketId: resource.bucket,
        objectId: resource.name,
        objectGeneration: resource.generation,
      },
      data: Buffer.from(JSON.stringify(resource)).toString('base64'),
    },
  };
}

let t: ReturnType<typeof testApp>;
beforeEach(() => {
  t = testApp();
});
afterEach(() => t.cleanup());

describe('POST /pubsub/push', () => {
  it('claims, routes and launches a new object version, with the worker environment', async () => {
    const res = await request(t.app).post('/pubsub/push').send(FIXTURE).expect(201);
    const id = jobIdFor(
      'acme-pipeline-input',
      'statements/2026/q3/financial_statements.csv',
      '1763771234567890',
    );
    expect(res.body).toMatchObject({ id, state: 'LAUNCHED', duplicate: false });
    const [launch] = t.launchers['vm'].launched; // 1 MiB: rule "big"
    expect(t.launchers['cloud-run-job'].launched).toHaveLength(0);
    expect(launch.env).toEqual({
      INPUT_URI: path.join(t.dir, 'in/statements/2026/q3/financial_statements.csv'),
      INPUT_GENERATION: '1763771234567890',
      OUTPUT_URI: `${path.join(t.dir, 'out/statements/2026/q3/financial_statements.csv/1763771234567890')}/`,
      JOB_ID: id,
      ATTEMPT: '1',
      TASK: 'logreg',
    });
    const job = (await t.ledger.get(id))!;
    expect(job).toMatchObject({ state: 'LAUNCHED', rule: 'big', target: 'vm', execution: 'recorded-1' });
    expect(job.reason).toContain('big');
    const jobLines = t.logs.filter((l) => l.jobId === id);
    expect(jobLines.length).toBeGreaterThan(0);
    for (const line of jobLines)
      expect(line).toMatchObject({
        severity: 'INFO',
        object: 'acme-pipeline-input/statements/2026/q3/financial_statements.csv#1763771234567890',
      });
  });

  it('acknowledges a second delivery of the same generation and launches nothing', async () => {
    await request(t.app).post('/pubsub/push').send(FIXTURE).expect(201);
    const again = await request(t.app).post('/pubsub/push').send(FIXTURE).expect(200);
    expect(again.body).toMatchObject({ duplicate: true, state: 'LAUNCHED' });
    expect(t.launchers.vm.launched).toHaveLength(1);
  });

  it('makes exactly one job of 20 concurrent deliveries of one event', async () => {
    const answers = await Promise.all(
      Array.from({ length: 20 }, () => request(t.app).post('/pubsub/push').send(FIXTURE)),
    );
    expect(answers.filter((a) => a.status === 201)).toHaveLength(1);
    expect(answers.filter((a) => a.status === 200)).toHaveLength(19);
    expect(t.launchers.vm.launched).toHaveLength(1);
    expect((await t.ledger.list({ limit: 50 })).jobs).toHaveLength(1);
  });

  it('makes a new job for a new generation of the same path', async () => {
    await request(t.app)
      .post('/pubsub/push')
      .send(push({ generation: '1' }))
      .expect(201);
    await request(t.app)
      .post('/pubsub/push')
      .send(push({ generation: '2' }))
      .expect(201);
    expect(t.launchers.vm.launched.map((l) => l.env.INPUT_GENERATION)).toEqual(['1', '2']);
  });

  it('routes by object metadata, and small files to Cloud Run', async () => {
    await request(t.app)
      .post('/pubsub/push')
      .send(push({ size: '10', generation: '5', metadata: { 'pipeline-runtime': 'vm' } }))
      .expect(201);
    await request(t.app)
      .post('/pubsub/push')
      .send(push({ size: '10', generation: '6', metadata: {} }))
      .expect(201);
    expect(t.launchers.vm.launched).toHaveLength(1);
    expect(t.launchers['cloud-run-job'].launched).toHaveLength(1);
    expect(t.launchers['cloud-run-job'].launched[0].env.TARGET_COLUMN).toBe('label');
  });

  it('records an ignored object as IGNORED with the rule named', async () => {
    const res = await request(t.app)
      .post('/pubsub/push')
      .send(push({ name: 'photos/cat.png', size: '10' }))
      .expect(201);
    expect(res.body.job).toMatchObject({ state: 'IGNORED', rule: 'skip-images' });
    expect(res.body.job.reason).toContain('skip-images');
  });

  it('records a launch that fails as FAILED with the platform error, and keeps serving', async () => {
    t.launchers.vm.failWith = new Error('quota exceeded for CPUS in us-central1');
    const res = await request(t.app).post('/pubsub/push').send(FIXTURE).expect(201);
    expect(res.body.job).toMatchObject({
      state: 'FAILED',
      error: 'launch on vm failed: quota exceeded for CPUS in us-central1',
    });
    await request(t.app).get('/healthz').expect(200, { status: 'ok' });
  });

  it.each([['OBJECT_DELETE'], ['OBJECT_ARCHIVE'], ['OBJECT_METADATA_UPDATE']])(
    'acknowledges %s with 204 and starts nothing',
    async (eventType) => {
      await request(t.app).post('/pubsub/push').send(push({ eventType })).expect(204);
      expect((await t.ledger.list({ limit: 10 })).jobs).toHaveLength(0);
    },
  );

  it('acknowledges objects of the output bucket without work (no loops)', async () => {
    await request(t.app)
      .post('/pubsub/push')
      .send(push({ bucket: 'acme-pipeline-output' }))
      .expect(204);
    expect((await t.ledger.list({ limit: 10 })).jobs).toHaveLength(0);
  });

  it('acknowledges a message that is not a storage notification with 204', async () => {
    await request(t.app)
      .post('/pubsub/push')
      .send({ message: { data: Buffer.from('{"hi":1}').toString('base64'), messageId: '1' } })
      .expect(204);
  });

  it.each([
    {
      name: 'not JSON',
      send: (r: request.Test) => r.set('content-type', 'application/json').send('{"message":'),
      error: /JSON|Unexpected|Expected/,
    },
    {
      name: 'not an envelope',
      send: (r: request.Test) => r.send({ hello: 'world' }),
      error: /not a Pub\/Sub push envelope/,
    },
    {
      name: 'data not base64 JSON',
      send: (r: request.Test) =>
        r.send({ ...FIXTURE, message: { ...FIXTURE.message, data: 'bm90IGpzb24=' } }),
      error: /not base64 of a JSON object/,
    },
    {
      name: 'an unknown event type',
      send: (r: request.Test) => r.send(push({ eventType: 'OBJECT_EXPLODE' })),
      error: /unknown storage event type/,
    },
  ])(
    'answers a malformed body ($name) with 400, so Pub/Sub redelivers and then dead-letters it',
    async ({ send, error }) => {
      const res = await send(request(t.app).post('/pubsub/push')).expect(400);
      expect(res.body.error).toMatch(error);
      await request(t.app).get('/healthz').expect(200);
    },
  );

  it('passes hostile object names through unchanged, as data', async () => {
    const names = [
      'in put/with spaces and "quotes" and \'single\'.csv',
      'sub/$(touch /tmp/pwned)`id`;rm -rf ~.csv',
      'line\nbreak\r\n.csv',
      'Zürich/東京/données.csv',
      `${'deep/'.repeat(40)}${'x'.repeat(900)}.csv`,
    ];
    for (const [i, name] of names.entries()) {
      const res = await request(t.app)
        .post('/pubsub/push')
        .send(push({ name, size: '10', generation: String(i + 1) }))
        .expect(201);
      expect(res.body.job.source.object.name).toBe(name);
    }
    const launched = t.launchers['cloud-run-job'].launched;
    expect(launched.map((l) => l.env.INPUT_URI)).toEqual(
      names.map((name) => path.join(t.dir, 'in', ...name.split('/'))),
    );
  });
});

describe('POST /jobs', () => {
  it('submits the current version of an object by its URI', async () => {
    fs.mkdirSync(path.join(t.dir, 'in/data'), { recursive: true });
    fs.writeFileSync(path.join(t.dir, 'in/data/x.csv'), 'a,label\n1,0\n');
    const res = await request(t.app)
      .post('/jobs')
      .send({ inputUri: 'gs://acme-pipeline-input/data/x.csv' })
      .expect(201);
    const generation = fs.statSync(path.join(t.dir, 'in/data/x.csv'), { bigint: true }).mtimeNs.toString();
    expect(res.body.id).toBe(jobIdFor('acme-pipeline-input', 'data/x.csv', generation));
    await request(t.app)
      .post('/jobs')
      .send({ inputUri: 'gs://acme-pipeline-input/data/x.csv', generation })
      .expect(200);
  });

  it('answers 404 for a generation that is not the current one, in /jobs and in /plan alike', async () => {
    fs.mkdirSync(path.join(t.dir, 'in/data'), { recursive: true });
    fs.writeFileSync(path.join(t.dir, 'in/data/old.csv'), 'a,label\n1,0\n');
    const body = { inputUri: 'gs://acme-pipeline-input/data/old.csv', generation: '1' };
    for (const route of ['/jobs', '/plan']) {
      const res = await request(t.app).post(route).send(body).expect(404);
      expect(res.body.error).toMatch(/^generation 1 of data\/old\.csv is not the current one \(\d+\)$/);
    }
    const generation = fs.statSync(path.join(t.dir, 'in/data/old.csv'), { bigint: true }).mtimeNs.toString();
    const plan = await request(t.app)
      .post('/plan')
      .send({ ...body, generation })
      .expect(200);
    expect(plan.body.target).toBeDefined();
    expect(t.launchers['cloud-run-job'].launched).toEqual([]);
  });

  it('runs a container job with no input file, with its args and env as data', async () => {
    const res = await request(t.app)
      .post('/jobs')
      .send({
        image: 'us-docker.pkg.dev/p/r/render:1',
        args: ['--frames', '1-100', '$(id)'],
        env: { MODE: 'fast; rm -rf /' },
        cpu: 16,
        memory: '64GiB',
      })
      .expect(201);
    expect(res.body.job).toMatchObject({ state: 'LAUNCHED', target: 'vm', rule: 'containers' });
    // Its own image alone sends it to a VM (a Cloud Run execution runs the worker image); 16 vCPU
    // pick the machine type.
    expect(res.body.job.reason).toBe(
      `rule "containers" matched (no conditions) and chose cloud-run-job, but the request's own image us-docker.pkg.dev/p/r/render:1 can only run on a VM: vm e2-standard-16`,
    );
    const [launch] = t.launchers.vm.launched;
    expect(launch.args).toEqual(['--frames', '1-100', '$(id)']);
    expect(launch.env).toMatchObject({
      MODE: 'fast; rm -rf /',
      JOB_ID: res.body.id,
      OUTPUT_URI: `${path.join(t.dir, 'out/runs', res.body.id)}/`,
    });
  });

  it('runs a task that needs more than the Cloud Run job is defined with on a VM, saying why', async () => {
    t.cleanup();
    t = testApp('acme-pipeline-output', { cloudRunJob: { cpu: 2, memoryBytes: 4 * 1024 ** 3 } });
    const big = await request(t.app).post('/jobs').send({ task: 'logreg', cpu: 4 }).expect(201);
    expect(big.body.job).toMatchObject({ state: 'LAUNCHED', target: 'vm', rule: 'containers' });
    expect(big.body.job.reason).toContain('but it needs 4 vCPU (the Cloud Run job has 2): vm e2-standard-4');
    // One that fits runs there, as the job is defined: 2 vCPU, 4 GiB, whatever it asked.
    const small = await request(t.app).post('/jobs').send({ task: 'logreg', cpu: 1 }).expect(201);
    expect(small.body.job).toMatchObject({
      target: 'cloud-run-job',
      template: { cpu: 2, memoryBytes: 4 * 1024 ** 3 },
    });
    expect(t.launchers.vm.launched).toHaveLength(1);
    expect(t.launchers['cloud-run-job'].launched).toHaveLength(1);
  });

  it.each([
    { body: [], error: 'the body must be a JSON object' },
    { body: { inputUri: 's3://x/y' }, error: 'inputUri must look like gs://bucket/object' },
    { body: { inputUri: 'gs://acme-pipeline-input/x', extra: 1 }, error: 'unknown field "extra"' },
    { body: { image: 'a', task: 'logreg' }, error: 'give inputUri, or exactly one of image and task' },
    { body: { image: 'a', env: { JOB_ID: 'x' } }, error: 'env: JOB_ID is set by the pipeline' },
    { body: { image: 'a', args: [1] }, error: 'args must be a list of strings' },
    { body: { image: 'a', memory: 'lots' }, error: /memory/ },
    { body: { image: 'a', gpu: 'nvidia l4' }, error: 'gpu must look like "nvidia-l4" or "nvidia-l4:2"' },
  ])('refuses $body with 400', async ({ body, error }) => {
    const res = await request(t.app).post('/jobs').send(body).expect(400);
    if (typeof error === 'string') expect(res.body.error).toBe(error);
    else expect(res.body.error).toMatch(error);
  });

  it('answers 404 for an object that does not exist', async () => {
    const res = await request(t.app)
      .post('/jobs')
      .send({ inputUri: 'gs://acme-pipeline-input/missing.csv' })
      .expect(404);
    expect(res.body.error).toBe('no object missing.csv in bucket acme-pipeline-input');
  });
});

describe('GET /jobs and /jobs/:id', () => {
  it('lists newest first, filters by state, pages, and shows one job', async () => {
    for (let g = 1; g <= 5; g++)
      await request(t.app)
        .post('/pubsub/push')
        .send(push({ generation: String(g), size: '10', name: g % 2 ? 'a.png' : 'a.csv' }));
    const all = await request(t.app).get('/jobs?limit=2').expect(200);
    expect(
      all.body.jobs.map((j: Job) => (j.source.kind === 'object' ? j.source.object.generation : '')),
    ).toEqual(['5', '4']);
    const next = await request(t.app).get(`/jobs?limit=2&pageToken=${all.body.nextPageToken}`).expect(200);
    expect(
      next.body.jobs.map((j: Job) => (j.source.kind === 'object' ? j.source.object.generation : '')),
    ).toEqual(['3', '2']);
    const ignored = await request(t.app).get('/jobs?state=ignored').expect(200);
    expect(ignored.body.jobs).toHaveLength(3);
    const one = await request(t.app).get(`/jobs/${all.body.jobs[0].id}`).expect(200);
    expect(one.body.history.map((h: { to: string }) => h.to)).toEqual(['RECEIVED', 'IGNORED']);
  });

  it.each([
    [
      '/jobs?state=DONE',
      400,
      'state must be one of SCHEDULED, RECEIVED, QUEUED, LAUNCHED, RUNNING, SUCCEEDED, FAILED, CANCELLED, IGNORED',
    ],
    ['/jobs?limit=0', 400, 'limit must be 1 to 200'],
    ['/jobs?pageToken=xyz', 400, 'pageToken is not one this server gave out'],
    [`/jobs/${'0'.repeat(32)}`, 404, `no job ${'0'.repeat(32)}`],
    ['/jobs/not-an-id', 404, 'no job not-an-id'],
    ['/nowhere', 404, 'no such route'],
  ])('GET %s answers %i', async (url, status, error) => {
    const res = await request(t.app).get(url).expect(status);
    expect(res.body.error).toBe(error);
  });
});

describe('launch failures', () => {
  it("fails a job that waited past its rule's maxQueueTime, saying what it waited for", async () => {
    const { LaunchError } = await import('@pipeline/core');
    let now = Date.parse('2026-12-01T10:00:00.000Z');
    const routing = parseRoutingConfig({
      rules: [{ name: 'all', target: 'vm', job: { task: 'logreg' }, queue: { maxQueueTime: '5m' } }],
    });
    t = testApp('acme-pipeline-output', { now: () => new Date(now), routing });
    t.launchers.vm.failWith = new LaunchError('ZONE_RESOURCE_POOL_EXHAUSTED in every zone', true, {
      capacity: true,
    });
    const first = await request(t.app).post('/pubsub/push').send(FIXTURE).expect(201);
    expect(first.body.job).toMatchObject({
      state: 'QUEUED',
      queue: { expiresAt: '2026-12-01T10:05:00.000Z' },
    });
    now += 4 * 60_000;
    await request(t.app).post('/reconcile').expect(200); // refused again: still waiting
    expect((await request(t.app).get(`/jobs/${first.body.id}`)).body.state).toBe('QUEUED');
    now += 2 * 60_000;
    await request(t.app).post('/reconcile').expect(200);
    const job = (await request(t.app).get(`/jobs/${first.body.id}`).expect(200)).body;
    expect(job.state).toBe('FAILED');
    expect(job.error).toMatch(
      /^no capacity came within its rule's maxQueueTime \(queued at 2026-12-01T10:00:00.000Z\): launch on vm refused for now: ZONE_RESOURCE_POOL_EXHAUSTED in every zone/,
    );
  });

  it('keeps a job refused for capacity QUEUED and acknowledged, and launches it once when it fits', async () => {
    const { LaunchError } = await import('@pipeline/core');
    let now = Date.parse('2026-12-01T10:00:00.000Z');
    t = testApp('acme-pipeline-output', { now: () => new Date(now) });
    t.launchers.vm.failWith = new LaunchError('429 RESOURCE_EXHAUSTED: quota', true, { capacity: true });
    const first = await request(t.app).post('/pubsub/push').send(FIXTURE).expect(201);
    expect(first.body.job).toMatchObject({
      state: 'QUEUED',
      queue: { refusals: 1, notBefore: '2026-12-01T10:00:02.000Z' },
    });
    expect(first.body.job.queue.reason).toBe('launch on vm refused for now: 429 RESOURCE_EXHAUSTED: quota');
    expect(first.body.job.attempt).toBe(1);
    // The redelivery is a duplicate: the job waits in the ledger, not in Pub/Sub.
    await request(t.app).post('/pubsub/push').send(FIXTURE).expect(200);
    const capacity = await request(t.app).get('/capacity').expect(200);
    expect(capacity.body.queue.jobs).toMatchObject([{ id: first.body.id, position: 1 }]);
    expect(capacity.body.queue.jobs[0].reason).toContain('429 RESOURCE_EXHAUSTED: quota; tried again after');
    t.launchers.vm.failWith = undefined;
    now += 61_000; // past the backoff and the ceiling the refusal taught
    await request(t.app).post('/reconcile').expect(200);
    const job = (await request(t.app).get(`/jobs/${first.body.id}`).expect(200)).body;
    expect(job).toMatchObject({ state: 'LAUNCHED', attempt: 1, execution: 'recorded-1' });
    expect(t.launchers.vm.launched).toHaveLength(1);
  });

  it('marks a permanent failure FAILED and acknowledges it', async () => {
    const { LaunchError } = await import('@pipeline/core');
    t.launchers.vm.failWith = new LaunchError('400 INVALID_ARGUMENT: bad machine type', false);
    const res = await request(t.app).post('/pubsub/push').send(FIXTURE).expect(201);
    expect(res.body.job).toMatchObject({
      state: 'FAILED',
      error: 'launch on vm failed: 400 INVALID_ARGUMENT: bad machine type',
    });
  });
});

describe('the job a launch or cancel works for', () => {
  it('is the current job while the launcher runs, for the process-level handlers to name', async () => {
    const res = await request(t.app).post('/pubsub/push').send(FIXTURE).expect(201);
    const { bucket, name, generation } = res.body.job.source.object;
    await request(t.app).post(`/jobs/${res.body.id}/cancel`).expect(200);
    const job = { jobId: res.body.id, object: `${bucket}/${name}#${generation}` };
    expect(t.launchers.vm.contexts).toEqual([
      { call: 'launch', job },
      { call: 'cancel', job },
    ]);
  });
});

describe('POST /pubsub/completions', () => {
  const completion = (fields: Record<string, unknown>) => ({
    message: { data: Buffer.from(JSON.stringify(fields)).toString('base64'), messageId: '9' },
    subscription: 'projects/p/subscriptions/completions-push',
  });

  it('moves a launched job to SUCCEEDED or FAILED; repeated and late reports change nothing', async () => {
    const launched = await request(t.app).post('/pubsub/push').send(FIXTURE).expect(201);
    const id = launched.body.id as string;
    const end = {
      jobId: id,
      attempt: 1,
      exitCode: 0,
      startedAt: '2026-11-22T01:50:00.000Z',
      finishedAt: '2026-11-22T01:52:00.000Z',
    };
    await request(t.app).post('/pubsub/completions').send(completion(end)).expect(204);
    const job = (await t.ledger.get(id))!;
    expect(job).toMatchObject({ state: 'SUCCEEDED', exitCode: 0, finishedAt: end.finishedAt });
    await request(t.app)
      .post('/pubsub/completions')
      .send(completion({ ...end, exitCode: 1 }))
      .expect(204);
    expect((await t.ledger.get(id))!.version).toBe(job.version);
  });

  it('records a failure with its exit code and reason, and ignores an older attempt', async () => {
    const launched = await request(t.app).post('/pubsub/push').send(FIXTURE).expect(201);
    const id = launched.body.id as string;
    await request(t.app)
      .post('/pubsub/completions')
      .send(completion({ jobId: id, attempt: 2, exitCode: 0, finishedAt: '2026-11-22T02:00:00Z' }))
      .expect(204);
    expect((await t.ledger.get(id))!.state).toBe('LAUNCHED');
    await request(t.app)
      .post('/pubsub/completions')
      .send(
        completion({
          jobId: id,
          attempt: 1,
          exitCode: 137,
          preempted: true,
          error: 'the VM was preempted',
          finishedAt: '2026-11-22T02:00:00Z',
        }),
      )
      .expect(204);
    // A preemption is retried at once, as attempt 2, and the attempt's own record keeps how it ended.
    const retried = (await t.ledger.get(id))!;
    expect(retried).toMatchObject({
      state: 'LAUNCHED',
      attempt: 2,
      exitCode: 137,
      error: 'the VM was preempted',
    });
    expect(retried.attempts.map((a) => [a.attempt, a.outcome, a.exitCode])).toEqual([
      [1, 'preempted', 137],
      [2, undefined, undefined],
    ]);
    await request(t.app)
      .post('/pubsub/completions')
      .send(
        completion({
          jobId: id,
          attempt: 2,
          exitCode: 4,
          error: 'bad data',
          finishedAt: '2026-11-22T02:05:00Z',
        }),
      )
      .expect(204);
    expect(await t.ledger.get(id)).toMatchObject({
      state: 'FAILED',
      attempt: 2,
      exitCode: 4,
      error: 'bad data',
    });
  });

  it.each([
    [{ hello: 1 }, 'the body is not a Pub/Sub push envelope'],
    [
      completion({ jobId: 'nope', attempt: 1, exitCode: 0, finishedAt: '2026-11-22T02:00:00Z' }),
      'the completion has no valid jobId',
    ],
    [
      completion({ jobId: 'a'.repeat(32), attempt: 1, exitCode: 'zero', finishedAt: '2026-11-22T02:00:00Z' }),
      'the completion has no integer exitCode',
    ],
  ])('refuses a malformed completion with 400', async (body, error) => {
    const res = await request(t.app).post('/pubsub/completions').send(body).expect(400);
    expect(res.body.error).toBe(error);
  });

  it('acknowledges a completion of a job it does not know', async () => {
    await request(t.app)
      .post('/pubsub/completions')
      .send(
        completion({ jobId: 'c'.repeat(32), attempt: 1, exitCode: 0, finishedAt: '2026-11-22T02:00:00Z' }),
      )
      .expect(204);
  });
});
