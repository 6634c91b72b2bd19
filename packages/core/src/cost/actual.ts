// What a job cost, from its attempts' measured run times and the same billing rules the estimate
// used. Preemptions show as attempts of their own, so no expected rework is added; start-up is the
// price table's (boot and pull are not measured apart from the run). Failed attempts cost too.
import type { AttemptRecord, Job } from '../job.ts';
import { CLOUD_RUN_DEFAULTS, machineTypeFor } from '../platforms.ts';
import { formatUsd } from '../format.ts';
import { runCost, type PriceTable } from './prices.ts';

export interface ActualCost {
  usd: number;
  billedSeconds: number;
  /** Per attempt, for people: "attempt 1 vm e2-standard-8 spot: 2541 s run, $0.061". */
  detail: string[];
}

export function actualCost(job: Job, prices: PriceTable): ActualCost | undefined {
  const template = job.template;
  if (template === undefined) return undefined;
  const measured = (job.attempts ?? []).flatMap((record) => {
    const seconds = runSeconds(record);
    return seconds === undefined ? [] : [{ record, seconds }];
  });
  if (measured.length === 0) return undefined;
  const withoutRework = { ...prices, spotPreemptionsPerHour: 0 };
  let usd = 0;
  let billedSeconds = 0;
  const detail: string[] = [];
  for (const { record, seconds } of measured) {
    const cpu = template.cpu ?? CLOUD_RUN_DEFAULTS.cpu;
    const memoryBytes = template.memoryBytes ?? CLOUD_RUN_DEFAULTS.memoryBytes;
    const machineType =
      record.target === 'vm'
        ? (template.machineType ?? machineTypeFor(cpu, memoryBytes, template.accelerator)?.name)
        : undefined;
    const shape = {
      target: record.target,
      cpu,
      memoryBytes,
      machineType,
      spot: record.spot === true,
      accelerator: template.accelerator,
    };
    try {
      const cost = runCost(withoutRework, shape, seconds);
      usd += cost.usd;
      billedSeconds += cost.billedSeconds;
      const where =
        record.target === 'vm' ? `vm ${machineType} ${record.spot ? 'spot' : 'standard'}` : 'cloud-run-job';
      detail.push(`attempt ${record.attempt} ${where}: ${Math.round(seconds)} s run, ${formatUsd(cost.usd)}`);
    } catch (err) {
      detail.push(`attempt ${record.attempt}: not priced (${(err as Error).message})`);
    }
  }
  return { usd, billedSeconds, detail };
}

function runSeconds(record: AttemptRecord): number | undefined {
  const finished = Date.parse(record.finishedAt ?? '');
  const started = Date.parse(record.startedAt ?? record.launchedAt);
  return finished >= started ? (finished - started) / 1000 : undefined;
}
