// The routing policy: which rule a request meets, where its job runs (a Cloud Run Job execution
// or an ephemeral VM) and with what resources, and a sentence saying why, for the ledger.
// Pure: the dispatcher parses the config once (parseRoutingConfig) and calls route per event.

import type { StorageObject } from '../events.ts';
import { estimateOf, placeByCost, type CostEstimate, type RouteContext } from './cost.ts';
import { RUNTIME_METADATA_KEY } from './metadata.ts';
import {
  cloudRunLimitBreaches,
  cloudRunShapeBreaches,
  onDefinedCloudRunJob,
  machineFits,
  machineTypeFor,
  MACHINE_TYPES,
  shapeForCloudRun,
  type CloudRunJobShape,
} from '../platforms.ts';
import type { Accelerator, JobTemplate, Resources, Rule, RuleMatch, Target } from './types.ts';
import type { RetryPolicy } from '../retry.ts';
import { formatBytes, formatDuration } from '../format.ts';
import { quote } from '../units.ts';

/** A storage event carries its object; a job submitted by API has none. */
export interface RouteRequest {
  object?: StorageObject;
  declared: Resources;
  /**
   * What a submitted container run asked to run: an image of its own, or a worker task. Either one
   * replaces the rule's (a request's task runs in the worker image, whatever image the rule names),
   * so the route is decided for what will run; an image of its own runs only on a VM.
   */
  image?: string;
  task?: string;
}

export type RouteDecision =
  | { action: 'ignore'; rule?: string; reason: string }
  | {
      action: 'launch';
      rule: string;
      target: Target;
      job: JobTemplate;
      retry: RetryPolicy;
      reason: string;
      /** Always on a cost rule's decision; on a fixed rule's when route() was given a context. */
      estimate?: CostEstimate;
    };

/**
 * The first rule that matches decides; with none, the request is ignored. With a context (prices, and
 * how long the rule's runs take), every launch decision carries its estimated duration and cost; a
 * cost rule without one is priced with DEFAULT_PRICES and its prior.
 */
export function route(
  request: RouteRequest,
  config: { rules: Rule[] },
  context?: RouteContext,
): RouteDecision {
  for (const rule of config.rules) {
    const because = matchReasons(rule.match, request);
    if (because === undefined) continue;
    const what = because.length > 0 ? because.join(', ') : 'no conditions';
    if (rule.target === 'ignore') {
      return { action: 'ignore', rule: rule.name, reason: `rule ${quote(rule.name)} ignores it (${what})` };
    }
    const matched = `rule ${quote(rule.name)} matched (${what})`;
    const job = requested(raiseToDeclared(rule.job, request.declared), request);
    if (Array.isArray(rule.target)) {
      // A job with an image of its own finds Cloud Run impossible among the candidates ("its image
      // ... can only run on a VM"), and a VM is chosen even when the rule lists only Cloud Run.
      const placed = placeByCost({ ...rule, target: rule.target }, job, request, matched, context);
      if (placed.action === 'ignore') return { action: 'ignore', rule: rule.name, reason: placed.reason };
      return { ...placed, rule: rule.name, retry: rule.retry };
    }
    const placed = launch(rule, rule.target, job, matched, request.image !== undefined, context?.cloudRunJob);
    if (placed.action === 'ignore') return placed;
    const estimate = context && estimateOf(rule, placed, request, context);
    return { ...placed, retry: rule.retry, ...(estimate ? { estimate } : {}) };
  }
  return { action: 'ignore', reason: 'no rule matched' };
}

/** A decision before the rule's retry policy is added to it. */
type Placement =
  | Extract<RouteDecision, { action: 'ignore' }>
  | Omit<Extract<RouteDecision, { action: 'launch' }>, 'retry' | 'estimate'>;

/**
 * `ownImage`: the image is the request's, not the rule's (the reason says whose it is); `defined`:
 * what the Cloud Run job is defined with, when known.
 */
