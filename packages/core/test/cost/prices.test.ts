import { describe, expect, it } from 'vitest';
import {
  DEFAULT_PRICES,
  parsePriceTable,
  PriceTableError,
  runCost,
  type PriceTable,
  type RunShape,
} from '../../src/index.ts';
import { MACHINE_TYPES } from '../../src/platforms.ts';

const GiB = 1024 ** 3;

/** The defaults without start-up, disk or preemptions, so a case is one multiplication. */
const bare: PriceTable = parsePriceTable({
  bootDisk: { gib: 0 },
  spotPreemptionsPerHour: 0,
  startup: { 'cloud-run-job': { waited: 0, billed: 0 }, vm: { waited: 0, billed: 0 } },
});

const cloudRun = (cpu: number, gib: number, extra: Partial<RunShape> = {}): RunShape => ({
  target: 'cloud-run-job',
  cpu,
  memoryBytes: gib * GiB,
  spot: false,
  ...extra,
});
const vm = (machineType: string, spot: boolean, extra: Partial<RunShape> = {}): RunShape => ({
  target: 'vm',
  cpu: 2,
  memoryBytes: 4 * GiB,
  machineType,
  spot,
  ...extra,
});

describe('runCost on Cloud Run', () => {
  it('rounds the billed time up to the next 100 ms', () => {
    // 2 vCPU x $0.000018 + 4 GiB x $0.000002 = $0.000044 a second; 12.34 s bills as 12.4 s.
    const cost = runCost(bare, cloudRun(2, 4), 12.34);
    expect(cost.billedSeconds).toBe(12.4);
    expect(cost.usd).toBeCloseTo(12.4 * 0.000044, 12);
  });

  it('does not round a time already on a 100 ms step', () => {
    expect(runCost(bare, cloudRun(1, 2), 17.3).billedSeconds).toBe(17.3);
    expect(runCost(bare, cloudRun(1, 2), 0.7).billedSeconds).toBe(0.7);
  });

  it('adds its start-up overhead: billed in part, waited in full', () => {
    // Defaults: 5 s of start-up billed, 15 s waited.
    const cost = runCost(DEFAULT_PRICES, cloudRun(2, 4), 12.34);
    expect(cost.billedSeconds).toBe(17.4);
    expect(cost.waitedSeconds).toBeCloseTo(27.34, 9);
    expect(cost.usd).toBeCloseTo(17.4 * 0.000044, 12);
    expect(cost.detail).toBe(
      'cloud-run-job 2 vCPU, 4 GiB: 12.3 s run + 5 s start-up = 17.4 s billed in 100 ms steps x $0.1584/h = $0.00077',
    );
  });

  it('prices an L4 GPU per second', () => {
    // 4 x 0.000018 + 16 x 0.000002 + 0.0001867 = $0.0002907 a second.
    const cost = runCost(bare, cloudRun(4, 16, { accelerator: { type: 'nvidia-l4', count: 1 } }), 100);
    expect(cost.usd).toBeCloseTo(100 * 0.0002907, 12);
  });

  it('refuses a GPU it has no price for', () => {
    const shape = cloudRun(4, 16, { accelerator: { type: 'nvidia-tesla-a100', count: 1 } });
    expect(() => runCost(bare, shape, 10)).toThrow('Cloud Run has no price for a nvidia-tesla-a100 GPU');
  });
});

