// parsePriceTable: overrides of the default price table from config (another region, negotiated
// prices, today's spot prices). Strict like the routing config: an unknown key or a negative price is
// an error naming the field; a key left out keeps its default.

import { describe, isRecord, readDuration, rejectUnknownKeys, type Fail, type Raw } from '../readers.ts';
import type { Target } from '../template.ts';
import { DEFAULT_PRICES, PriceTableError, type HourlyPrice, type PriceTable } from './prices.ts';

const NAME = /^[a-z0-9][a-z0-9-]*$/;

/** The table `base` (the defaults) with what `raw` (an already-parsed JSON or YAML value) changes. */
export function parsePriceTable(
  raw: unknown,
  base: PriceTable = DEFAULT_PRICES,
  prefix = 'prices',
): PriceTable {
  const fail: Fail = (field, detail) => {
    throw new PriceTableError(field, detail);
  };
  const at = (key: string) => `${prefix}.${key}`;
  const table = record(raw, prefix, fail);
  rejectUnknownKeys(
    table,
    ['region', 'cloudRun', 'machineTypes', 'accelerators', 'bootDisk', 'spotPreemptionsPerHour', 'startup'],
    `${prefix}.`,
    fail,
  );
  const prices: PriceTable = structuredClone(base);
  if (table.region !== undefined) {
    if (typeof table.region !== 'string' || !NAME.test(table.region))
      fail(at('region'), `must be a region name like "europe-west4", got ${describe(table.region)}`);
    prices.region = table.region;
  }
  if (table.cloudRun !== undefined) {
    const cloudRun = record(table.cloudRun, at('cloudRun'), fail);
    rejectUnknownKeys(cloudRun, ['vcpuSecond', 'gibSecond', 'gpuSecond'], `${at('cloudRun')}.`, fail);
    for (const key of ['vcpuSecond', 'gibSecond'] as const) {
      if (cloudRun[key] !== undefined)
        prices.cloudRun[key] = price(cloudRun[key], `${at('cloudRun')}.${key}`, fail);
    }
    if (cloudRun.gpuSecond !== undefined) {
      const field = `${at('cloudRun')}.gpuSecond`;
      for (const [type, value] of entries(cloudRun.gpuSecond, field, fail)) {
        prices.cloudRun.gpuSecond[type] = price(value, `${field}.${type}`, fail);
      }
    }
  }
  for (const key of ['machineTypes', 'accelerators'] as const) {
    if (table[key] === undefined) continue;
    for (const [name, value] of entries(table[key], at(key), fail)) {
      prices[key][name] = hourly(value, prices[key][name], `${at(key)}.${name}`, fail);
    }
  }
  if (table.bootDisk !== undefined) {
    const disk = record(table.bootDisk, at('bootDisk'), fail);
    rejectUnknownKeys(disk, ['gib', 'gibMonth'], `${at('bootDisk')}.`, fail);
    for (const key of ['gib', 'gibMonth'] as const) {
      const unit = key === 'gib' ? 'GiB' : 'USD';
      if (disk[key] !== undefined)
        prices.bootDisk[key] = price(disk[key], `${at('bootDisk')}.${key}`, fail, unit);
    }
  }
  if (table.spotPreemptionsPerHour !== undefined) {
    const field = at('spotPreemptionsPerHour');
    prices.spotPreemptionsPerHour = price(table.spotPreemptionsPerHour, field, fail, 'preemptions per hour');
  }
  if (table.startup !== undefined) {
    const startup = record(table.startup, at('startup'), fail);
    rejectUnknownKeys(startup, ['cloud-run-job', 'vm'], `${at('startup')}.`, fail);
    for (const target of ['cloud-run-job', 'vm'] as Target[]) {
      if (startup[target] === undefined) continue;
      const field = `${at('startup')}.${target}`;
      const overhead = record(startup[target], field, fail);
      rejectUnknownKeys(overhead, ['waited', 'billed'], `${field}.`, fail);
      if (overhead.waited !== undefined)
        prices.startup[target].waitedSeconds = readDuration(overhead.waited, `${field}.waited`, fail);
      if (overhead.billed !== undefined)
        prices.startup[target].billedSeconds = readDuration(overhead.billed, `${field}.billed`, fail);
    }
  }
  return prices;
}

/** A machine type or accelerator: both prices for a new one, either for one the table has. */
function hourly(raw: unknown, known: HourlyPrice | undefined, field: string, fail: Fail): HourlyPrice {
  const value = record(raw, field, fail);
  rejectUnknownKeys(value, ['onDemand', 'spot'], `${field}.`, fail);
  if (known === undefined) {
    for (const key of ['onDemand', 'spot']) {
      if (value[key] === undefined)
        fail(`${field}.${key}`, 'is needed: the table has no price for this type to keep');
    }
  }
  return {
    onDemand:
      value.onDemand === undefined ? known!.onDemand : price(value.onDemand, `${field}.onDemand`, fail),
    spot: value.spot === undefined ? known!.spot : price(value.spot, `${field}.spot`, fail),
  };
}

function entries(raw: unknown, field: string, fail: Fail): [string, unknown][] {
  const value = record(raw, field, fail);
  return Object.entries(value).map(([name, item]) => {
    if (!NAME.test(name)) fail(`${field}.${name}`, 'is not a name like "e2-standard-8" or "nvidia-l4"');
    return [name, item];
  });
}

/** A price in USD, or (with `unit`) another amount that can't be negative. */
function price(value: unknown, field: string, fail: Fail, unit = 'USD'): number {
  if (typeof value !== 'number' || !Number.isFinite(value) || value < 0)
    fail(field, `must be a number of at least 0 (${unit}), got ${describe(value)}`);
  return value as number;
}

function record(value: unknown, field: string, fail: Fail): Raw {
  return isRecord(value) ? value : fail(field, `must be an object, got ${describe(value)}`);
}
