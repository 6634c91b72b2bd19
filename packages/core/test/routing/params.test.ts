import { describe, expect, it } from 'vitest';
import {
  allowedParams,
  paramsFromMetadata,
  parseRoutingConfig,
  placeJob,
  unsafeParamReason,
  workerEnvironment,
} from '../../src/index.ts';
import { newJob, type Job } from '../../src/job.ts';
import { jobIdFor, paramsRunId } from '../../src/job-id.ts';

const RULE = { name: 'csv', params: ['TARGET_COLUMN', 'DELIMITER'] };

describe('per-job parameters', () => {
  it('reads pipeline-param-NAME from object metadata, the prefix in any case, and nothing else', () => {
    expect(
      paramsFromMetadata({
        'pipeline-param-TARGET_COLUMN': 'cultivar',
        'Pipeline-Param-DELIMITER': ';',
        'pipeline-runtime': 'vm',
        'pipeline-param': 'no name',
      }),
    ).toEqual({ TARGET_COLUMN: 'cultivar', DELIMITER: ';' });
  });

  it.each([
    { given: { TARGET_COLUMN: 'label' }, want: { params: { TARGET_COLUMN: 'label' } } },
    // Metadata keys may arrive lower-cased: the rule's spelling is what the task gets.
    { given: { target_column: 'label' }, want: { params: { TARGET_COLUMN: 'label' } } },
    { given: {}, want: { params: {} } },
  ] as { given: Record<string, string>; want: unknown }[])(
    'allows what the rule lists: $given',
    ({ given, want }) => {
      expect(allowedParams(RULE, given, 'object metadata')).toEqual(want);
    },
  );

  it.each([
    {
      given: { LD_PRELOAD: '/tmp/evil.so' },
      error:
        'parameter "LD_PRELOAD" (object metadata) is not one rule "csv" lets a job set (it allows TARGET_COLUMN, DELIMITER',
    },
    {
      given: { TARGET_COLUMN: 'a\0b' },
      error: 'parameter TARGET_COLUMN (object metadata) holds a NUL character',
    },
    { given: { TARGET_COLUMN: 'x'.repeat(4097) }, error: 'is longer than 4096 bytes' },
  ] as { given: Record<string, string>; error: string }[])(
    'refuses what the rule does not allow, saying why: $error',
    ({ given, error }) => {
      const checked = allowedParams(RULE, given, 'object metadata');
      expect('error' in checked && checked.error).toContain(error);
    },
  );

  it('says a rule without params allows none', () => {
    const checked = allowedParams({ name: 'plain' }, { C: '2' }, 'the request');
    expect('error' in checked && checked.error).toContain('(it allows none; a rule lists them in "params")');
  });

  it.each([
    'LD_PRELOAD',
    'ld_library_path',
    'PATH',
    'NODE_OPTIONS',
    'GOOGLE_APPLICATION_CREDENTIALS',
    'INPUT_URI',
    'CLOUD_RUN_TASK_INDEX',
    'BASH_ENV',
    '1X',
    'A-B',
  ])('never lets a rule open %s to callers', (name) => {
    expect(unsafeParamReason(name)).toBeDefined();
    expect(() =>
      parseRoutingConfig({ rules: [{ name: 'r', target: 'cloud-run-job', params: [name] }] }),
    ).toThrow(/params: /);
  });

  it("parses a rule's params and refuses them on an ignore rule or twice", () => {
    const config = parseRoutingConfig({
      rules: [{ name: 'r', target: 'cloud-run-job', params: ['TARGET_COLUMN', 'C'] }],
    });
    expect(config.rules[0].params).toEqual(['TARGET_COLUMN', 'C']);
    expect(() => parseRoutingConfig({ rules: [{ name: 'r', target: 'ignore', params: ['C'] }] })).toThrow(
      'an ignore rule runs nothing; remove params',
    );
    expect(() =>
      parseRoutingConfig({ rules: [{ name: 'r', target: 'cloud-run-job', params: ['C', 'c'] }] }),
    ).toThrow('is listed twice');
    expect(() =>
      parseRoutingConfig({ rules: [{ name: 'r', target: 'cloud-run-job', params: 'C' }] }),
    ).toThrow('must be a list of variable names');
  });
});

