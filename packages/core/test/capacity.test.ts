import { describe, expect, it } from 'vitest';
import {
  admit,
  demandOf,
  EMPTY_CAPACITY,
  learnCeiling,
  launchSpacingMs,
  queuedJob,
  releaseSlot,
  repairSlots,
  type CapacityLimits,
  type CapacityRecord,
  type Demand,
  type QueuedJob,
  type SlotHolder,
} from '../src/capacity.ts';
import { newJob, type Job } from '../src/job.ts';

const T0 = Date.parse('2026-12-01T10:00:00.000Z');
const at = (seconds: number) => new Date(T0 + seconds * 1000).toISOString();
const RUN: Demand = { target: 'cloud-run-job', cpus: 1 };
const vm = (cpus: number, gpus?: { type: string; count: number }): Demand => ({
  target: 'vm',
  cpus,
  ...(gpus === undefined ? {} : { gpus }),
});
const LIMITS: CapacityLimits = {
  region: 'us-central1',
  runExecutions: 10,
  runJobsPerMinute: Number.POSITIVE_INFINITY,
};

/** A queued job; `n` orders it (queued n seconds after T0), FIFO with a day to wait. */
function queued(id: string, n: number, demand: Demand = RUN, changes: Partial<QueuedJob> = {}): QueuedJob {
  return {
    jobId: id,
    demand,
    queuedAt: at(n),
    dueBy: at(n + 86_400),
    expiresAt: at(n + 86_400),
    ...changes,
  };
}

function holding(ids: string[], demand: Demand = RUN, rule?: string): CapacityRecord {
  return {
    ...EMPTY_CAPACITY,
    version: 7,
    holders: ids.map((jobId) => ({ ...demand, jobId, ...(rule === undefined ? {} : { rule }), at: at(0) })),
  };
}

const admittedIds = (record: CapacityRecord, queue: QueuedJob[], limits = LIMITS, now = at(100)) =>
  admit(record, queue, limits, now).admitted.map((h) => h.jobId);

describe('admit: limits', () => {
  it.each([
    [
      'Cloud Run executions: 8 of 10 in use admit 2',
      holding(['h1', 'h2', 'h3', 'h4', 'h5', 'h6', 'h7', 'h8']),
      2,
    ],
    ['none free: none', holding(Array.from({ length: 10 }, (_, i) => `h${i}`)), 0],
    ['an empty record: 10', EMPTY_CAPACITY, 10],
  ])('%s', (_name, record, count) => {
    const queue = Array.from({ length: 12 }, (_, i) => queued(`j${i}`, i));
    const admission = admit(record, queue, LIMITS, at(100));
    expect(admission.admitted.map((h) => h.jobId)).toEqual(queue.slice(0, count).map((q) => q.jobId));
    expect(admission.record.holders).toHaveLength(record.holders.length + count);
    expect(admission.record.version).toBe(record.version + 1);
    if (count < 12) {
      expect(admission.waiting[0].reason).toBe('waiting for capacity: 10 of 10 Cloud Run executions in use');
      expect(admission.waiting[1].reason).toBe('behind 1 earlier job waiting for a Cloud Run execution');
    }
  });

  it('counts VM vCPUs against the region, and says so', () => {
    const limits = { ...LIMITS, vmCpus: 24 };
    const record = holding(['big'], vm(16));
    const admission = admit(record, [queued('a', 1, vm(8)), queued('b', 2, vm(2))], limits, at(100));
    expect(admission.admitted.map((h) => h.jobId)).toEqual(['a']);
    expect(admission.waiting).toEqual([
      {
        jobId: 'b',
        position: 2,
        reason: 'waiting for capacity: vCPU quota in us-central1: 24 of 24 in use, this job needs 2',
      },
    ]);
  });

  it('counts GPUs by type, apart from other types', () => {
    const limits = {
      ...LIMITS,
      vmCpus: 100,
      gpus: { 'nvidia-l4': { limit: 1 }, 'nvidia-tesla-t4': { limit: 4 } },
    };
    const record = holding(['l4'], vm(4, { type: 'nvidia-l4', count: 1 }));
    const queue = [
      queued('l4-b', 1, vm(4, { type: 'nvidia-l4', count: 1 })),
      queued('t4', 2, vm(4, { type: 'nvidia-tesla-t4', count: 2 })),
    ];
    const admission = admit(record, queue, limits, at(100));
    expect(admission.admitted.map((h) => h.jobId)).toEqual(['t4']);
    expect(admission.waiting[0].reason).toBe(
      'waiting for capacity: nvidia-l4 GPU quota in us-central1: 1 of 1 in use, this job needs 1',
    );
  });

  it('holds a rule to its maxConcurrent, without holding up other rules', () => {
    const limits = { ...LIMITS, ruleMaxConcurrent: { slow: 2 } };
    const record = holding(['s1', 's2'], RUN, 'slow');
    const queue = [queued('s3', 1, RUN, { rule: 'slow' }), queued('f1', 2, RUN, { rule: 'fast' })];
    const admission = admit(record, queue, limits, at(100));
    expect(admission.admitted.map((h) => h.jobId)).toEqual(['f1']);
    expect(admission.waiting[0].reason).toBe(
      "waiting for rule slow's maxConcurrent: 2 of 2 launched or running",
    );
  });

  it('spaces runJob calls at the configured rate, with a tenth to spare, and says when the next may go', () => {
    const limits = { ...LIMITS, runExecutions: 100, runJobsPerMinute: 180 }; // one every 0.367 s
    const queue = Array.from({ length: 5 }, (_, i) => queued(`j${i}`, i));
    const first = admit(EMPTY_CAPACITY, queue, limits, at(100));
    expect(first.admitted).toHaveLength(1);
    expect(first.waiting[0].reason).toBe(
      'waiting for the runJob rate: one launch every 0.37 s (limit 180 per minute)',
    );
    expect(first.nextChangeAt).toBe(at(100.367));
    const rest = queue.slice(1);
    const early = admit(first.record, rest, limits, at(100.3));
    expect(early.admitted).toHaveLength(0);
    expect(early.nextChangeAt).toBe(at(100.367)); // one spacing after the last call, not after now
    expect(admit(first.record, rest, limits, at(100.367)).admitted).toHaveLength(1);
  });

  it.each([
    [60, 1100],
    [180, 367],
    [30, 2200],
    [Number.POSITIVE_INFINITY, 0],
  ])('spaces %i runJob calls per minute %i ms apart', (perMinute, ms) => {
    expect(launchSpacingMs(perMinute)).toBe(ms);
  });

  it('bounds what one round admits, leaving the rest next in line', () => {
    const queue = Array.from({ length: 5 }, (_, i) => queued(`j${i}`, i));
    const admission = admit(EMPTY_CAPACITY, queue, LIMITS, at(100), 2);
    expect(admission.admitted).toHaveLength(2);
    expect(admission.waiting.map((w) => w.reason)).toEqual(Array(3).fill('next in line: launching'));
  });

  it('leaves out a job that already holds a slot (another instance launches it)', () => {
    expect(admittedIds(holding(['a']), [queued('a', 1), queued('b', 2)])).toEqual(['b']);
  });
});

