// Turns CSV records into the numeric training set, in one streaming pass.
//
// The delimiter is DELIMITER, else detected from the header line (csv/delimiter.ts). The header names
// the columns. The target is `--target`, else `label` if present, else the last column; a target
// chosen that way must look like a class over the sample (logreg/target.ts). The first SAMPLE_ROWS
// data rows decide which other columns are numeric (more than half of their non-empty values are
// numbers); those, minus `--exclude`, are the features, and the rest are carried through to the
// output untouched. After that, each record is one of:
// - a row: every feature is a number; its target is a class, or empty (predicted, not trained on);
// - kept but not predicted: right field count, but a feature is empty or not a number;
// - omitted: malformed quoting or the wrong number of fields (not a row of this table).
// The last two are counted as skipped, with the first few listed with their line numbers and reasons.
import { FIELD_PLAIN, fieldText, type CsvRecord } from '../csv/records.ts';
import { parseDecimal, parseDecimalString } from '../csv/number.ts';
import type { Delimiter, DelimiterChoice } from '../csv/delimiter.ts';
import { DelimitedReader } from '../csv/delimited-reader.ts';
import { Growable } from '../util/growable.ts';
import { DataError } from '../errors.ts';
import { checkGuessedTarget, type TargetChoice } from './target.ts';
import { readHeader } from './header.ts';
import * as refusals from './refusals.ts';

export const SAMPLE_ROWS = 1000;
export const BLOCK_ROWS = 16384;
const SKIPPED_EXAMPLES = 20;

export interface DatasetOptions {
  target?: string;
  exclude: readonly string[];
  /** The delimiter DELIMITER names; detected from the header when absent. */
  delimiter?: Delimiter;
  /** Called once the header is read and the target chosen, before any row is. */
  onHeader?: (header: HeaderChoices) => void;
  /** Rows per block of the matrix (tests use small blocks to exercise the block logic). */
  blockRows?: number;
}

/** What the header decided, and how. */
export interface HeaderChoices {
  columns: string[];
  delimiter: Delimiter;
  delimiterChosenBy: DelimiterChoice;
  targetName: string;
  targetChosenBy: TargetChoice;
}

/** A block of rows with their labels: the unit the fit iterates over and splits between threads. */
export interface Segment {
  x: Float64Array;
  y: Int32Array;
  rows: number;
}

export interface SkippedRow {
  line: number;
  reason: string;
}

export interface UnusedColumn {
  name: string;
  reason: string;
}

export interface Dataset extends HeaderChoices {
  header: { offset: number; length: number };
  featureNames: string[];
  unused: UnusedColumn[];
  /** Number of features (columns of the matrix). */
  d: number;
  /** Row-major feature blocks of `blockRows` rows each; the last may be partly filled. */
  blocks: Float64Array[];
  blockRows: number;
  /** Rows in the matrix. */
  rows: number;
  /** Per row: index into `classes`, or -1 when the target is empty. */
  y: Int32Array;
  /** Class labels in sorted order (numerically when every label is a number). */
  classes: string[];
  /** Records written to predictions.csv, in input order: byte range, and matrix row or -1. */
  output: { offsets: Float64Array; lengths: Int32Array; rows: Int32Array };
  counts: { read: number; trainable: number; predictOnly: number; skipped: number };
  skippedExamples: SkippedRow[];
}

export class DatasetBuilder {
  private readonly reader: DelimitedReader;
  private readonly options: DatasetOptions;
  private columns: string[] | undefined;
  private header = { offset: 0, length: 0 };
  private targetColumn = -1;
  private targetChosenBy: TargetChoice = 'last column';
  private featureColumns = new Int32Array(0);
  private featureNames: string[] = [];
  private unused: UnusedColumn[] = [];
  private sample: CsvRecord[] | undefined = [];

  private d = 0;
  private blocks: Float64Array[] = [];
  private readonly blockRows: number;
  private rows = 0;
  private readonly y = new Growable(Int32Array);
  private readonly classIds = new Map<string, number>();
  private readonly shortLabelIds = new Map<number, number>();
  private labels: string[] = [];

  private readonly outOffsets = new Growable(Float64Array);
  private readonly outLengths = new Growable(Int32Array);
  private readonly outRows = new Growable(Int32Array);
  private counts = { read: 0, trainable: 0, predictOnly: 0, skipped: 0 };
  private skippedExamples: SkippedRow[] = [];

  constructor(options: DatasetOptions) {
    this.options = options;
    this.blockRows = options.blockRows ?? BLOCK_ROWS;
    this.reader = new DelimitedReader((rec) => this.onRecord(rec), options.delimiter);
  }

  /** Data records read so far (the header not counted). */
  get rowsRead(): number {
    return this.counts.read;
  }

  push(chunk: Uint8Array): void {
    this.reader.push(chunk);
  }

