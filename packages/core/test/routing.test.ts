import { describe, expect, it } from 'vitest';
import { parsePriceTable } from '../src/cost/price-config.ts';
import { DEFAULT_PRICES, runCost, type RunShape } from '../src/cost/prices.ts';
import type { StorageObject } from '../src/events.ts';
import { formatSeconds, formatUsd } from '../src/format.ts';
import { DEFAULT_RETRY_POLICY } from '../src/retry.ts';
import { DEFAULT_QUEUE_POLICY } from '../src/routing/types.ts';
import {
  CLOUD_RUN_JOB_LIMITS,
  declaredFromMetadata,
  machineTypeFor,
  parseRoutingConfig,
  route,
  RoutingConfigError,
  type Resources,
  type RouteDecision,
  type Rule,
} from '../src/routing/index.ts';

const GiB = 1024 ** 3;
const MiB = 1024 ** 2;

function object(name: string, fields: Partial<StorageObject> = {}): StorageObject {
  return { bucket: 'in', name, generation: '1700000000000001', size: 10 * MiB, metadata: {}, ...fields };
}

function config(...rules: unknown[]) {
  return parseRoutingConfig({ rules });
}

function launched(decision: RouteDecision) {
  if (decision.action !== 'launch') throw new Error(`expected a launch, got: ${decision.reason}`);
  return decision;
}