function launch(
  rule: Rule,
  target: Target,
  job: JobTemplate,
  matched: string,
  ownImage: boolean,
  defined: CloudRunJobShape | undefined,
): Placement {
  if (target === 'vm') return onVm(rule.name, job, matched);
  if (job.image !== undefined) {
    // A Cloud Run job execution can override env, args and timeout, but not the image: the pipeline's
    // Cloud Run job runs the worker image, so a task with its own image needs a VM.
    const whose = ownImage ? "the request's own image" : 'its image';
    return onVm(
      rule.name,
      job,
      `${matched} and chose cloud-run-job, but ${whose} ${job.image} can only run on a VM`,
    );
  }
  const breaches = [
    ...cloudRunLimitBreaches(job, defined),
    ...(defined === undefined ? [] : cloudRunShapeBreaches(job, defined)),
  ];
  if (breaches.length > 0) {
    return onVm(rule.name, job, `${matched} and chose cloud-run-job, but it needs ${breaches.join(' and ')}`);
  }
  return {
    action: 'launch',
    rule: rule.name,
    target,
    job: defined === undefined ? shapeForCloudRun(job) : onDefinedCloudRunJob(job, defined),
    reason: `${matched}: cloud-run-job`,
  };
}

/** Keeps the rule's machine type unless it is one we know to be too small; else picks one. */
function onVm(rule: string, job: JobTemplate, why: string): Placement {
  const [cpu, memory, gpu] = [job.cpu ?? 1, job.memoryBytes ?? 0, job.accelerator];
  const named = job.machineType;
  const known = MACHINE_TYPES.find((machine) => machine.name === named);
  if (named !== undefined && (known === undefined || machineFits(known, cpu, memory, gpu))) {
    return { action: 'launch', rule, target: 'vm', job, reason: `${why}: vm ${named}` };
  }
  const machine = machineTypeFor(cpu, memory, gpu);
  const needs = describeNeeds(cpu, memory, gpu);
  if (!machine) return { action: 'ignore', rule, reason: `${why}; it needs ${needs}: no machine type fits` };
  const replaced = named === undefined ? '' : ` (${named} does not fit ${needs})`;
  // G2 and A2 machine types come with their GPUs; the job says how many it will see.
  const withGpu = machine.gpu ? { ...job, accelerator: { ...machine.gpu } } : job;
  return {
    action: 'launch',
    rule,
    target: 'vm',
    job: { ...withGpu, machineType: machine.name },
    reason: `${why}: vm ${machine.name}${replaced}`,
  };
}

/** The template running what a container request asked for: its own image, or a worker task. */
function requested(job: JobTemplate, { image, task }: RouteRequest): JobTemplate {
  const { image: _image, task: _task, ...rest } = job;
  if (image !== undefined) return { ...rest, image };
  if (task !== undefined) return { ...rest, task };
  return job;
}

/** The template with cpu, memory, GPU and timeout raised to at least what the request declares. */
function raiseToDeclared(template: JobTemplate, declared: Resources): JobTemplate {
  const job: JobTemplate = { ...template, args: [...template.args], env: { ...template.env } };
  if (declared.cpu !== undefined) job.cpu = Math.max(job.cpu ?? 0, declared.cpu);
  if (declared.memoryBytes !== undefined)
    job.memoryBytes = Math.max(job.memoryBytes ?? 0, declared.memoryBytes);
  if (declared.expectedSeconds !== undefined) {
    job.timeoutSeconds = Math.max(job.timeoutSeconds ?? 0, Math.ceil(declared.expectedSeconds));
  }
  const gpu = declared.gpu;
  if (gpu && gpu.count > 0) {
    // A different GPU type can't be compared; the job's own declaration knows what its code needs.
    const sameType = job.accelerator?.type === gpu.type;
    job.accelerator = {
      type: gpu.type,
      count: sameType ? Math.max(job.accelerator!.count, gpu.count) : gpu.count,
    };
  }
  return job;
}

