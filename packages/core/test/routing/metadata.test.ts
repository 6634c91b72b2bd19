// The resources an uploader declares in object metadata (src/routing/metadata.ts).
import { describe, expect, it } from 'vitest';
import { declaredFromMetadata } from '../../src/routing/metadata.ts';
import { route } from '../../src/routing/route.ts';
import { config, GiB, object } from './support.ts';

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
