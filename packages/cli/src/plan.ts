// Dry runs: `plan` asks the pipeline where files (or objects already uploaded) would run and what
// each place would cost, without making jobs; `simulate` replays a workload file under every routing
// policy on this machine, with no pipeline at all.
import fs from 'node:fs';
import path from 'node:path';
import {
  CloudRunJobDefinitionError,
  DEFAULT_PRICES,
  formatSeconds,
  formatUsd,
  parseBytes,
  parseCloudRunJobDefinition,
  parseRoutingConfig,
  type CloudRunJobField,
  type CloudRunJobShape,
  type CostEstimate,
  type Placement,
} from '@pipeline/core';
import { formatBatching, formatSimulation, parseWorkload, simulateAll } from '@pipeline/core/simulation';
import { Api } from './api.ts';
import { keyValues, parse } from './args.ts';
import { COMMANDS } from './commands.ts';
import { Failure, say, UsageError, type Io } from './errors.ts';
import { printable, table } from './format.ts';

export async function planCommand(args: string[], env: NodeJS.ProcessEnv, io: Io): Promise<number> {
  const { values, positionals } = parse(COMMANDS.plan, args);
  const metadata = keyValues('plan', 'meta', values.meta);
  if (values.runtime !== undefined) metadata['pipeline-runtime'] = values.runtime;
  // A file's content type is named as the local store names it (by its extension).
  const { contentTypeOf } = await import('@pipeline/dispatcher/local/folder-blob-store.ts');
  // Every file is read before the first request: one that is not there is a wrong command line.
  const bodies = positionals.map((input) =>
    input.startsWith('gs://') ? { inputUri: input } : { file: describeFile(input, metadata, contentTypeOf) },
  );
  const api = new Api(values.url, env, 'plan');
  const plans: { input: string; placement: Placement }[] = [];
  for (const [i, input] of positionals.entries())
    plans.push({ input, placement: await api.json<Placement>('POST', '/plan', bodies[i]) });
  say(io, values.json ? JSON.stringify(plans, null, 2) : plans.map(planText).join('\n\n'));
  return 0;
}

function describeFile(
  file: string,
  metadata: Record<string, string>,
  contentTypeOf: (name: string) => string,
) {
  let size: number;
  try {
    const stats = fs.statSync(file);
    if (!stats.isFile()) throw new Error('not a regular file');
    size = stats.size;
  } catch (err) {
    throw new UsageError(`cannot plan ${file}: ${(err as Error).message}`, 'plan');
  }
  const name = path.basename(file);
  return { name, size, contentType: contentTypeOf(name), metadata };
}

/** One input's plan: where it goes and why, then every place priced. */
export function planText({ input, placement }: { input: string; placement: Placement }): string {
  const head = printable(input);
  if (placement.kind === 'fail') return `${head}\n  cannot run: ${printable(placement.error)}`;
  if (placement.kind === 'ignore') return `${head}\n  ignored: ${printable(placement.reason)}`;
  const lines = [head, `  route   ${placement.target} (rule ${placement.rule ?? '-'})`];
  lines.push(`  reason  ${printable(placement.reason ?? '')}`);
  const estimate = placement.estimate;
  if (estimate === undefined) return lines.join('\n');
  lines.push(`  run     ${runLine(estimate)} (${printable(estimate.basis)})`);
  const rows = [['PLACE', 'EXPECTED', 'COST', 'NOTE']];
  for (const option of estimate.options) {
    const chosen =
      option.target === estimate.target &&
      option.machineType === estimate.machineType &&
      option.spot === estimate.spot;
    const place =
      option.target === 'vm'
        ? `vm ${option.machineType ?? ''}${option.spot === undefined ? '' : option.spot ? ' spot' : ' standard'}`
        : option.target;
    rows.push([
      `${chosen ? '*' : ' '} ${place}`,
      option.seconds === undefined ? '-' : formatSeconds(option.seconds),
      option.usd === undefined ? '-' : formatUsd(option.usd),
      printable(option.feasible ? (option.why ?? '') : `cannot: ${option.why ?? 'over its limits'}`),
    ]);
  }
  lines.push(table(rows, '  ').replace(/ +$/gm, ''));
  return lines.join('\n');
}

