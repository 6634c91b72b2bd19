import { describe, expect, it } from 'vitest';
import { newJob } from '../src/job.ts';
import { placeJob } from '../src/placement.ts';
import { parseRoutingConfig } from '../src/routing/index.ts';

const routing = parseRoutingConfig({
  rules: [
    {
      name: 'csv',
      match: { path: '**.csv' },
      target: 'cloud-run-job',
      job: { task: 'logreg', env: { A: '1' } },
    },
    { name: 'skip', match: { path: '**' }, target: 'ignore' },
    { name: 'containers', target: 'cloud-run-job', job: { cpu: 1, memory: '2GiB' } },
  ],
});
const object = (name: string, metadata: Record<string, string> = {}) => ({
  bucket: 'in',
  name,
  generation: '1',
  size: 10,
  metadata,
});

describe('placeJob', () => {
  it('routes a first attempt, and keeps that route for a retry', () => {
    const job = newJob('a'.repeat(32), { kind: 'object', object: object('x.csv') }, 't0');
    const first = placeJob(job, routing);
    expect(first).toMatchObject({ kind: 'launch', rule: 'csv', target: 'cloud-run-job' });
    if (first.kind !== 'launch') throw new Error('not launched');
    const retried = {
      ...job,
      attempt: 2,
      rule: first.rule,
      target: 'vm' as const,
      template: { ...first.template, spot: false },
    };
    expect(
      placeJob(retried, parseRoutingConfig({ rules: [{ name: 'other', target: 'ignore' }] })),
    ).toMatchObject({
      kind: 'launch',
      target: 'vm',
      rule: 'csv',
    });
  });

  it('ignores what a rule ignores, and fails an object whose metadata cannot be read', () => {
    expect(
      placeJob(newJob('b'.repeat(32), { kind: 'object', object: object('x.png') }, 't0'), routing),
    ).toEqual({
      kind: 'ignore',
      rule: 'skip',
      reason: 'rule "skip" ignores it (path matches "**")',
    });
    const bad = newJob(
      'c'.repeat(32),
      { kind: 'object', object: object('x.csv', { 'pipeline-cpu': 'lots' }) },
      't0',
    );
    const placed = placeJob(bad, routing);
    expect(placed.kind).toBe('fail');
    expect(placed.kind === 'fail' && placed.error).toMatch(/^the object's metadata cannot be used: /);
  });

  it('sends a container request with its own image to a VM, though its rule chose Cloud Run', () => {
    const job = newJob(
      'e'.repeat(32),
      { kind: 'request', image: 'us-docker.pkg.dev/p/r/render:1', args: [], env: {}, declared: {} },
      't0',
    );
    const placed = placeJob(job, routing);
    expect(placed).toMatchObject({
      kind: 'launch',
      rule: 'containers',
      target: 'vm',
      template: { image: 'us-docker.pkg.dev/p/r/render:1', cpu: 1, memoryBytes: 2 * 1024 ** 3 },
    });
    expect(placed.kind === 'launch' && placed.reason).toContain("the request's own image");
  });

  it("runs what a container request asked for, with the rule's resources", () => {
    const job = newJob(
      'd'.repeat(32),
      { kind: 'request', task: 'train', args: ['--epochs', '3'], env: { B: '2' }, declared: { cpu: 2 } },
      't0',
    );
    expect(placeJob(job, routing)).toMatchObject({
      kind: 'launch',
      rule: 'containers',
      template: { task: 'train', args: ['--epochs', '3'], env: { B: '2' }, cpu: 2 },
    });
  });
});
