// route (src/routing/route.ts): which rule a request meets, where its job runs and with what.
import { describe, expect, it } from 'vitest';
import type { StorageObject } from '../../src/events.ts';
import { CLOUD_RUN_JOB_LIMITS } from '../../src/platforms.ts';
import { DEFAULT_RETRY_POLICY } from '../../src/retry.ts';
import { route } from '../../src/routing/route.ts';
import type { Resources } from '../../src/template.ts';
import { config, GiB, launched, object } from './support.ts';

describe('route: matching', () => {
  it('lets the first matching rule win', () => {
    const rules = config(
      { name: 'skip-images', match: { path: '**/*.png' }, target: 'ignore' },
      { name: 'csv', match: { path: '**.csv' }, target: 'cloud-run-job' },
      { name: 'everything', target: 'vm' },
    );
    expect(route({ object: object('a/b.csv'), declared: {} }, rules)).toMatchObject({
      action: 'launch',
      rule: 'csv',
    });
    expect(route({ object: object('a/b.png'), declared: {} }, rules)).toEqual({
      action: 'ignore',
      rule: 'skip-images',
      reason: 'rule "skip-images" ignores it (path matches "**/*.png")',
    });
    expect(route({ object: object('a/b.json'), declared: {} }, rules)).toMatchObject({ rule: 'everything' });
  });

  it('ignores with "no rule matched" when nothing matches', () => {
    const rules = config({ name: 'csv', match: { path: '*.csv' }, target: 'vm' });
    expect(route({ object: object('a.json'), declared: {} }, rules)).toEqual({
      action: 'ignore',
      reason: 'no rule matched',
    });
  });

  const withMetadata = { metadata: { 'pipeline-runtime': 'vm', team: 'ml' } };
  const gpu = { type: 'nvidia-l4', count: 1 };
  // [match, object fields, declared, phrase when it matches | null when it must not]
  it.each<[Record<string, unknown>, Partial<StorageObject>, Resources, string | null]>([
    [{}, {}, {}, 'no conditions'],
    [{ path: ['x/**', 'in/*.csv'] }, {}, {}, 'path matches "in/*.csv"'],
    [{ path: 'x/**' }, {}, {}, null],
    [{ contentType: 'text/csv' }, { contentType: 'text/csv; charset=utf-8' }, {}, 'content type text/csv'],
    [{ contentType: 'text/*' }, { contentType: 'Text/CSV' }, {}, 'content type "text/csv" matches text/*'],
    [{ contentType: 'text/*' }, { contentType: 'textual/csv' }, {}, null],
    [{ contentType: 'text/csv' }, { contentType: undefined }, {}, null],
    [{ minSize: '1GiB' }, { size: Math.round(3.2 * GiB) }, {}, 'size 3.2 GiB >= 1 GiB'],
    [{ minSize: '1GiB' }, { size: GiB - 1 }, {}, null],
    [{ maxSize: '100MiB' }, {}, {}, 'size 10 MiB <= 100 MiB'],
    [{ maxSize: '1MiB' }, {}, {}, null],
    [{ runtime: 'vm' }, withMetadata, {}, 'object metadata pipeline-runtime=vm'],
    [{ runtime: 'cloud-run-job' }, withMetadata, {}, null],
    [{ metadata: { team: 'ml' } }, withMetadata, {}, 'object metadata team="ml"'],
    [{ metadata: { team: 'ml', tier: 'gold' } }, withMetadata, {}, null],
    [{ metadata: { constructor: 'x' } }, withMetadata, {}, null],
    [{ minCpu: 4 }, {}, { cpu: 8 }, 'declared 8 vCPU >= 4 vCPU'],
    [{ minCpu: 4 }, {}, {}, null],
    [{ maxCpu: 4 }, {}, { cpu: 8 }, null],
    [{ minMemory: '16GiB' }, {}, { memoryBytes: 64 * GiB }, 'declared memory 64 GiB >= 16 GiB'],
    [{ maxMemory: '16GiB' }, {}, { memoryBytes: 64 * GiB }, null],
    [{ gpu: true }, {}, { gpu }, 'declared GPU nvidia-l4 x1'],
    [{ gpu: true }, {}, {}, null],
    [{ gpu: false }, {}, {}, 'declared no GPU'],
    [{ gpu: false }, {}, { gpu }, null],
    [{ minDuration: '1h' }, {}, { expectedSeconds: 3 * 3600 }, 'expected duration 3h >= 1h'],
    [{ maxDuration: '30m' }, {}, { expectedSeconds: 600 }, 'expected duration 10m <= 30m'],
    [{ maxDuration: '30m' }, {}, {}, null],
    [
      { path: '**.csv', minSize: '1MiB', minCpu: 2 },
      {},
      { cpu: 2 },
      'path matches "**.csv", size 10 MiB >= 1 MiB, declared 2 vCPU >= 2 vCPU',
    ],
  ])('match %j on %j declaring %j', (match, fields, declared, phrase) => {
    const rules = config({ name: 'rule', match, target: 'vm', job: { machineType: 'custom-96-614400' } });
    const decision = route({ object: object('in/data.csv', fields), declared }, rules);
    if (phrase === null) expect(decision).toEqual({ action: 'ignore', reason: 'no rule matched' });
    else expect(decision.reason).toBe(`rule "rule" matched (${phrase}): vm custom-96-614400`);
  });

  it.each([
    { path: '**' },
    { contentType: '*/*'.replace('*/', 'text/') },
    { minSize: 0 },
    { maxSize: '1TiB' },
    { runtime: 'vm' },
    { metadata: { team: 'ml' } },
  ])('a rule on the object (%j) never matches a submitted job without one', (match) => {
    const rules = config(
      { name: 'on-object', match, target: 'vm' },
      { name: 'api', target: 'cloud-run-job' },
    );
    expect(route({ declared: { cpu: 2 } }, rules)).toMatchObject({ action: 'launch', rule: 'api' });
  });

  it('matches hostile object names and keeps them out of the reason', () => {
    const rules = config({ name: 'csv', match: { path: '**/*.csv' }, target: 'cloud-run-job' });
    for (const name of [
      'in/$(rm -rf /).csv',
      'in/`id`\n.csv',
      'Zürich/東京.csv',
      `in/${'"'.repeat(1_190)}.csv`,
    ]) {
      const decision = launched(route({ object: object(name), declared: {} }, rules));
      expect(decision.reason).toBe('rule "csv" matched (path matches "**/*.csv"): cloud-run-job');
    }
  });

  it('quotes an uploader-chosen content type in the reason', () => {
    const rules = config({ name: 'text', match: { contentType: 'text/*' }, target: 'cloud-run-job' });
    const decision = route(
      { object: object('a', { contentType: 'text/x\nrule "evil" matched' }), declared: {} },
      rules,
    );
    expect(decision.reason).toBe(
      'rule "text" matched (content type "text/x\\nrule \\"evil\\" matched" matches text/*): cloud-run-job',
    );
  });
});

