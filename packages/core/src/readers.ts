// Small readers for config values: each returns the value, typed, or calls `fail` with the
// field and what is wrong, so every message names where the mistake is.

import type { Accelerator } from './template.ts';
import { parseBytes, parseDuration, quote } from './units.ts';

/** Throws; the caller's version adds which rule. */
export type Fail = (field: string, detail: string) => never;
export type Raw = Record<string, unknown>;

export function optional<T>(
  value: unknown,
  field: string,
  fail: Fail,
  read: (value: unknown, field: string, fail: Fail) => T,
) {
  return value === undefined ? undefined : read(value, field, fail);
}

export function readBytes(value: unknown, field: string, fail: Fail): number {
  return viaUnits(value, field, fail, parseBytes, 'a size like "512MiB" or "4GiB"');
}

export function readDuration(value: unknown, field: string, fail: Fail): number {
  return viaUnits(value, field, fail, parseDuration, 'a duration like "90s", "30m" or "1h30m"');
}

function viaUnits(
  value: unknown,
  field: string,
  fail: Fail,
  parse: (v: number | string, f: string) => number,
  like: string,
) {
  if (typeof value !== 'number' && typeof value !== 'string')
    return fail(field, `${describe(value)} is not ${like}`);
  try {
    return parse(value, field);
  } catch (error) {
    // The units parsers start their message with the field; the config error adds it again.
    return fail(field, (error as Error).message.slice(field.length + 2));
  }
}

export function positiveBytes(value: unknown, field: string, fail: Fail): number {
  return aboveZero(readBytes(value, field, fail), value, field, fail);
}

export function positiveDuration(value: unknown, field: string, fail: Fail): number {
  return aboveZero(readDuration(value, field, fail), value, field, fail);
}

function aboveZero(parsed: number, value: unknown, field: string, fail: Fail): number {
  return parsed > 0 ? parsed : fail(field, `must be more than zero, got ${describe(value)}`);
}

export function positiveNumber(value: unknown, field: string, fail: Fail): number {
  if (typeof value !== 'number' || !Number.isFinite(value) || value <= 0) {
    fail(field, `must be a number above zero, got ${describe(value)}`);
  }
  return value;
}

export function boolean(value: unknown, field: string, fail: Fail): boolean {
  return typeof value === 'boolean' ? value : fail(field, `must be true or false, got ${describe(value)}`);
}

export function matching(value: unknown, pattern: RegExp, field: string, like: string, fail: Fail): string {
  return typeof value === 'string' && pattern.test(value)
    ? value
    : fail(field, `must be ${like}, got ${describe(value)}`);
}

const ACCELERATOR_TYPE = /^[a-z0-9][a-z0-9-]*$/;

/**
 * GPUs as a routing rule's `job.accelerator` and a workload's rules and tasks declare them:
 * `{"type": "nvidia-l4", "count": 1}`, the count 1 when left out. The type is Compute Engine's
 * accelerator type name; whether a platform offers it is the platforms' and prices' business.
 */
export function readAccelerator(value: unknown, field: string, fail: Fail): Accelerator {
  if (!isRecord(value))
    fail(field, `must be an object like {"type": "nvidia-l4", "count": 1}, got ${describe(value)}`);
  rejectUnknownKeys(value, ['type', 'count'], `${field}.`, fail);
  const type = matching(value.type, ACCELERATOR_TYPE, `${field}.type`, 'a GPU type like "nvidia-l4"', fail);
  const count = value.count ?? 1;
  if (typeof count !== 'number' || !Number.isInteger(count) || count < 1) {
    fail(`${field}.count`, `must be a whole number of at least 1, got ${describe(value.count)}`);
  }
  return { type, count };
}

export function noNul(value: unknown, field: string, fail: Fail): string {
  if (typeof value !== 'string') fail(field, `must be a string, got ${describe(value)}`);
  // Anything else may pass (it never reaches a shell), but NUL cannot cross exec().
  return value.includes('\0') ? fail(field, 'contains a NUL character') : value;
}

export function stringList(value: unknown, field: string, fail: Fail): string[] {
  const list = Array.isArray(value) ? value : [value];
  if (list.length === 0) fail(field, 'must be a string or a non-empty list of strings');
  for (const item of list) {
    if (typeof item !== 'string' || item === '')
      fail(field, `must be a non-empty string, got ${describe(item)}`);
  }
  return list as string[];
}

export function stringMap(value: unknown, field: string, fail: Fail): Record<string, string> {
  if (!isRecord(value)) fail(field, `must be an object of strings, got ${describe(value)}`);
  for (const [key, item] of Object.entries(value)) {
    if (key === '') fail(field, 'has an empty key');
    if (typeof item !== 'string') fail(`${field}.${key}`, `must be a string, got ${describe(item)}`);
  }
  return { ...(value as Record<string, string>) };
}

export function rejectUnknownKeys(raw: Raw, known: readonly string[], prefix: string, fail: Fail): void {
  for (const key of Object.keys(raw)) {
    if (!known.includes(key)) fail(`${prefix}${key}`, `unknown key (expected one of ${known.join(', ')})`);
  }
}

export function isRecord(value: unknown): value is Raw {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

export function describe(value: unknown): string {
  if (value === undefined) return 'nothing';
  if (Array.isArray(value)) return 'a list';
  if (isRecord(value)) return 'an object';
  return quote(value);
}

/** The object without its undefined properties, so a parsed value reads as what was written. */
export function withoutUndefined<T extends object>(value: T): T {
  return Object.fromEntries(Object.entries(value).filter(([, item]) => item !== undefined)) as T;
}