describe('placement with parameters', () => {
  const routing = parseRoutingConfig({
    rules: [
      {
        name: 'csv',
        match: { path: '**.csv' },
        target: 'cloud-run-job',
        params: ['TARGET_COLUMN', 'DELIMITER'],
      },
      { name: 'rest', target: 'cloud-run-job' },
    ],
  });
  const object = (name: string, metadata: Record<string, string> = {}) => ({
    bucket: 'in',
    name,
    generation: '17',
    size: 10,
    metadata,
  });
  const jobOf = (o: ReturnType<typeof object>, params?: Record<string, string>): Job =>
    newJob(
      jobIdFor(o.bucket, o.name, o.generation),
      { kind: 'object', object: o, ...(params && { params }) },
      't0',
    );

  it("takes the metadata's parameters, then the request's over them, and the task gets them as env", () => {
    const o = object('wine.csv', {
      'pipeline-param-TARGET_COLUMN': 'proline',
      'pipeline-param-DELIMITER': ';',
    });
    const placement = placeJob(jobOf(o, { TARGET_COLUMN: 'cultivar' }), routing);
    expect(placement).toMatchObject({
      kind: 'launch',
      rule: 'csv',
      params: { TARGET_COLUMN: 'cultivar', DELIMITER: ';' },
    });
    if (placement.kind !== 'launch') throw new Error('not launched');
    const job = { ...jobOf(o), params: placement.params };
    const env = workerEnvironment(
      job,
      { ...placement.template, env: { TARGET_COLUMN: 'from-rule', OTHER: '1' } },
      {
        inputUri: 'gs://in/wine.csv',
        outputUri: 'gs://out/wine.csv/17/',
      },
    );
    expect(env).toMatchObject({
      TARGET_COLUMN: 'cultivar',
      DELIMITER: ';',
      OTHER: '1',
      INPUT_URI: 'gs://in/wine.csv',
    });
  });

  it('fails a job whose metadata sets what its rule does not allow, naming the parameter and the rule', () => {
    const placement = placeJob(jobOf(object('x.csv', { 'pipeline-param-LD_PRELOAD': '/x.so' })), routing);
    expect(placement.kind).toBe('fail');
    expect(placement.kind === 'fail' && placement.error).toContain(
      'parameter "LD_PRELOAD" (object metadata) is not one rule "csv"',
    );
    const other = placeJob(jobOf(object('x.bin', {}), { TARGET_COLUMN: 'y' }), routing);
    expect(other.kind === 'fail' && other.error).toContain(
      '(the request) is not one rule "rest" lets a job set (it allows none',
    );
  });

  it("keeps a routed job's parameters on a retry, without reading the metadata again", () => {
    const o = object('y.csv', { 'pipeline-param-TARGET_COLUMN': 'a' });
    const first = placeJob(jobOf(o), routing);
    if (first.kind !== 'launch') throw new Error('not launched');
    const routed: Job = {
      ...jobOf(o),
      target: first.target,
      template: first.template,
      rule: first.rule,
      params: { TARGET_COLUMN: 'kept' },
    };
    expect(placeJob(routed, routing)).toMatchObject({ params: { TARGET_COLUMN: 'kept' } });
  });

  it('names a run with parameters by the object version and the parameters, in any order', () => {
    const id = jobIdFor('in', 'wine.csv', '17');
    expect(paramsRunId(id, { A: '1', B: '2' })).toBe(paramsRunId(id, { B: '2', A: '1' }));
    expect(paramsRunId(id, { target_column: 'x' })).toBe(paramsRunId(id, { TARGET_COLUMN: 'x' }));
    expect(paramsRunId(id, { A: '1' })).not.toBe(paramsRunId(id, { A: '2' }));
    expect(paramsRunId(id, { A: '1' })).not.toBe(id);
    expect(paramsRunId(id, { A: '1' })).toMatch(/^[0-9a-f]{32}$/);
  });
});
