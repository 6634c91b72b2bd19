// A streaming RFC 4180 record reader that works on bytes.
//
// Push chunks of any size; each complete record is handed to the callback as field spans into a byte
// buffer (no string is made unless the caller asks for a field's text). The delimiter is one byte,
// a comma unless the constructor is given another (`;`, tab, `|`). Accepted: quoted fields with
// delimiters, line breaks and doubled quotes; LF, CRLF and lone CR line endings; a UTF-8 byte order mark;
// a last record without a line ending. Blank lines are not records. Malformed quoting (text after a
// closing quote, a quote never closed) does not throw: the record carries an `error` and the caller
// decides. Each record knows its byte offset and length in the input (without the line ending) and the
// line it starts on, so a second pass can copy it verbatim and a report can point at it.

import { scanDecimal, scanned } from './number.ts';
import { DataError } from '../errors.ts';

export const MAX_RECORD_BYTES = 16 * 1024 * 1024;

const COMMA = 44;
const QUOTE = 34;
const LF = 10;
const CR = 13;

export const FIELD_PLAIN = 0;
export const FIELD_QUOTED = 1;
/** Quoted, with doubled quotes inside that the text must undo. */
export const FIELD_ESCAPED = 2;

/** Input that cannot be read as records at all: it cannot make a model either (exit 4). */
export class CsvError extends DataError {
  readonly line: number;
  constructor(message: string, line: number) {
    super(message);
    this.name = 'CsvError';
    this.line = line;
  }
}

/** One record. The reader reuses this object: copy what you keep. */
export interface CsvRecord {
  bytes: Uint8Array;
  fieldCount: number;
  starts: Int32Array;
  ends: Int32Array;
  kinds: Uint8Array;
  /**
   * For the columns flagged with `parseNumbersIn`, unquoted fields are parsed while scanned: the
   * value (NaN if not a number) is here. Other entries are stale.
   */
  numbers: Float64Array;
  /** Position of the record's first byte in `bytes`. */
  start: number;
  /** Absolute byte offset of the record's first byte in the input. */
  offset: number;
  /** Bytes of the record, line ending excluded. */
  length: number;
  /** 1-based line of the input on which the record starts. */
  line: number;
  error: string | undefined;
}

export type RecordHandler = (record: CsvRecord) => void;

export class CsvRecordReader {
  private readonly onRecord: RecordHandler;
  private readonly record: CsvRecord;
  private carry: Uint8Array | undefined;
  private base = 0; // absolute offset of the current buffer's first byte
  private line = 1;
  private bomChecked = false;
  private ended = false;
  private numeric: Uint8Array = new Uint8Array(0);
  private readonly delimiter: number;

  /** `delimiter`: the byte between fields (default a comma). */
  constructor(onRecord: RecordHandler, delimiter = COMMA) {
    if (delimiter === QUOTE || delimiter === LF || delimiter === CR) {
      throw new Error('CsvRecordReader: a delimiter cannot be a quote or a line break');
    }
    this.onRecord = onRecord;
    this.delimiter = delimiter;
    this.record = {
      bytes: new Uint8Array(0),
      fieldCount: 0,
      starts: new Int32Array(64),
      ends: new Int32Array(64),
      kinds: new Uint8Array(64),
      numbers: new Float64Array(64),
      start: 0,
      offset: 0,
      length: 0,
      line: 1,
      error: undefined,
    };
  }

  /** Parse unquoted fields of these columns (by index) as numbers while scanning them. */
  parseNumbersIn(columns: readonly number[]): void {
    this.numeric = new Uint8Array(Math.max(0, ...columns) + 1);
    for (const col of columns) this.numeric[col] = 1;
  }

  push(chunk: Uint8Array): void {
    if (this.ended) throw new Error('CsvRecordReader: push after end');
    let buf = chunk;
    if (this.carry !== undefined) {
      buf = Buffer.concat([this.carry, chunk]);
      this.carry = undefined;
    }
    this.scan(buf, false);
  }

  end(): void {
    if (this.ended) return;
    this.ended = true;
    const buf = this.carry ?? new Uint8Array(0);
    this.carry = undefined;
    this.scan(buf, true);
  }

  private scan(buf: Uint8Array, eof: boolean): void {
    let pos = 0;
    if (!this.bomChecked) {
      if (buf.length < 3 && !eof && isBomPrefix(buf)) {
        this.carry = buf;
        return;
      }
      this.bomChecked = true;
      if (buf.length >= 3 && buf[0] === 0xef && buf[1] === 0xbb && buf[2] === 0xbf) pos = 3;
    }
    const len = buf.length;
    while (pos < len) {
      const next = this.scanRecord(buf, pos, len, eof);
      if (next < 0) {
        if (len - pos > MAX_RECORD_BYTES) {
          throw new CsvError(
            `the record starting on line ${this.line} is longer than ${MAX_RECORD_BYTES} bytes, so a quote ` +
              'was probably never closed: check the quoting near that line (a field that starts with " ' +
              'must end with ", and a " inside it must be doubled)',
            this.line,
          );
        }
        this.carry = buf.subarray(pos);
        this.base += pos;
        return;
      }
      pos = next;
    }
    this.base += len;
  }

