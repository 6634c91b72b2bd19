// Batching at run time: gathering the queue (batch-gathering.ts), the manifest (batch-manifest.ts),
// one capacity slot per batch (capacity.ts), and the rule's `batch` setting.
import { describe, expect, it } from 'vitest';
import { batchQueuedJob, gatherReady, type BatchableJob } from '../src/batch-gathering.ts';
import {
  BatchManifestError,
  batchIdFor,
  batchManifestName,
  batchTaskEnvironment,
  parseBatchManifest,
} from '../src/batch-manifest.ts';
import {
  admit,
  EMPTY_CAPACITY,
  releaseSlot,
  repairSlots,
  type CapacityLimits,
  type CapacityRecord,
  type QueuedJob,
} from '../src/capacity.ts';
import type { BatchPolicy } from '../src/cost/batching.ts';
import { parseRoutingConfig, RoutingConfigError } from '../src/routing/config.ts';

const T0 = Date.parse('2026-12-01T10:00:00.000Z');
const at = (seconds: number) => new Date(T0 + seconds * 1000).toISOString();
const POLICY: BatchPolicy = { maxFiles: 3, maxWaitSeconds: 30, maxBytes: 100 };
const id = (n: number) => n.toString(16).padStart(32, '0');
const job = (n: number, queuedSecond: number, changes: Partial<BatchableJob> = {}): BatchableJob => ({
  jobId: id(n),
  attempt: 1,
  rule: 'small',
  key: 'k',
  queuedAt: at(queuedSecond),
  inputBytes: 10,
  ...changes,
});
const policyOf = (rule: string) => (rule === 'small' ? POLICY : undefined);

describe('gatherReady', () => {
  it('launches full batches, and holds the open one until maxWait after its first file', () => {
    const jobs = [1, 2, 3, 4, 5, 6, 7].map((n) => job(n, n));
    const gathering = gatherReady(jobs, policyOf, at(10));
    expect(gathering.batches.map((b) => b.members)).toEqual([
      [id(1), id(2), id(3)],
      [id(4), id(5), id(6)],
    ]);
    expect(gathering.batches.map((b) => b.closedBy)).toEqual(['maxFiles', 'maxFiles']);
    expect(gathering.holding).toEqual([id(7)]);
    expect(gathering.nextChangeAt).toBe(at(37));
    // At its maxWait the lone file launches on its own: a batch of one needs no manifest.
    const later = gatherReady([job(7, 7)], policyOf, at(37));
    expect(later).toEqual({ batches: [], alone: [id(7)], holding: [] });
  });

  it('closes on maxBytes and on maxWait with what it gathered', () => {
    const big = [job(1, 0, { inputBytes: 60 }), job(2, 1, { inputBytes: 30 }), job(3, 2, { inputBytes: 30 })];
    const byBytes = gatherReady(big, policyOf, at(5));
    expect(byBytes.batches.map((b) => [b.members, b.closedBy])).toEqual([[[id(1), id(2)], 'maxBytes']]);
    expect(byBytes.holding).toEqual([id(3)]);
    const byWait = gatherReady([job(1, 0), job(2, 20)], policyOf, at(30));
    expect(byWait.batches.map((b) => [b.members, b.closedBy])).toEqual([[[id(1), id(2)], 'maxWait']]);
  });

  it('gathers only jobs with the same key, and none waiting out a backoff', () => {
    const jobs = [
      job(1, 0),
      job(2, 0, { key: 'other' }),
      job(3, 0),
      job(4, 0, { notBefore: at(50) }),
      job(5, 0, { rule: 'plain' }),
    ];
    const gathering = gatherReady(jobs, policyOf, at(30));
    expect(gathering.batches.map((b) => b.members)).toEqual([[id(1), id(3)]]);
    expect(gathering.alone.sort()).toEqual([id(2), id(5)]);
    expect(gathering.holding).toEqual([id(4)]);
    expect(gathering.nextChangeAt).toBe(at(50));
  });

  it('names a batch by its jobs and attempts: the same batch, the same id and manifest', () => {
    const one = gatherReady([job(1, 0), job(2, 1), job(3, 2)], policyOf, at(3)).batches[0];
    const again = gatherReady([job(3, 2), job(1, 0), job(2, 1)], policyOf, at(4)).batches[0];
    expect(again.batchId).toBe(one.batchId);
    const retried = gatherReady([job(1, 0, { attempt: 2 }), job(2, 1), job(3, 2)], policyOf, at(3));
    expect(retried.batches[0].batchId).not.toBe(one.batchId);
    expect(batchManifestName(one.batchId)).toBe(`_pipeline/batches/${one.batchId}.json`);
  });
});

