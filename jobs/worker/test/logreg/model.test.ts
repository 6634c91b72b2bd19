import { describe, expect, it } from 'vitest';
import { DatasetBuilder, type Dataset } from '../../src/logreg/dataset.ts';
import { fitModel, predictProbabilities, type FittedModel } from '../../src/logreg/model.ts';
import { newtonReference } from './newton.ts';
import { normal, random } from '../../scripts/generate-sample.ts';

interface Table {
  header: string[];
  rows: string[][];
}

function load(
  table: Table,
  options: { blockRows?: number; target?: string; exclude?: string[] } = {},
): Dataset {
  const builder = new DatasetBuilder({
    exclude: options.exclude ?? [],
    target: options.target,
    blockRows: options.blockRows,
  });
  const text = [table.header.join(','), ...table.rows.map((r) => r.join(','))].join('\n');
  builder.push(Buffer.from(text));
  return builder.finish();
}

/** Rows of `features` correlated normal features and a label drawn from a known logistic model. */
function synthetic(
  seed: number,
  rows: number,
  features: number,
  classes: string[],
): { table: Table; x: number[][]; y: number[] } {
  const rand = random(seed);
  const gauss = normal(rand);
  const weights = classes.map(() => Array.from({ length: features }, () => gauss()));
  const x: number[][] = [];
  const y: number[] = [];
  const table: Table = {
    header: [...Array.from({ length: features }, (_, j) => `f${j}`), 'label'],
    rows: [],
  };
  for (let i = 0; i < rows; i++) {
    const shared = gauss();
    const row = Array.from({ length: features }, (_, j) =>
      Number(((j + 1) * 3 + gauss() * (j + 1) + shared).toFixed(4)),
    );
    const scores = weights.map((w) => w.reduce((s, wj, j) => s + wj * (row[j] - (j + 1) * 3) * 0.5, 0));
    const max = Math.max(...scores);
    const e = scores.map((s) => Math.exp(s - max));
    const total = e.reduce((a, b) => a + b, 0);
    let u = rand() * total;
    let label = 0;
    while (label < classes.length - 1 && u > e[label]) u -= e[label++];
    x.push(row);
    y.push(label);
    table.rows.push([...row.map(String), classes[label]]);
  }
  return { table, x, y };
}

function expectClose(actual: number[], expected: number[], tolerance: number): void {
  expect(actual.length).toBe(expected.length);
  actual.forEach((a, i) => {
    expect(Math.abs(a - expected[i]), `index ${i}: ${a} vs ${expected[i]}`).toBeLessThanOrEqual(
      tolerance * Math.max(1, Math.abs(expected[i])),
    );
  });
}

function vectorsOf(model: FittedModel): number[][] {
  return model.standardized.intercepts.map((b, v) => [b, ...model.standardized.coefficients[v]]);
}

describe('fitModel against an independent Newton solver', () => {
  it.each([
    { name: 'binary, C = 1', classes: ['0', '1'], c: 1, seed: 1 },
    { name: 'binary, C = 0.05', classes: ['no', 'yes'], c: 0.05, seed: 2 },
    { name: 'binary, C = 100 (nearly unpenalized)', classes: ['0', '1'], c: 100, seed: 3 },
    { name: 'three classes, C = 1', classes: ['a', 'b', 'c'], c: 1, seed: 4 },
    { name: 'four classes, C = 0.3', classes: ['1', '2', '3', '4'], c: 0.3, seed: 5 },
  ])('$name: coefficients match to 1e-6', ({ classes, c, seed }) => {
    const { table, x, y } = synthetic(seed, 300, 3, classes);
    const model = fitModel(load(table), c, { threads: 1 });
    const reference = newtonReference(x, y, classes.length, c);
    expect(model.optimizer.converged).toBe(true);
    expect(model.optimizer.gradientRatio).toBeLessThanOrEqual(1e-8);
    expect(model.classes).toEqual(classes);
    expectClose(Array.from(model.scaling.mean), reference.mean, 1e-12);
    expectClose(Array.from(model.scaling.std), reference.std, 1e-12);
    vectorsOf(model).forEach((vector, v) => expectClose(vector, reference.vectors[v], 1e-6));
  });

  it('gives coefficients in original units that score every row exactly as the standardized ones', () => {
    const { table, x } = synthetic(6, 200, 4, ['a', 'b', 'c']);
    const ds = load(table);
    const model = fitModel(ds, 1, { threads: 1 });
    for (const row of x.slice(0, 20)) {
      for (let v = 0; v < 3; v++) {
        const original =
          model.original.intercepts[v] +
          row.reduce((s, value, j) => s + value * model.original.coefficients[v][j], 0);
        const standardized =
          model.standardized.intercepts[v] +
          row.reduce(
            (s, value, j) =>
              s +
              ((value - model.scaling.mean[j]) / model.scaling.std[j]) *
                model.standardized.coefficients[v][j],
            0,
          );
        expect(original).toBeCloseTo(standardized, 9);
      }
    }
  });
});