  /** Scans one record starting at `pos`; returns the position after it, or -1 if it needs more input. */
  private scanRecord(buf: Uint8Array, pos: number, len: number, eof: boolean): number {
    const rec = this.record;
    const delimiter = this.delimiter;
    const recordStart = pos;
    let newlines = 0;
    let fieldCount = 0;
    let error: string | undefined;
    let recordEnd: number;
    for (;;) {
      if (fieldCount === rec.starts.length) growFields(rec);
      let kind = FIELD_PLAIN;
      let fieldStart: number;
      let fieldEnd: number;
      if (pos < len && buf[pos] === QUOTE) {
        kind = FIELD_QUOTED;
        pos++;
        fieldStart = pos;
        for (;;) {
          if (pos >= len) {
            if (!eof) return -1;
            error ??= `quoted field ${fieldCount + 1} is never closed`;
            fieldEnd = pos;
            break;
          }
          const c = buf[pos];
          if (c === QUOTE) {
            if (pos + 1 >= len && !eof) return -1;
            if (buf[pos + 1] === QUOTE) {
              kind = FIELD_ESCAPED;
              pos += 2;
              continue;
            }
            fieldEnd = pos;
            pos++;
            break;
          }
          if (c === LF) newlines++;
          else if (c === CR && buf[pos + 1] !== LF) newlines++;
          pos++;
        }
        if (pos < len) {
          const c = buf[pos];
          if (c !== delimiter && c !== LF && c !== CR) {
            error ??= `unexpected text after the closing quote of field ${fieldCount + 1}`;
            while (pos < len && buf[pos] !== delimiter && buf[pos] !== LF && buf[pos] !== CR) pos++;
            fieldEnd = pos;
          }
        }
      } else if (fieldCount < this.numeric.length && this.numeric[fieldCount] === 1) {
        fieldStart = pos;
        rec.numbers[fieldCount] = scanDecimal(buf, pos, len, delimiter);
        pos = scanned.end;
        fieldEnd = pos;
      } else {
        fieldStart = pos;
        while (pos < len) {
          const c = buf[pos];
          if (c === delimiter || c === LF || c === CR) break;
          pos++;
        }
        fieldEnd = pos;
      }
      rec.starts[fieldCount] = fieldStart;
      rec.ends[fieldCount] = fieldEnd;
      rec.kinds[fieldCount] = kind;
      fieldCount++;

      if (pos >= len) {
        if (!eof) return -1;
        recordEnd = pos;
        break;
      }
      const c = buf[pos];
      if (c === delimiter) {
        pos++;
        continue;
      }
      recordEnd = pos;
      if (c === CR) {
        if (pos + 1 >= len && !eof) return -1;
        pos++;
        if (pos < len && buf[pos] === LF) pos++;
      } else {
        pos++; // LF
      }
      newlines++;
      break;
    }

    const line = this.line;
    this.line += newlines;
    const blank = fieldCount === 1 && kindIsPlain(rec.kinds[0]) && recordEnd === recordStart;
    if (!blank) {
      rec.bytes = buf;
      rec.fieldCount = fieldCount;
      rec.start = recordStart;
      rec.offset = this.base + recordStart;
      rec.length = recordEnd - recordStart;
      rec.line = line;
      rec.error = error;
      this.onRecord(rec);
    }
    return pos;
  }
}

function kindIsPlain(kind: number): boolean {
  return kind === FIELD_PLAIN;
}

function isBomPrefix(buf: Uint8Array): boolean {
  const bom = [0xef, 0xbb, 0xbf];
  for (let i = 0; i < buf.length; i++) if (buf[i] !== bom[i]) return false;
  return true;
}

function growFields(rec: CsvRecord): void {
  const size = rec.starts.length * 2;
  const starts = new Int32Array(size);
  const ends = new Int32Array(size);
  const kinds = new Uint8Array(size);
  const numbers = new Float64Array(size);
  starts.set(rec.starts);
  ends.set(rec.ends);
  kinds.set(rec.kinds);
  numbers.set(rec.numbers);
  rec.starts = starts;
  rec.ends = ends;
  rec.kinds = kinds;
  rec.numbers = numbers;
}

/** The text of field `i`, with doubled quotes undone. */
export function fieldText(rec: CsvRecord, i: number): string {
  const text = Buffer.from(rec.bytes.buffer, rec.bytes.byteOffset, rec.bytes.length).toString(
    'utf8',
    rec.starts[i],
    rec.ends[i],
  );
  return rec.kinds[i] === FIELD_ESCAPED ? text.replaceAll('""', '"') : text;
}
