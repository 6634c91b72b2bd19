import { describe, expect, it } from 'vitest';
import { formatBytes, formatDuration, formatSeconds, formatUsd } from '../src/format.ts';
import { parseBytes, parseDuration } from '../src/units.ts';

const KiB = 1024;
const MiB = KiB ** 2;
const GiB = KiB ** 3;
const TiB = KiB ** 4;

describe('formatBytes', () => {
  it.each([
    [0, '0 B'],
    [100, '100 B'],
    [1023, '1023 B'],
    [1024, '1 KiB'],
    [1536, '1.5 KiB'],
    [512 * MiB, '512 MiB'],
    [4 * GiB, '4 GiB'],
    [3.2 * GiB, '3.2 GiB'],
    [1024 * MiB - 1, '1 GiB'],
    [2 * TiB, '2 TiB'],
  ])('%d bytes reads %j', (bytes, text) => {
    expect(formatBytes(bytes)).toBe(text);
  });

  it('reads back through parseBytes', () => {
    for (const bytes of [100, 4 * GiB, 1536, 512 * MiB])
      expect(parseBytes(formatBytes(bytes), 'x')).toBe(bytes);
  });
});

describe('formatDuration', () => {
  it.each([
    [0, '0s'],
    [45, '45s'],
    [90, '1m 30s'],
    [5400, '1h 30m'],
    [3600, '1h'],
    [168 * 3600, '7d'],
    [93_784, '1d 2h 3m 4s'],
    [0.4, '0s'],
  ])('%d seconds reads %j', (seconds, text) => {
    expect(formatDuration(seconds)).toBe(text);
  });

  it('reads back through parseDuration', () => {
    for (const seconds of [45, 5400, 93_784])
      expect(parseDuration(formatDuration(seconds), 'x')).toBe(seconds);
  });
});

describe('formatSeconds', () => {
  it.each([
    [0, '0 s'],
    [4.24, '4.2 s'],
    [9.96, '10 s'],
    [41.4, '41 s'],
    [119.4, '119 s'],
    [185, '3m 5s'],
    [5400, '1h 30m'],
  ])('%d seconds reads %j', (seconds, text) => {
    expect(formatSeconds(seconds)).toBe(text);
  });
});

describe('formatUsd', () => {
  it.each([
    [12.345, '$12.35'],
    [1, '$1.00'],
    [0.19, '$0.19'],
    [0.0604, '$0.060'],
    [0.00045, '$0.00045'],
    [0, '$0'],
    [1e-9, '<$0.000001'],
  ])('%d reads %s', (usd, text) => {
    expect(formatUsd(usd)).toBe(text);
  });
});
