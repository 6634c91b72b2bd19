// An independent reference solver for the tests: Newton's method written plainly on arrays of arrays,
// with its own standardization, dense Hessian and Gaussian elimination. Nothing is shared with the
// worker's code but the objective's definition:
//   minimize 0.5 * ||W||^2 + C * sum_i logloss_i, intercepts not penalized, features standardized
// with the training rows' mean and population standard deviation.

export interface Reference {
  /** Per coefficient vector: [intercept, w_1..w_d] in standardized units. */
  vectors: number[][];
  mean: number[];
  std: number[];
}

export function newtonReference(
  rows: number[][],
  labels: number[],
  classCount: number,
  c: number,
): Reference {
  const n = rows.length;
  const d = rows[0].length;
  const mean = Array.from({ length: d }, (_, j) => rows.reduce((s, r) => s + r[j], 0) / n);
  const std = Array.from({ length: d }, (_, j) =>
    Math.sqrt(rows.reduce((s, r) => s + (r[j] - mean[j]) ** 2, 0) / n),
  );
  const x = rows.map((r) => [1, ...r.map((v, j) => (std[j] === 0 ? 0 : (v - mean[j]) / std[j]))]);
  const vectors = classCount === 2 ? 1 : classCount;
  const stride = d + 1;
  const size = vectors * stride;
  let theta = new Array<number>(size).fill(0);

  const probabilities = (t: number[], xi: number[]): number[] => {
    const scores = Array.from({ length: vectors }, (_, v) =>
      xi.reduce((s, xv, j) => s + xv * t[v * stride + j], 0),
    );
    if (classCount === 2) return [1 / (1 + Math.exp(-scores[0]))];
    const max = Math.max(...scores);
    const e = scores.map((s) => Math.exp(s - max));
    const sum = e.reduce((a, b) => a + b, 0);
    return e.map((v) => v / sum);
  };
  const objective = (t: number[]): number => {
    let f = 0;
    for (let v = 0; v < vectors; v++) for (let j = 1; j < stride; j++) f += 0.5 * t[v * stride + j] ** 2;
    for (let i = 0; i < n; i++) {
      const p = probabilities(t, x[i]);
      const pTrue = classCount === 2 ? (labels[i] === 1 ? p[0] : 1 - p[0]) : p[labels[i]];
      f -= c * Math.log(pTrue);
    }
    return f;
  };

  for (let iteration = 0; iteration < 100; iteration++) {
    const g = new Array<number>(size).fill(0);
    const h = Array.from({ length: size }, () => new Array<number>(size).fill(0));
    for (let i = 0; i < n; i++) {
      const p = probabilities(theta, x[i]);
      for (let v = 0; v < vectors; v++) {
        const target = classCount === 2 ? labels[i] : labels[i] === v ? 1 : 0;
        for (let a = 0; a < stride; a++) g[v * stride + a] += c * (p[v] - target) * x[i][a];
        for (let u = 0; u < vectors; u++) {
          const weight = classCount === 2 ? p[0] * (1 - p[0]) : p[v] * ((u === v ? 1 : 0) - p[u]);
          for (let a = 0; a < stride; a++) {
            for (let b = 0; b < stride; b++)
              h[v * stride + a][u * stride + b] += c * weight * x[i][a] * x[i][b];
          }
        }
      }
    }
    for (let v = 0; v < vectors; v++) {
      for (let j = 1; j < stride; j++) {
        g[v * stride + j] += theta[v * stride + j];
        h[v * stride + j][v * stride + j] += 1;
      }
    }
    if (vectors > 1) {
      // Shifting every intercept by the same amount changes nothing: add curvature in that direction only.
      for (let v = 0; v < vectors; v++)
        for (let u = 0; u < vectors; u++) h[v * stride][u * stride] += 1 / vectors;
    }
    const gradientNorm = Math.hypot(...g);
    if (gradientNorm < 1e-11) break;
    const step = solve(h, g);
    let length = 1;
    const f0 = objective(theta);
    let next = theta.map((t, i) => t - length * step[i]);
    while (objective(next) > f0 && length > 1e-10) {
      length /= 2;
      next = theta.map((t, i) => t - length * step[i]);
    }
    theta = next;
  }
  if (vectors > 1) {
    const meanIntercept =
      Array.from({ length: vectors }, (_, v) => theta[v * stride]).reduce((a, b) => a + b, 0) / vectors;
    for (let v = 0; v < vectors; v++) theta[v * stride] -= meanIntercept;
  }
  return {
    vectors: Array.from({ length: vectors }, (_, v) => theta.slice(v * stride, (v + 1) * stride)),
    mean,
    std,
  };
}

/** Solves A x = b by Gaussian elimination with partial pivoting. */
function solve(a: number[][], b: number[]): number[] {
  const n = b.length;
  const m = a.map((row, i) => [...row, b[i]]);
  for (let col = 0; col < n; col++) {
    let pivot = col;
    for (let r = col + 1; r < n; r++) if (Math.abs(m[r][col]) > Math.abs(m[pivot][col])) pivot = r;
    [m[col], m[pivot]] = [m[pivot], m[col]];
    for (let r = col + 1; r < n; r++) {
      const factor = m[r][col] / m[col][col];
      for (let k = col; k <= n; k++) m[r][k] -= factor * m[col][k];
    }
  }
  const out = new Array<number>(n).fill(0);
  for (let r = n - 1; r >= 0; r--) {
    let s = m[r][n];
    for (let k = r + 1; k < n; k++) s -= m[r][k] * out[k];
    out[r] = s / m[r][r];
  }
  return out;
}
