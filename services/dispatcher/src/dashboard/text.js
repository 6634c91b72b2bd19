// What the dashboard makes of the text it is given: which part of the list's reasons differs from row
// to row, a failure's gist, a log line read as a structured entry, a progress report, and the words
// for model.json's choices. No DOM here: the other modules draw what these return, as text.

// ---- reasons that differ ---------------------------------------------------------------------

/** Shorter common parts are not worth leaving out: "rule " says nothing, and an ellipsis costs a word. */
const MIN_COMMON_CHARS = 12;

function commonPrefix(a, b) {
  let i = 0;
  while (i < a.length && i < b.length && a[i] === b[i]) i++;
  return a.slice(0, i);
}

/**
 * What every one of `texts` starts and ends with, cut back to whole words, when at least two differ:
 * the list shows each reason without them, so that the part that tells rows apart is what its two
 * lines have room for. Empty strings when nothing long enough is shared.
 */
export function sharedParts(texts) {
  const distinct = [...new Set(texts.filter((t) => typeof t === 'string' && t !== ''))];
  if (distinct.length < 2) return { prefix: '', suffix: '' };
  let prefix = distinct.reduce(commonPrefix);
  // Keep whole words: cut back to just after the last space (the shown part starts on a word).
  prefix = prefix.slice(0, prefix.lastIndexOf(' ') + 1);
  if (prefix.length < MIN_COMMON_CHARS) prefix = '';
  const rests = distinct.map((t) => [...t.slice(prefix.length)].reverse().join(''));
  let suffix = [...rests.reduce(commonPrefix)].reverse().join('');
  suffix = suffix.slice(suffix.indexOf(' ') < 0 ? suffix.length : suffix.indexOf(' '));
  // The shorter reason must keep something of its own.
  const shortest = Math.min(...distinct.map((t) => t.length));
  if (suffix.length < MIN_COMMON_CHARS || prefix.length + suffix.length >= shortest) suffix = '';
  return { prefix, suffix };
}

/** `text` without the shared parts, an ellipsis where each was. */
export function withoutShared(text, { prefix, suffix }) {
  if (typeof text !== 'string' || text === '') return text;
  const start = prefix !== '' && text.startsWith(prefix) ? prefix.length : 0;
  const end = suffix !== '' && text.endsWith(suffix) ? text.length - suffix.length : text.length;
  if (end <= start) return text;
  return `${start > 0 ? '… ' : ''}${text.slice(start, end).trim()}${end < text.length ? ' …' : ''}`;
}

// ---- a failure's gist ------------------------------------------------------------------------

const ERROR_GIST_CHARS = 160;

/**
 * The line of an error that says what went wrong: the first non-empty one (a stderr tail's later lines
 * are a stack or usage), a JSON log line's message, cut to a length the list can show.
 */
export function errorGist(error) {
  if (typeof error !== 'string') return '';
  const line = error.split('\n').find((l) => l.trim() !== '') ?? '';
  const entry = parseLogLine(line);
  const gist = (entry.kind === 'entry' && entry.message !== '' ? entry.message : line).trim();
  return gist.length > ERROR_GIST_CHARS ? `${gist.slice(0, ERROR_GIST_CHARS - 1).trimEnd()}…` : gist;
}

// ---- log lines -------------------------------------------------------------------------------

const TIME_KEYS = ['time', 'timestamp', 'ts'];
const MESSAGE_KEYS = ['message', 'msg'];
// pino's numeric levels, should a line of the dispatcher's own logger turn up.
const PINO_LEVELS = { 10: 'TRACE', 20: 'DEBUG', 30: 'INFO', 40: 'WARNING', 50: 'ERROR', 60: 'CRITICAL' };

/**
 * A log line as the worker writes it, `{"severity":"INFO","message":"...", ...fields}`: its time (if
 * it says one), severity, message and the other fields in their order. Anything else is text.
 */
