import { describe, expect, it } from 'vitest';
import { detectDelimiter, parseDelimiter } from '../../src/csv/delimiter.ts';
import { DelimitedReader, DETECT_LIMIT } from '../../src/csv/delimited-reader.ts';
import { fieldText, type CsvRecord } from '../../src/csv/records.ts';

const detect = (text: string | Buffer) => detectDelimiter(Buffer.isBuffer(text) ? text : Buffer.from(text));

describe('detectDelimiter', () => {
  it.each([
    { name: 'commas', header: 'a,b,label\n1,2,0\n', delimiter: ',', fields: 3 },
    { name: 'semicolons', header: 'a;b;label\n1,5;2,5;0\n', delimiter: ';', fields: 3 },
    { name: 'tabs', header: 'a\tb\tc\tlabel\n', delimiter: '\t', fields: 4 },
    { name: 'pipes', header: 'a|b|label\n', delimiter: '|', fields: 3 },
    { name: 'the most fields wins', header: 'a,b;c;d;label\n', delimiter: ';', fields: 4 },
    { name: 'a tie goes to the comma', header: 'a,b;c\n', delimiter: ',', fields: 2 },
    { name: 'a tie without commas goes to the semicolon', header: 'a;b|c\n', delimiter: ';', fields: 2 },
    { name: 'none: a comma (one field)', header: 'a b c\n1 2 3\n', delimiter: ',', fields: 1 },
    {
      name: 'delimiters inside quotes do not count',
      header: '"a;b;c";"d,e,f",g,h\n',
      delimiter: ',',
      fields: 3,
    },
    { name: 'doubled quotes stay inside', header: '"say ""x;y""";b;c\n', delimiter: ';', fields: 3 },
    {
      name: 'a quoted line break is not the end',
      header: '"a\nb"|c|d\n1,2,3,4,5\n',
      delimiter: '|',
      fields: 3,
    },
    { name: 'only the header counts', header: 'a;b\n1,2,3,4,5,6\n', delimiter: ';', fields: 2 },
    { name: 'CRLF', header: 'a|b\r\n1,2,3,4\r\n', delimiter: '|', fields: 2 },
    { name: 'blank lines before the header', header: '\n\r\na;b;c\n1,2,3,4,5\n', delimiter: ';', fields: 3 },
    { name: 'a byte order mark', header: '\uFEFFa;b\n', delimiter: ';', fields: 2 },
  ])('$name', ({ header, delimiter, fields }) => {
    expect(detect(header)).toEqual({ delimiter, fields, complete: true });
  });

  it('says when the header line has not ended yet', () => {
    expect(detect('a;b;c')).toEqual({ delimiter: ';', fields: 3, complete: false });
    expect(detect('"a\n')).toMatchObject({ complete: false });
  });
});

describe('parseDelimiter (DELIMITER)', () => {
  it.each([
    [',', ','],
    [';', ';'],
    ['|', '|'],
    ['\t', '\t'],
    ['\\t', '\t'],
    ['tab', '\t'],
    ['TAB', '\t'],
    [' tab ', '\t'],
    ['comma', ','],
    ['semicolon', ';'],
    ['pipe', '|'],
  ])('%j is %j', (text, delimiter) => {
    expect(parseDelimiter(text)).toBe(delimiter);
  });

  it.each(['x', ' ', ',,', '"', 'space', ':'])('%j is not a delimiter', (text) => {
    expect(parseDelimiter(text)).toBeUndefined();
  });
});

function readAll(text: string, chunkSize: number, given?: ',' | ';' | '\t' | '|') {
  const records: string[][] = [];
  const reader = new DelimitedReader((rec: CsvRecord) => {
    records.push(Array.from({ length: rec.fieldCount }, (_, i) => fieldText(rec, i)));
  }, given);
  const bytes = Buffer.from(text);
  for (let at = 0; at < bytes.length; at += chunkSize) reader.push(bytes.subarray(at, at + chunkSize));
  reader.end();
  return { records, delimiter: reader.delimiter, chosenBy: reader.chosenBy };
}

describe('DelimitedReader', () => {
  const text = 'name;"note; with semicolons";value\n"a, b";"x;y";1,5\nc;d;2\n';

  it('detects the delimiter from the header, whatever the chunk boundaries', () => {
    const expected = {
      records: [
        ['name', 'note; with semicolons', 'value'],
        ['a, b', 'x;y', '1,5'],
        ['c', 'd', '2'],
      ],
      delimiter: ';',
      chosenBy: 'detected',
    };
    for (const size of [1, 2, 5, 7, 1000]) expect(readAll(text, size)).toEqual(expected);
  });

  it('uses the delimiter it is given, without detecting', () => {
    const given = readAll('a,x|b,y|c\n1,2|3|4\n', 3, '|');
    expect(given).toEqual({
      records: [
        ['a,x', 'b,y', 'c'],
        ['1,2', '3', '4'],
      ],
      delimiter: '|',
      chosenBy: 'DELIMITER',
    });
  });

  it('detects from a header without a line end when the input ends', () => {
    expect(readAll('a|b|c', 2)).toMatchObject({ records: [['a', 'b', 'c']], delimiter: '|' });
  });

  it('detects from the first DETECT_LIMIT bytes of a header that does not end', () => {
    const reader = new DelimitedReader(() => {});
    const names = Buffer.from(`${'column;'.repeat(Math.ceil(DETECT_LIMIT / 7))}`);
    reader.push(names.subarray(0, DETECT_LIMIT - 1));
    expect(reader.chosenBy).toBe('detected');
    expect(reader.delimiter).toBe(','); // still waiting
    reader.push(names.subarray(DETECT_LIMIT - 1));
    expect(reader.delimiter).toBe(';');
  });
});