  finish(): Dataset {
    this.reader.end();
    if (this.columns === undefined) throw new DataError(refusals.emptyInput());
    if (this.counts.read === 0) throw new DataError(refusals.headerOnly(this.columns));
    if (this.sample !== undefined) this.planColumns(true);
    const { classes, remap } = sortClasses(this.labels);
    const y = new Int32Array(new SharedArrayBuffer(this.y.length * 4));
    y.set(this.y.view());
    for (let i = 0; i < y.length; i++) if (y[i] >= 0) y[i] = remap[y[i]];
    return {
      ...this.choices(),
      header: this.header,
      featureNames: this.featureNames,
      unused: this.unused,
      d: this.d,
      blocks: this.blocks,
      blockRows: this.blockRows,
      rows: this.rows,
      y,
      classes,
      output: { offsets: this.outOffsets.view(), lengths: this.outLengths.view(), rows: this.outRows.view() },
      counts: this.counts,
      skippedExamples: this.skippedExamples,
    };
  }

  private choices(): HeaderChoices {
    const columns = this.columns!;
    return {
      columns,
      delimiter: this.reader.delimiter,
      delimiterChosenBy: this.reader.chosenBy,
      targetName: columns[this.targetColumn],
      targetChosenBy: this.targetChosenBy,
    };
  }

  private onRecord(rec: CsvRecord): void {
    if (this.columns === undefined) {
      const header = readHeader(rec, this.reader.delimiter, this.reader.chosenBy, this.options);
      this.columns = header.columns;
      this.targetColumn = header.target;
      this.targetChosenBy = header.targetChosenBy;
      this.header = { offset: rec.offset, length: rec.length };
      this.options.onHeader?.(this.choices());
      return;
    }
    this.counts.read++;
    if (this.sample !== undefined) {
      this.sample.push(copyRecord(rec));
      if (this.sample.length >= SAMPLE_ROWS) this.planColumns(false);
      return;
    }
    this.ingest(rec, true);
  }

  /** Decides the features from the sampled rows, then loads the sample. `sampledAll`: the input has ended. */
  private planColumns(sampledAll: boolean): void {
    const columns = this.columns!;
    const sample = this.sample!;
    this.sample = undefined;
    if (!sample.some((rec) => rec.error === undefined && rec.fieldCount === columns.length)) {
      const first = sample[0];
      const reason = first.error ?? `expected ${columns.length} fields, found ${first.fieldCount}`;
      throw new DataError(
        refusals.noWellFormedRows(
          sample.length,
          sampledAll,
          columns.length,
          { line: first.line, reason },
          this.reader.delimiter,
        ),
      );
    }
    checkGuessedTarget(sample, columns, this.targetColumn, this.targetChosenBy, sampledAll);
    const excluded = new Set(this.options.exclude);
    const features: number[] = [];
    const examples = new Map<string, string>();
    for (let col = 0; col < columns.length; col++) {
      if (col === this.targetColumn) continue;
      const name = columns[col];
      if (excluded.has(name)) {
        this.unused.push({ name, reason: 'excluded' });
        continue;
      }
      let nonEmpty = 0;
      let numeric = 0;
      for (const rec of sample) {
        if (rec.error !== undefined || rec.fieldCount !== columns.length) continue;
        if (rec.ends[col] === rec.starts[col]) continue;
        nonEmpty++;
        if (!Number.isNaN(fieldNumber(rec, col))) numeric++;
        else if (!examples.has(name)) examples.set(name, clip(fieldText(rec, col)));
      }
      if (numeric > 0 && numeric * 2 > nonEmpty) features.push(col);
      else this.unused.push({ name, reason: nonEmpty === 0 ? 'no values' : 'not numeric' });
    }
    if (features.length === 0) {
      const unused = this.unused.map((c) => ({ ...c, example: examples.get(c.name) }));
      throw new DataError(
        refusals.noNumericFeatures(columns[this.targetColumn], this.targetChosenBy, unused),
      );
    }
    this.featureColumns = Int32Array.from(features);
    this.featureNames = features.map((c) => columns[c]);
    this.d = features.length;
    for (const rec of sample) this.ingest(rec, false);
    this.reader.parseNumbersIn(features);
  }