export function parseLogLine(line) {
  const text = line.endsWith('\r') ? line.slice(0, -1) : line;
  if (!text.trimStart().startsWith('{')) return { kind: 'text', text };
  let value;
  try {
    value = JSON.parse(text);
  } catch {
    return { kind: 'text', text };
  }
  if (typeof value !== 'object' || value === null || Array.isArray(value)) return { kind: 'text', text };
  const timeKey = TIME_KEYS.find((key) => typeof value[key] === 'string' || typeof value[key] === 'number');
  const messageKey = MESSAGE_KEYS.find((key) => typeof value[key] === 'string');
  let severity = typeof value.severity === 'string' ? value.severity : undefined;
  const levelKey = severity === undefined && value.level !== undefined ? 'level' : undefined;
  if (levelKey !== undefined)
    severity = typeof value.level === 'string' ? value.level.toUpperCase() : PINO_LEVELS[value.level];
  const shown = new Set([timeKey, messageKey, levelKey, 'severity']);
  return {
    kind: 'entry',
    time: timeKey === undefined ? undefined : value[timeKey],
    severity: severity ?? 'DEFAULT',
    message: messageKey === undefined ? '' : value[messageKey],
    fields: Object.entries(value).filter(([key]) => !shown.has(key)),
    value,
  };
}

/** A field's value as it reads in a line: strings as they are, anything else as JSON. */
export function fieldText(value) {
  return typeof value === 'string' ? value : JSON.stringify(value);
}

/** How a severity is drawn: errors, warnings, the ordinary, and the rest. */
export function severityLook(severity) {
  const s = String(severity).toUpperCase();
  if (['ERROR', 'CRITICAL', 'ALERT', 'EMERGENCY', 'FATAL'].includes(s)) return 'error';
  if (['WARNING', 'WARN'].includes(s)) return 'warning';
  if (['INFO', 'NOTICE'].includes(s)) return 'info';
  return 'debug';
}

const isCount = (n) => typeof n === 'number' && Number.isFinite(n) && n >= 0;

/**
 * The worker's report of how far it read a big input, from a log entry's `progress` field
 * (`{bytesRead, totalBytes, rows}`), or undefined if the entry is no such report.
 */
export function progressOf(entry) {
  const p = entry?.kind === 'entry' ? entry.value.progress : undefined;
  if (typeof p !== 'object' || p === null || !isCount(p.bytesRead)) return undefined;
  return {
    bytesRead: p.bytesRead,
    totalBytes: isCount(p.totalBytes) && p.totalBytes > 0 ? p.totalBytes : undefined,
    rows: isCount(p.rows) ? p.rows : undefined,
    done: p.done === true,
  };
}

const counts = new Intl.NumberFormat('en-US');
export const count = (n) => (isCount(n) ? counts.format(n) : '—');

/** Megabytes as the worker's own progress lines say them (decimal, one place), so the two agree. */
export const megabytes = (n) => `${(n / 1e6).toFixed(1)} MB`;

/**
 * "120.0 MB of 354.0 MB (33.9%) · 1,200,000 rows", whatever the report leaves out left out; the last
 * report of the reading says so, since the fit that follows logs no progress of its own.
 */
export function progressText({ bytesRead, totalBytes, rows, done }) {
  const read =
    totalBytes === undefined
      ? `${megabytes(bytesRead)} read`
      : `${megabytes(bytesRead)} of ${megabytes(totalBytes)} (${((100 * bytesRead) / totalBytes).toFixed(1)}%)`;
  const text = rows === undefined ? read : `${read} · ${count(rows)} rows`;
  return done ? `${text} · input read, fitting` : text;
}

// ---- model.json's words ----------------------------------------------------------------------

const TARGET_CHOICES = {
  TARGET_COLUMN: 'named by TARGET_COLUMN',
  'label column': 'the column named "label" (TARGET_COLUMN not set)',
  'last column': 'the last column (TARGET_COLUMN not set)',
};

/** How the worker chose the target, in words; a choice it names in a newer way is shown as it is. */
export function targetChoiceText(chosenBy) {
  if (typeof chosenBy !== 'string' || chosenBy === '') return undefined;
  return TARGET_CHOICES[chosenBy] ?? chosenBy;
}

const DELIMITERS = { ',': 'comma', ';': 'semicolon', '\t': 'tab', '|': 'pipe', ' ': 'space' };

const DELIMITER_CHOICES = { DELIMITER: 'named by DELIMITER', detected: 'detected from the header' };

/** A delimiter people can see (`\t` is "tab", not blank space), and how it was chosen. */
export function delimiterText(delimiter, chosenBy) {
  if (typeof delimiter !== 'string' || delimiter === '') return undefined;
  const name = DELIMITERS[delimiter];
  const shown =
    name === undefined ? JSON.stringify(delimiter) : name === 'tab' ? name : `${name} ${delimiter}`;
  if (typeof chosenBy !== 'string' || chosenBy === '') return shown;
  return `${shown} · ${DELIMITER_CHOICES[chosenBy] ?? chosenBy}`;
}