describe('admit: order, deadlines and starvation', () => {
  it('is FIFO within a rule, whatever order the ledger read them in', () => {
    const queue = [queued('c', 3), queued('a', 1), queued('b', 2)];
    expect(admittedIds(holding(Array.from({ length: 8 }, (_, i) => `h${i}`)), queue)).toEqual(['a', 'b']);
  });

  it('puts the earliest deadline first across rules', () => {
    const fifo = queued('fifo', 1);
    const urgent = queued('urgent', 50, RUN, { dueBy: at(50 + 600) }); // a 10-minute deadline
    expect(admittedIds(holding(Array.from({ length: 9 }, (_, i) => `h${i}`)), [fifo, urgent])).toEqual([
      'urgent',
    ]);
  });

  it('never starves a job without a deadline: as its wait nears maxQueueTime it comes first', () => {
    const old = queued('old', -86_000); // due in 400 s
    const urgent = queued('urgent', 100, RUN, { dueBy: at(100 + 600) }); // due in 600 s
    expect(admittedIds(holding(Array.from({ length: 9 }, (_, i) => `h${i}`)), [urgent, old])).toEqual([
      'old',
    ]);
  });

  it('does not let small VMs pass a large one that waits (no backfill), so it is not starved', () => {
    const limits = { ...LIMITS, vmCpus: 16 };
    const record = holding(['running'], vm(10));
    const admission = admit(record, [queued('large', 1, vm(8)), queued('small', 2, vm(2))], limits, at(100));
    expect(admission.admitted).toEqual([]);
    expect(admission.waiting.map((w) => w.reason)).toEqual([
      'waiting for capacity: vCPU quota in us-central1: 10 of 16 in use, this job needs 8',
      'behind 1 earlier job waiting for vCPUs in us-central1',
    ]);
  });

  it('lets a job waiting out its backoff be passed, and says what refused it', () => {
    const refused = queued('refused', 1, RUN, { notBefore: at(130), lastRefusal: 'launch refused: 429' });
    const admission = admit(EMPTY_CAPACITY, [refused, queued('next', 2)], LIMITS, at(100));
    expect(admission.admitted.map((h) => h.jobId)).toEqual(['next']);
    expect(admission.waiting[0].reason).toBe(`launch refused: 429; tried again after ${at(130)}`);
    expect(admission.nextChangeAt).toBe(at(130));
  });
});

