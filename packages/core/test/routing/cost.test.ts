// The router's cost mode (src/routing/cost.ts): where a cost rule's job runs, and the estimate it carries.
import { describe, expect, it } from 'vitest';
import { parsePriceTable } from '../../src/cost/price-config.ts';
import { exactDuration, normalQuantile, PRIOR_LOG_SIGMA } from '../../src/cost/estimator.ts';
import { DEFAULT_PRICES, runCost, type RunShape } from '../../src/cost/prices.ts';
import { formatSeconds, formatUsd } from '../../src/format.ts';
import { route } from '../../src/routing/route.ts';
import type { Rule } from '../../src/routing/types.ts';
import { config, GiB, launched, MiB, object } from './support.ts';

describe('route: cost mode', () => {
  const costRule = (job: Record<string, unknown>, fields: Record<string, unknown> = {}) =>
    config({ name: 'work', mode: 'cost', target: ['cloud-run-job', 'vm'], job, ...fields });
  const input = object('in/data.csv', { size: 10 * MiB });
  const vmShape = (machineType: string, spot: boolean, cpu: number, gib: number): RunShape => ({
    target: 'vm',
    cpu,
    memoryBytes: gib * GiB,
    machineType,
    spot,
  });
  const costOf = (shape: RunShape, seconds: number) => runCost(DEFAULT_PRICES, shape, seconds);
  // A prior is a distribution: its line the median, lognormal with σ PRIOR_LOG_SIGMA around it.
  const MEAN = Math.exp(PRIOR_LOG_SIGMA ** 2 / 2);
  const P90 = Math.exp(normalQuantile(0.9) * PRIOR_LOG_SIGMA);
  /** What a reason says of a place for a prior of `line` seconds: expected wait, p90 wait, expected cost. */
  const said = (shape: RunShape, line: number) => {
    const cost = costOf(shape, line * MEAN);
    const p90 = formatSeconds(costOf(shape, line * P90).waitedSeconds);
    return `est. ${formatSeconds(cost.waitedSeconds)} (p90 ${p90}), ${formatUsd(cost.usd)}`;
  };

  it('runs short work on Cloud Run, and says what each place would cost', () => {
    const rules = costRule({ cpu: 1, memory: '2GiB', spot: true }, { prior: { base: '5s', perGiB: '0s' } });
    const decision = launched(route({ object: input, declared: {} }, rules));
    expect(decision.target).toBe('cloud-run-job');
    expect(decision.job).toMatchObject({ cpu: 1, memoryBytes: 2 * GiB });
    const cloudRun: RunShape = { target: 'cloud-run-job', cpu: 1, memoryBytes: 2 * GiB, spot: false };
    expect(decision.reason).toBe(
      'rule "work" matched (no conditions), by cost: ' +
        `cloud-run-job 1 vCPU, 2 GiB: ${said(cloudRun, 5)}; ` +
        `vm e2-standard-2 spot: ${said(vmShape('e2-standard-2', true, 1, 2), 5)}; ` +
        `vm e2-standard-2 standard: ${said(vmShape('e2-standard-2', false, 1, 2), 5)}; ` +
        `run est. median 5 s, mean ${formatSeconds(5 * MEAN)}, p90 ${formatSeconds(5 * P90)} ` +
        '(prior: no history yet, 5 s + 0 s/GiB)',
    );
    expect(decision.estimate).toMatchObject({
      target: 'cloud-run-job',
      seconds: costOf(cloudRun, 5 * MEAN).waitedSeconds,
      usd: costOf(cloudRun, 5 * MEAN).usd,
      runSeconds: 5 * MEAN,
      runMedianSeconds: 5,
      runQuantileSeconds: 5 * P90,
      quantile: 0.9,
      basis: 'prior: no history yet, 5 s + 0 s/GiB',
    });
    expect(decision.estimate?.options.map((option) => [option.target, option.spot, option.feasible])).toEqual(
      [
        ['cloud-run-job', undefined, true],
        ['vm', true, true],
        ['vm', false, true],
      ],
    );
  });

  it('runs long work on a spot VM of the cheapest machine type that fits', () => {
    const rules = costRule({ cpu: 8, memory: '32GiB', spot: true }, { prior: { base: '40m', perGiB: '0s' } });
    const decision = launched(route({ object: input, declared: {} }, rules));
    expect(decision).toMatchObject({
      target: 'vm',
      job: { machineType: 'e2-standard-8', spot: true, cpu: 8 },
    });
    const spot = costOf(vmShape('e2-standard-8', true, 8, 32), 2400 * MEAN);
    expect(decision.estimate).toMatchObject({ machineType: 'e2-standard-8', spot: true, usd: spot.usd });
    expect(decision.reason).toMatch(
      /^rule "work" matched \(no conditions\), by cost: vm e2-standard-8 spot: est\. 47m \d+s \(p90 1h \d+m \d+s\), \$0\.\d+; vm e2-standard-8 standard: /,
    );
    expect(decision.reason).toContain(
      `cloud-run-job 8 vCPU, 32 GiB: ${said({ target: 'cloud-run-job', cpu: 8, memoryBytes: 32 * GiB, spot: false }, 2400)}`,
    );
  });

  it('uses a standard VM when the rule does not allow spot', () => {
    const decision = launched(
      route({ declared: {} }, costRule({ cpu: 8, memory: '32GiB' }, { prior: { base: '2h' } })),
    );
    expect(decision.job).toMatchObject({ machineType: 'e2-standard-8', spot: false });
    expect(decision.estimate?.options.some((option) => option.spot === true)).toBe(false);
  });

  it('meets the deadline even when a VM would be cheaper', () => {
    const job = { cpu: 2, memory: '4GiB', spot: true };
    const prior = { base: '2m', perGiB: '0s' };
    // Without a deadline, 2 minutes of work is cheaper on a spot VM...
    expect(launched(route({ declared: {} }, costRule(job, { prior }))).target).toBe('vm');
    // ...but at p90 (3m 48s of run) its 90 s of boot and image pull miss 5m; Cloud Run's 15 s start
    // does not.
    const decision = launched(route({ declared: {} }, costRule(job, { prior, deadline: '5m' })));
    expect(decision.target).toBe('cloud-run-job');
    expect(decision.estimate?.options.find((o) => o.spot === true)).toMatchObject({
      feasible: false,
      why: 'misses the 5m deadline at p90',
      seconds: costOf(vmShape('e2-standard-2', true, 2, 4), 120 * MEAN).waitedSeconds,
    });
    expect(decision.reason).toContain(
      `vm e2-standard-2 spot: ${said(vmShape('e2-standard-2', true, 2, 4), 120)}, misses the 5m deadline at p90`,
    );
    // The median alone fits 5m on the VM: judged at p50, the VM is cheaper and "meets" it.
    const atMedian = { prior, deadline: '5m', deadlineQuantile: 0.5 };
    expect(launched(route({ declared: {} }, costRule(job, atMedian))).target).toBe('vm');
  });

  it('takes the fastest place when none meets the deadline', () => {
    const rules = costRule(
      { cpu: 2, memory: '4GiB', spot: true },
      { prior: { base: '1h' }, deadline: '10m' },
    );
    const decision = launched(route({ declared: {} }, rules));
    expect(decision.target).toBe('cloud-run-job');
    expect(decision.reason).toContain(
      `by cost: none meets the 10m deadline, so the fastest: cloud-run-job 2 vCPU, 4 GiB: ${said({ target: 'cloud-run-job', cpu: 2, memoryBytes: 4 * GiB, spot: false }, 3600)}`,
    );
  });

  it('respects the Cloud Run limits', () => {
    const rules = costRule({ cpu: 16, memory: '32GiB', spot: true }, { prior: { base: '5s' } });
    const decision = launched(route({ declared: {} }, rules));
    expect(decision.job.machineType).toBe('e2-standard-16');
    expect(decision.estimate?.options[0]).toEqual({
      target: 'cloud-run-job',
      feasible: false,
      why: 'needs 16 vCPU (Cloud Run Jobs allow 8)',
    });
    expect(decision.reason).toContain('cloud-run-job: needs 16 vCPU (Cloud Run Jobs allow 8)');
    const gpu = launched(
      route(
        { declared: { gpu: { type: 'nvidia-l4', count: 1 } } },
        costRule({ spot: true }, { prior: { base: '2h' } }),
      ),
    );
    expect(gpu.job).toMatchObject({
      machineType: 'g2-standard-4',
      accelerator: { type: 'nvidia-l4', count: 1 },
    });
    // The expected run (the prior's 2h, a mean of 2h 16m) is over Cloud Run's hour with a GPU.
    expect(gpu.reason).toMatch(/cloud-run-job: needs 2h \d+m \d+s with a GPU \(Cloud Run Jobs allow 1h\);/);
    // An expected 45 minutes fits the hour, but the run's p99 (2h 8m at the prior's σ) does not:
    // killed at the hour, the job would fail, so a g2 VM runs it.
    const likelyLong = launched(
      route(
        { declared: { gpu: { type: 'nvidia-l4', count: 1 } } },
        costRule({ spot: true }, { prior: { base: '40m' } }),
      ),
    );
    expect(likelyLong.job).toMatchObject({ machineType: 'g2-standard-4' });
    expect(likelyLong.reason).toMatch(
      /cloud-run-job: needs 2h \d+m( \d+s)? with a GPU \(Cloud Run Jobs allow 1h\) at p99 of the run;/,
    );
    // Where the p99 fits too (a prior of 15 minutes: p99 48m), Cloud Run's L4 is a candidate.
    const short = launched(
      route(
        { declared: { gpu: { type: 'nvidia-l4', count: 1 } } },
        costRule({ spot: true }, { prior: { base: '15m' } }),
      ),
    );
    expect(short.estimate!.options.find((o) => o.target === 'cloud-run-job')).toMatchObject({
      feasible: true,
    });
  });

  it('sends to a VM what no listed target can run, as fixed mode does', () => {
    const rules = config({ name: 'run', mode: 'cost', target: 'cloud-run-job', job: { cpu: 16 } });
    const decision = launched(route({ declared: {} }, rules));
    expect(decision).toMatchObject({ target: 'vm', job: { machineType: 'e2-standard-16', spot: false } });
    expect(decision.reason).toContain(
      'by cost: no listed target can run it, so a VM; vm e2-standard-16 standard: est.',
    );
  });

  it("uses the caller's estimate and prices, and a declared duration over both", () => {
    const calls: [string, number | undefined][] = [];
    const basis = 'history: 23 runs + prior as 3, Theil–Sen, 41 s + 12 s/GiB';
    const context = {
      prices: DEFAULT_PRICES,
      estimate: (rule: Rule, inputBytes: number | undefined) => {
        calls.push([rule.name, inputBytes]);
        return exactDuration(7200, basis);
      },
    };
    const rules = costRule({ cpu: 2, memory: '4GiB', spot: true });
    const decision = launched(route({ object: input, declared: {} }, rules, context));
    expect(calls).toEqual([['work', 10 * MiB]]);
    expect(decision).toMatchObject({ target: 'vm', estimate: { runSeconds: 7200, basis } });
    expect(decision.reason).toContain(`run est. 2h (${basis})`);
    const declared = launched(route({ object: input, declared: { expectedSeconds: 10 } }, rules, context));
    expect(calls).toHaveLength(1);
    expect(declared).toMatchObject({
      target: 'cloud-run-job',
      estimate: { runSeconds: 10, basis: 'declared: 10s' },
    });
    // Prices from the context: with Cloud Run free, even two hours go there.
    const free = { ...context, prices: parsePriceTable({ cloudRun: { vcpuSecond: 0, gibSecond: 0 } }) };
    expect(launched(route({ object: input, declared: {} }, rules, free)).target).toBe('cloud-run-job');
  });

  it('adds an estimate to a fixed rule only when given a context', () => {
    const rules = config({
      name: 'csv',
      target: 'cloud-run-job',
      job: { cpu: 2, memory: '4GiB' },
      prior: { base: '1m' },
    });
    const plain = launched(route({ object: input, declared: {} }, rules));
    expect(plain).not.toHaveProperty('estimate');
    const priced = launched(route({ object: input, declared: {} }, rules, { prices: DEFAULT_PRICES }));
    expect({ ...priced, estimate: undefined }).toEqual({ ...plain, estimate: undefined });
    expect(priced.estimate).toMatchObject({
      target: 'cloud-run-job',
      usd: costOf(
        { target: 'cloud-run-job', cpu: 2, memoryBytes: 4 * GiB, spot: false },
        (60 + 60 * (10 / 1024)) * MEAN,
      ).usd,
      basis: 'prior: no history yet, 60 s + 60 s/GiB',
    });
    // The other places, for comparison: a VM, spot and standard.
    expect(priced.estimate?.options).toHaveLength(3);
    // A machine type the price table lacks leaves the decision without an estimate.
    const custom = config({ name: 'big', target: 'vm', job: { machineType: 'custom-96-614400' } });
    expect(launched(route({ declared: {} }, custom, { prices: DEFAULT_PRICES }))).not.toHaveProperty(
      'estimate',
    );
  });
});
