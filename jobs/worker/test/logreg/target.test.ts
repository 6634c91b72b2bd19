import { describe, expect, it } from 'vitest';
import { CsvRecordReader, type CsvRecord } from '../../src/csv/records.ts';
import { chooseTarget, notAClass, profileColumn } from '../../src/logreg/target.ts';
import { UsageError } from '../../src/errors.ts';

/** The data records of `text` (after its header), copied: the reader reuses its record and buffers. */
function records(text: string): CsvRecord[] {
  const out: CsvRecord[] = [];
  const reader = new CsvRecordReader((rec) =>
    out.push({
      ...rec,
      bytes: rec.bytes.slice(),
      starts: rec.starts.slice(),
      ends: rec.ends.slice(),
      kinds: rec.kinds.slice(),
    }),
  );
  reader.push(Buffer.from(text));
  reader.end();
  return out.slice(1);
}

/** The profile of the one column made of `values`. */
function profileOf(values: readonly string[]) {
  return profileColumn(records(['y', ...values].join('\n')), 0, 1);
}

const repeat = (values: readonly string[], times: number) =>
  Array.from({ length: times }, () => values).flat();

describe('profileColumn', () => {
  it('counts rows with a value, distinct values, and whether they are (fractional) numbers', () => {
    expect(profileOf(['1', '2', '2', '', ' 2 '])).toEqual({
      rows: 4,
      distinct: 2,
      numeric: true,
      fractional: false,
    });
    expect(profileOf(['0.5', '1'])).toEqual({ rows: 2, distinct: 2, numeric: true, fractional: true });
    expect(profileOf(['setosa', '1'])).toEqual({ rows: 2, distinct: 2, numeric: false, fractional: false });
  });

  it('leaves out records with the wrong number of fields', () => {
    const recs = records('a,y\n1,x\n2\n3,z\n');
    expect(profileColumn(recs, 1, 2)).toMatchObject({ rows: 2, distinct: 2 });
  });
});

describe('notAClass: does a guessed target look like a class?', () => {
  it.each([
    { name: '0/1 in two rows', values: ['0', '1'] },
    { name: '0/1 in many rows', values: repeat(['0', '1'], 500) },
    { name: 'iris species', values: repeat(['setosa', 'versicolor', 'virginica'], 50) },
    { name: 'wine cultivars', values: [...repeat(['1'], 59), ...repeat(['2'], 71), ...repeat(['3'], 48)] },
    { name: 'ten distinct values, each once', values: Array.from({ length: 10 }, (_, i) => `c${i}`) },
    { name: 'a few fractional values', values: repeat(['0.5', '1.5', '2.5'], 20) },
    {
      name: '20 integer classes that repeat',
      values: repeat(
        Array.from({ length: 20 }, (_, i) => String(i)),
        3,
      ),
    },
  ])('$name: a class', ({ values }) => {
    expect(notAClass(profileOf(values))).toBeUndefined();
  });

  it.each([
    {
      name: 'a measurement like proline (many distinct integers)',
      values: Array.from({ length: 178 }, (_, i) => String(278 + ((i * 37) % 140) * 10)),
      why: 'continuous',
    },
    {
      name: '21 distinct classes, even repeated',
      values: repeat(
        Array.from({ length: 21 }, (_, i) => String(i)),
        5,
      ),
      why: 'continuous',
    },
    {
      name: '12 fractional values, even repeated',
      values: repeat(
        Array.from({ length: 12 }, (_, i) => `${i}.5`),
        10,
      ),
      why: 'continuous',
    },
    {
      name: '15 distinct integers in 20 rows (mostly unique)',
      values: Array.from({ length: 20 }, (_, i) => String(i % 15)),
      why: 'continuous',
    },
    { name: 'identifiers', values: Array.from({ length: 50 }, (_, i) => `id-${i}`), why: 'unique' },
  ])('$name: not a class ($why)', ({ values, why }) => {
    expect(notAClass(profileOf(values))).toBe(why);
  });
});

describe('chooseTarget', () => {
  it('takes the named column, else "label", else the last column, and says which', () => {
    expect(chooseTarget(['a', 'label', 'b'], 'a')).toEqual({ index: 0, chosenBy: 'TARGET_COLUMN' });
    expect(chooseTarget(['a', 'label', 'b'], undefined)).toEqual({ index: 1, chosenBy: 'label column' });
    expect(chooseTarget(['a', 'b'], undefined)).toEqual({ index: 1, chosenBy: 'last column' });
  });

  it('refuses a named column the header does not have, suggesting one that differs only in case', () => {
    expect(() => chooseTarget(['a', 'Species'], 'species')).toThrow(UsageError);
    expect(() => chooseTarget(['a', 'Species'], 'species')).toThrow(
      'target column "species" is not in the header (did you mean "Species"?): set TARGET_COLUMN (or --target) to one of its columns: a, Species',
    );
  });
});