describe('parseRoutingConfig', () => {
  it('reads a full rule and fills the defaults', () => {
    const parsed = config(
      {
        name: 'csv',
        match: { path: '**.csv', contentType: ['text/csv', 'Text/*'], minSize: '1KiB', maxDuration: '30m' },
        target: 'cloud-run-job',
        job: { args: ['--fast'], env: { LEARNING_RATE: '0.1' }, memory: '4GiB', timeout: '1h' },
      },
      { name: 'skip', target: 'ignore' },
    );
    const [csv, skip] = parsed.rules;
    expect(csv.match.paths?.map((p) => p.glob)).toEqual(['**.csv']);
    expect(csv.match).toMatchObject({
      contentTypes: ['text/csv', 'text/*'],
      minSizeBytes: 1024,
      maxExpectedSeconds: 1800,
    });
    expect(csv.job).toEqual({
      task: 'logreg',
      args: ['--fast'],
      env: { LEARNING_RATE: '0.1' },
      memoryBytes: 4 * GiB,
      timeoutSeconds: 3600,
      spot: false,
    });
    expect(skip).toEqual({
      name: 'skip',
      match: {},
      target: 'ignore',
      job: { task: 'logreg', args: [], env: {}, spot: false },
      retry: DEFAULT_RETRY_POLICY,
      queue: DEFAULT_QUEUE_POLICY,
    });
  });

  it('keeps an image without inventing a task, and reads the VM fields', () => {
    const [rule] = config({
      name: 'gpu',
      target: 'vm',
      job: {
        image: 'europe-docker.pkg.dev/p/r/train@sha256:abc',
        machineType: 'g2-standard-8',
        spot: true,
        standardIfNoSpot: true,
        accelerator: { type: 'nvidia-l4', count: 1 },
      },
    }).rules;
    expect(rule.job).toEqual({
      image: 'europe-docker.pkg.dev/p/r/train@sha256:abc',
      args: [],
      env: {},
      machineType: 'g2-standard-8',
      spot: true,
      standardIfNoSpot: true,
      accelerator: { type: 'nvidia-l4', count: 1 },
    });
  });

  it('leaves standardIfNoSpot out unless the rule says it, so a spot VM waits for spot capacity', () => {
    const [rule] = config({ name: 'spot', target: 'vm', job: { spot: true } }).rules;
    expect(rule.job).not.toHaveProperty('standardIfNoSpot');
    const [off] = config({ name: 'spot', target: 'vm', job: { spot: true, standardIfNoSpot: false } }).rules;
    expect(off.job.standardIfNoSpot).toBe(false);
  });

  const rule = (fields: Record<string, unknown>) => ({ rules: [{ name: 'csv', target: 'vm', ...fields }] });
  const second = (fields: Record<string, unknown>) => ({
    rules: [
      { name: 'first', target: 'vm' },
      { name: 'big-files', target: 'vm', ...fields },
    ],
  });

  it.each<[string, unknown, string, string]>([
    ['not an object', 'rules: []', 'config', 'config: must be an object with "rules", got "rules: []"'],
    ['no rules', {}, 'rules', 'rules: must be a non-empty list'],
    ['empty rules', { rules: [] }, 'rules', 'rules: must be a non-empty list'],
    [
      'unknown top-level key',
      { rules: [], version: 2 },
      'version',
      'version: unknown key (expected one of rules, prices)',
    ],
    [
      'rule not an object',
      { rules: ['csv'] },
      '',
      'rule 1: must be an object with name, match, target and job, got "csv"',
    ],
    [
      'bad name',
      { rules: [{ name: 'Big Files', target: 'vm' }] },
      'name',
      'rule 1: name: must be lower-case letters, digits and "-" (like "big-files"), got "Big Files"',
    ],
    [
      'missing name',
      { rules: [{ target: 'vm' }] },
      'name',
      'rule 1: name: must be lower-case letters, digits and "-" (like "big-files"), got nothing',
    ],
    [
      'duplicate name',
      {
        rules: [
          { name: 'csv', target: 'vm' },
          { name: 'csv', target: 'ignore' },
        ],
      },
      'name',
      'rule 2 ("csv"): name: "csv" is already the name of rule 1',
    ],
    [
      'bad target',
      rule({ target: 'lambda' }),
      'target',
      'rule 1 ("csv"): target: must be "cloud-run-job", "vm" or "ignore", got "lambda"',
    ],
    [
      'missing target',
      rule({ target: undefined }),
      'target',
      'rule 1 ("csv"): target: must be "cloud-run-job", "vm" or "ignore", got nothing',
    ],
    [
      'typo in a rule key',
      rule({ mach: {} }),
      'mach',
      'rule 1 ("csv"): mach: unknown key (expected one of name, match, target, job, retry, queue, params)',
    ],
    [
      'typo in a match key',
      second({ match: { minsize: '1GiB' } }),
      'match.minsize',
      'rule 2 ("big-files"): match.minsize: unknown key',
    ],
    [
      'typo in a job key',
      rule({ job: { imgae: 'x' } }),
      'job.imgae',
      'rule 1 ("csv"): job.imgae: unknown key',
    ],
    [
      'typo in the accelerator',
      rule({ job: { accelerator: { type: 'nvidia-l4', cnt: 1 } } }),
      'job.accelerator.cnt',
      'job.accelerator.cnt: unknown key',
    ],
    [
      'bad size',
      second({ match: { minSize: '12XB' } }),
      'match.minSize',
      'rule 2 ("big-files"): match.minSize: "12XB" is not a size like "512MiB" or "4GiB"',
    ],
    [
      'size of a wrong type',
      rule({ match: { maxSize: true } }),
      'match.maxSize',
      'rule 1 ("csv"): match.maxSize: true is not a size like "512MiB" or "4GiB"',
    ],
    [
      'bad duration',
      rule({ match: { minDuration: '1 hour' } }),
      'match.minDuration',
      'rule 1 ("csv"): match.minDuration: "1 hour" is not a duration like "90s", "30m" or "1h30m"',
    ],
    [
      'reversed range',
      rule({ match: { minSize: '1GiB', maxSize: '1KiB' } }),
      'match.maxSize',
      'rule 1 ("csv"): match.maxSize: "1KiB" is below match.minSize "1GiB"',
    ],
    [
      'reversed cpu range',
      rule({ match: { minCpu: 8, maxCpu: 2 } }),
      'match.maxCpu',
      'match.maxCpu: 2 is below match.minCpu 8',
    ],
    [
      'empty path list',
      rule({ match: { path: [] } }),
      'match.path',
      'rule 1 ("csv"): match.path: must be a string or a non-empty list of strings',
    ],
    [
      'empty glob',
      rule({ match: { path: ['a/*', ''] } }),
      'match.path',
      'rule 1 ("csv"): match.path: must be a non-empty string, got ""',
    ],
    [
      'broken glob',
      rule({ match: { path: 'img/[z-a].png' } }),
      'match.path',
      'rule 1 ("csv"): match.path: "img/[z-a].png" is not a valid glob: [z-a] is an empty range',
    ],
    [
      'bad content type',
      rule({ match: { contentType: 'csv' } }),
      'match.contentType',
      'rule 1 ("csv"): match.contentType: "csv" is not like "text/csv" or "image/*"',
    ],
    [
      'bad runtime',
      rule({ match: { runtime: 'gke' } }),
      'match.runtime',
      'rule 1 ("csv"): match.runtime: must be "cloud-run-job" or "vm", got "gke"',
    ],
    [
      'metadata not strings',
      rule({ match: { metadata: { team: 7 } } }),
      'match.metadata.team',
      'rule 1 ("csv"): match.metadata.team: must be a string, got 7',
    ],
    [
      'gpu not boolean',
      rule({ match: { gpu: 'yes' } }),
      'match.gpu',
      'rule 1 ("csv"): match.gpu: must be true or false, got "yes"',
    ],
    [
      'cpu zero',
      rule({ match: { minCpu: 0 } }),
      'match.minCpu',
      'rule 1 ("csv"): match.minCpu: must be a number above zero, got 0',
    ],
    [
      'job cpu as text',
      rule({ job: { cpu: '2' } }),
      'job.cpu',
      'rule 1 ("csv"): job.cpu: must be a number above zero, got "2"',
    ],
    [
      'job memory zero',
      rule({ job: { memory: '0GiB' } }),
      'job.memory',
      'rule 1 ("csv"): job.memory: must be more than zero, got "0GiB"',
    ],
    [
      'job timeout zero',
      rule({ job: { timeout: 0 } }),
      'job.timeout',
      'rule 1 ("csv"): job.timeout: must be more than zero, got 0',
    ],
    [
      'bad task',
      rule({ job: { task: '../etc' } }),
      'job.task',
      'rule 1 ("csv"): job.task: must be a task name like "logreg", got "../etc"',
    ],
    [
      'image with a space',
      rule({ job: { image: 'busybox; rm -rf /' } }),
      'job.image',
      'rule 1 ("csv"): job.image: must be an image reference',
    ],
    [
      'args not a list',
      rule({ job: { args: '--fast' } }),
      'job.args',
      'rule 1 ("csv"): job.args: must be a list of strings, got "--fast"',
    ],
    [
      'arg not a string',
      rule({ job: { args: ['--n', 3] } }),
      'job.args[1]',
      'rule 1 ("csv"): job.args[1]: must be a string, got 3',
    ],
    [
      'arg with NUL',
      rule({ job: { args: ['a\u0000b'] } }),
      'job.args[0]',
      'rule 1 ("csv"): job.args[0]: contains a NUL character',
    ],
    [
      'bad env key',
      rule({ job: { env: { 'MY-VAR': '1' } } }),
      'job.env.MY-VAR',
      'rule 1 ("csv"): job.env.MY-VAR: is not a variable name like "LEARNING_RATE"',
    ],
    [
      'env value not a string',
      rule({ job: { env: { N: 3 } } }),
      'job.env.N',
      'rule 1 ("csv"): job.env.N: must be a string, got 3',
    ],
    [
      'reserved env key',
      rule({ job: { env: { INPUT_URI: 'gs://x/y' } } }),
      'job.env.INPUT_URI',
      'rule 1 ("csv"): job.env.INPUT_URI: is set by the pipeline itself and cannot be overridden',
    ],
    [
      'reserved Cloud Run env key',
      rule({ job: { env: { CLOUD_RUN_TASK_INDEX: '0' } } }),
      'job.env.CLOUD_RUN_TASK_INDEX',
      'is set by the pipeline itself',
    ],
    [
      'bad machine type',
      rule({ job: { machineType: 'E2 Standard' } }),
      'job.machineType',
      'rule 1 ("csv"): job.machineType: must be a machine type like "e2-standard-4", got "E2 Standard"',
    ],
    [
      'spot not boolean',
      rule({ job: { spot: 'true' } }),
      'job.spot',
      'rule 1 ("csv"): job.spot: must be true or false, got "true"',
    ],
    [
      'standardIfNoSpot not boolean',
      rule({ job: { spot: true, standardIfNoSpot: 'yes' } }),
      'job.standardIfNoSpot',
      'rule 1 ("csv"): job.standardIfNoSpot: must be true or false, got "yes"',
    ],
    [
      'fractional GPU count',
      rule({ job: { accelerator: { type: 'nvidia-l4', count: 0.5 } } }),
      'job.accelerator.count',
      'rule 1 ("csv"): job.accelerator.count: must be a whole number of at least 1, got 0.5',
    ],
    [
      'GPU without a type',
      rule({ job: { accelerator: { count: 1 } } }),
      'job.accelerator.type',
      'rule 1 ("csv"): job.accelerator.type: must be a GPU type like "nvidia-l4", got nothing',
    ],
    [
      'job on an ignore rule',
      rule({ target: 'ignore', job: { task: 'logreg' } }),
      'job',
      'rule 1 ("csv"): job: an ignore rule runs nothing; remove job',
    ],
    [
      'match not an object',
      rule({ match: ['**'] }),
      'match',
      'rule 1 ("csv"): match: must be an object, got a list',
    ],
  ])('%s', (_, raw, field, message) => {
    let error: unknown;
    try {
      parseRoutingConfig(raw);
    } catch (caught) {
      error = caught;
    }
    expect(error).toBeInstanceOf(RoutingConfigError);
    const configError = error as RoutingConfigError;
    expect(configError.message).toContain(message);
    expect(configError).toMatchObject({ name: 'RoutingConfigError', code: 'ROUTING_CONFIG', field });
  });

  it('names the rule by index and name on the error', () => {
    expect(() => parseRoutingConfig(second({ match: { minSize: '12XB' } }))).toThrow(
      expect.objectContaining({ rule: { index: 2, name: 'big-files' }, field: 'match.minSize' }),
    );
  });

  it('rejects a __proto__ key as unknown rather than obeying it', () => {
    const raw = JSON.parse('{"rules":[{"name":"a","target":"vm","match":{"__proto__":{"gpu":true}}}]}');
    expect(() => parseRoutingConfig(raw)).toThrow('rule 1 ("a"): match.__proto__: unknown key');
  });
});

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