describe('predictProbabilities', () => {
  it('gives one probability per class that sums to 1 for every row', () => {
    const { table } = synthetic(7, 250, 3, ['x', 'y', 'z']);
    const ds = load(table);
    const model = fitModel(ds, 1, { threads: 1 });
    const { columns, values } = predictProbabilities(ds, model);
    expect(columns).toBe(3);
    for (let i = 0; i < ds.rows; i++) {
      const sum = values[i * 3] + values[i * 3 + 1] + values[i * 3 + 2];
      expect(Math.abs(sum - 1)).toBeLessThan(1e-12);
    }
  });

  it('gives P(second class) for two classes, matching the sigmoid of the reference score', () => {
    const { table, x, y } = synthetic(8, 150, 2, ['0', '1']);
    const ds = load(table);
    const model = fitModel(ds, 1, { threads: 1 });
    const reference = newtonReference(x, y, 2, 1);
    const { columns, values } = predictProbabilities(ds, model);
    expect(columns).toBe(1);
    const [b, ...w] = reference.vectors[0];
    x.forEach((row, i) => {
      const z = b + row.reduce((s, v, j) => s + w[j] * ((v - reference.mean[j]) / reference.std[j]), 0);
      expect(Math.abs(values[i] - 1 / (1 + Math.exp(-z)))).toBeLessThan(1e-7);
    });
  });
});

describe('columns and rows that need care', () => {
  it('gives a constant column a zero coefficient and otherwise the fit without it', () => {
    const { table } = synthetic(9, 200, 3, ['0', '1']);
    const withConstant: Table = {
      header: ['constant', ...table.header],
      rows: table.rows.map((r) => ['7.5', ...r]),
    };
    const a = fitModel(load(withConstant), 1, { threads: 1 });
    const b = fitModel(load(table), 1, { threads: 1 });
    expect(a.scaling.constant).toEqual([true, false, false, false]);
    expect(a.standardized.coefficients[0][0]).toBe(0);
    expect(a.original.coefficients[0][0]).toBe(0);
    expectClose(a.standardized.coefficients[0].slice(1), b.standardized.coefficients[0], 1e-9);
    expectClose(a.standardized.intercepts, b.standardized.intercepts, 1e-9);
  });

  it('predicts rows with an empty target without training on them', () => {
    const { table } = synthetic(10, 240, 3, ['0', '1']);
    const unlabeled: Table = {
      header: table.header,
      rows: table.rows.map((r, i) => (i % 4 === 0 ? [...r.slice(0, -1), ''] : r)),
    };
    const labeledOnly: Table = { header: table.header, rows: table.rows.filter((_, i) => i % 4 !== 0) };
    const ds = load(unlabeled);
    expect(ds.counts).toMatchObject({ read: 240, trainable: 180, predictOnly: 60, skipped: 0 });
    const a = fitModel(ds, 1, { threads: 1 });
    const b = fitModel(load(labeledOnly), 1, { threads: 1 });
    expectClose(vectorsOf(a)[0], vectorsOf(b)[0], 1e-9);
    const { values } = predictProbabilities(ds, a);
    expect(values.length).toBe(240);
    expect(Array.from(values).every((p) => p > 0 && p < 1)).toBe(true);
  });

  it('skips rows with a missing feature value instead of reading it as 0', () => {
    const { table } = synthetic(11, 200, 3, ['0', '1']);
    const holes: Table = {
      header: table.header,
      rows: table.rows.map((r, i) => (i % 10 === 3 ? ['', ...r.slice(1)] : r)),
    };
    const complete: Table = { header: table.header, rows: table.rows.filter((_, i) => i % 10 !== 3) };
    const ds = load(holes);
    expect(ds.counts).toMatchObject({ read: 200, trainable: 180, skipped: 20 });
    expect(ds.skippedExamples[0]).toEqual({ line: 5, reason: 'column "f0" is empty' });
    expectClose(
      vectorsOf(fitModel(ds, 1, { threads: 1 }))[0],
      vectorsOf(fitModel(load(complete), 1, { threads: 1 }))[0],
      1e-9,
    );
  });
});

describe('the large-data paths give the same model', () => {
  const { table } = synthetic(12, 3000, 4, ['a', 'b', 'c']);
  const single = fitModel(load(table, { blockRows: 100 }), 1, { threads: 1 });

  it('splits the rows with a helper thread', () => {
    const parallel = fitModel(load(table, { blockRows: 100 }), 1, { threads: 2 });
    expect(parallel.optimizer.threads).toBe(2);
    vectorsOf(parallel).forEach((v, i) => expectClose(v, vectorsOf(single)[i], 1e-7));
  });

  it('warm-starts from a sample and still reaches the same optimum', () => {
    const warm = fitModel(load(table, { blockRows: 100 }), 1, { threads: 1, warmStartRows: 300 });
    expect(warm.optimizer.converged).toBe(true);
    vectorsOf(warm).forEach((v, i) => expectClose(v, vectorsOf(single)[i], 1e-7));
  });

  it('reports an optimizer stopped early as not converged', () => {
    const early = fitModel(load(table), 1, {
      threads: 1,
      lbfgs: { tolerance: 1e-8, maxIterations: 2, memory: 10 },
    });
    expect(early.optimizer.converged).toBe(false);
    expect(early.optimizer.message).toBe('reached the iteration limit');
  });
});

describe('data that cannot make a model', () => {
  it.each([
    {
      name: 'one class only',
      rows: [
        ['1', '0'],
        ['2', '0'],
      ],
      message: /one class only/,
    },
    {
      name: 'no trainable rows',
      rows: [
        ['1', ''],
        ['2', ''],
      ],
      message: /no trainable rows/,
    },
  ])('$name', ({ rows, message }) => {
    expect(() => fitModel(load({ header: ['f', 'label'], rows }), 1)).toThrow(message);
  });
});