/** What matched, one phrase per condition; undefined when any condition fails. */
function matchReasons(match: RuleMatch, { object, declared }: RouteRequest): string[] | undefined {
  const groups = [
    objectPhrases(match, object),
    rangePhrases('size', object?.size, match.minSizeBytes, match.maxSizeBytes, formatBytes),
    rangePhrases('declared', declared.cpu, match.minCpu, match.maxCpu, (cpu) => `${cpu} vCPU`),
    rangePhrases(
      'declared memory',
      declared.memoryBytes,
      match.minMemoryBytes,
      match.maxMemoryBytes,
      formatBytes,
    ),
    rangePhrases(
      'expected duration',
      declared.expectedSeconds,
      match.minExpectedSeconds,
      match.maxExpectedSeconds,
      formatDuration,
    ),
    gpuPhrases(match.gpu, declared.gpu),
  ];
  return groups.some((phrases) => phrases === undefined) ? undefined : (groups.flat() as string[]);
}

/** Conditions on the object's name, content type and metadata; none holds without an object. */
function objectPhrases(match: RuleMatch, object: StorageObject | undefined): string[] | undefined {
  const phrases: string[] = [];
  const metadata = (key: string) =>
    object && Object.hasOwn(object.metadata, key) ? object.metadata[key] : undefined;
  if (match.paths) {
    const hit = object && match.paths.find((pattern) => pattern.test(object.name));
    if (!hit) return undefined;
    phrases.push(`path matches ${quote(hit.glob)}`);
  }
  if (match.contentTypes) {
    const type = object?.contentType?.split(';')[0].trim().toLowerCase();
    const hit =
      type &&
      match.contentTypes.find((p) => p === type || (p.endsWith('/*') && type.startsWith(p.slice(0, -1))));
    if (!type || !hit) return undefined;
    // The object's content type is the uploader's to choose: quote it, newlines and all.
    phrases.push(hit === type ? `content type ${hit}` : `content type ${quote(type)} matches ${hit}`);
  }
  if (match.runtime) {
    if (metadata(RUNTIME_METADATA_KEY)?.trim().toLowerCase() !== match.runtime) return undefined;
    phrases.push(`object metadata ${RUNTIME_METADATA_KEY}=${match.runtime}`);
  }
  for (const [key, value] of Object.entries(match.metadata ?? {})) {
    if (metadata(key) !== value) return undefined;
    phrases.push(`object metadata ${key}=${quote(value)}`);
  }
  return phrases;
}

/** `min <= value <= max` for the bounds given; an unknown value meets no bound. */
function rangePhrases(
  label: string,
  value: number | undefined,
  min: number | undefined,
  max: number | undefined,
  format: (n: number) => string,
): string[] | undefined {
  const phrases: string[] = [];
  for (const [bound, holds, comparison] of [
    [min, (v: number, b: number) => v >= b, '>='],
    [max, (v: number, b: number) => v <= b, '<='],
  ] as const) {
    if (bound === undefined) continue;
    if (value === undefined || !holds(value, bound)) return undefined;
    phrases.push(`${label} ${format(value)} ${comparison} ${format(bound)}`);
  }
  return phrases;
}

function gpuPhrases(wanted: boolean | undefined, gpu: Accelerator | undefined): string[] | undefined {
  if (wanted === undefined) return [];
  const declares = gpu !== undefined && gpu.count > 0;
  if (declares !== wanted) return undefined;
  return [gpu && declares ? `declared GPU ${gpu.type} x${gpu.count}` : 'declared no GPU'];
}

function describeNeeds(cpu: number, memoryBytes: number, gpu?: Accelerator): string {
  const parts = [`${cpu} vCPU`, `${formatBytes(memoryBytes)} memory`];
  if (gpu) parts.push(`${gpu.count} ${gpu.type}`);
  return parts.join(', ');
}