describe('a batch in the capacity record', () => {
  const LIMITS: CapacityLimits = {
    region: 'r',
    runExecutions: 2,
    runJobsPerMinute: Number.POSITIVE_INFINITY,
  };
  const queued = (n: number, s: number): QueuedJob => ({
    jobId: id(n),
    demand: { target: 'cloud-run-job', cpus: 1 },
    queuedAt: at(s),
    dueBy: at(s + 100),
    expiresAt: at(s + 200),
  });

  it('takes one execution slot for all its jobs, at its earliest job’s place', () => {
    const batch = batchQueuedJob('batch-a', [queued(1, 5), queued(2, 1), queued(3, 9)]);
    expect(batch).toMatchObject({ jobId: 'batch-a', queuedAt: at(1), dueBy: at(101), expiresAt: at(201) });
    const admission = admit(EMPTY_CAPACITY, [batch, queued(4, 0), queued(5, 2)], LIMITS, at(10));
    expect(admission.admitted.map((h) => h.jobId)).toEqual([id(4), 'batch-a']);
    expect(admission.admitted[1].members).toEqual([id(1), id(2), id(3)]);
    // Its jobs hold a slot now: none of them is admitted again on its own.
    const again = admit(admission.record, [queued(2, 1)], { ...LIMITS, runExecutions: 5 }, at(11));
    expect(again.admitted).toEqual([]);
  });

  it('gives the slot back when the last of its jobs ends', () => {
    let record: CapacityRecord = {
      ...EMPTY_CAPACITY,
      holders: [{ target: 'cloud-run-job', cpus: 1, jobId: 'batch-a', at: at(0), members: [id(1), id(2)] }],
    };
    record = releaseSlot(record, id(1))!;
    expect(record.holders).toEqual([expect.objectContaining({ jobId: 'batch-a', members: [id(2)] })]);
    expect(releaseSlot(record, id(1))).toBeUndefined();
    record = releaseSlot(record, id(2))!;
    expect(record.holders).toEqual([]);
  });

  it('repair keeps a batch while any of its jobs runs, and drops those that ended', () => {
    const record: CapacityRecord = {
      ...EMPTY_CAPACITY,
      holders: [{ target: 'cloud-run-job', cpus: 1, jobId: 'batch-a', at: at(0), members: [id(1), id(2)] }],
    };
    const active = new Map([[id(2), { target: 'cloud-run-job' as const, cpus: 1, jobId: id(2) }]]);
    expect(repairSlots(record, active, at(5), 60_000)).toBeUndefined(); // young: within the grace
    const repaired = repairSlots(record, active, at(120), 60_000)!;
    expect(repaired.holders).toEqual([expect.objectContaining({ jobId: 'batch-a', members: [id(2)] })]);
    expect(repairSlots(record, new Map(), at(120), 60_000)!.holders).toEqual([]);
  });

  it('repair gives no slot back to a job that gave its own back while the pass looked (it ended)', () => {
    // The pass saw job 3 running and holding a slot; it ended and released it before the repair wrote.
    const active = new Map([[id(3), { target: 'cloud-run-job' as const, cpus: 1, jobId: id(3) }]]);
    expect(repairSlots(EMPTY_CAPACITY, active, at(120), 60_000, new Set())).toBeUndefined();
    // One the pass saw without a slot gets one.
    const repaired = repairSlots(EMPTY_CAPACITY, active, at(120), 60_000, new Set([id(3)]))!;
    expect(repaired.holders.map((h) => h.jobId)).toEqual([id(3)]);
  });
});

