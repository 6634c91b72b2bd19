// The reaper with the real @google-cloud/compute client (REST) against the loopback Compute double and
// a real ledger in memory: what is asserted is which DELETE requests the client library sends.
import { randomBytes } from 'node:crypto';
import { Writable } from 'node:stream';
import request from 'supertest';
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { OAuth2Client } from 'google-auth-library';
import type { RequestHandler } from 'express';
import { newJob, transition, type Job, type JobState } from '@pipeline/core';
import { buildApp } from '../../src/app.ts';
import { closeGoogleClients, instancesClient } from '../../src/gcp/clients.ts';
import { ComputeReaper, type ComputeReaperSettings } from '../../src/gcp/reaper.ts';
import { SqliteLedger } from '../../src/local/sqlite-ledger.ts';
import { createLogger } from '../../src/logger.ts';
import { startFakeCompute, type FakeCompute } from '../../../../test/support/fake-compute.ts';
import { testApp } from '../support.ts';

const PROJECT = 'acme';
const ZONE = 'europe-west1-b';
const ZONE_URL = `https://www.googleapis.com/compute/v1/projects/${PROJECT}/zones/${ZONE}`;

const auth = new OAuth2Client();
auth.setCredentials({ access_token: 'test-token', expiry_date: Date.now() + 24 * 3600 * 1000 });

const minutesAgo = (minutes: number) => new Date(Date.now() - minutes * 60_000).toISOString();
const newJobId = () => randomBytes(16).toString('hex');

let compute: FakeCompute;
let ledger: SqliteLedger;
let logs: Record<string, unknown>[];
const logger = createLogger(
  new Writable({
    write(chunk, _encoding, done) {
      for (const line of String(chunk).split('\n')) if (line.trim() !== '') logs.push(JSON.parse(line));
      done();
    },
  }),
);

beforeAll(async () => {
  compute = await startFakeCompute();
});
afterAll(async () => {
  await closeGoogleClients();
  await compute.close();
});
beforeEach(() => {
  ledger = new SqliteLedger(':memory:');
  logs = [];
});
afterEach(() => {
  ledger.close();
  compute.requests.splice(0);
  compute.instances.clear();
  compute.deleted.splice(0);
  compute.ignoreFilter = false;
});

function reaper(settings: Partial<ComputeReaperSettings> = {}) {
  return new ComputeReaper({
    project: PROJECT,
    zone: ZONE,
    instances: () => instancesClient({ endpoint: compute.endpoint, authClient: auth }),
    ledger,
    logger,
    ...settings,
  });
}

/** A VM as Compute lists it, created `createdMinutesAgo`. */
function vm(name: string, labels: Record<string, string>, createdMinutesAgo: number): void {
  compute.instances.set(name, {
    name,
    zone: ZONE_URL,
    status: 'RUNNING',
    labels,
    creationTimestamp: minutesAgo(createdMinutesAgo),
  });
}

/** A VM job in the ledger, in `state` since `changedMinutesAgo`. */
async function job(state: JobState, changedMinutesAgo: number, timeoutSeconds?: number): Promise<Job> {
  const received = newJob(newJobId(), { kind: 'request', task: 'logreg', args: [], env: {} }, minutesAgo(60));
  const template = {
    args: [],
    env: {},
    spot: false,
    ...(timeoutSeconds === undefined ? {} : { timeoutSeconds }),
  };
  let stored = transition(transition(received, 'QUEUED', minutesAgo(59)), 'LAUNCHED', minutesAgo(59), {
    target: 'vm',
    template,
  });
  if (state !== 'LAUNCHED') stored = transition(stored, state, minutesAgo(changedMinutesAgo));
  await ledger.claim(stored, 600_000); // the claim stores the job as given
  return stored;
}

const labelsOf = (j: Job) => ({ pipeline: 'true', 'job-id': j.id, attempt: '1' });
const deletes = () =>
  compute.requests.filter((r) => r.method === 'DELETE').map((r) => r.path.split('/').at(-1));

/** The fleet of the tests: three VMs to reap, one to keep, two that are not the pipeline's. */
async function fleet() {
  vm('done', labelsOf(await job('SUCCEEDED', 10)), 40);
  vm('expired', labelsOf(await job('RUNNING', 25, 600)), 30); // 10 min timeout + 10 min margin
  vm('unknown', { pipeline: 'true', 'job-id': newJobId(), attempt: '1' }, 40); // past the 30-minute grace for VMs the ledger does not know
  vm('running', labelsOf(await job('RUNNING', 2)), 3);
  vm('staging', { pipeline: 'staging', 'job-id': newJobId(), attempt: '1' }, 60 * 24 * 10);
  vm('people', { owner: 'ana' }, 60 * 24 * 10);
}
const REAPED = ['done', 'expired', 'unknown'];

