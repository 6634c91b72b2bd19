// parseRoutingConfig (src/routing/config.ts): the rules as written, checked and with their defaults,
// fixed and cost mode.
import { describe, expect, it } from 'vitest';
import { DEFAULT_RETRY_POLICY } from '../../src/retry.ts';
import { parseRoutingConfig, RoutingConfigError } from '../../src/routing/config.ts';
import { DEFAULT_QUEUE_POLICY } from '../../src/routing/types.ts';
import { config, GiB } from './support.ts';

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
      'rule 1 ("csv"): mach: unknown key (expected one of name, match, target, job, retry, queue, params, batch)',
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

describe('parseRoutingConfig: cost mode', () => {
  it('reads the candidates, the deadline and the prior', () => {
    const [train, vmOnly, fixed] = config(
      {
        name: 'train',
        mode: 'cost',
        target: ['cloud-run-job', 'vm'],
        deadline: '2h',
        deadlineQuantile: 0.95,
        prior: { base: '30s', perGiB: '2m' },
        job: { cpu: 8, memory: '32GiB', spot: true },
      },
      { name: 'vm-only', mode: 'cost', target: 'vm' },
      { name: 'fixed', mode: 'fixed', target: 'vm', prior: { base: '1h' } },
    ).rules;
    expect(train).toMatchObject({
      target: ['cloud-run-job', 'vm'],
      deadlineSeconds: 7200,
      deadlineQuantile: 0.95,
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
      'a deadline quantile without a deadline',
      rule({ mode: 'cost', deadlineQuantile: 0.9 }),
      'deadlineQuantile',
      'deadlineQuantile: says at which quantile of the run a deadline is judged; the rule has no deadline',
    ],
    [
      'a deadline quantile below the median',
      rule({ mode: 'cost', deadline: '1h', deadlineQuantile: 0.3 }),
      'deadlineQuantile',
      'deadlineQuantile: must be a number from 0.5 (the median) to 0.999, like 0.9, got 0.3',
    ],
    [
      'a deadline quantile of 1',
      rule({ mode: 'cost', deadline: '1h', deadlineQuantile: 1 }),
      'deadlineQuantile',
      'deadlineQuantile: must be a number from 0.5 (the median) to 0.999, like 0.9, got 1',
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
      'dedline: unknown key (expected one of name, match, target, job, retry, queue, params, batch) or, for cost estimates, mode, deadline, deadlineQuantile, prior',
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
