// Sizes and durations as people write them in routing config and object metadata ("4GiB",
// "1h30m"). Writing them back for people (formatBytes, formatDuration) is format.ts.
// Parsers throw a plain Error whose message starts with the field, so a caller can prefix it
// with its own context (the routing parser adds the rule).

import { DURATION_UNITS } from './format.ts';

const KIB = 1024;

/** Multipliers by lower-cased unit. Binary (Ki, Mi...) and decimal (K, M...), "B" optional. */
const BYTE_UNITS: Record<string, number> = {
  '': 1,
  b: 1,
  k: 1e3,
  kb: 1e3,
  m: 1e6,
  mb: 1e6,
  g: 1e9,
  gb: 1e9,
  t: 1e12,
  tb: 1e12,
  ki: KIB,
  kib: KIB,
  mi: KIB ** 2,
  mib: KIB ** 2,
  gi: KIB ** 3,
  gib: KIB ** 3,
  ti: KIB ** 4,
  tib: KIB ** 4,
};

const SIZE_TEXT = /^(\d+(?:\.\d+)?|\.\d+)\s*([a-z]*)$/i;

/** Bytes from a number of bytes or a text like "512MiB", "1.5GB", "1024". */
export function parseBytes(value: number | string, field: string): number {
  const bytes = typeof value === 'number' ? value : bytesFromText(value);
  // Fractions of a byte only make sense as a rounding of a text like "1.5KiB" (done above).
  if (!Number.isSafeInteger(bytes) || bytes < 0) {
    throw new Error(`${field}: ${quote(value)} is not a size like "512MiB" or "4GiB"`);
  }
  return bytes;
}

function bytesFromText(text: string): number {
  const match = SIZE_TEXT.exec(text.trim());
  if (!match) return Number.NaN;
  const unit = BYTE_UNITS[match[2].toLowerCase()];
  return unit === undefined ? Number.NaN : Math.round(Number(match[1]) * unit);
}

const NUMBER = String.raw`(\d+(?:\.\d+)?)`;
// Units in falling order, each at most once: "2d", "1h30m", "1h 30m", "90s".
const DURATION_TEXT = new RegExp(
  `^(?:${NUMBER}d)?\\s*(?:${NUMBER}h)?\\s*(?:${NUMBER}m)?\\s*(?:${NUMBER}s)?$`,
  'i',
);
const PLAIN_SECONDS = new RegExp(`^${NUMBER}$`);

/** Seconds from a number of seconds or a text like "90s", "30m", "1h30m", "2d". */
export function parseDuration(value: number | string, field: string): number {
  const seconds = typeof value === 'number' ? value : secondsFromText(value);
  if (!Number.isFinite(seconds) || seconds < 0) {
    throw new Error(`${field}: ${quote(value)} is not a duration like "90s", "30m" or "1h30m"`);
  }
  return seconds;
}

function secondsFromText(text: string): number {
  const trimmed = text.trim();
  const plain = PLAIN_SECONDS.exec(trimmed);
  if (plain) return Number(plain[1]);
  const parts = DURATION_TEXT.exec(trimmed);
  if (!parts || parts.slice(1).every((part) => part === undefined)) return Number.NaN;
  const unitSizes = Object.values(DURATION_UNITS); // d, h, m, s: the order of the groups
  return parts
    .slice(1)
    .reduce((total, part, index) => total + (part === undefined ? 0 : Number(part) * unitSizes[index]), 0);
}

/** A value as it appears in an error message: strings quoted, long ones cut. */
export function quote(value: unknown): string {
  const text = JSON.stringify(value) ?? String(value);
  return text.length > 80 ? `${text.slice(0, 77)}...` : text;
}