describe('admit: fail fast, or fail after maxQueueTime', () => {
  it.each([
    [
      '4 GPUs where the quota is 0',
      vm(12, { type: 'nvidia-l4', count: 4 }),
      { vmCpus: 96, gpus: { 'nvidia-l4': { limit: 0, quota: 0 } } },
      'it needs 4 nvidia-l4 GPUs, and the us-central1 quota for them is 0: it can never run there',
    ],
    [
      'more vCPUs than the quota',
      vm(32),
      { vmCpus: 20, vmCpuQuota: 24 },
      'it needs 32 vCPUs, and the vCPU quota in us-central1 is 24: it can never run there',
    ],
    [
      'more vCPUs than VM_MAX_VCPUS',
      vm(32),
      { vmCpus: 16 },
      'it needs 32 vCPUs, and the vCPU limit in us-central1 is 16: it can never run there',
    ],
  ])('fails at once a job that can never fit: %s', (_name, demand, extra, reason) => {
    const admission = admit(EMPTY_CAPACITY, [queued('never', 1, demand)], { ...LIMITS, ...extra }, at(100));
    expect(admission.failNow).toEqual([{ jobId: 'never', reason }]);
    expect(admission.admitted).toEqual([]);
  });

  it('does not fail a job that fits the quota but not what others use now', () => {
    const limits = { ...LIMITS, vmCpus: 4, vmCpuQuota: 24 };
    expect(admit(EMPTY_CAPACITY, [queued('later', 1, vm(8))], limits, at(100)).failNow).toEqual([]);
  });

  it('fails a job past its maxQueueTime with what it waited for; one that fits then still runs', () => {
    const full = holding(Array.from({ length: 10 }, (_, i) => `h${i}`));
    const late = queued('late', 1, RUN, { expiresAt: at(90) });
    expect(admit(full, [late], LIMITS, at(100)).failNow).toEqual([
      {
        jobId: 'late',
        reason: `no capacity came within its rule's maxQueueTime (queued at ${at(1)}): waiting for capacity: 10 of 10 Cloud Run executions in use`,
      },
    ]);
    expect(admittedIds(EMPTY_CAPACITY, [late])).toEqual(['late']);
  });
});

describe('two dispatchers taking the last slot at once', () => {
  it('lets exactly one take it: the other compare-and-set loses, and its next read admits nothing', () => {
    let stored = holding(Array.from({ length: 9 }, (_, i) => `h${i}`));
    const write = (next: CapacityRecord) => {
      if (next.version !== stored.version + 1) return false;
      stored = next;
      return true;
    };
    const queue = [queued('x', 1), queued('y', 2)];
    const one = admit(stored, queue, LIMITS, at(100));
    const two = admit(stored, queue, LIMITS, at(100));
    expect(one.admitted.map((h) => h.jobId)).toEqual(['x']);
    expect(two.admitted.map((h) => h.jobId)).toEqual(['x']);
    expect([write(one.record), write(two.record)]).toEqual([true, false]);
    const again = admit(stored, queue, LIMITS, at(100));
    expect(again.admitted).toEqual([]);
    expect(stored.holders.filter((h) => h.jobId === 'x')).toHaveLength(1);
    expect(stored.holders).toHaveLength(10);
  });
});

