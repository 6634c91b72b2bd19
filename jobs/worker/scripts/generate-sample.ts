// Writes jobs/worker/data/financial_statements.csv: yearly statements of 600 synthetic companies,
// 2021-2025, in thousands of dollars, Altman's five ratios, and `distress_next_year` (1 when the company entered financial
// distress the following year). Distress follows Altman's Z-score (E. Altman, 1968) plus sector risk and
// noise; the 2025 rows have an empty target because next year is not known yet: the worker predicts
// them without training on them. Deterministic: a fixed seed gives the same file, byte for byte.
//   node jobs/worker/scripts/generate-sample.ts [OUT]
import fs from 'node:fs';
import path from 'node:path';
import { random } from '../../../workloads/seeded-random.ts';

const SEED = 20261122;
const COMPANIES = 600;
const YEARS = [2021, 2022, 2023, 2024, 2025];
const SECTORS = [
  { name: 'Retail', margin: 0.04, risk: 0.4 },
  { name: 'Manufacturing', margin: 0.07, risk: 0.1 },
  { name: 'Technology', margin: 0.12, risk: -0.2 },
  { name: 'Energy', margin: 0.09, risk: 0.3 },
  { name: 'Healthcare', margin: 0.1, risk: -0.3 },
  { name: 'Construction', margin: 0.05, risk: 0.5 },
];

// mulberry32, the generator the workloads are drawn from too.
export { random };

export function normal(rand: () => number): () => number {
  return () => {
    const u = 1 - rand();
    const v = rand();
    return Math.sqrt(-2 * Math.log(u)) * Math.cos(2 * Math.PI * v);
  };
}

const money = (value: number) => value.toFixed(2);
const ratio = (value: number) => value.toFixed(4);

export function generateStatements(): string {
  const rand = random(SEED);
  const gauss = normal(rand);
  const lines = [
    'company_id,sector,fiscal_year,revenue,total_assets,total_liabilities,current_assets,current_liabilities,cash,retained_earnings,ebit,net_income,interest_expense,working_capital_to_assets,retained_earnings_to_assets,ebit_to_assets,equity_to_liabilities,sales_to_assets,distress_next_year',
  ];
  for (let c = 1; c <= COMPANIES; c++) {
    const sector = SECTORS[Math.floor(rand() * SECTORS.length)];
    let assets = Math.exp(9 + 1.6 * gauss()); // about $8M, from $0.3M to $200M
    let leverage = Math.min(0.95, Math.max(0.1, 0.55 + 0.18 * gauss()));
    let retained = assets * (0.15 + 0.2 * gauss());
    const quality = gauss(); // persistent management quality
    for (const year of YEARS) {
      assets *= Math.exp(0.04 + 0.12 * gauss());
      leverage = Math.min(0.98, Math.max(0.05, leverage + 0.05 * gauss() - 0.02 * quality));
      const liabilities = assets * leverage;
      const revenue = assets * Math.exp(Math.log(0.9) + 0.35 * gauss());
      const margin = sector.margin + 0.05 * quality + 0.06 * gauss();
      const ebit = revenue * margin;
      const interest = liabilities * (0.04 + 0.01 * rand());
      const netIncome = (ebit - interest) * (ebit - interest > 0 ? 0.75 : 1);
      retained += netIncome * 0.6;
      const currentAssets = assets * Math.min(0.9, Math.max(0.05, 0.4 + 0.12 * gauss()));
      const currentLiabilities = liabilities * Math.min(0.9, Math.max(0.05, 0.45 + 0.12 * gauss()));
      const cash = currentAssets * Math.min(0.8, Math.max(0.01, 0.25 + 0.1 * gauss()));
      const equity = assets - liabilities;
      const z =
        (1.2 * (currentAssets - currentLiabilities)) / assets +
        (1.4 * retained) / assets +
        (3.3 * ebit) / assets +
        (0.6 * Math.max(equity, 0)) / liabilities +
        revenue / assets;
      const risk = -2.6 - 2.5 * (z - 1.8) + sector.risk + 0.3 * gauss();
      const distressed = rand() < 1 / (1 + Math.exp(-risk)) ? '1' : '0';
      lines.push(
        [
          `FS-${String(c).padStart(5, '0')}`,
          sector.name,
          year,
          money(revenue),
          money(assets),
          money(liabilities),
          money(currentAssets),
          money(currentLiabilities),
          money(cash),
          money(retained),
          money(ebit),
          money(netIncome),
          money(interest),
          ratio((currentAssets - currentLiabilities) / assets),
          ratio(retained / assets),
          ratio(ebit / assets),
          ratio(equity / liabilities),
          ratio(revenue / assets),
          year === YEARS[YEARS.length - 1] ? '' : distressed,
        ].join(','),
      );
    }
  }
  return `${lines.join('\n')}\n`;
}

if (import.meta.main) {
  const out = process.argv[2] ?? path.join(import.meta.dirname, '..', 'data', 'financial_statements.csv');
  fs.mkdirSync(path.dirname(out), { recursive: true });
  fs.writeFileSync(out, generateStatements());
  process.stdout.write(`wrote ${out}\n`);
}
