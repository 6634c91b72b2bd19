import { describe, expect, it } from 'vitest';
import {
  CsvError,
  CsvRecordReader,
  fieldText,
  MAX_RECORD_BYTES,
  type CsvRecord,
} from '../../src/csv/records.ts';
import { DataError } from '../../src/errors.ts';

interface Read {
  fields: string[];
  line: number;
  offset: number;
  length: number;
  error?: string;
}

function read(input: Buffer | string, chunkSize = Infinity): Read[] {
  const bytes = Buffer.isBuffer(input) ? input : Buffer.from(input);
  const out: Read[] = [];
  const reader = new CsvRecordReader((rec: CsvRecord) => {
    const fields = Array.from({ length: rec.fieldCount }, (_, i) => fieldText(rec, i));
    out.push({
      fields,
      line: rec.line,
      offset: rec.offset,
      length: rec.length,
      ...(rec.error ? { error: rec.error } : {}),
    });
  });
  for (let at = 0; at < bytes.length; at += Math.min(chunkSize, bytes.length)) {
    reader.push(bytes.subarray(at, Math.min(bytes.length, at + chunkSize)));
  }
  reader.end();
  return out;
}

describe('CsvRecordReader', () => {
  it.each([
    [
      'LF',
      'a,b\n1,2\n',
      [
        ['a', 'b'],
        ['1', '2'],
      ],
    ],
    [
      'CRLF',
      'a,b\r\n1,2\r\n',
      [
        ['a', 'b'],
        ['1', '2'],
      ],
    ],
    [
      'lone CR',
      'a,b\r1,2\r',
      [
        ['a', 'b'],
        ['1', '2'],
      ],
    ],
    [
      'no final line break',
      'a,b\n1,2',
      [
        ['a', 'b'],
        ['1', '2'],
      ],
    ],
    [
      'quoted comma',
      'a,b\n"x,y",2\n',
      [
        ['a', 'b'],
        ['x,y', '2'],
      ],
    ],
    [
      'quoted line breaks',
      'a,b\n"line 1\nline 2\r\nline 3",2\n',
      [
        ['a', 'b'],
        ['line 1\nline 2\r\nline 3', '2'],
      ],
    ],
    ['doubled quotes', 'a\n"say ""hi"""\n', [['a'], ['say "hi"']]],
    [
      'empty fields',
      'a,b,c\n,,\n',
      [
        ['a', 'b', 'c'],
        ['', '', ''],
      ],
    ],
    [
      'empty quoted field',
      'a,b\n"",1\n',
      [
        ['a', 'b'],
        ['', '1'],
      ],
    ],
    ['blank lines are not records', 'a\n\n1\n\r\n2\n', [['a'], ['1'], ['2']]],
    [
      'UTF-8 byte order mark',
      '\uFEFFa,b\n1,2\n',
      [
        ['a', 'b'],
        ['1', '2'],
      ],
    ],
    ['UTF-8 text', 'name\nZürich — 東京\n', [['name'], ['Zürich — 東京']]],
  ])('%s', (_name, text, expected) => {
    expect(read(text).map((r) => r.fields)).toEqual(expected);
  });

  it('gives the same records whatever the chunk boundaries', () => {
    const text = '\uFEFFid,note,value\r\n1,"a, ""quoted""\r\nnote",3.5\r\n2,plain,4\n\n3,"",5\r4,last,6';
    const whole = read(text);
    for (const size of [1, 2, 3, 5, 7, 13]) expect(read(text, size)).toEqual(whole);
  });

  it('records each record’s byte range and starting line', () => {
    const text = 'h1,h2\n"multi\nline",x\r\nnext,y\n';
    const records = read(text);
    const bytes = Buffer.from(text);
    expect(records.map((r) => r.line)).toEqual([1, 2, 4]);
    expect(records.map((r) => bytes.subarray(r.offset, r.offset + r.length).toString())).toEqual([
      'h1,h2',
      '"multi\nline",x',
      'next,y',
    ]);
  });

  it('counts the byte order mark in the offsets', () => {
    const [header] = read('\uFEFFa,b\n');
    expect(header.offset).toBe(3);
  });

  it('marks malformed quoting instead of guessing silently', () => {
    expect(read('a,b\n"x"y,2\n')[1].error).toBe('unexpected text after the closing quote of field 1');
    expect(read('a,b\n1,"never closed\n2,3\n')[1].error).toBe('quoted field 2 is never closed');
  });

  it('refuses a record longer than the limit (a quote that never closes on a big file) as bad data: exit 4', () => {
    const reader = new CsvRecordReader(() => {});
    reader.push(Buffer.from('a\n"'));
    const block = Buffer.alloc(1 << 20, 120);
    let failure: unknown;
    try {
      for (let i = 0; i <= MAX_RECORD_BYTES >> 20; i++) reader.push(block);
    } catch (err) {
      failure = err;
    }
    expect(failure).toBeInstanceOf(CsvError);
    expect(failure).toBeInstanceOf(DataError);
    expect((failure as DataError).exitCode).toBe(4);
    expect((failure as Error).message).toMatch(
      /^the record starting on line 2 is longer than 16777216 bytes, so a quote was probably never closed: check the quoting near that line/,
    );
  });
});