describe('ComputeReaper with @google-cloud/compute', () => {
  it("deletes the VMs that outlived their work, keeps a running job's, and never touches others", async () => {
    await fleet();
    const result = await reaper().reap();

    expect(result.deleted.map((d) => d.name).sort()).toEqual(REAPED);
    const reasons = Object.fromEntries(result.deleted.map((d) => [d.name, d.reason]));
    expect(reasons.done).toMatch(/^job [0-9a-f]{32} is SUCCEEDED$/);
    expect(reasons.expired).toMatch(/^ran past its deadline of /);
    expect(reasons.unknown).toMatch(/^the ledger has no job [0-9a-f]{32}/);
    expect(result).toMatchObject({ kept: 1, errors: [], alreadyGone: [] });

    const list = compute.requests.find((r) => r.method === 'GET');
    expect(list?.path).toBe(`/compute/v1/projects/${PROJECT}/zones/${ZONE}/instances`);
    expect(list?.query.get('filter')).toBe('labels.pipeline = "true"');
    expect(list?.headers.authorization).toBe('Bearer test-token');
    expect(deletes().sort()).toEqual(REAPED);
    expect([...compute.instances.keys()].sort()).toEqual(['people', 'running', 'staging']);
    const deletionLogs = logs.filter((l) => String(l.message).startsWith('reaper deleted VM'));
    expect(deletionLogs.map((l) => [l.instance, l.reason]).sort()).toEqual(
      result.deleted.map((d) => [d.name, d.reason]).sort(),
    );
  });

  it('checks the label itself when the listing returns more than the filter asked for', async () => {
    await fleet();
    compute.ignoreFilter = true;
    const result = await reaper().reap();
    expect(result.deleted.map((d) => d.name).sort()).toEqual(REAPED);
    expect(deletes()).not.toContain('staging');
    expect(deletes()).not.toContain('people');
  });

  it('reaps the VMs of another label value when configured with it, and only those', async () => {
    await fleet();
    const result = await reaper({ pipelineLabel: 'staging' }).reap();
    expect(result.deleted.map((d) => d.name)).toEqual(['staging']);
    expect(deletes()).toEqual(['staging']);
  });

  it('reaps in every zone a VM may be made in (the fallback zones too)', async () => {
    const other = ZONE.replace(/.$/, 'z');
    compute.instances.set('done-elsewhere', {
      name: 'done-elsewhere',
      zone: ZONE_URL.replace(ZONE, other),
      status: 'RUNNING',
      labels: labelsOf(await job('SUCCEEDED', 10)),
      creationTimestamp: new Date(Date.now() - 40 * 60_000).toISOString(),
    });
    const result = await reaper({ zones: [ZONE, other] }).reap();
    expect(result.deleted.map((d) => d.name)).toEqual(['done-elsewhere']);
    const listed = compute.requests.filter((r) => r.method === 'GET').map((r) => r.path);
    expect(listed.sort()).toEqual(
      [ZONE, other].map((z) => `/compute/v1/projects/${PROJECT}/zones/${z}/instances`).sort(),
    );
    expect(compute.requests.find((r) => r.method === 'DELETE')?.path).toContain(`/zones/${other}/`);
  });

  it('runs twice at once: each VM is deleted once, and nothing else', async () => {
    await fleet();
    const [first, second] = await Promise.all([reaper().reap(), reaper().reap()]);
    const deletedByEach = [first, second].map((r) => r.deleted.map((d) => d.name));
    expect([...deletedByEach[0], ...deletedByEach[1]].sort()).toEqual(REAPED); // disjoint, complete
    for (const result of [first, second]) {
      expect(result.errors).toEqual([]);
      expect(result.kept).toBe(1);
      for (const name of result.alreadyGone) expect(REAPED).toContain(name);
    }
    expect([...compute.deleted].sort()).toEqual(REAPED);
    expect(new Set(deletes())).toEqual(new Set(REAPED));

    compute.requests.splice(0);
    expect(await reaper().reap()).toEqual({ deleted: [], alreadyGone: [], kept: 1, errors: [] });
    expect(deletes()).toEqual([]);
  });

  it('deletes nothing whose job it could not read', async () => {
    const running = await job('SUCCEEDED', 10);
    vm('unreadable', labelsOf(running), 40);
    const failing = Object.assign(Object.create(ledger) as SqliteLedger, {
      get: async () => {
        throw new Error('ledger unavailable');
      },
    });
    const result = await reaper({ ledger: failing }).reap();
    expect(result.deleted).toEqual([]);
    expect(result.errors).toEqual([{ name: 'unreadable', error: 'reading its job: ledger unavailable' }]);
    expect(deletes()).toEqual([]);
  });

  it('refuses a label value that is not one', () => {
    expect(() => reaper({ pipelineLabel: 'x" OR labels.a:*' })).toThrow(/not a Compute label value/);
  });
});

describe('POST /reap', () => {
  it('runs the reaper and answers its result', async () => {
    await fleet();
    const t = testApp();
    try {
      const app = buildApp({
        dispatcher: t.dispatcher,
        reconciler: t.reconciler,
        ledger,
        logger,
        reaper: reaper(),
      });
      const response = await request(app).post('/reap').expect(200);
      expect(response.body.deleted.map((d: { name: string }) => d.name).sort()).toEqual(REAPED);
      expect(response.body).toMatchObject({ kept: 1, errors: [], alreadyGone: [] });
    } finally {
      t.cleanup();
    }
  });

  it('is behind the API identity check', async () => {
    await fleet();
    const refuse: RequestHandler = (_req, res) => {
      res.status(401).json({ error: 'no token' });
    };
    const t = testApp();
    try {
      const app = buildApp({
        dispatcher: t.dispatcher,
        reconciler: t.reconciler,
        ledger,
        logger,
        auth: { push: refuse, api: refuse },
        reaper: reaper(),
      });
      await request(app).post('/reap').expect(401);
      expect(compute.requests).toEqual([]);
    } finally {
      t.cleanup();
    }
  });

  it('answers 404 in local mode, which has no reaper', async () => {
    const t = testApp();
    try {
      const response = await request(t.app).post('/reap').expect(404);
      expect(response.body).toEqual({ error: 'no reaper in this mode' });
    } finally {
      t.cleanup();
    }
  });
});
