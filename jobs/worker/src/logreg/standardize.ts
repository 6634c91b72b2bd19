// Standardization with the mean and population standard deviation of the training rows (rows with a
// target). A feature that is constant over the training rows contributes nothing: its standardized
// value is 0 for every row, so its coefficient stays exactly 0.
import { segmentsOf, type Dataset } from './dataset.ts';

export interface Scaling {
  mean: Float64Array;
  std: Float64Array;
  constant: boolean[];
}

export function computeScaling(ds: Dataset): Scaling {
  const { d } = ds;
  const sum = new Float64Array(d);
  const min = new Float64Array(d).fill(Infinity);
  const max = new Float64Array(d).fill(-Infinity);
  let n = 0;
  forEachTrainingRow(ds, (block, base) => {
    n++;
    for (let j = 0; j < d; j++) {
      const v = block[base + j];
      sum[j] += v;
      if (v < min[j]) min[j] = v;
      if (v > max[j]) max[j] = v;
    }
  });
  const mean = new Float64Array(d);
  for (let j = 0; j < d; j++) mean[j] = sum[j] / n;
  const squares = new Float64Array(d);
  forEachTrainingRow(ds, (block, base) => {
    for (let j = 0; j < d; j++) {
      const dev = block[base + j] - mean[j];
      squares[j] += dev * dev;
    }
  });
  const std = new Float64Array(d);
  const constant: boolean[] = [];
  for (let j = 0; j < d; j++) {
    constant.push(!(max[j] > min[j]));
    std[j] = constant[j] ? 0 : Math.sqrt(squares[j] / n);
  }
  return { mean, std, constant };
}

/** Rewrites every row of the matrix (training and predict-only) in standardized units. */
export function standardizeInPlace(ds: Dataset, scaling: Scaling): void {
  const { d } = ds;
  const { mean, std, constant } = scaling;
  for (const { x, rows } of segmentsOf(ds)) {
    for (let base = 0; base < rows * d; base += d) {
      for (let j = 0; j < d; j++) x[base + j] = constant[j] ? 0 : (x[base + j] - mean[j]) / std[j];
    }
  }
}

function forEachTrainingRow(ds: Dataset, visit: (block: Float64Array, base: number) => void): void {
  const { d } = ds;
  for (const { x, y, rows } of segmentsOf(ds)) {
    for (let i = 0; i < rows; i++) if (y[i] >= 0) visit(x, i * d);
  }
}