describe('machineTypeFor', () => {
  it.each<[number, number, Resources['gpu'], string | undefined]>([
    [1, 0, undefined, 'e2-standard-2'],
    [2, 8 * GiB, undefined, 'e2-standard-2'],
    [3, 0, undefined, 'e2-standard-4'],
    [8, 20 * GiB, undefined, 'e2-standard-8'],
    [16, 0, undefined, 'e2-standard-16'],
    [32, 128 * GiB, undefined, 'e2-standard-32'],
    [2, 16 * GiB, undefined, 'n2-highmem-2'],
    [8, 64 * GiB, undefined, 'n2-highmem-8'],
    [40, 0, undefined, 'n2-standard-48'],
    [40, 300 * GiB, undefined, 'n2-highmem-48'],
    [80, 640 * GiB, undefined, 'n2-highmem-80'],
    [81, 0, undefined, undefined],
    [1, 700 * GiB, undefined, undefined],
    [1, 0, { type: 'nvidia-l4', count: 1 }, 'g2-standard-4'],
    [10, 0, { type: 'nvidia-l4', count: 1 }, 'g2-standard-12'],
    [1, 0, { type: 'nvidia-l4', count: 2 }, 'g2-standard-24'],
    [1, 0, { type: 'nvidia-l4', count: 8 }, 'g2-standard-96'],
    [1, 0, { type: 'nvidia-tesla-a100', count: 1 }, 'a2-highgpu-1g'],
    [30, 0, { type: 'nvidia-tesla-a100', count: 1 }, 'a2-highgpu-4g'],
    [1, 0, { type: 'nvidia-tesla-t4', count: 1 }, undefined],
  ])('%d vCPU, %d bytes, GPU %j: %s', (cpu, memory, gpu, name) => {
    expect(machineTypeFor(cpu, memory, gpu)?.name).toBe(name);
  });
});

