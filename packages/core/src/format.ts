// Sizes, durations and dollars as people read them: in the router's reasons, the `pipeline` command's
// tables and the dashboard. The dashboard's router serves this file to the browser as JavaScript
// (Node's module.stripTypeScriptTypes), so it stays erasable TypeScript with no imports: type
// annotations only, no enums, namespaces or parameter properties.

const KIB = 1024;
const BINARY_UNITS = ['B', 'KiB', 'MiB', 'GiB', 'TiB', 'PiB'];

/** The units formatDuration writes, largest first; parseDuration (units.ts) reads the same. */
export const DURATION_UNITS: Readonly<Record<string, number>> = { d: 86_400, h: 3_600, m: 60, s: 1 };

/** "4 GiB", "3.2 GiB", "100 B": binary units, at most one decimal. */
export function formatBytes(bytes: number): string {
  let scaled = bytes;
  let unit = 0;
  // Past bytes, compare the rounded value so 1023.96 MiB reads "1 GiB", not "1024 MiB".
  while (unit < BINARY_UNITS.length - 1 && (unit === 0 ? scaled : Math.round(scaled * 10) / 10) >= KIB) {
    scaled /= KIB;
    unit += 1;
  }
  const text = unit === 0 ? String(Math.round(scaled)) : String(Math.round(scaled * 10) / 10);
  return `${text} ${BINARY_UNITS[unit]}`;
}

/** "1h 30m", "2d", "45s", "0s": whole seconds, zero parts left out. */
export function formatDuration(seconds: number): string {
  let rest = Math.round(seconds);
  const parts: string[] = [];
  for (const [unit, size] of Object.entries(DURATION_UNITS)) {
    const count = Math.floor(rest / size);
    if (count > 0) parts.push(`${count}${unit}`);
    rest -= count * size;
  }
  return parts.length > 0 ? parts.join(' ') : '0s';
}

/** "4.2 s", "41 s", "1h 30m": seconds as a person reads them, tenths where they still tell something. */
export function formatSeconds(seconds: number): string {
  if (seconds < 10) return `${Math.round(seconds * 10) / 10} s`;
  if (seconds < 120) return `${Math.round(seconds)} s`;
  return formatDuration(seconds);
}

/** "$1.23" from a dollar up; below, two significant digits ("$0.19", "$0.00045"). */
export function formatUsd(usd: number): string {
  if (usd >= 1) return `$${usd.toFixed(2)}`;
  if (usd === 0) return '$0';
  if (usd < 0.000001) return '<$0.000001';
  return `$${Number(usd.toPrecision(2)).toFixed(Math.max(2, 1 - Math.floor(Math.log10(usd))))}`;
}
