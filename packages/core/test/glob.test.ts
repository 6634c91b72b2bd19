import { describe, expect, it } from 'vitest';
import { compileGlob, globToRegExp } from '../src/glob.ts';

const LONG_NAME = `uploads/${'a'.repeat(1_184)}.csv`; // 1,200 bytes, past the 1,024 GCS allows
const HOSTILE = [
  'in/with space.csv',
  'in/new\nline.csv',
  'in/$(rm -rf /).csv',
  'in/`reboot`.csv',
  `in/"quoted" 'name'.csv`,
  'in/semi;colon&amp|pipe.csv',
  'Zürich/東京.csv',
  'in/emoji 🎉.csv',
  LONG_NAME,
];

// [glob, name, matches]: each row is checked with compileGlob and with globToRegExp.
const CASES: Array<[string, string, boolean]> = [
  ['*.csv', 'a.csv', true],
  ['*.csv', 'dir/a.csv', false],
  ['*.csv', '.csv', true],
  ['**.csv', 'a/b/c.csv', true],
  ['**.csv', 'a.csv', true],
  ['**/*.csv', 'a.csv', true],
  ['**/*.csv', 'a/b/c.csv', true],
  ['**/*.csv', 'a/b/c.csvx', false],
  ['a/**/b.txt', 'a/b.txt', true],
  ['a/**/b.txt', 'a/x/y/b.txt', true],
  ['a/**/b.txt', 'ab.txt', false],
  ['a/**', 'a/x/y', true],
  ['a/**', 'b/x', false],
  ['raw/*/data.json', 'raw/2024/data.json', true],
  ['raw/*/data.json', 'raw/2024/01/data.json', false],
  ['file?.txt', 'file1.txt', true],
  ['file?.txt', 'file/.txt', false],
  ['file?.txt', 'file12.txt', false],
  ['file?.txt', 'fileé.txt', true],
  ['{in,raw}/*.csv', 'raw/a.csv', true],
  ['{in,raw}/*.csv', 'out/a.csv', false],
  ['*.{csv,tsv,parquet}', 'x.parquet', true],
  ['*.{csv,tsv}', 'x.json', false],
  ['{a,}b', 'b', true],
  ['{a*,b}/x', 'abc/x', true],
  ['{a*,b}/x', 'a/b/x', false],
  ['img/[abc].png', 'img/b.png', true],
  ['img/[abc].png', 'img/d.png', false],
  ['img/[a-z]*.png', 'img/photo.png', true],
  ['img/[a-z]*.png', 'img/Photo.png', false],
  ['img/[!_]*.png', 'img/_x.png', false],
  ['img/[!_]*.png', 'img/x.png', true],
  ['a[/]b', 'a/b', false],
  ['a[!x]b', 'a/b', false],
  ['[]]', ']', true],
  ['[a-]', '-', true],
  ['x[', 'x[', true],
  ['x{a,b', 'x{a,b', true],
  ['a\\*b', 'a*b', true],
  ['a\\*b', 'axb', false],
  ['a.b', 'axb', false],
  ['(a|b)+$^', '(a|b)+$^', true],
  ['in/$(rm -rf /).csv', 'in/$(rm -rf /).csv', true],
  ['Zürich/*.csv', 'Zürich/東京.csv', true],
  ['?/東?.csv', 'Z/東京.csv', true],
  ['in/*.csv', 'in/new\nline.csv', true],
  ['in/?', 'in/\n', true],
  ['*', '', true],
  ['', '', true],
  ['', 'a', false],
];

describe('globs', () => {
  it.each(CASES)('%j against %j is %s', (glob, name, matches) => {
    expect(compileGlob(glob).test(name)).toBe(matches);
    expect(globToRegExp(glob).test(name)).toBe(matches);
  });

  it.each(HOSTILE)('hostile name %j is matched by ** and by an exact glob of itself', (name) => {
    for (const glob of ['**', '**/*', '**.csv']) {
      expect(compileGlob(glob).test(name)).toBe(true);
      expect(globToRegExp(glob).test(name)).toBe(true);
    }
    const exact = name.replace(/[*?[{\\]/g, '\\$&');
    expect(compileGlob(exact).test(name)).toBe(true);
    expect(globToRegExp(exact).test(name)).toBe(true);
    expect(compileGlob(exact).test(`${name}x`)).toBe(false);
  });

  it('anchors both ends', () => {
    expect(compileGlob('b.csv').test('ab.csv')).toBe(false);
    expect(compileGlob('b.csv').test('b.csv.bak')).toBe(false);
    expect(globToRegExp('b.csv').test('b.csv\n')).toBe(false);
  });

  it('makes a RegExp with the s and u flags', () => {
    expect(globToRegExp('**').flags).toBe('su');
  });

  it('matches a hostile 1,200-character name in linear time, where a RegExp backtracks for minutes', () => {
    const started = performance.now();
    expect(compileGlob('*_*_*_*_*.csv').test('_'.repeat(1_200))).toBe(false);
    expect(compileGlob('**a**a**a**b').test('a'.repeat(1_200))).toBe(false);
    expect(compileGlob('{*_*,*-*}_*_*.csv').test('_'.repeat(1_200))).toBe(false);
    expect(performance.now() - started).toBeLessThan(1_000);
  });

  it.each(['[z-a]', 'img/[9-0].png'])('rejects the empty range in %j, naming the glob', (glob) => {
    expect(() => compileGlob(glob)).toThrow(`${JSON.stringify(glob)} is not a valid glob`);
    expect(() => globToRegExp(glob)).toThrow('is an empty range');
  });

  it('keeps its source for reasons', () => {
    expect(compileGlob('**/*.csv').glob).toBe('**/*.csv');
  });
});