describe('declaredFromMetadata', () => {
  it('reads the pipeline-* keys', () => {
    expect(
      declaredFromMetadata({
        'pipeline-cpu': '4',
        'pipeline-memory': '8GiB',
        'pipeline-gpu': 'nvidia-l4:2',
        'pipeline-duration': '3h',
        'pipeline-runtime': 'vm',
        other: 'x',
      }),
    ).toEqual({
      resources: {
        cpu: 4,
        memoryBytes: 8 * GiB,
        gpu: { type: 'nvidia-l4', count: 2 },
        expectedSeconds: 3 * 3600,
      },
      errors: [],
    });
    expect(declaredFromMetadata({ 'pipeline-gpu': 'NVIDIA-L4' }).resources).toEqual({
      gpu: { type: 'nvidia-l4', count: 1 },
    });
    expect(declaredFromMetadata({})).toEqual({ resources: {}, errors: [] });
  });

  it.each([
    ['pipeline-cpu', 'lots', 'pipeline-cpu: "lots" is not a vCPU count like "4"'],
    ['pipeline-cpu', '0x10', 'pipeline-cpu: "0x10" is not a vCPU count like "4"'],
    ['pipeline-cpu', '0', 'pipeline-cpu: "0" is not a vCPU count like "4"'],
    ['pipeline-memory', '8 gigs', 'pipeline-memory: "8 gigs" is not a size like "512MiB" or "4GiB"'],
    ['pipeline-memory', '0', 'pipeline-memory: must be more than zero'],
    [
      'pipeline-gpu',
      'nvidia-l4:0',
      'pipeline-gpu: "nvidia-l4:0" is not a GPU like "nvidia-l4" or "nvidia-l4:2"',
    ],
    ['pipeline-gpu', '$(reboot)', 'pipeline-gpu: "$(reboot)" is not a GPU like "nvidia-l4" or "nvidia-l4:2"'],
    [
      'pipeline-duration',
      'forever',
      'pipeline-duration: "forever" is not a duration like "90s", "30m" or "1h30m"',
    ],
    ['pipeline-duration', '0s', 'pipeline-duration: must be more than zero'],
  ])('reports %s=%j and skips it', (key, value, error) => {
    expect(
      declaredFromMetadata({ [key]: value, 'pipeline-cpu': key === 'pipeline-cpu' ? value : '2' }),
    ).toEqual({
      resources: key === 'pipeline-cpu' ? {} : { cpu: 2 },
      errors: [error],
    });
  });

  it('quotes and cuts a long hostile value', () => {
    const { errors } = declaredFromMetadata({ 'pipeline-memory': `1\n${'x'.repeat(500)}` });
    expect(errors[0].length).toBeLessThan(160);
    expect(errors[0]).not.toContain('\n');
  });

  it('feeds route', () => {
    const rules = config(
      { name: 'big', match: { minMemory: '16GiB' }, target: 'vm' },
      { name: 'small', target: 'cloud-run-job' },
    );
    const declared = declaredFromMetadata({ 'pipeline-memory': '64GiB' }).resources;
    expect(route({ object: object('a.csv'), declared }, rules).reason).toBe(
      'rule "big" matched (declared memory 64 GiB >= 16 GiB): vm n2-highmem-8',
    );
  });
});

