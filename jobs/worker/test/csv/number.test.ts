import { describe, expect, it } from 'vitest';
import { parseDecimal, parseDecimalString, scanDecimal, scanned } from '../../src/csv/number.ts';
import { random } from '../../scripts/generate-sample.ts';

const parse = (text: string) => parseDecimalString(text);

describe('parseDecimal', () => {
  it.each([
    ['0', 0],
    ['-0', -0],
    ['42', 42],
    ['+7', 7],
    ['-3.25', -3.25],
    ['.5', 0.5],
    ['5.', 5],
    ['1e3', 1000],
    ['1.5E-3', 0.0015],
    ['-2.5e+2', -250],
    ['  12.5\t', 12.5],
    ['0.1', 0.1],
    ['123456789012345678901234567890', 1.2345678901234568e29],
    ['0.30000000000000004', 0.30000000000000004],
    ['4.9e-324', 5e-324],
    ['1.7976931348623157e308', 1.7976931348623157e308],
  ])('reads %j as %d', (text, expected) => {
    expect(Object.is(parse(text), expected)).toBe(true);
  });

  it.each([
    '',
    ' ',
    '-',
    '+',
    '.',
    'e5',
    '1e',
    '1e+',
    'abc',
    '12abc',
    '1,5',
    '0x10',
    'NaN',
    'Infinity',
    'inf',
    '1 2',
    '--1',
    '1.2.3',
    '1e400',
  ])('refuses %j', (text) => {
    expect(parse(text)).toBeNaN();
  });

  it('rounds exactly as Number() does, on 20,000 random decimals of every length', () => {
    const rand = random(7);
    for (let i = 0; i < 20_000; i++) {
      const digits = 1 + Math.floor(rand() * 20);
      let text = rand() < 0.5 ? '-' : '';
      for (let k = 0; k < digits; k++) text += Math.floor(rand() * 10);
      if (rand() < 0.7) text = `${text.slice(0, 1 + Math.floor(rand() * text.length))}.${text.slice(1)}0`;
      if (rand() < 0.3) text += `e${Math.floor(rand() * 60) - 30}`;
      const expected = Number(text);
      expect(parse(text), text).toBe(expected);
    }
  });
});

describe('scanDecimal', () => {
  it('finds the end of the field and agrees with parseDecimal on every kind of field', () => {
    const fields = [
      '12',
      '-0.5',
      '3.14159',
      '',
      'x',
      '1e5',
      ' 7 ',
      '12345678901234567',
      '1.5.5',
      '-',
      '0.000001',
    ];
    for (const field of fields) {
      for (const after of [',', '\n', '\r\n', '']) {
        const bytes = Buffer.from(`${field}${after}rest`);
        const limit = after === '' ? field.length : bytes.length;
        const value = scanDecimal(bytes, 0, limit);
        expect(scanned.end, JSON.stringify(field + after)).toBe(field.length);
        expect(Object.is(value, parseDecimal(bytes, 0, field.length)), JSON.stringify(field)).toBe(true);
      }
    }
  });

  it('agrees with Number() on random plain decimals', () => {
    const rand = random(11);
    for (let i = 0; i < 20_000; i++) {
      const text = ((rand() - 0.5) * 10 ** Math.floor(rand() * 12)).toFixed(Math.floor(rand() * 9));
      expect(scanDecimal(Buffer.from(`${text},`), 0, text.length + 1), text).toBe(Number(text));
    }
  });
});