describe('runCost on a VM', () => {
  const e2s2 = 0.021811 * 2 + 0.002923 * 8; // $0.067006 an hour

  it('bills a minute at least', () => {
    const cost = runCost(bare, vm('e2-standard-2', false), 30);
    expect(cost.billedSeconds).toBe(60);
    expect(cost.usd).toBeCloseTo((60 * e2s2) / 3600, 12);
  });

  it('bills per second after the first minute, rounding up', () => {
    expect(runCost(bare, vm('e2-standard-2', false), 61).billedSeconds).toBe(61);
    expect(runCost(bare, vm('e2-standard-2', false), 61.2).billedSeconds).toBe(62);
    expect(runCost(bare, vm('e2-standard-2', false), 3600).usd).toBeCloseTo(e2s2, 9);
  });

  it('uses the spot price for spot', () => {
    const spot = 0.009569 * 8 + 0.001282 * 32; // e2-standard-8 spot, $0.117576 an hour
    expect(runCost(bare, vm('e2-standard-8', true), 3600).usd).toBeCloseTo(spot, 9);
    expect(runCost(bare, vm('e2-standard-8', false), 3600).usd).toBeCloseTo(0.021811 * 8 + 0.002923 * 32, 9);
  });

  it('expects spot runs to be repeated after preemptions, more so the longer they are', () => {
    const table = parsePriceTable({ spotPreemptionsPerHour: 0.1 }, bare);
    // Restarting from scratch at a rate of 0.1/h: (e^(0.1 x hours) - 1) / 0.1 hours of uptime;
    // for 24 h that is (e^2.4 - 1) / 0.1 = 100.2 h, 4.176 times the run.
    const hour = runCost(table, vm('e2-standard-8', true), 3600);
    expect(hour.billedSeconds).toBe(Math.ceil(3600 * (Math.expm1(0.1) / 0.1)));
    const day = runCost(table, vm('e2-standard-8', true), 86_400);
    expect(day.billedSeconds).toBe(Math.ceil(3600 * (Math.expm1(2.4) / 0.1)));
    expect(day.billedSeconds / 86_400).toBeGreaterThan(hour.billedSeconds / 3600);
    expect(day.detail).toContain('x4.176 for expected preemptions');
    // A standard VM is not preempted.
    expect(runCost(table, vm('e2-standard-8', false), 86_400).billedSeconds).toBe(86_400);
  });

  it('adds the GPUs a machine type comes with, and attached ones, per GPU-hour', () => {
    const g2 = runCost(
      bare,
      vm('g2-standard-4', false, { accelerator: { type: 'nvidia-l4', count: 1 } }),
      3600,
    );
    expect(g2.usd).toBeCloseTo(0.14679 + 0.56004, 9);
    const a2 = runCost(
      bare,
      vm('a2-highgpu-2g', true, { accelerator: { type: 'nvidia-tesla-a100', count: 2 } }),
      3600,
    );
    expect(a2.usd).toBeCloseTo(0.739477 + 2 * 1.4341, 6);
    const n1 = parsePriceTable({ machineTypes: { 'n1-standard-8': { onDemand: 0.38, spot: 0.08 } } }, bare);
    const t4 = runCost(
      n1,
      vm('n1-standard-8', false, { accelerator: { type: 'nvidia-tesla-t4', count: 2 } }),
      1800,
    );
    expect(t4.usd).toBeCloseTo((0.38 + 2 * 0.35) / 2, 9);
  });

  it('adds the start-up overhead and the boot disk', () => {
    // Defaults: 100 s billed (boot, pull, teardown), 90 s waited; 10 GiB at $0.04 a GiB-month.
    const cost = runCost(DEFAULT_PRICES, vm('e2-standard-2', false), 60);
    expect(cost.billedSeconds).toBe(160);
    expect(cost.waitedSeconds).toBe(150);
    expect(cost.usd).toBeCloseTo((160 * (e2s2 + (10 * 0.04) / 730)) / 3600, 12);
    expect(cost.detail).toBe(
      'vm e2-standard-2 standard at $0.067554/h with its disk: 60 s run + 100 s start-up = 160 s billed ' +
        '(per second, at least 60) = $0.0030',
    );
  });

  it('says what it cannot price', () => {
    expect(() => runCost(bare, vm('c3-standard-88', false), 10)).toThrow(
      'machine type "c3-standard-88" has no price in the table',
    );
    expect(() => runCost(bare, { ...vm('x', false), machineType: undefined }, 10)).toThrow(
      'needs its machineType',
    );
    const gpu = vm('g2-standard-4', false, { accelerator: { type: 'nvidia-h100', count: 1 } });
    expect(() => runCost(bare, gpu, 10)).toThrow('accelerator "nvidia-h100" has no price');
    expect(() => runCost(bare, vm('e2-standard-2', false), -1)).toThrow('seconds must be 0 or more');
  });
});

describe('DEFAULT_PRICES', () => {
  it('prices every machine type the router may pick, and the GPUs they come with', () => {
    for (const machine of MACHINE_TYPES) {
      const price = DEFAULT_PRICES.machineTypes[machine.name];
      expect(price, machine.name).toBeDefined();
      expect(price.spot).toBeLessThan(price.onDemand);
      if (machine.gpu) expect(DEFAULT_PRICES.accelerators[machine.gpu.type], machine.name).toBeDefined();
    }
  });

  it('matches the catalog prices it was derived from', () => {
    // us-central1 rows of the catalog cited in prices.ts: [on-demand, spot] per hour.
    const catalog: Record<string, [number, number]> = {
      'e2-standard-16': [0.53609, 0.23517],
      'n2-standard-64': [3.10778, 1.01606],
      'n2-highmem-48': [3.14434, 1.02778],
      'g2-standard-16': [0.58717, 0.23494],
      'a2-highgpu-1g': [0.73948, 0.36975],
    };
    for (const [name, [onDemand, spot]] of Object.entries(catalog)) {
      expect(DEFAULT_PRICES.machineTypes[name].onDemand).toBeCloseTo(onDemand, 4);
      expect(DEFAULT_PRICES.machineTypes[name].spot).toBeCloseTo(spot, 4);
    }
  });
});

