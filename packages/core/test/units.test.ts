import { describe, expect, it } from 'vitest';
import { parseBytes, parseDuration } from '../src/units.ts';

const KiB = 1024;
const MiB = KiB ** 2;
const GiB = KiB ** 3;
const TiB = KiB ** 4;

describe('parseBytes', () => {
  it.each([
    ['512MiB', 512 * MiB],
    ['4GiB', 4 * GiB],
    ['4gib', 4 * GiB],
    ['4 GiB', 4 * GiB],
    ['4Gi', 4 * GiB],
    ['2TiB', 2 * TiB],
    ['1.5GB', 1.5e9],
    ['1.5KiB', 1536],
    ['100KB', 100_000],
    ['100kb', 100_000],
    ['3M', 3e6],
    ['1024', 1024],
    ['1024B', 1024],
    [' 8MiB ', 8 * MiB],
    ['0', 0],
    [1024, 1024],
    [0, 0],
  ] as const)('%j is %d bytes', (value, bytes) => {
    expect(parseBytes(value, 'memory')).toBe(bytes);
  });

  it.each([
    ['12XB'],
    [''],
    ['GiB'],
    ['-1GiB'],
    ['4 G i B'],
    ['1e3'],
    ['0x10'],
    ['4GiBs'],
    ['99999999TiB'],
    [-1],
    [1.5],
    [Number.NaN],
    [Number.POSITIVE_INFINITY],
  ] as const)('%j is not a size', (value) => {
    expect(() => parseBytes(value, 'match.minSize')).toThrow(
      `match.minSize: ${JSON.stringify(value)} is not a size like "512MiB" or "4GiB"`,
    );
  });
});

describe('parseDuration', () => {
  it.each([
    ['90s', 90],
    ['30m', 1800],
    ['1h', 3600],
    ['1h30m', 5400],
    ['1h 30m', 5400],
    ['2d', 172_800],
    ['1d2h3m4s', 93_784],
    ['1.5h', 5400],
    ['10M', 600],
    ['45', 45],
    [45, 45],
    [0, 0],
    ['0s', 0],
  ] as const)('%j is %d seconds', (value, seconds) => {
    expect(parseDuration(value, 'timeout')).toBe(seconds);
  });

  it.each([
    ['1x'],
    [''],
    ['h'],
    ['30m1h'],
    ['1h1h'],
    ['1 hour'],
    ['-5s'],
    ['1w'],
    [-1],
    [Number.NaN],
  ] as const)('%j is not a duration', (value) => {
    expect(() => parseDuration(value, 'job.timeout')).toThrow(
      `job.timeout: ${JSON.stringify(value)} is not a duration like "90s", "30m" or "1h30m"`,
    );
  });
});