describe('the batch manifest', () => {
  const manifest = {
    batchId: `batch-${'a'.repeat(24)}`,
    tasks: [
      { jobId: id(1), attempt: 1, env: { JOB_ID: id(1), INPUT_URI: 'gs://in/a.csv' } },
      null,
      { jobId: id(3), attempt: 2, env: { JOB_ID: id(3), INPUT_URI: 'gs://in/c.csv' } },
    ],
  };

  it('gives each task its entry over the execution’s env, and null for a job that left', () => {
    const parsed = parseBatchManifest(JSON.parse(JSON.stringify(manifest)));
    expect(batchTaskEnvironment(parsed, '2', { BATCH_ID: parsed.batchId, JOB_ID: 'x' })).toEqual({
      BATCH_ID: parsed.batchId,
      JOB_ID: id(3),
      INPUT_URI: 'gs://in/c.csv',
    });
    expect(batchTaskEnvironment(parsed, '1', {})).toBeNull();
  });

  it.each([
    ['an index past the end', '3'],
    ['no index', undefined],
    ['an index that is not a number', '1e0'],
  ])('refuses %s', (_, index) => {
    expect(() => batchTaskEnvironment(parseBatchManifest(manifest), index, {})).toThrow(BatchManifestError);
  });

  it.each([
    ['not an object', []],
    ['a bad batch id', { ...manifest, batchId: 'x' }],
    ['no tasks', { ...manifest, tasks: [] }],
    ['a task without a job id', { ...manifest, tasks: [{ attempt: 1, env: {} }] }],
    ['a task with a bad attempt', { ...manifest, tasks: [{ jobId: id(1), attempt: 0, env: {} }] }],
    [
      'an env value that is not a string',
      { ...manifest, tasks: [{ jobId: id(1), attempt: 1, env: { A: 1 } }] },
    ],
  ])('refuses a manifest with %s', (_, data) => {
    expect(() => parseBatchManifest(data)).toThrow(BatchManifestError);
  });

  it('has an id that depends on order, jobs and attempts', () => {
    const a = batchIdFor([
      { jobId: id(1), attempt: 1 },
      { jobId: id(2), attempt: 1 },
    ]);
    expect(a).toMatch(/^batch-[0-9a-f]{24}$/);
    expect(
      batchIdFor([
        { jobId: id(2), attempt: 1 },
        { jobId: id(1), attempt: 1 },
      ]),
    ).not.toBe(a);
  });
});

describe('a rule’s batch', () => {
  const rule = (changes: Record<string, unknown>) => ({
    rules: [{ name: 'small', match: { path: '**' }, target: 'cloud-run-job', ...changes }],
  });

  it('is read for a rule that sends its files to Cloud Run', () => {
    const config = parseRoutingConfig(rule({ batch: { maxFiles: 50, maxWait: '30s', maxBytes: '1GiB' } }));
    expect(config.rules[0].batch).toEqual({ maxFiles: 50, maxWaitSeconds: 30, maxBytes: 2 ** 30 });
    const cost = parseRoutingConfig(
      rule({ mode: 'cost', target: ['cloud-run-job', 'vm'], batch: { maxFiles: 2, maxWait: '1m' } }),
    );
    expect(cost.rules[0].batch?.maxBytes).toBe(Number.POSITIVE_INFINITY);
  });

  it.each([
    [{ target: 'vm', batch: { maxFiles: 5, maxWait: '30s' } }, /only files a rule sends to Cloud Run/],
    [{ batch: { maxFiles: 1, maxWait: '30s' } }, /maxFiles.*from 2 to 10000/],
    [{ batch: { maxFiles: 5 } }, /maxWait.*is required/],
    [{ batch: { maxFiles: 5, maxWait: '30s', size: 1 } }, /size/],
  ])('refuses %j', (changes, message) => {
    expect(() => parseRoutingConfig(rule(changes))).toThrow(RoutingConfigError);
    expect(() => parseRoutingConfig(rule(changes))).toThrow(message);
  });
});
