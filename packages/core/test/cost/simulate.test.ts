import { spawnSync } from 'node:child_process';
import { readFileSync, statSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { DEFAULT_PRICES, PRIOR_LOG_SIGMA, runCost } from '../../src/index.ts';
import {
  formatBatching,
  formatSimulation,
  parseWorkload,
  simulate,
  simulateAll,
  WorkloadError,
  type SimulationResult,
} from '../../src/simulation.ts';

const GiB = 1024 ** 3;
const MiB = 1024 ** 2;
const SHIPPED = fileURLToPath(new URL('../../../../workloads/week.json', import.meta.url));
const GENERATOR = fileURLToPath(new URL('../../../../workloads/generate-workload.ts', import.meta.url));
const README = fileURLToPath(new URL('../../../../README.md', import.meta.url));

const rules = {
  quick: { cpu: 1, memory: '2GiB', spot: true, prior: { base: '5s', perGiB: '0s' } },
  long: { cpu: 8, memory: '32GiB', spot: true, prior: { base: '1h' } },
  big: { cpu: 16, memory: '64GiB' },
  rush: { cpu: 2, memory: '4GiB', spot: true, prior: { base: '40s' } },
};
const small = parseWorkload({
  rules,
  tasks: [
    { id: 'q1', rule: 'quick', arrival: 0, inputBytes: MiB, trueSeconds: 5 },
    { id: 'l1', rule: 'long', arrival: 10, inputBytes: MiB, trueSeconds: 7200 },
    { id: 'b1', rule: 'big', arrival: 20, inputBytes: GiB, trueSeconds: 600 },
    { id: 'r1', rule: 'rush', arrival: 30, inputBytes: MiB, trueSeconds: 40, deadlineSeconds: 100 },
  ],
});

const placed = (result: SimulationResult) =>
  Object.fromEntries(
    result.outcomes.map((o) => [
      o.id,
      o.target === 'vm' ? `vm ${o.machineType} ${o.spot ? 'spot' : 'standard'}` : o.target,
    ]),
  );

describe('simulate', () => {
  it('oracle: Cloud Run for short work and deadlines, spot VMs for long work, a standard VM where spot is not allowed', () => {
    const result = simulate(small, DEFAULT_PRICES, 'oracle');
    expect(placed(result)).toEqual({
      q1: 'cloud-run-job',
      l1: 'vm e2-standard-8 spot',
      b1: 'vm e2-standard-16 standard',
      r1: 'cloud-run-job',
    });
    // Each task costs what runCost says for its true duration where it ran.
    const expected =
      runCost(DEFAULT_PRICES, { target: 'cloud-run-job', cpu: 1, memoryBytes: 2 * GiB, spot: false }, 5).usd +
      runCost(
        DEFAULT_PRICES,
        { target: 'vm', cpu: 8, memoryBytes: 32 * GiB, machineType: 'e2-standard-8', spot: true },
        7200,
      ).usd +
      runCost(
        DEFAULT_PRICES,
        { target: 'vm', cpu: 16, memoryBytes: 64 * GiB, machineType: 'e2-standard-16', spot: false },
        600,
      ).usd +
      runCost(DEFAULT_PRICES, { target: 'cloud-run-job', cpu: 2, memoryBytes: 4 * GiB, spot: false }, 40).usd;
    expect(result.usd).toBeCloseTo(expected, 12);
    expect(result.deadlineMisses).toBe(0);
    // The makespan ends with the long run: 10 s + its expected wait on spot.
    const long = runCost(
      DEFAULT_PRICES,
      { target: 'vm', cpu: 8, memoryBytes: 32 * GiB, machineType: 'e2-standard-8', spot: true },
      7200,
    );
    expect(result.makespanSeconds).toBeCloseTo(10 + long.waitedSeconds, 9);
  });

  it('always-vm misses the deadline a VM boot cannot meet', () => {
    const result = simulate(small, DEFAULT_PRICES, 'always-vm');
    const rush = result.outcomes.find((o) => o.id === 'r1')!;
    expect(rush).toMatchObject({ target: 'vm', spot: true, missedDeadline: true });
    expect(rush.waitedSeconds).toBeCloseTo(90 + 40, 1); // boot and pull, then the run (spot rework is tiny)
    expect(result).toMatchObject({
      deadlineMisses: 1,
      tasksWithDeadlines: 1,
      placements: { cloudRun: 0, vmSpot: 3, vmStandard: 1 },
    });
  });

  it('always-cloud-run falls back to a VM for what Cloud Run cannot run, and counts it', () => {
    const result = simulate(small, DEFAULT_PRICES, 'always-cloud-run');
    expect(placed(result)).toMatchObject({ l1: 'cloud-run-job', b1: 'vm e2-standard-16 standard' });
    expect(result.fallbacks).toBe(1);
    expect(result.outcomes.find((o) => o.id === 'b1')?.fellBack).toBe(true);
  });

  it('size-threshold sends inputs from the threshold on to a VM', () => {
    const result = simulate(small, DEFAULT_PRICES, 'size-threshold', { sizeThresholdBytes: 512 * MiB });
    expect(placed(result)).toEqual({
      q1: 'cloud-run-job',
      l1: 'cloud-run-job',
      b1: 'vm e2-standard-16 standard',
      r1: 'cloud-run-job',
    });
    expect(result.fallbacks).toBe(0);
  });

  it('cost: learns only from runs that finished before each arrival', () => {
    const workload = parseWorkload({
      rules: { learn: { cpu: 1, memory: '2GiB', spot: true, prior: { base: '5s', perGiB: '0s' } } },
      tasks: [
        ...[0, 1, 2, 3].map((arrival) => ({
          id: `t${arrival}`,
          rule: 'learn',
          arrival,
          inputBytes: MiB,
          trueSeconds: 300,
        })),
        { id: 'early', rule: 'learn', arrival: 100, inputBytes: MiB, trueSeconds: 300 },
        { id: 'late', rule: 'learn', arrival: 5000, inputBytes: MiB, trueSeconds: 300 },
      ],
    });
    const result = simulate(workload, DEFAULT_PRICES, 'cost');
    const estimate = (id: string) => result.outcomes.find((o) => o.id === id)?.estimatedSeconds;
    // At 100 s the first four are still running (the prior says 5 s: they went to Cloud Run). The
    // estimate is the prior's mean: its line, e^(σ²/2) up for its spread.
    expect(estimate('early')).toBeCloseTo(5 * Math.exp(PRIOR_LOG_SIGMA ** 2 / 2), 6);
    expect(result.outcomes.find((o) => o.id === 't0')?.target).toBe('cloud-run-job');
    // By 5000 s five runs of 300 s have finished; the medians now follow them, and five equal runs
    // leave only the prior's one pseudo-residual of spread: σ² = 0.5² / 6.
    expect(estimate('late')).toBeCloseTo(300 * Math.exp(0.25 / 6 / 2), 6);
    expect(result.outcomes.find((o) => o.id === 'late')?.target).toBe('vm');
  });
});

describe('formatSimulation', () => {
  it('prints an aligned table with the cost relative to the oracle', () => {
    const table = formatSimulation(simulateAll(small, DEFAULT_PRICES));
    const lines = table.split('\n');
    expect(lines).toHaveLength(7);
    // Under the table, the cost policy's share of the oracle's saving; here always-vm is cheaper than
    // the oracle (it misses the deadline the oracle meets), so there is none to share.
    expect(lines.pop()).toMatch(
      /^cost: the cheapest fixed policy, always-vm, costs no more than the oracle \(\$\d+\.\d\d, \$\d+\.\d\d\), so there is no saving to share; deadline misses \d+, the oracle's \d+ \(of \d+\)$/,
    );
    expect(lines[0]).toMatch(
      /^policy +cost \(USD\) +vs oracle +makespan +deadline misses +cloud-run +vm spot +vm standard +fallbacks +killed$/,
    );
    expect(new Set(lines.map((line) => line.length)).size).toBe(1);
    expect(lines[5]).toMatch(/^oracle +\d+\.\d\d +\+0\.0% /);
    expect(lines[2]).toMatch(/^always-vm .* 1 of 1 /);
  });
});

describe('the shipped workload', () => {
  const workload = parseWorkload(JSON.parse(readFileSync(SHIPPED, 'utf8')));
  // Simulated once for the tests below (a few seconds: the cost policy refits as runs finish).
  const results = simulateAll(workload, DEFAULT_PRICES);
  const by = Object.fromEntries(results.map((result) => [result.policy, result]));
  const fixed = [by['always-cloud-run'], by['always-vm'], by['size-threshold']];

  it('is a week of varied work: thousands of short tasks spot may not take, deadlines only Cloud Run meets, tasks beyond its limits', () => {
    expect(statSync(SHIPPED).size).toBeLessThan(2 * MiB);
    const arrivals = workload.tasks.map((task) => task.arrival);
    expect(Math.max(...arrivals) - Math.min(...arrivals)).toBeGreaterThan(6 * 86_400);
    const shortNotSpot = workload.tasks.filter(
      (task) => !workload.rules[task.rule].spot && task.trueSeconds <= 60,
    );
    expect(shortNotSpot.length).toBeGreaterThan(workload.tasks.length / 2);
    expect(shortNotSpot.length).toBeGreaterThanOrEqual(2000);
    expect(workload.tasks.filter((task) => task.trueSeconds >= 3600).length).toBeGreaterThan(0);
    expect(by['always-vm'].deadlineMisses).toBeGreaterThan(0);
    expect(by['always-cloud-run'].deadlineMisses).toBe(0);
    expect(by['always-cloud-run'].fallbacks).toBeGreaterThan(0);
  });

  it('costs, under the cost policy, within 5% of the oracle and below every fixed policy, with no more deadline misses than any of them', () => {
    const cost = by.cost;
    expect(cost.usd).toBeLessThanOrEqual(by.oracle.usd * 1.05);
    // Hindsight can't lose.
    expect(by.oracle.usd).toBeLessThanOrEqual(cost.usd);
    for (const result of fixed) {
      expect(cost.usd, result.policy).toBeLessThan(result.usd);
      expect(cost.deadlineMisses, result.policy).toBeLessThanOrEqual(result.deadlineMisses);
    }
    // Of what hindsight saves over the best fixed policy, the cost policy saves at least 90%.
    const best = Math.min(...fixed.map((result) => result.usd));
    expect(best - cost.usd).toBeGreaterThanOrEqual(0.9 * (best - by.oracle.usd));
  });

  it('holds with the Cloud Run job as terraform defines it (2 vCPU, 4 GiB, 1 h): the cost policy at the oracle, nothing killed', () => {
    const definition = { cpu: 2, memoryBytes: 4 * GiB, timeoutSeconds: 3600 };
    const defined = Object.fromEntries(
      simulateAll(workload, DEFAULT_PRICES, { cloudRunJob: definition }).map((r) => [r.policy, r]),
    );
    expect(defined.cost.usd).toBeLessThanOrEqual(defined.oracle.usd * 1.01);
    expect(defined.cost.deadlineMisses).toBeLessThanOrEqual(defined.oracle.deadlineMisses);
    for (const result of Object.values(defined)) expect(result.killed, result.policy).toBe(0);
    // One shape for every Cloud Run task costs more than each task's own, even in hindsight...
    expect(defined.oracle.usd).toBeGreaterThan(by.oracle.usd);
    // ...and the GPU team runs on g2 VMs: the job has no GPU.
    const gpuRules = Object.keys(workload.rules).filter((name) => workload.rules[name].accelerator);
    const gpuOnCloudRun = defined.cost.outcomes.filter(
      (o) => gpuRules.includes(o.rule) && o.target === 'cloud-run-job',
    );
    expect(gpuOnCloudRun).toEqual([]);
  });

  it('costs, on the CPU teams, at least 25% below every fixed policy', () => {
    // The GPU team's work costs about the same under every policy that can place it well (a standard
    // g2 VM for all but its shortest runs), so over the whole week it narrows the gap to always-vm;
    // without it, the week is the one the bound was stated for.
    const cpuOnly = (result: SimulationResult) =>
      result.outcomes
        .filter((o) => workload.rules[o.rule].accelerator === undefined)
        .reduce((sum, o) => sum + o.usd, 0);
    for (const result of fixed)
      expect(cpuOnly(by.cost), result.policy).toBeLessThanOrEqual(cpuOnly(result) * 0.75);
  });

  it("prices its L4 jobs with the GPU: Cloud Run's L4 per second, g2 VMs, and none beyond 1 h on Cloud Run", () => {
    const gpuTasks = workload.tasks.filter((task) => workload.rules[task.rule].accelerator !== undefined);
    const byId = new Map(gpuTasks.map((task) => [task.id, task]));
    expect(gpuTasks.some((task) => task.trueSeconds > 3600)).toBe(true);
    const l4 = { type: 'nvidia-l4', count: 1 };
    for (const result of results) {
      const outcomes = result.outcomes.filter((o) => byId.has(o.id));
      expect(outcomes).toHaveLength(gpuTasks.length);
      for (const o of outcomes) {
        const seconds = byId.get(o.id)!.trueSeconds;
        if (o.target === 'vm') {
          expect(o.machineType, `${result.policy} ${o.id}`).toBe('g2-standard-4');
          continue;
        }
        expect(seconds, `${result.policy} ${o.id}`).toBeLessThanOrEqual(3600);
        const shape = { target: 'cloud-run-job' as const, cpu: 4, memoryBytes: 16 * GiB, spot: false };
        expect(o.usd).toBeCloseTo(runCost(DEFAULT_PRICES, { ...shape, accelerator: l4 }, seconds).usd, 12);
        expect(o.usd).toBeGreaterThan(runCost(DEFAULT_PRICES, shape, seconds).usd);
      }
    }
    // The cost policy uses both: Cloud Run's L4 for the short runs, a g2 VM for the long ones.
    const targets = new Set(by.cost.outcomes.filter((o) => byId.has(o.id)).map((o) => o.target));
    expect(targets).toEqual(new Set(['cloud-run-job', 'vm']));
  });

  it('beats each fixed policy where its platform is the dearer one: Cloud Run on long runs, VMs on short ones', () => {
    const costOf = new Map(by.cost.outcomes.map((o) => [o.id, o]));
    // What a fixed policy paid beyond the cost policy, by where the cost policy ran the task.
    const excess = (result: SimulationResult) => {
      const split = { cloudRun: 0, vm: 0 };
      for (const outcome of result.outcomes) {
        const chosen = costOf.get(outcome.id)!;
        split[chosen.target === 'vm' ? 'vm' : 'cloudRun'] += outcome.usd - chosen.usd;
      }
      return split;
    };
    // Always-vm loses mostly on what the cost policy keeps on Cloud Run (a VM's billed boot and
    // minute on short work, standard VMs where spot is not allowed)...
    const vm = excess(by['always-vm']);
    expect(vm.cloudRun).toBeGreaterThan(vm.vm);
    // ...and Cloud Run on what it sends to a VM (hours at several times a spot VM's price).
    for (const policy of ['always-cloud-run', 'size-threshold'] as const) {
      const split = excess(by[policy]);
      expect(split.vm, policy).toBeGreaterThan(split.cloudRun);
    }
  });

  it('is what the generator writes, and the README shows its simulation', () => {
    const run = spawnSync(process.execPath, [GENERATOR, '--check'], { encoding: 'utf8' });
    expect(run.stderr).toBe('');
    expect(run.status).toBe(0);
    const table = formatSimulation(results);
    const batching = formatBatching(results, simulateAll(workload, DEFAULT_PRICES, { batching: false }));
    expect(run.stdout).toContain(`${table}\n\n${batching}`);
    const readme = readFileSync(README, 'utf8');
    expect(readme).toContain(table);
    expect(readme).toContain(batching);
  });
});

describe('parseWorkload', () => {
  const task = { id: 't', rule: 'quick', arrival: 0, inputBytes: 1, trueSeconds: 1 };
  it.each<[string, unknown, string, string]>([
    ['not an object', 'tasks', 'workload', 'workload: must be an object, got "tasks"'],
    ['unknown key', { rules, tasks: [task], seed: 1 }, 'seed', 'seed: unknown key'],
    ['no tasks', { rules, tasks: [] }, 'tasks', 'tasks: must be a non-empty list'],
    [
      'rule without cpu',
      { rules: { quick: { memory: '1GiB' } }, tasks: [task] },
      'rules.quick.cpu',
      'must be a number above zero, got nothing',
    ],
    [
      'bad memory',
      { rules: { quick: { cpu: 1, memory: 'lots' } }, tasks: [task] },
      'rules.quick.memory',
      '"lots" is not a size',
    ],
    [
      'bad prior',
      { rules: { quick: { cpu: 1, memory: '1GiB', prior: { base: 'soon' } } }, tasks: [task] },
      'rules.quick.prior.base',
      'is not a duration',
    ],
    [
      'unknown rule key',
      { rules: { quick: { cpu: 1, memory: '1GiB', gpu: 1 } }, tasks: [task] },
      'rules.quick.gpu',
      'unknown key',
    ],
    [
      'unknown rule',
      { rules, tasks: [{ ...task, rule: 'slow' }] },
      'tasks[0].rule',
      'must name one of the rules (quick, long, big, rush), got "slow"',
    ],
    [
      'negative arrival',
      { rules, tasks: [{ ...task, arrival: -1 }] },
      'tasks[0].arrival',
      'must be a number of at least 0, got -1',
    ],
    [
      'fractional bytes',
      { rules, tasks: [{ ...task, inputBytes: 1.5 }] },
      'tasks[0].inputBytes',
      'must be a whole number of bytes',
    ],
    [
      'zero duration',
      { rules, tasks: [{ ...task, trueSeconds: 0 }] },
      'tasks[0].trueSeconds',
      'must be a number above zero, got 0',
    ],
    [
      'bad deadline',
      { rules, tasks: [{ ...task, deadlineSeconds: '2m' }] },
      'tasks[0].deadlineSeconds',
      'must be a number above zero',
    ],
    ['duplicate id', { rules, tasks: [task, task] }, 'tasks[1].id', '"t" is already the id of another task'],
    ['unknown task key', { rules, tasks: [{ ...task, gpu: 1 }] }, 'tasks[0].gpu', 'unknown key'],
    [
      'accelerator not an object',
      { rules: { quick: { cpu: 1, memory: '1GiB', accelerator: 'nvidia-l4' } }, tasks: [task] },
      'rules.quick.accelerator',
      'must be an object like {"type": "nvidia-l4", "count": 1}, got "nvidia-l4"',
    ],
    [
      'accelerator without a type',
      { rules: { quick: { cpu: 1, memory: '1GiB', accelerator: { count: 1 } } }, tasks: [task] },
      'rules.quick.accelerator.type',
      'must be a GPU type like "nvidia-l4", got nothing',
    ],
    [
      'accelerator type not a name',
      { rules, tasks: [{ ...task, accelerator: { type: 'NVIDIA L4' } }] },
      'tasks[0].accelerator.type',
      'must be a GPU type like "nvidia-l4", got "NVIDIA L4"',
    ],
    [
      'accelerator count',
      { rules, tasks: [{ ...task, accelerator: { type: 'nvidia-l4', count: 0 } }] },
      'tasks[0].accelerator.count',
      'must be a whole number of at least 1, got 0',
    ],
    [
      'accelerator typo',
      { rules, tasks: [{ ...task, accelerator: { type: 'nvidia-l4', cnt: 1 } }] },
      'tasks[0].accelerator.cnt',
      'unknown key (expected one of type, count)',
    ],
  ])('%s', (_, raw, field, message) => {
    let error: unknown;
    try {
      parseWorkload(raw);
    } catch (caught) {
      error = caught;
    }
    expect(error).toBeInstanceOf(WorkloadError);
    expect((error as WorkloadError).message).toContain(message);
    expect(error).toMatchObject({ code: 'WORKLOAD', field });
  });

  it("reads a rule's accelerator (one GPU when the count is left out) and a task's override", () => {
    const parsed = parseWorkload({
      rules: { ...rules, embed: { cpu: 4, memory: '16GiB', accelerator: { type: 'nvidia-l4' } } },
      tasks: [
        { ...task, rule: 'embed' },
        { ...task, id: 'u', rule: 'embed', accelerator: { type: 'nvidia-l4', count: 2 } },
      ],
    });
    expect(parsed.rules.embed.accelerator).toEqual({ type: 'nvidia-l4', count: 1 });
    expect(parsed.rules.quick.accelerator).toBeUndefined();
    expect(parsed.tasks[0]).toEqual({ ...task, rule: 'embed' });
    expect(parsed.tasks[1].accelerator).toEqual({ type: 'nvidia-l4', count: 2 });
  });

  it('reads a task overriding its rule shape', () => {
    const parsed = parseWorkload({
      rules,
      tasks: [{ ...task, cpu: 4, memory: '8GiB', deadlineSeconds: 60 }],
    });
    expect(parsed.tasks[0]).toEqual({ ...task, cpu: 4, memoryBytes: 8 * GiB, deadlineSeconds: 60 });
    expect(parsed.rules.big).toEqual({
      cpu: 16,
      memoryBytes: 64 * GiB,
      spot: false,
      prior: { baseSeconds: 30, secondsPerGiB: 60 },
    });
  });
});

describe('batching', () => {
  // 120 small files in three bursts of 40, each within 10 s of the quarter hour, as the week's
  // ingest sites export; a batch takes up to 50 files for up to 30 s.
  const raw = {
    rules: {
      ingest: {
        cpu: 1,
        memory: '1GiB',
        prior: { base: '5s', perGiB: '0s' },
        batch: { maxFiles: 50, maxWait: '30s', maxBytes: '1GiB' },
      },
    },
    tasks: Array.from({ length: 120 }, (_, i) => ({
      id: `f${i}`,
      rule: 'ingest',
      arrival: Math.floor(i / 40) * 900 + (i % 40) / 4,
      inputBytes: MiB,
      trueSeconds: 5,
      deadlineSeconds: 300,
    })),
  };
  const workload = parseWorkload(raw);

  it('gathers the bursts into one execution each; each file waits at most maxWait for its batch', () => {
    const batched = simulate(workload, DEFAULT_PRICES, 'always-cloud-run');
    const alone = simulate(workload, DEFAULT_PRICES, 'always-cloud-run', { batching: false });
    expect(batched.cloudRunExecutions).toBe(3);
    expect(alone.cloudRunExecutions).toBe(120);
    // Each task is billed as its own instance: the same money, later results.
    expect(batched.usd).toBeCloseTo(alone.usd, 12);
    for (const outcome of batched.outcomes) {
      const file = workload.tasks.find((task) => task.id === outcome.id)!;
      const gathered = Math.floor(file.arrival / 900) * 900 + 30 - file.arrival;
      expect(outcome.gatheredSeconds ?? 0, outcome.id).toBeCloseTo(gathered, 9);
      expect(outcome.waitedSeconds).toBeCloseTo(
        gathered + DEFAULT_PRICES.startup['cloud-run-job'].waitedSeconds + 5,
        9,
      );
    }
    expect(alone.outcomes.every((outcome) => outcome.gatheredSeconds === undefined)).toBe(true);
    expect(batched.deadlineMisses).toBe(0);
  });

  it('closes a batch at maxFiles without waiting', () => {
    const full = parseWorkload({
      ...raw,
      rules: { ingest: { ...raw.rules.ingest, batch: { maxFiles: 40, maxWait: '30s' } } },
    });
    const result = simulate(full, DEFAULT_PRICES, 'always-cloud-run');
    expect(result.cloudRunExecutions).toBe(3);
    // The 40th file of a burst arrives 9.75 s in and closes its batch: the first waits 9.75 s.
    expect(result.outcomes[0].gatheredSeconds).toBe(9.75);
    expect(result.outcomes[39].gatheredSeconds).toBeUndefined();
  });

  it('does not gather what a policy sends to a VM', () => {
    const result = simulate(workload, DEFAULT_PRICES, 'always-vm');
    expect(result.cloudRunExecutions).toBe(0);
    expect(result.outcomes.every((outcome) => outcome.gatheredSeconds === undefined)).toBe(true);
  });

  it("judges a batched file's deadline with its batch's whole wait: the cost policy keeps it on Cloud Run in time", () => {
    const tight = parseWorkload({
      ...raw,
      tasks: raw.tasks.map((task) => ({ ...task, deadlineSeconds: 60 })),
    });
    for (const policy of ['cost', 'oracle'] as const) {
      const result = simulate(tight, DEFAULT_PRICES, policy);
      expect(result.placements.cloudRun, policy).toBe(120);
      expect(result.deadlineMisses, policy).toBe(0);
    }
  });

  it('is refused with the field named when its batch is wrong', () => {
    expect(() =>
      parseWorkload({
        ...raw,
        rules: { ingest: { ...raw.rules.ingest, batch: { maxFiles: 1, maxWait: '30s' } } },
      }),
    ).toThrow(/^rules\.ingest\.batch\.maxFiles: must be a whole number from 2 to 10000/);
  });
});