describe('slots after admission', () => {
  const holder: SlotHolder = { ...RUN, jobId: 'a', at: at(0) };

  it('gives a slot back once', () => {
    const record = { ...EMPTY_CAPACITY, version: 3, holders: [holder] };
    expect(releaseSlot(record, 'a')).toEqual({ ...record, version: 4, holders: [] });
    expect(releaseSlot({ ...record, holders: [] }, 'a')).toBeUndefined();
  });

  it('learns a ceiling from a refusal at 10 in use, and tries more after the hold', () => {
    const ten = holding(Array.from({ length: 10 }, (_, i) => `h${i}`));
    const refused: SlotHolder = { ...RUN, jobId: 'r', at: at(100) };
    const record = learnCeiling(
      { ...ten, holders: [...ten.holders, refused] },
      refused,
      { ...LIMITS, runExecutions: 900 },
      at(100),
      '429 RESOURCE_EXHAUSTED',
    );
    expect(record.ceilings).toEqual([
      { pool: 'run', limit: 10, until: at(160), reason: '429 RESOURCE_EXHAUSTED' },
    ]);
    expect(record.holders).toHaveLength(10);
    const freed = { ...record, holders: record.holders.slice(1) };
    const limits = { ...LIMITS, runExecutions: 900 };
    const queue = [queued('a', 1), queued('b', 2)];
    const during = admit(freed, queue, limits, at(120));
    expect(during.admitted.map((h) => h.jobId)).toEqual(['a']);
    expect(during.waiting[0].reason).toBe(
      `waiting for capacity: 10 of 10 Cloud Run executions in use (the platform refused a launch at 10 in use: 429 RESOURCE_EXHAUSTED; more is tried after ${at(160)})`,
    );
    expect(admit(freed, queue, limits, at(161)).admitted).toHaveLength(2);
  });

  it('keeps one launch probing when the platform refuses with nothing of ours in use', () => {
    const refused: SlotHolder = { ...RUN, jobId: 'r', at: at(100) };
    const record = learnCeiling({ ...EMPTY_CAPACITY, holders: [refused] }, refused, LIMITS, at(100), 'full');
    expect(record.ceilings[0].limit).toBe(1);
  });

  it('repairs the record from the ledger: stale slots out after the grace, unrecorded ones in', () => {
    const stale: SlotHolder = { ...RUN, jobId: 'gone', at: at(0) };
    const fresh: SlotHolder = { ...RUN, jobId: 'launching', at: at(95) };
    const record = { ...EMPTY_CAPACITY, version: 2, holders: [stale, fresh] };
    const active = new Map([['running', { ...RUN, jobId: 'running' }]]);
    const repaired = repairSlots(record, active, at(100), 60_000)!;
    expect(repaired.holders.map((h) => h.jobId)).toEqual(['launching', 'running']);
    expect(repairSlots(repaired, active, at(100), 60_000)).toBeUndefined();
  });
});

describe('demandOf', () => {
  it.each([
    ['cloud-run-job', { cpu: 2 }, undefined, { target: 'cloud-run-job', cpus: 2 }],
    ['vm', { machineType: 'e2-standard-8' }, undefined, { target: 'vm', cpus: 8 }],
    ['vm', { machineType: 'n2-custom-6-24576' }, undefined, { target: 'vm', cpus: 6 }],
    ['vm', {}, 'e2-standard-4', { target: 'vm', cpus: 4 }],
    [
      'vm',
      { machineType: 'g2-standard-24' },
      undefined,
      { target: 'vm', cpus: 24, gpus: { type: 'nvidia-l4', count: 2 } },
    ],
    [
      'vm',
      { machineType: 'n1-standard-4', accelerator: { type: 'nvidia-tesla-t4', count: 1 } },
      undefined,
      { target: 'vm', cpus: 4, gpus: { type: 'nvidia-tesla-t4', count: 1 } },
    ],
  ] as const)('%s %j (default %s) takes %j', (target, template, defaultType, demand) => {
    expect(demandOf(target, { args: [], env: {}, spot: false, ...template }, defaultType)).toEqual(demand);
  });
});

describe('queuedJob', () => {
  const job = (changes: Partial<Job>): Job => ({
    ...newJob('ab'.repeat(16), { kind: 'request', task: 'logreg', args: [], env: {} }, at(0)),
    state: 'QUEUED',
    ...changes,
  });

  it('is the job as admission sees it: its demand, its queue entry and the last refusal', () => {
    const queued = job({
      rule: 'big',
      target: 'vm',
      template: { args: [], env: {}, spot: false, machineType: 'e2-standard-8' },
      queue: {
        queuedAt: at(1),
        dueBy: at(2),
        expiresAt: at(3),
        notBefore: at(4),
        refusals: 1,
        reason: 'quota CPUS exceeded',
      },
    });
    expect(queuedJob(queued)).toEqual({
      jobId: queued.id,
      rule: 'big',
      demand: { target: 'vm', cpus: 8 },
      queuedAt: at(1),
      dueBy: at(2),
      expiresAt: at(3),
      notBefore: at(4),
      lastRefusal: 'quota CPUS exceeded',
    });
  });

  it('takes the default machine type for a VM whose template names none', () => {
    const queued = job({ target: 'vm', template: { args: [], env: {}, spot: false } });
    expect(queuedJob(queued, 'e2-standard-4').demand).toEqual({ target: 'vm', cpus: 4 });
  });

  it('waits a job from before the queue as if queued when last updated, never expiring', () => {
    const old = job({ updatedAt: at(9) });
    expect(queuedJob(old)).toEqual({
      jobId: old.id,
      demand: { target: 'cloud-run-job', cpus: 1 },
      queuedAt: at(9),
      dueBy: at(9),
      expiresAt: '9999-12-31T00:00:00.000Z',
    });
  });
});
