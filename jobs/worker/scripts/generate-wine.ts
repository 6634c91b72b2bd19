// Writes jobs/worker/data/wine.csv: SYNTHETIC data in the shape of the UCI wine data set (Forina et
// al., UCI Machine Learning Repository), which cannot be downloaded here. 178 wines of three
// cultivars (59, 71 and 48 rows, in that order), the class first as `cultivar` (1, 2, 3), then the 13
// measurements under their UCI names, `proline` last. Each value is drawn from a normal distribution
// with the published per-cultivar mean and standard deviation of that measurement, clipped to the
// range seen in the real data and rounded as it is there; the measurements are independent given the
// cultivar (the real ones are correlated), so a model learns it about as well as the real one.
// It exists to show the worker refusing a continuous last column (`proline`) as the target unless
// TARGET_COLUMN names the class. Deterministic: a fixed seed gives the same file, byte for byte.
//   node jobs/worker/scripts/generate-wine.ts [OUT]
import fs from 'node:fs';
import path from 'node:path';
import { normal, random } from './generate-sample.ts';

const SEED = 19910101;
const ROWS_PER_CULTIVAR = [59, 71, 48];

interface Measurement {
  name: string;
  decimals: number;
  min: number;
  max: number;
  /** [mean, standard deviation] for cultivars 1, 2 and 3. */
  byCultivar: [number, number][];
}

const MEASUREMENTS: Measurement[] = [
  {
    name: 'alcohol',
    decimals: 2,
    min: 11.03,
    max: 14.83,
    byCultivar: [
      [13.74, 0.46],
      [12.28, 0.54],
      [13.15, 0.53],
    ],
  },
  {
    name: 'malic_acid',
    decimals: 2,
    min: 0.74,
    max: 5.8,
    byCultivar: [
      [2.01, 0.69],
      [1.93, 1.02],
      [3.33, 1.09],
    ],
  },
  {
    name: 'ash',
    decimals: 2,
    min: 1.36,
    max: 3.23,
    byCultivar: [
      [2.46, 0.23],
      [2.24, 0.32],
      [2.44, 0.18],
    ],
  },
  {
    name: 'alcalinity_of_ash',
    decimals: 1,
    min: 10.6,
    max: 30,
    byCultivar: [
      [17.04, 2.55],
      [20.24, 3.35],
      [21.42, 2.26],
    ],
  },
  {
    name: 'magnesium',
    decimals: 0,
    min: 70,
    max: 162,
    byCultivar: [
      [106.3, 10.5],
      [94.5, 16.8],
      [99.3, 10.9],
    ],
  },
  {
    name: 'total_phenols',
    decimals: 2,
    min: 0.98,
    max: 3.88,
    byCultivar: [
      [2.84, 0.34],
      [2.26, 0.55],
      [1.68, 0.36],
    ],
  },
  {
    name: 'flavanoids',
    decimals: 2,
    min: 0.34,
    max: 5.08,
    byCultivar: [
      [2.98, 0.4],
      [2.08, 0.71],
      [0.78, 0.29],
    ],
  },
  {
    name: 'nonflavanoid_phenols',
    decimals: 2,
    min: 0.13,
    max: 0.66,
    byCultivar: [
      [0.29, 0.07],
      [0.36, 0.12],
      [0.45, 0.12],
    ],
  },
  {
    name: 'proanthocyanins',
    decimals: 2,
    min: 0.41,
    max: 3.58,
    byCultivar: [
      [1.9, 0.41],
      [1.63, 0.6],
      [1.15, 0.41],
    ],
  },
  {
    name: 'color_intensity',
    decimals: 2,
    min: 1.28,
    max: 13,
    byCultivar: [
      [5.53, 1.24],
      [3.09, 0.92],
      [7.4, 2.31],
    ],
  },
  {
    name: 'hue',
    decimals: 2,
    min: 0.48,
    max: 1.71,
    byCultivar: [
      [1.06, 0.12],
      [1.06, 0.2],
      [0.68, 0.11],
    ],
  },
  {
    name: 'od280_od315_of_diluted_wines',
    decimals: 2,
    min: 1.27,
    max: 4,
    byCultivar: [
      [3.16, 0.36],
      [2.79, 0.5],
      [1.68, 0.27],
    ],
  },
  {
    name: 'proline',
    decimals: 0,
    min: 278,
    max: 1680,
    byCultivar: [
      [1115.7, 221.5],
      [519.5, 157.2],
      [629.9, 115.1],
    ],
  },
];

export function generateWine(): string {
  const gauss = normal(random(SEED));
  const lines = [['cultivar', ...MEASUREMENTS.map((m) => m.name)].join(',')];
  ROWS_PER_CULTIVAR.forEach((rows, k) => {
    for (let i = 0; i < rows; i++) {
      const values = MEASUREMENTS.map(({ decimals, min, max, byCultivar }) => {
        const [mean, sd] = byCultivar[k];
        const value = Math.min(max, Math.max(min, mean + sd * gauss()));
        return String(Number(value.toFixed(decimals)));
      });
      lines.push([String(k + 1), ...values].join(','));
    }
  });
  return `${lines.join('\n')}\n`;
}

if (import.meta.main) {
  const out = process.argv[2] ?? path.join(import.meta.dirname, '..', 'data', 'wine.csv');
  fs.mkdirSync(path.dirname(out), { recursive: true });
  fs.writeFileSync(out, generateWine());
  process.stdout.write(`wrote ${out}\n`);
}