describe('parsePriceTable', () => {
  it('keeps every default a key leaves out', () => {
    expect(parsePriceTable({})).toEqual(DEFAULT_PRICES);
    const table = parsePriceTable({
      region: 'europe-west4',
      cloudRun: { vcpuSecond: 0.00002 },
      machineTypes: { 'e2-standard-8': { spot: 0.05 }, 'n1-standard-4': { onDemand: 0.19, spot: 0.04 } },
      accelerators: { 'nvidia-l4': { onDemand: 0.6 } },
      startup: { vm: { waited: '2m' } },
    });
    expect(table.region).toBe('europe-west4');
    expect(table.cloudRun).toEqual({ ...DEFAULT_PRICES.cloudRun, vcpuSecond: 0.00002 });
    expect(table.machineTypes['e2-standard-8']).toEqual({ onDemand: 0.268024, spot: 0.05 });
    expect(table.machineTypes['n1-standard-4']).toEqual({ onDemand: 0.19, spot: 0.04 });
    expect(table.accelerators['nvidia-l4']).toEqual({ onDemand: 0.6, spot: 0.2231 });
    expect(table.startup.vm).toEqual({ waitedSeconds: 120, billedSeconds: 100 });
    expect(DEFAULT_PRICES.machineTypes['e2-standard-8'].spot).toBe(0.117576); // the defaults are untouched
  });

  it.each<[string, unknown, string, string]>([
    ['not an object', [], 'prices', 'prices: must be an object, got a list'],
    ['unknown key', { machinetypes: {} }, 'prices.machinetypes', 'prices.machinetypes: unknown key'],
    [
      'unknown nested key',
      { cloudRun: { cpuSecond: 1 } },
      'prices.cloudRun.cpuSecond',
      'prices.cloudRun.cpuSecond: unknown key (expected one of vcpuSecond, gibSecond, gpuSecond)',
    ],
    [
      'negative price',
      { machineTypes: { 'e2-standard-8': { spot: -0.1 } } },
      'prices.machineTypes.e2-standard-8.spot',
      'prices.machineTypes.e2-standard-8.spot: must be a number of at least 0 (USD), got -0.1',
    ],
    [
      'price as text',
      { cloudRun: { gibSecond: '0.000002' } },
      'prices.cloudRun.gibSecond',
      'prices.cloudRun.gibSecond: must be a number of at least 0 (USD), got "0.000002"',
    ],
    [
      'new machine type without both prices',
      { machineTypes: { 'c3-standard-8': { spot: 0.1 } } },
      'prices.machineTypes.c3-standard-8.onDemand',
      'is needed: the table has no price for this type to keep',
    ],
    [
      'bad GPU name',
      { cloudRun: { gpuSecond: { 'NVIDIA L4': 0.1 } } },
      'prices.cloudRun.gpuSecond.NVIDIA L4',
      'is not a name like',
    ],
    [
      'negative preemption rate',
      { spotPreemptionsPerHour: -1 },
      'prices.spotPreemptionsPerHour',
      'must be a number of at least 0 (preemptions per hour), got -1',
    ],
    [
      'bad start-up duration',
      { startup: { vm: { waited: 'soon' } } },
      'prices.startup.vm.waited',
      'prices.startup.vm.waited: "soon" is not a duration',
    ],
    [
      'unknown platform',
      { startup: { gke: {} } },
      'prices.startup.gke',
      'unknown key (expected one of cloud-run-job, vm)',
    ],
    ['bad region', { region: 'Iowa' }, 'prices.region', 'must be a region name like "europe-west4"'],
  ])('%s', (_, raw, field, message) => {
    let error: unknown;
    try {
      parsePriceTable(raw);
    } catch (caught) {
      error = caught;
    }
    expect(error).toBeInstanceOf(PriceTableError);
    expect((error as PriceTableError).message).toContain(message);
    expect(error).toMatchObject({ name: 'PriceTableError', code: 'PRICE_TABLE', field });
  });
});