export async function simulateCommand(args: string[], _env: NodeJS.ProcessEnv, io: Io): Promise<number> {
  const { values, positionals } = parse(COMMANDS.simulate, args);
  let sizeThresholdBytes: number | undefined;
  if (values.threshold !== undefined) {
    try {
      sizeThresholdBytes = parseBytes(values.threshold, '--threshold');
    } catch (err) {
      throw new UsageError((err as Error).message, 'simulate');
    }
  }
  const prices = values.config === undefined ? DEFAULT_PRICES : (pricesOf(values.config) ?? DEFAULT_PRICES);
  let workload;
  try {
    workload = parseWorkload(JSON.parse(fs.readFileSync(positionals[0], 'utf8')));
  } catch (err) {
    throw new Failure(`cannot read workload ${positionals[0]}: ${(err as Error).message}`);
  }
  const cloudRunJob = cloudRunJobOption(values['cloud-run-job']);
  const options = {
    ...(sizeThresholdBytes === undefined ? {} : { sizeThresholdBytes }),
    ...(cloudRunJob === undefined ? {} : { cloudRunJob }),
  };
  const results = simulateAll(workload, prices, options);
  if (values.json) {
    say(
      io,
      JSON.stringify(
        results.map(({ outcomes: _, ...r }) => r),
        null,
        2,
      ),
    );
    return 0;
  }
  say(io, formatSimulation(results));
  // With rules that batch, the same week with every file alone beside it: what batching changes.
  if (Object.values(workload.rules).some((rule) => rule.batch !== undefined)) {
    const alone = simulateAll(workload, prices, { ...options, batching: false });
    say(io, `\n${formatBatching(results, alone)}`);
  }
  return 0;
}

/** --cloud-run-job cpu=2,memory=4Gi[,gpu=nvidia-l4][,timeout=3600s], read as the dispatcher reads WORKER_JOB_*. */
function cloudRunJobOption(value: string | undefined): CloudRunJobShape | undefined {
  if (value === undefined) return undefined;
  const fields = ['cpu', 'memory', 'gpu', 'timeout'] as const;
  const text: Partial<Record<CloudRunJobField, string>> = {};
  for (const pair of value.split(',')) {
    const eq = pair.indexOf('=');
    const key = pair.slice(0, eq) as CloudRunJobField;
    if (eq <= 0 || !fields.includes(key) || text[key] !== undefined)
      throw new UsageError(
        `--cloud-run-job takes cpu=N,memory=SIZE[,gpu=TYPE][,timeout=DURATION], each once; got ${JSON.stringify(pair)}`,
        'simulate',
      );
    text[key] = pair.slice(eq + 1);
  }
  const names = Object.fromEntries(fields.map((field) => [field, `--cloud-run-job ${field}`]));
  try {
    const shape = parseCloudRunJobDefinition(text, names as Record<CloudRunJobField, string>);
    if (shape === undefined) throw new CloudRunJobDefinitionError('--cloud-run-job', 'needs cpu and memory');
    return shape;
  } catch (err) {
    if (err instanceof CloudRunJobDefinitionError) throw new UsageError(err.message, 'simulate');
    throw err;
  }
}

/** The price table of a routing config file (its `prices`, over the defaults). */
function pricesOf(file: string) {
  try {
    return parseRoutingConfig(JSON.parse(fs.readFileSync(file, 'utf8'))).prices;
  } catch (err) {
    throw new Failure(`cannot read the prices of ${file}: ${(err as Error).message}`);
  }
}

/** "median 18 s, mean 37 s, p90 1m 24s" for a learned run; the one figure for one known exactly. */
function runLine(estimate: CostEstimate): string {
  const { runSeconds, runMedianSeconds, runQuantileSeconds, quantile } = estimate;
  if (runMedianSeconds === undefined || runQuantileSeconds === undefined || quantile === undefined)
    return formatSeconds(runSeconds);
  const p = `p${Math.round(quantile * 100)}`;
  return `median ${formatSeconds(runMedianSeconds)}, mean ${formatSeconds(runSeconds)}, ${p} ${formatSeconds(runQuantileSeconds)}`;
}