describe('route: where and with what', () => {
  const onCloudRun = (job: Record<string, unknown> = {}) =>
    config({ name: 'csv', match: { path: '**.csv' }, target: 'cloud-run-job', job });

  it('gives a Cloud Run job 1 vCPU and 2 GiB when nothing is said', () => {
    const decision = launched(route({ object: object('a.csv'), declared: {} }, onCloudRun()));
    expect(decision).toEqual({
      action: 'launch',
      rule: 'csv',
      target: 'cloud-run-job',
      job: { task: 'logreg', args: [], env: {}, spot: false, cpu: 1, memoryBytes: 2 * GiB },
      retry: DEFAULT_RETRY_POLICY,
      reason: 'rule "csv" matched (path matches "**.csv"): cloud-run-job',
    });
  });

  it('gives a VM e2-standard-2 when nothing is said', () => {
    const decision = launched(route({ declared: {} }, config({ name: 'all', target: 'vm' })));
    expect(decision.job.machineType).toBe('e2-standard-2');
    expect(decision.reason).toBe('rule "all" matched (no conditions): vm e2-standard-2');
  });

  it.each<[string, Record<string, unknown>, Resources, string]>([
    ['cpu', {}, { cpu: 16 }, 'it needs 16 vCPU (Cloud Run Jobs allow 8): vm e2-standard-16'],
    [
      'memory',
      {},
      { memoryBytes: 64 * GiB },
      'it needs 64 GiB memory (Cloud Run Jobs allow 32 GiB): vm n2-highmem-8',
    ],
    [
      'timeout',
      {},
      { expectedSeconds: 200 * 3600 },
      'it needs 8d 8h (Cloud Run Jobs allow 7d): vm e2-standard-2',
    ],
    ['template timeout', { timeout: '8d' }, {}, 'it needs 8d (Cloud Run Jobs allow 7d): vm e2-standard-2'],
    [
      'GPU type',
      {},
      { gpu: { type: 'nvidia-tesla-a100', count: 1 } },
      'it needs a nvidia-tesla-a100 GPU (Cloud Run Jobs offer only nvidia-l4): vm a2-highgpu-1g',
    ],
    [
      'GPU count',
      {},
      { gpu: { type: 'nvidia-l4', count: 2 } },
      'it needs 2 GPUs (Cloud Run Jobs allow 1): vm g2-standard-24',
    ],
    [
      'GPU time',
      { accelerator: { type: 'nvidia-l4' } },
      { expectedSeconds: 7200 },
      'it needs 2h with a GPU (Cloud Run Jobs allow 1h): vm g2-standard-4',
    ],
    [
      'two limits',
      { cpu: 12 },
      { memoryBytes: 48 * GiB },
      'it needs 12 vCPU (Cloud Run Jobs allow 8) and 48 GiB memory (Cloud Run Jobs allow 32 GiB): vm e2-standard-16',
    ],
  ])('the Cloud Run %s limit sends it to a VM', (_, job, declared, tail) => {
    const decision = launched(route({ object: object('a.csv'), declared }, onCloudRun(job)));
    expect(decision.target).toBe('vm');
    expect(decision.reason).toBe(
      `rule "csv" matched (path matches "**.csv") and chose cloud-run-job, but ${tail}`,
    );
    expect(decision.job.machineType).toBe(tail.split(' ').at(-1));
  });

  it('stays on Cloud Run right at the limits', () => {
    const limits = CLOUD_RUN_JOB_LIMITS;
    const declared = {
      cpu: limits.cpu,
      memoryBytes: limits.memoryBytes,
      expectedSeconds: limits.timeoutSeconds,
    };
    const decision = launched(route({ object: object('a.csv'), declared }, onCloudRun()));
    expect(decision.target).toBe('cloud-run-job');
    expect(decision.job).toMatchObject({ cpu: 8, memoryBytes: 32 * GiB, timeoutSeconds: 168 * 3600 });
  });

  it('raises the template to the declared resources, never lowers it', () => {
    const rules = onCloudRun({ cpu: 2, memory: '4GiB', timeout: '2h', env: { K: 'v' } });
    const raised = launched(
      route(
        { object: object('a.csv'), declared: { cpu: 4, memoryBytes: GiB, expectedSeconds: 3 * 3600 + 0.5 } },
        rules,
      ),
    );
    expect(raised.job).toMatchObject({
      cpu: 4,
      memoryBytes: 4 * GiB,
      timeoutSeconds: 3 * 3600 + 1,
      env: { K: 'v' },
    });
    const kept = launched(
      route({ object: object('a.csv'), declared: { cpu: 1, expectedSeconds: 60 } }, rules),
    );
    expect(kept.job).toMatchObject({ cpu: 2, memoryBytes: 4 * GiB, timeoutSeconds: 7200 });
    expect(rules.rules[0].job.cpu).toBe(2); // the parsed config is not changed by routing
  });

  it.each<[Record<string, unknown>, Resources, Record<string, unknown>]>([
    [{ cpu: 3 }, {}, { cpu: 4, memoryBytes: 2 * GiB }],
    [{ memory: '12GiB' }, {}, { cpu: 4, memoryBytes: 12 * GiB }],
    [{ memory: '20GiB' }, {}, { cpu: 6, memoryBytes: 20 * GiB }],
    [{ cpu: 6, memory: '1GiB' }, {}, { cpu: 6, memoryBytes: 4 * GiB }],
    [{ cpu: 0.5 }, {}, { cpu: 1, memoryBytes: 2 * GiB }],
    [
      {},
      { gpu: { type: 'nvidia-l4', count: 1 } },
      { cpu: 4, memoryBytes: 16 * GiB, accelerator: { type: 'nvidia-l4', count: 1 } },
    ],
  ])('shapes %j declaring %j into what Cloud Run accepts', (job, declared, shape) => {
    const decision = launched(route({ object: object('a.csv'), declared }, onCloudRun(job)));
    expect(decision.target).toBe('cloud-run-job');
    expect(decision.job).toMatchObject(shape);
  });

  it('keeps a named machine type that fits or that it does not know, and replaces one too small', () => {
    const vm = (machineType: string) => config({ name: 'big', target: 'vm', job: { machineType } });
    expect(launched(route({ declared: { cpu: 4 } }, vm('e2-standard-4'))).job.machineType).toBe(
      'e2-standard-4',
    );
    expect(launched(route({ declared: { cpu: 64 } }, vm('c3-standard-88'))).job.machineType).toBe(
      'c3-standard-88',
    );
    const replaced = launched(route({ declared: { cpu: 16 } }, vm('e2-standard-4')));
    expect(replaced.job.machineType).toBe('e2-standard-16');
    expect(replaced.reason).toBe(
      'rule "big" matched (no conditions): vm e2-standard-16 (e2-standard-4 does not fit 16 vCPU, 0 B memory)',
    );
  });

  it('ignores, naming the rule, a job no machine type fits', () => {
    const decision = route({ declared: { cpu: 500 } }, config({ name: 'huge', target: 'vm' }));
    expect(decision).toEqual({
      action: 'ignore',
      rule: 'huge',
      reason: 'rule "huge" matched (no conditions); it needs 500 vCPU, 0 B memory: no machine type fits',
    });
  });

  describe("a request's own image or task", () => {
    const IMAGE = 'us-docker.pkg.dev/p/r/render:1';
    const containers = (job: Record<string, unknown> = { cpu: 1, memory: '2GiB' }) =>
      config({ name: 'containers', target: 'cloud-run-job', job });

    it('sends an image of its own to a VM, though the rule chose Cloud Run, and says why', () => {
      const decision = launched(route({ declared: {}, image: IMAGE }, containers()));
      expect(decision).toMatchObject({
        target: 'vm',
        rule: 'containers',
        job: { image: IMAGE, machineType: 'e2-standard-2', cpu: 1, memoryBytes: 2 * GiB },
      });
      expect(decision.job.task).toBeUndefined();
      expect(decision.reason).toBe(
        `rule "containers" matched (no conditions) and chose cloud-run-job, but the request's own image ${IMAGE} can only run on a VM: vm e2-standard-2`,
      );
    });

    it("puts the request's image in place of the rule's, on a VM rule too", () => {
      const rules = config({ name: 'vm', target: 'vm', job: { image: 'rule/image:1', cpu: 4 } });
      const decision = launched(route({ declared: {}, image: IMAGE }, rules));
      expect(decision).toMatchObject({ target: 'vm', job: { image: IMAGE, machineType: 'e2-standard-4' } });
      expect(decision.reason).toBe('rule "vm" matched (no conditions): vm e2-standard-4');
    });

    it("runs a request's worker task on Cloud Run, whatever image the rule names", () => {
      const decision = launched(
        route({ declared: {}, task: 'train' }, containers({ image: 'rule/image:1' })),
      );
      expect(decision).toMatchObject({ target: 'cloud-run-job', job: { task: 'train' } });
      expect(decision.job.image).toBeUndefined();
      // Without the request's task, the rule's image goes to a VM, as before.
      const own = launched(route({ declared: {} }, containers({ image: 'rule/image:1' })));
      expect(own.target).toBe('vm');
      expect(own.reason).toContain('but its image rule/image:1 can only run on a VM');
    });

    it('leaves Cloud Run out in cost mode, even where it would be cheapest', () => {
      const rules = config({
        name: 'work',
        mode: 'cost',
        target: ['cloud-run-job', 'vm'],
        job: { cpu: 1, memory: '2GiB', spot: true },
        prior: { base: '5s', perGiB: '0s' },
      });
      expect(launched(route({ declared: {} }, rules)).target).toBe('cloud-run-job');
      const decision = launched(route({ declared: {}, image: IMAGE }, rules));
      expect(decision).toMatchObject({ target: 'vm', job: { image: IMAGE, spot: true } });
      expect(decision.estimate?.options[0]).toEqual({
        target: 'cloud-run-job',
        feasible: false,
        why: `its image ${IMAGE} can only run on a VM`,
      });
      expect(decision.reason).toContain(`cloud-run-job: its image ${IMAGE} can only run on a VM`);
      const onlyRun = config({ name: 'run', mode: 'cost', target: 'cloud-run-job', job: {} });
      const fallback = launched(route({ declared: {}, image: IMAGE }, onlyRun));
      expect(fallback).toMatchObject({ target: 'vm', job: { image: IMAGE } });
      expect(fallback.reason).toContain('no listed target can run it, so a VM');
    });
  });

  it('sets the GPU count a G2 machine type comes with', () => {
    const decision = launched(
      route({ declared: { gpu: { type: 'nvidia-l4', count: 3 } } }, config({ name: 'g', target: 'vm' })),
    );
    expect(decision.job).toMatchObject({
      machineType: 'g2-standard-48',
      accelerator: { type: 'nvidia-l4', count: 4 },
    });
  });
});
