// Limited-memory BFGS for smooth convex objectives, stopping on the gradient norm relative to the
// start (||g|| <= tolerance * ||g0||).
//
// Near a tight optimum on millions of rows, a change in f is smaller than f's own rounding error, so a
// line search that only compares f values stalls. The line search therefore accepts a step on the
// usual Wolfe conditions or on Hager and Zhang's approximate Wolfe conditions (f no higher than
// f0 + eps*|f0|, and the directional derivative reduced), which rely on the gradient, still accurate
// there. See W. W. Hager, H. Zhang, "A new conjugate gradient method with guaranteed descent and an
// efficient line search", SIAM J. Optim. 16 (2005), section 4.

export type ValueAndGradient = (x: Float64Array, gradient: Float64Array) => number;

export interface LbfgsOptions {
  tolerance: number;
  maxIterations: number;
  memory: number;
}

export interface LbfgsResult {
  x: Float64Array;
  value: number;
  iterations: number;
  evaluations: number;
  converged: boolean;
  /** ||g|| / ||g0|| at the end. */
  gradientRatio: number;
  message: string;
}

export const DEFAULT_LBFGS: LbfgsOptions = { tolerance: 1e-8, maxIterations: 1000, memory: 10 };

const WOLFE_DECREASE = 1e-4;
const WOLFE_CURVATURE = 0.9;
const APPROXIMATE_EPSILON = 1e-6;
const MAX_LINE_SEARCH_STEPS = 40;

/**
 * Minimizes from x0. The stopping test is relative to `referenceNorm`, by default the gradient norm at
 * x0; a caller that warm-starts passes the norm at its natural start so the test means the same.
 */
export function minimize(
  fg: ValueAndGradient,
  x0: Float64Array,
  options = DEFAULT_LBFGS,
  referenceNorm?: number,
): LbfgsResult {
  const n = x0.length;
  let x = Float64Array.from(x0);
  let g = new Float64Array(n);
  let f = fg(x, g);
  let evaluations = 1;
  const initialNorm = referenceNorm ?? norm(g);
  if (!Number.isFinite(f) || !Number.isFinite(initialNorm)) {
    return {
      x,
      value: f,
      iterations: 0,
      evaluations,
      converged: false,
      gradientRatio: NaN,
      message: 'the objective is not finite at the start',
    };
  }
  if (norm(g) <= options.tolerance * initialNorm) {
    const gradientRatio = initialNorm === 0 ? 0 : norm(g) / initialNorm;
    return {
      x,
      value: f,
      iterations: 0,
      evaluations,
      converged: true,
      gradientRatio,
      message: 'already optimal at the start',
    };
  }
  const history: { s: Float64Array; y: Float64Array; rho: number }[] = [];
  const direction = new Float64Array(n);
  const alphas = new Float64Array(options.memory);
  let xNew = new Float64Array(n);
  let gNew = new Float64Array(n);

  for (let iteration = 1; iteration <= options.maxIterations; iteration++) {
    twoLoop(g, history, direction, alphas);
    let slope0 = dot(g, direction);
    if (!(slope0 < 0)) {
      history.length = 0;
      for (let i = 0; i < n; i++) direction[i] = -g[i];
      slope0 = -dot(g, g);
    }
    let step = history.length === 0 ? Math.min(1, 1 / norm(g)) : 1;
    let lo = 0;
    let slopeLo = slope0;
    let hi = Infinity;
    let slopeHi = NaN;
    let fNew = NaN;
    let accepted = false;
    for (let attempt = 0; attempt < MAX_LINE_SEARCH_STEPS; attempt++) {
      for (let i = 0; i < n; i++) xNew[i] = x[i] + step * direction[i];
      fNew = fg(xNew, gNew);
      evaluations++;
      const slope = dot(gNew, direction);
      const decreased =
        fNew <= f + WOLFE_DECREASE * step * slope0 ||
        (fNew <= f + APPROXIMATE_EPSILON * Math.abs(f) && slope <= (2 * WOLFE_DECREASE - 1) * slope0);
      if (!Number.isFinite(fNew) || !decreased) {
        hi = step;
        slopeHi = slope;
      } else if (slope < WOLFE_CURVATURE * slope0) {
        lo = step;
        slopeLo = slope;
      } else {
        accepted = true;
        break;
      }
      step = hi === Infinity ? step * 4 : nextStep(lo, slopeLo, hi, slopeHi);
    }
    if (!accepted) {
      const gradientRatio = norm(g) / initialNorm;
      return {
        x,
        value: f,
        iterations: iteration,
        evaluations,
        converged: gradientRatio <= options.tolerance,
        gradientRatio,
        message: 'the line search found no acceptable step',
      };
    }
    const s = new Float64Array(n);
    const yv = new Float64Array(n);
    for (let i = 0; i < n; i++) {
      s[i] = xNew[i] - x[i];
      yv[i] = gNew[i] - g[i];
    }
    const sy = dot(s, yv);
    if (sy > 1e-12 * dot(yv, yv)) {
      if (history.length === options.memory) history.shift();
      history.push({ s, y: yv, rho: 1 / sy });
    }
    [x, xNew] = [xNew, x];
    [g, gNew] = [gNew, g];
    f = fNew;
    const gradientRatio = norm(g) / initialNorm;
    if (gradientRatio <= options.tolerance) {
      return {
        x,
        value: f,
        iterations: iteration,
        evaluations,
        converged: true,
        gradientRatio,
        message: 'gradient norm reduced below the tolerance',
      };
    }
  }
  const gradientRatio = norm(g) / initialNorm;
  return {
    x,
    value: f,
    iterations: options.maxIterations,
    evaluations,
    converged: false,
    gradientRatio,
    message: 'reached the iteration limit',
  };
}

/** A step between lo and hi: the secant root of the directional derivative, kept off the ends. */
function nextStep(lo: number, slopeLo: number, hi: number, slopeHi: number): number {
  const width = hi - lo;
  let step = lo + width / 2;
  if (Number.isFinite(slopeHi) && slopeHi > slopeLo) step = lo - (slopeLo * width) / (slopeHi - slopeLo);
  return Math.min(Math.max(step, lo + 0.1 * width), hi - 0.1 * width);
}

/** direction = -H g, with H the L-BFGS inverse Hessian approximation. */
function twoLoop(
  g: Float64Array,
  history: readonly { s: Float64Array; y: Float64Array; rho: number }[],
  direction: Float64Array,
  alphas: Float64Array,
): void {
  const n = g.length;
  for (let i = 0; i < n; i++) direction[i] = -g[i];
  for (let k = history.length - 1; k >= 0; k--) {
    const { s, y, rho } = history[k];
    const a = rho * dot(s, direction);
    alphas[k] = a;
    for (let i = 0; i < n; i++) direction[i] -= a * y[i];
  }
  if (history.length > 0) {
    const last = history[history.length - 1];
    const scale = 1 / (last.rho * dot(last.y, last.y));
    for (let i = 0; i < n; i++) direction[i] *= scale;
  }
  for (let k = 0; k < history.length; k++) {
    const { s, y, rho } = history[k];
    const b = rho * dot(y, direction);
    const a = alphas[k];
    for (let i = 0; i < n; i++) direction[i] += (a - b) * s[i];
  }
}

function dot(a: Float64Array, b: Float64Array): number {
  let sum = 0;
  for (let i = 0; i < a.length; i++) sum += a[i] * b[i];
  return sum;
}

function norm(a: Float64Array): number {
  return Math.sqrt(dot(a, a));
}