describe('parseRoutingConfig: cost mode', () => {
  it('reads the candidates, the deadline and the prior', () => {
    const [train, vmOnly, fixed] = config(
      {
        name: 'train',
        mode: 'cost',
        target: ['cloud-run-job', 'vm'],
        deadline: '2h',
        prior: { base: '30s', perGiB: '2m' },
        job: { cpu: 8, memory: '32GiB', spot: true },
      },
      { name: 'vm-only', mode: 'cost', target: 'vm' },
      { name: 'fixed', mode: 'fixed', target: 'vm', prior: { base: '1h' } },
    ).rules;
    expect(train).toMatchObject({
      target: ['cloud-run-job', 'vm'],
      deadlineSeconds: 7200,
      prior: { baseSeconds: 30, secondsPerGiB: 120 },
    });
    expect(vmOnly.target).toEqual(['vm']);
    expect(vmOnly).not.toHaveProperty('deadlineSeconds');
    // "fixed" is the default; a fixed rule may carry a prior for its estimates.
    expect(fixed).toEqual({
      ...config({ name: 'fixed', target: 'vm' }).rules[0],
      prior: { baseSeconds: 3600, secondsPerGiB: 60 },
    });
  });

  const rule = (fields: Record<string, unknown>) => ({ rules: [{ name: 'csv', target: 'vm', ...fields }] });
  it.each<[string, unknown, string, string]>([
    [
      'bad mode',
      rule({ mode: 'cheap' }),
      'mode',
      'rule 1 ("csv"): mode: must be "fixed" or "cost", got "cheap"',
    ],
    [
      'a list without cost mode',
      rule({ target: ['vm'] }),
      'target',
      'rule 1 ("csv"): target: a list of targets needs "mode": "cost"',
    ],
    [
      'a candidate that is no target',
      rule({ mode: 'cost', target: ['vm', 'gke'] }),
      'target',
      'rule 1 ("csv"): target: in cost mode must be "cloud-run-job", "vm" or a list of them, got a list',
    ],
    [
      'ignore in cost mode',
      rule({ mode: 'cost', target: 'ignore' }),
      'target',
      'in cost mode must be "cloud-run-job", "vm" or a list of them, got "ignore"',
    ],
    ['no candidates', rule({ mode: 'cost', target: [] }), 'target', 'in cost mode must be'],
    [
      'a candidate twice',
      rule({ mode: 'cost', target: ['vm', 'vm'] }),
      'target',
      'target: lists a target twice: ["vm","vm"]',
    ],
    [
      'a deadline without cost mode',
      rule({ deadline: '1h' }),
      'deadline',
      'rule 1 ("csv"): deadline: only a rule with "mode": "cost" chooses where to run by its deadline',
    ],
    [
      'bad deadline',
      rule({ mode: 'cost', deadline: 'soon' }),
      'deadline',
      'deadline: "soon" is not a duration like "90s"',
    ],
    [
      'zero deadline',
      rule({ mode: 'cost', deadline: 0 }),
      'deadline',
      'deadline: must be more than zero, got 0',
    ],
    [
      'prior not an object',
      rule({ prior: '30s' }),
      'prior',
      'prior: must be an object like {"base": "30s", "perGiB": "60s"}, got "30s"',
    ],
    [
      'prior with a typo',
      rule({ prior: { base: '30s', slope: '1s' } }),
      'prior.slope',
      'prior.slope: unknown key (expected one of base, perGiB)',
    ],
    [
      'bad prior duration',
      rule({ prior: { perGiB: 'fast' } }),
      'prior.perGiB',
      'prior.perGiB: "fast" is not a duration',
    ],
    [
      'prior on an ignore rule',
      rule({ target: 'ignore', prior: {} }),
      'prior',
      'prior: an ignore rule runs nothing; remove prior',
    ],
    [
      'typo in a cost key',
      rule({ dedline: '1h' }),
      'dedline',
      'dedline: unknown key (expected one of name, match, target, job, retry, queue, params) or, for cost estimates, mode, deadline, prior',
    ],
  ])('%s', (_, raw, field, message) => {
    let error: unknown;
    try {
      parseRoutingConfig(raw);
    } catch (caught) {
      error = caught;
    }
    expect(error).toBeInstanceOf(RoutingConfigError);
    expect((error as RoutingConfigError).message).toContain(message);
    expect(error).toMatchObject({ code: 'ROUTING_CONFIG', field });
  });
});

