// Which column is the target, how it was chosen, and whether a target the worker chose itself looks
// like a class at all.
//
// The target is TARGET_COLUMN (or --target) if set, else a column named `label`, else the last
// column. A target chosen that way is only a guess, and a wrong guess (the last column of the UCI wine
// data is `proline`, a measurement) would make a model with a class per distinct value. So, over the
// sampled rows, a guessed target must look like a class: at most MAX_GUESSED_CLASSES distinct
// values, and if more than FEW_CLASSES, they must repeat (fewer distinct values than half the rows)
// and must not be fractional numbers. Class labels repeat and are rarely fractional; measurements and
// identifiers are mostly unique. Otherwise the worker stops and asks for TARGET_COLUMN. A target named
// explicitly is used as asked.
import { fieldText, type CsvRecord } from '../csv/records.ts';
import { parseDecimalString } from '../csv/number.ts';
import { DataError, UsageError } from '../errors.ts';

export type TargetChoice = 'TARGET_COLUMN' | 'label column' | 'last column';

export const MAX_GUESSED_CLASSES = 20;
export const FEW_CLASSES = 10;
/** Column names listed in a message, before "...". */
const LISTED_COLUMNS = 8;

export function chooseTarget(
  columns: readonly string[],
  named: string | undefined,
): { index: number; chosenBy: TargetChoice } {
  if (named !== undefined) {
    const index = columns.indexOf(named);
    if (index < 0) {
      const near = columns.find((c) => c.toLowerCase() === named.trim().toLowerCase());
      throw new UsageError(
        `target column "${named}" is not in the header${near === undefined ? '' : ` (did you mean "${near}"?)`}: ` +
          `set TARGET_COLUMN (or --target) to one of its columns: ${listColumns(columns)}`,
      );
    }
    return { index, chosenBy: 'TARGET_COLUMN' };
  }
  const label = columns.indexOf('label');
  return label >= 0
    ? { index: label, chosenBy: 'label column' }
    : { index: columns.length - 1, chosenBy: 'last column' };
}

/** How the target was chosen, for the log. */
export function describeChoice(chosenBy: TargetChoice): string {
  if (chosenBy === 'TARGET_COLUMN') return 'named by TARGET_COLUMN';
  if (chosenBy === 'label column') return 'the column named "label", since TARGET_COLUMN was not set';
  return 'the last column, since TARGET_COLUMN was not set';
}

/** What a column's values look like over the sampled rows. */
export interface ValueProfile {
  /** Rows with a value in the column. */
  rows: number;
  distinct: number;
  numeric: boolean;
  fractional: boolean;
}

/** The profile of column `col` over the well-formed sampled records with a non-empty value there. */
export function profileColumn(sample: readonly CsvRecord[], col: number, fields: number): ValueProfile {
  const values = new Set<string>();
  let rows = 0;
  let numeric = true;
  let fractional = false;
  for (const rec of sample) {
    if (rec.error !== undefined || rec.fieldCount !== fields) continue;
    const text = fieldText(rec, col).trim();
    if (text === '') continue;
    rows++;
    if (values.has(text)) continue;
    values.add(text);
    if (numeric) {
      const value = parseDecimalString(text);
      if (Number.isNaN(value)) numeric = false;
      else if (!Number.isInteger(value)) fractional = true;
    }
  }
  return { rows, distinct: values.size, numeric: numeric && rows > 0, fractional };
}

/** Why a column's values do not look like classes, or undefined if they do. */
export function notAClass(profile: ValueProfile): 'continuous' | 'unique' | undefined {
  const { distinct, rows, numeric, fractional } = profile;
  if (distinct <= FEW_CLASSES) return undefined;
  if (distinct <= MAX_GUESSED_CLASSES && distinct * 2 <= rows && !(numeric && fractional)) return undefined;
  return numeric ? 'continuous' : 'unique';
}

/** Refuses (DataError) a guessed target that does not look like a class; a named one is used as asked. */
export function checkGuessedTarget(
  sample: readonly CsvRecord[],
  columns: readonly string[],
  target: number,
  chosenBy: TargetChoice,
  sampledAll: boolean,
): void {
  if (chosenBy === 'TARGET_COLUMN') return;
  const profile = profileColumn(sample, target, columns.length);
  const why = notAClass(profile);
  if (why === undefined) return;
  const classLike = columns.filter((_, col) => {
    if (col === target) return false;
    const other = profileColumn(sample, col, columns.length);
    return other.distinct >= 2 && notAClass(other) === undefined;
  });
  throw new DataError(notAClassReason(columns, target, chosenBy, profile, why, !sampledAll, classLike));
}

/** The refusal of a guessed target that does not look like a class: what it is, and what to do. */
export function notAClassReason(
  columns: readonly string[],
  target: number,
  chosenBy: TargetChoice,
  profile: ValueProfile,
  why: 'continuous' | 'unique',
  sampled: boolean,
  classLike: readonly string[],
): string {
  const which =
    chosenBy === 'label column'
      ? `the column "label" (the target when TARGET_COLUMN is not set)`
      : `the last column "${columns[target]}"`;
  const looks = why === 'continuous' ? 'looks continuous' : 'looks like an identifier or free text';
  const rows = sampled ? `the first ${profile.rows.toLocaleString('en-US')} rows` : `${profile.rows} rows`;
  const suggestion =
    classLike.length === 0 ? '' : `; columns that could be the class: ${listColumns(classLike)}`;
  return (
    `${which} ${looks} (${profile.distinct} distinct values in ${rows}), not a class: ` +
    `name the target column with TARGET_COLUMN (columns: ${listColumns(columns)}${suggestion})`
  );
}

/** The first few names, comma-separated, then "..." if there are more. */
export function listColumns(columns: readonly string[]): string {
  const shown = columns.slice(0, LISTED_COLUMNS).join(', ');
  return columns.length > LISTED_COLUMNS ? `${shown}, ... (${columns.length} columns)` : shown;
}