  /** `parsed`: the reader has already parsed the unquoted feature fields into `rec.numbers`. */
  private ingest(rec: CsvRecord, parsed: boolean): void {
    const ncols = this.columns!.length;
    if (rec.error !== undefined) {
      this.skip(rec.line, rec.error, false, rec);
      return;
    }
    if (rec.fieldCount !== ncols) {
      this.skip(rec.line, `expected ${ncols} fields, found ${rec.fieldCount}`, false, rec);
      return;
    }
    const d = this.d;
    const slot = this.rows % this.blockRows;
    if (slot === 0 && this.blocks.length * this.blockRows === this.rows) {
      // Shared memory, so that a helper thread can read the matrix without a copy.
      this.blocks.push(new Float64Array(new SharedArrayBuffer(this.blockRows * d * 8)));
    }
    const block = this.blocks[this.blocks.length - 1];
    const base = slot * d;
    const cols = this.featureColumns;
    const bytes = rec.bytes;
    for (let k = 0; k < d; k++) {
      const col = cols[k];
      const value =
        rec.kinds[col] !== FIELD_PLAIN
          ? fieldNumber(rec, col)
          : parsed
            ? rec.numbers[col]
            : parseDecimal(bytes, rec.starts[col], rec.ends[col]);
      if (Number.isNaN(value)) {
        const name = this.columns![col];
        const reason =
          rec.ends[col] === rec.starts[col]
            ? `column "${name}" is empty`
            : `column "${name}" is not a number: ${JSON.stringify(clip(fieldText(rec, col)))}`;
        this.skip(rec.line, reason, true, rec);
        return;
      }
      block[base + k] = value;
    }
    const label = this.labelOf(rec);
    this.y.push(label);
    if (label < 0) this.counts.predictOnly++;
    else this.counts.trainable++;
    this.outOffsets.push(rec.offset);
    this.outLengths.push(rec.length);
    this.outRows.push(this.rows);
    this.rows++;
  }

  /** The class id of the record's target, or -1 when it is empty. */
  private labelOf(rec: CsvRecord): number {
    const col = this.targetColumn;
    const bytes = rec.bytes;
    let s = rec.starts[col];
    let e = rec.ends[col];
    if (rec.kinds[col] === FIELD_PLAIN) {
      while (s < e && (bytes[s] === 32 || bytes[s] === 9)) s++;
      while (e > s && (bytes[e - 1] === 32 || bytes[e - 1] === 9)) e--;
      if (s === e) return -1;
      if (e - s <= 6) {
        // Short labels ("0", "1", "yes") are looked up by their bytes, without making a string.
        let key = e - s;
        for (let i = s; i < e; i++) key = key * 256 + bytes[i];
        const known = this.shortLabelIds.get(key);
        if (known !== undefined) return known;
        const id = this.classId(fieldText(rec, col).trim());
        this.shortLabelIds.set(key, id);
        return id;
      }
    }
    const text = fieldText(rec, col).trim();
    return text === '' ? -1 : this.classId(text);
  }

  private classId(label: string): number {
    let id = this.classIds.get(label);
    if (id === undefined) {
      id = this.labels.length;
      this.labels.push(label);
      this.classIds.set(label, id);
    }
    return id;
  }

  private skip(line: number, reason: string, kept: boolean, rec: CsvRecord): void {
    this.counts.skipped++;
    if (this.skippedExamples.length < SKIPPED_EXAMPLES) this.skippedExamples.push({ line, reason });
    if (kept) {
      this.outOffsets.push(rec.offset);
      this.outLengths.push(rec.length);
      this.outRows.push(-1);
    }
  }
}

export function segmentsOf(ds: Dataset): Segment[] {
  return ds.blocks.map((x, b) => {
    const first = b * ds.blockRows;
    const rows = Math.min(ds.blockRows, ds.rows - first);
    return { x, y: ds.y.subarray(first, first + rows), rows };
  });
}

function fieldNumber(rec: CsvRecord, col: number): number {
  if (rec.kinds[col] === FIELD_PLAIN) return parseDecimal(rec.bytes, rec.starts[col], rec.ends[col]);
  return parseDecimalString(fieldText(rec, col));
}

function clip(text: string): string {
  return text.length > 40 ? `${text.slice(0, 40)}…` : text;
}

function copyRecord(rec: CsvRecord): CsvRecord {
  // Keep only the record's own bytes; spans are rebased onto the copy.
  const n = rec.fieldCount;
  const starts = rec.starts.slice(0, n);
  const ends = rec.ends.slice(0, n);
  for (let i = 0; i < n; i++) {
    starts[i] -= rec.start;
    ends[i] -= rec.start;
  }
  return {
    ...rec,
    bytes: rec.bytes.slice(rec.start, rec.start + rec.length),
    starts,
    ends,
    kinds: rec.kinds.slice(0, n),
    start: 0,
  };
}

/** Sorts labels (numerically when all are numbers) and maps discovery-order ids to sorted ids. */
export function sortClasses(labels: readonly string[]): { classes: string[]; remap: Int32Array } {
  const numeric = labels.every((label) => !Number.isNaN(parseDecimalString(label)));
  const order = labels.map((_, i) => i);
  order.sort((a, b) => {
    if (numeric) {
      const diff = parseDecimalString(labels[a]) - parseDecimalString(labels[b]);
      if (diff !== 0) return diff;
    }
    return labels[a] < labels[b] ? -1 : labels[a] > labels[b] ? 1 : 0;
  });
  const remap = new Int32Array(labels.length);
  order.forEach((original, sorted) => (remap[original] = sorted));
  return { classes: order.map((i) => labels[i]), remap };
}