describe('route: cost mode', () => {
  const costRule = (job: Record<string, unknown>, fields: Record<string, unknown> = {}) =>
    config({ name: 'work', mode: 'cost', target: ['cloud-run-job', 'vm'], job, ...fields });
  const input = object('in/data.csv', { size: 10 * MiB });
  const vmShape = (machineType: string, spot: boolean, cpu: number, gib: number): RunShape => ({
    target: 'vm',
    cpu,
    memoryBytes: gib * GiB,
    machineType,
    spot,
  });
  const costOf = (shape: RunShape, seconds: number) => runCost(DEFAULT_PRICES, shape, seconds);
  const said = (shape: RunShape, seconds: number) => {
    const cost = costOf(shape, seconds);
    return `est. ${formatSeconds(cost.waitedSeconds)}, ${formatUsd(cost.usd)}`;
  };

  it('runs short work on Cloud Run, and says what each place would cost', () => {
    const rules = costRule({ cpu: 1, memory: '2GiB', spot: true }, { prior: { base: '5s', perGiB: '0s' } });
    const decision = launched(route({ object: input, declared: {} }, rules));
    expect(decision.target).toBe('cloud-run-job');
    expect(decision.job).toMatchObject({ cpu: 1, memoryBytes: 2 * GiB });
    const cloudRun: RunShape = { target: 'cloud-run-job', cpu: 1, memoryBytes: 2 * GiB, spot: false };
    expect(decision.reason).toBe(
      'rule "work" matched (no conditions), by cost: ' +
        `cloud-run-job 1 vCPU, 2 GiB: ${said(cloudRun, 5)}; ` +
        `vm e2-standard-2 spot: ${said(vmShape('e2-standard-2', true, 1, 2), 5)}; ` +
        `vm e2-standard-2 standard: ${said(vmShape('e2-standard-2', false, 1, 2), 5)}; ` +
        'run est. 5 s (prior: no history yet, 5 s + 0 s/GiB)',
    );
    expect(decision.estimate).toMatchObject({
      target: 'cloud-run-job',
      seconds: 20,
      usd: costOf(cloudRun, 5).usd,
      runSeconds: 5,
      basis: 'prior: no history yet, 5 s + 0 s/GiB',
    });
    expect(decision.estimate?.options.map((option) => [option.target, option.spot, option.feasible])).toEqual(
      [
        ['cloud-run-job', undefined, true],
        ['vm', true, true],
        ['vm', false, true],
      ],
    );
  });

  it('runs long work on a spot VM of the cheapest machine type that fits', () => {
    const rules = costRule({ cpu: 8, memory: '32GiB', spot: true }, { prior: { base: '40m', perGiB: '0s' } });
    const decision = launched(route({ object: input, declared: {} }, rules));
    expect(decision).toMatchObject({
      target: 'vm',
      job: { machineType: 'e2-standard-8', spot: true, cpu: 8 },
    });
    const spot = costOf(vmShape('e2-standard-8', true, 8, 32), 2400);
    expect(decision.estimate).toMatchObject({ machineType: 'e2-standard-8', spot: true, usd: spot.usd });
    expect(decision.reason).toMatch(
      /^rule "work" matched \(no conditions\), by cost: vm e2-standard-8 spot: est\. 41m \d+s, \$0\.\d+; vm e2-standard-8 standard: /,
    );
    expect(decision.reason).toContain(
      `cloud-run-job 8 vCPU, 32 GiB: est. 40m 15s, ${formatUsd(costOf({ target: 'cloud-run-job', cpu: 8, memoryBytes: 32 * GiB, spot: false }, 2400).usd)}`,
    );
  });

  it('uses a standard VM when the rule does not allow spot', () => {
    const decision = launched(
      route({ declared: {} }, costRule({ cpu: 8, memory: '32GiB' }, { prior: { base: '2h' } })),
    );
    expect(decision.job).toMatchObject({ machineType: 'e2-standard-8', spot: false });
    expect(decision.estimate?.options.some((option) => option.spot === true)).toBe(false);
  });

  it('meets the deadline even when a VM would be cheaper', () => {
    const job = { cpu: 2, memory: '4GiB', spot: true };
    const prior = { base: '2m', perGiB: '0s' };
    // Without a deadline, 2 minutes of work is cheaper on a spot VM...
    expect(launched(route({ declared: {} }, costRule(job, { prior }))).target).toBe('vm');
    // ...but its 90 s of boot and image pull miss 2m 30s; Cloud Run's 15 s start does not.
    const decision = launched(route({ declared: {} }, costRule(job, { prior, deadline: '150s' })));
    expect(decision.target).toBe('cloud-run-job');
    expect(decision.estimate?.options.find((o) => o.spot === true)).toMatchObject({
      feasible: false,
      why: 'misses the 2m 30s deadline',
      seconds: costOf(vmShape('e2-standard-2', true, 2, 4), 120).waitedSeconds,
    });
    expect(decision.reason).toContain(
      `vm e2-standard-2 spot: ${said(vmShape('e2-standard-2', true, 2, 4), 120)}, misses the 2m 30s deadline`,
    );
  });

  it('takes the fastest place when none meets the deadline', () => {
    const rules = costRule(
      { cpu: 2, memory: '4GiB', spot: true },
      { prior: { base: '1h' }, deadline: '10m' },
    );
    const decision = launched(route({ declared: {} }, rules));
    expect(decision.target).toBe('cloud-run-job');
    expect(decision.reason).toContain(
      'by cost: none meets the 10m deadline, so the fastest: cloud-run-job 2 vCPU, 4 GiB: est. 1h 15s',
    );
  });

  it('respects the Cloud Run limits', () => {
    const rules = costRule({ cpu: 16, memory: '32GiB', spot: true }, { prior: { base: '5s' } });
    const decision = launched(route({ declared: {} }, rules));
    expect(decision.job.machineType).toBe('e2-standard-16');
    expect(decision.estimate?.options[0]).toEqual({
      target: 'cloud-run-job',
      feasible: false,
      why: 'needs 16 vCPU (Cloud Run Jobs allow 8)',
    });
    expect(decision.reason).toContain('cloud-run-job: needs 16 vCPU (Cloud Run Jobs allow 8)');
    const gpu = launched(
      route(
        { declared: { gpu: { type: 'nvidia-l4', count: 1 } } },
        costRule({ spot: true }, { prior: { base: '2h' } }),
      ),
    );
    expect(gpu.job).toMatchObject({
      machineType: 'g2-standard-4',
      accelerator: { type: 'nvidia-l4', count: 1 },
    });
    expect(gpu.reason).toContain('cloud-run-job: needs 2h with a GPU (Cloud Run Jobs allow 1h)');
  });

  it('sends to a VM what no listed target can run, as fixed mode does', () => {
    const rules = config({ name: 'run', mode: 'cost', target: 'cloud-run-job', job: { cpu: 16 } });
    const decision = launched(route({ declared: {} }, rules));
    expect(decision).toMatchObject({ target: 'vm', job: { machineType: 'e2-standard-16', spot: false } });
    expect(decision.reason).toContain(
      'by cost: no listed target can run it, so a VM; vm e2-standard-16 standard: est.',
    );
  });

  it("uses the caller's estimate and prices, and a declared duration over both", () => {
    const calls: [string, number | undefined][] = [];
    const basis = 'history: 23 runs + prior as 3, Theil–Sen, 41 s + 12 s/GiB';
    const context = {
      prices: DEFAULT_PRICES,
      estimate: (rule: Rule, inputBytes: number | undefined) => {
        calls.push([rule.name, inputBytes]);
        return { seconds: 7200, basis };
      },
    };
    const rules = costRule({ cpu: 2, memory: '4GiB', spot: true });
    const decision = launched(route({ object: input, declared: {} }, rules, context));
    expect(calls).toEqual([['work', 10 * MiB]]);
    expect(decision).toMatchObject({ target: 'vm', estimate: { runSeconds: 7200, basis } });
    expect(decision.reason).toContain(`run est. 2h (${basis})`);
    const declared = launched(route({ object: input, declared: { expectedSeconds: 10 } }, rules, context));
    expect(calls).toHaveLength(1);
    expect(declared).toMatchObject({
      target: 'cloud-run-job',
      estimate: { runSeconds: 10, basis: 'declared: 10s' },
    });
    // Prices from the context: with Cloud Run free, even two hours go there.
    const free = { ...context, prices: parsePriceTable({ cloudRun: { vcpuSecond: 0, gibSecond: 0 } }) };
    expect(launched(route({ object: input, declared: {} }, rules, free)).target).toBe('cloud-run-job');
  });

  it('adds an estimate to a fixed rule only when given a context', () => {
    const rules = config({
      name: 'csv',
      target: 'cloud-run-job',
      job: { cpu: 2, memory: '4GiB' },
      prior: { base: '1m' },
    });
    const plain = launched(route({ object: input, declared: {} }, rules));
    expect(plain).not.toHaveProperty('estimate');
    const priced = launched(route({ object: input, declared: {} }, rules, { prices: DEFAULT_PRICES }));
    expect({ ...priced, estimate: undefined }).toEqual({ ...plain, estimate: undefined });
    expect(priced.estimate).toMatchObject({
      target: 'cloud-run-job',
      usd: costOf(
        { target: 'cloud-run-job', cpu: 2, memoryBytes: 4 * GiB, spot: false },
        60 + 60 * (10 / 1024),
      ).usd,
      basis: 'prior: no history yet, 60 s + 60 s/GiB',
    });
    // The other places, for comparison: a VM, spot and standard.
    expect(priced.estimate?.options).toHaveLength(3);
    // A machine type the price table lacks leaves the decision without an estimate.
    const custom = config({ name: 'big', target: 'vm', job: { machineType: 'custom-96-614400' } });
    expect(launched(route({ declared: {} }, custom, { prices: DEFAULT_PRICES }))).not.toHaveProperty(
      'estimate',
    );
  });
});
