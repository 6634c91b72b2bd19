// The header row: the column names, checked, and the target chosen among them.
import { fieldText, type CsvRecord } from '../csv/records.ts';
import { detectDelimiter, type DelimiterChoice } from '../csv/delimiter.ts';
import { DataError, UsageError } from '../errors.ts';
import { chooseTarget, listColumns, type TargetChoice } from './target.ts';
import * as refusals from './refusals.ts';

export interface Header {
  columns: string[];
  target: number;
  targetChosenBy: TargetChoice;
}

export function readHeader(
  rec: CsvRecord,
  delimiter: string,
  delimiterChosenBy: DelimiterChoice,
  options: { target?: string; exclude: readonly string[] },
): Header {
  const bytes = rec.bytes.subarray(rec.start, rec.start + rec.length);
  const start = () => Buffer.from(bytes.subarray(0, 200)).toString();
  if (rec.error !== undefined) throw new DataError(refusals.malformedHeader(rec.error, start()));
  if (rec.fieldCount < 2) {
    const detected = detectDelimiter(bytes);
    const hint = detected.fields > 1 ? detected.delimiter : undefined;
    throw new DataError(refusals.oneColumnHeader(start(), delimiter, delimiterChosenBy, hint));
  }
  const columns: string[] = [];
  for (let i = 0; i < rec.fieldCount; i++) columns.push(fieldText(rec, i).trim());
  const seen = new Set<string>();
  for (const name of columns) {
    if (seen.has(name)) throw new DataError(refusals.duplicateColumn(name, columns));
    seen.add(name);
  }
  const target = chooseTarget(columns, options.target);
  for (const name of options.exclude) {
    if (!seen.has(name)) {
      throw new UsageError(
        `excluded column "${name}" is not in the header: EXCLUDE_COLUMNS (or --exclude) takes ` +
          `comma-separated names of its columns: ${listColumns(columns)}`,
      );
    }
  }
  return { columns, target: target.index, targetChosenBy: target.chosenBy };
}
