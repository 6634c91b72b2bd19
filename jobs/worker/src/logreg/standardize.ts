// Standardization with the mean and population standard deviation of the training rows (rows with a
// target). A feature that is constant over the training rows contributes nothing: its standardized
// value is 0 for every row, so its coefficient stays exactly 0.
import type { Dataset } from './dataset.ts';
import { BLOCK_ROWS } from './dataset.ts';

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
  const { d, rows } = ds;
  const { mean, std, constant } = scaling;
  for (let b = 0; b < ds.blocks.length; b++) {
    const block = ds.blocks[b];
    const count = Math.min(BLOCK_ROWS, rows - b * BLOCK_ROWS);
    for (let i = 0; i < count; i++) {
      const base = i * d;
      for (let j = 0; j < d; j++) block[base + j] = constant[j] ? 0 : (block[base + j] - mean[j]) / std[j];
    }
  }
}

function forEachTrainingRow(ds: Dataset, visit: (block: Float64Array, base: number) => void): void {
  const { d, rows, y } = ds;
  for (let b = 0; b < ds.blocks.length; b++) {
    const block = ds.blocks[b];
    const first = b * BLOCK_ROWS;
    const count = Math.min(BLOCK_ROWS, rows - first);
    for (let i = 0; i < count; i++) if (y[first + i] >= 0) visit(block, i * d);
  }
}
