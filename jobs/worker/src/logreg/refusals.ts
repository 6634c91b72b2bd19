// The reasons the worker gives when the input cannot make a model (exit 4): each says what was
// found and what to change, in one line (it ends up on stderr, in the job's error and the dashboard).
import { DELIMITER_CHOICES, delimiterName, type DelimiterChoice } from '../csv/delimiter.ts';
import { listColumns, type TargetChoice } from './target.ts';

const QUOTING =
  'a field that holds the delimiter, a quote or a line break is enclosed in double quotes, with any quote inside doubled';

export function emptyInput(): string {
  return 'the input is empty: no header row (the first line must name the columns, and data rows follow it)';
}

export function headerOnly(columns: readonly string[]): string {
  return `the input has a header but no data rows (columns: ${listColumns(columns)}): add rows below the header`;
}

export function malformedHeader(error: string, headerStart: string): string {
  return `the header row is malformed: ${error} (it starts ${quoteStart(headerStart)}): fix its quoting (${QUOTING})`;
}

export function duplicateColumn(name: string, columns: readonly string[]): string {
  return `the header names column "${name}" twice: give each column its own name (columns: ${listColumns(columns)})`;
}

/**
 * `detected`: with DELIMITER given, the delimiter detection would have chosen, if it splits the header
 * into more than one field.
 */
export function oneColumnHeader(
  headerStart: string,
  delimiter: string,
  chosenBy: DelimiterChoice,
  detected?: string,
): string {
  if (chosenBy === 'DELIMITER') {
    const hint = detected === undefined ? '' : `; its names look separated by ${delimiterName(detected)}`;
    return (
      `the header has one column when split at ${delimiterName(delimiter)} as DELIMITER says, so there are no ` +
      `features (it starts ${quoteStart(headerStart)}${hint}): set DELIMITER to the character between its ` +
      `names (one of ${DELIMITER_CHOICES}), or leave it unset to detect it`
    );
  }
  return (
    `the header has one column, so there are no features (it starts ${quoteStart(headerStart)}, and no ` +
    `${DELIMITER_CHOICES.replace(' tab', ' or tab')} separates names outside quotes): check the file is a CSV ` +
    `with a header row of column names separated by one of ${DELIMITER_CHOICES}, or set DELIMITER to the one it uses`
  );
}

/** No sampled row has the header's number of fields (or readable quoting). `all`: the sample is every row. */
export function noWellFormedRows(
  sampled: number,
  all: boolean,
  fields: number,
  first: { line: number; reason: string },
  delimiter: string,
): string {
  return (
    `none of the ${all ? '' : 'first '}${sampled} rows splits into the header's ${fields} fields (first: line ${first.line}, ` +
    `${first.reason}): if the rows use another delimiter than the header's ${delimiterName(delimiter)}, make ` +
    `them agree; otherwise fix the rows' quoting (${QUOTING})`
  );
}

export interface UnusedWithExample {
  name: string;
  reason: string;
  /** A value of the column that is not a number, when there is one. */
  example?: string;
}

export function noNumericFeatures(
  target: string,
  chosenBy: TargetChoice,
  unused: readonly UnusedWithExample[],
): string {
  const listed = unused
    .slice(0, 8)
    .map(
      (c) => `${c.name}: ${c.reason}${c.example === undefined ? '' : `, e.g. ${JSON.stringify(c.example)}`}`,
    )
    .join('; ');
  const more = unused.length > 8 ? `; ... (${unused.length} columns)` : '';
  const advice = ['the features must be columns of numbers, written with a dot for decimals (1.5)'];
  const decimalComma = unused.find((c) => c.example !== undefined && /^[+-]?\d*,\d+$/.test(c.example.trim()));
  if (decimalComma !== undefined) {
    advice.push(
      `values like ${JSON.stringify(decimalComma.example)} have a decimal comma, which is not read as a number`,
    );
  }
  if (unused.some((c) => c.reason === 'excluded')) advice.push('EXCLUDE_COLUMNS leaves columns out');
  if (chosenBy !== 'TARGET_COLUMN')
    advice.push(`if "${target}" is not the target, name it with TARGET_COLUMN`);
  return `no numeric feature columns besides the target "${target}" (${listed}${more}): ${advice.join('; ')}`;
}

export interface TrainabilityFacts {
  targetName: string;
  delimiter: string;
  counts: { read: number; predictOnly: number; skipped: number };
  skippedExamples: readonly { line: number; reason: string }[];
}

export function noTrainableRows(ds: TrainabilityFacts): string {
  const { read, predictOnly, skipped } = ds.counts;
  const parts = [];
  const first = ds.skippedExamples[0];
  if (skipped > 0) parts.push(`${skipped} skipped (first: line ${first.line}, ${first.reason})`);
  if (predictOnly > 0) parts.push(`${predictOnly} with an empty "${ds.targetName}"`);
  const advice = [];
  if (ds.skippedExamples.some((s) => s.reason.startsWith('expected '))) {
    advice.push(
      `rows that do not split into the header's fields may use another delimiter than ` +
        `${delimiterName(ds.delimiter)}: set DELIMITER (one of ${DELIMITER_CHOICES}) or fix their quoting`,
    );
  }
  if (ds.skippedExamples.some((s) => s.reason.startsWith('column '))) {
    advice.push(
      'every feature must be a number in a training row: fill the values in, or leave the column out with EXCLUDE_COLUMNS',
    );
  }
  if (predictOnly > 0) {
    advice.push(
      `rows are trained on only when "${ds.targetName}" has a value; if it is not the target, name the target with TARGET_COLUMN`,
    );
  }
  return `no trainable rows: of ${read} rows, ${parts.join(' and ')}: ${advice.join('; ')}`;
}

export function oneClass(target: string, label: string): string {
  return (
    `the target "${target}" has one class only (${JSON.stringify(label)}): a model needs training rows of at least ` +
    `two classes; if "${target}" is not the column to predict, name the target with TARGET_COLUMN`
  );
}

/** The start of a header, quoted (so a tab shows as \t), cut short if long. */
function quoteStart(text: string): string {
  return JSON.stringify(text.length > 60 ? `${text.slice(0, 60)}…` : text);
}
