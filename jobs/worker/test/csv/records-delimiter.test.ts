// The record reader with a delimiter other than the comma.
import { describe, expect, it } from 'vitest';
import { CsvRecordReader, fieldText, type CsvRecord } from '../../src/csv/records.ts';

function read(text: string, delimiter: string, chunkSize = Infinity) {
  const out: { fields: string[]; error?: string }[] = [];
  const reader = new CsvRecordReader((rec: CsvRecord) => {
    const fields = Array.from({ length: rec.fieldCount }, (_, i) => fieldText(rec, i));
    out.push(rec.error === undefined ? { fields } : { fields, error: rec.error });
  }, delimiter.charCodeAt(0));
  const bytes = Buffer.from(text);
  for (let at = 0; at < bytes.length; at += Math.min(chunkSize, bytes.length)) {
    reader.push(bytes.subarray(at, Math.min(bytes.length, at + chunkSize)));
  }
  reader.end();
  return out;
}

describe('CsvRecordReader with another delimiter', () => {
  it.each([
    ['semicolon', ';'],
    ['tab', '\t'],
    ['pipe', '|'],
  ])('%s: splits there, quoted delimiters stay in the field, and a comma is plain text', (_name, d) => {
    const text = `a${d}b${d}c\n1,5${d}"x${d}y"${d}"say ""hi"""\n${d}${d}\n`;
    for (const size of [1, 3, Infinity]) {
      expect(read(text, d, size).map((r) => r.fields)).toEqual([
        ['a', 'b', 'c'],
        ['1,5', `x${d}y`, 'say "hi"'],
        ['', '', ''],
      ]);
    }
  });

  it('marks text after a closing quote up to the delimiter, not a comma', () => {
    expect(read('a;b\n"x",y;2\n', ';')[1]).toEqual({
      fields: ['x",y', '2'],
      error: 'unexpected text after the closing quote of field 1',
    });
  });

  it('parses numbers up to the delimiter in the columns asked for', () => {
    const numbers: number[][] = [];
    const reader = new CsvRecordReader((rec) => numbers.push([rec.numbers[0], rec.numbers[1]]), 9);
    reader.parseNumbersIn([0, 1]);
    reader.push(Buffer.from('1.5\t-2\n3e2\t4,5\n'));
    reader.end();
    expect(numbers).toEqual([
      [1.5, -2],
      [300, NaN],
    ]);
  });

  it('refuses a quote or a line break as the delimiter', () => {
    for (const d of ['"', '\n', '\r']) {
      expect(() => new CsvRecordReader(() => {}, d.charCodeAt(0))).toThrow(
        /cannot be a quote or a line break/,
      );
    }
  });
});
