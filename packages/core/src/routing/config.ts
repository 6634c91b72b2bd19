// parseRoutingConfig turns an already-parsed JSON or YAML value into a RoutingConfig.
// Validation is strict (unknown keys are errors, to catch typos) and every error names the rule
// and the field, so an operator can fix the file from the message alone.

import { DEFAULT_PRIOR, type DurationPrior } from '../cost/estimator.ts';
import { readBatchPolicy } from '../cost/batching.ts';
import { compileGlob } from '../glob.ts';
import { parsePriceTable } from '../cost/price-config.ts';
import { PriceTableError } from '../cost/prices.ts';
import { DEFAULT_RETRY_POLICY, type RetryPolicy } from '../retry.ts';
import { DEFAULT_QUEUE_POLICY, type QueuePolicy } from './types.ts';
import { quote } from '../units.ts';
import { isVariableName, unsafeParamReason } from './params.ts';
import {
  boolean,
  describe,
  isRecord,
  matching,
  noNul,
  optional,
  positiveBytes,
  positiveDuration,
  positiveNumber,
  readAccelerator,
  readBytes,
  readDuration,
  rejectUnknownKeys,
  stringList,
  stringMap,
  withoutUndefined,
  type Fail,
} from '../readers.ts';
import {
  DEFAULT_TASK,
  RESERVED_ENV_KEYS,
  RESERVED_ENV_PREFIX,
  type JobTemplate,
  type Rule,
  type RuleMatch,
  type RoutingConfig,
  type Target,
} from './types.ts';

export interface RuleRef {
  /** 1-based position in `rules`. */
  index: number;
  name?: string;
}

export class RoutingConfigError extends Error {
  override readonly name = 'RoutingConfigError';
  readonly code = 'ROUTING_CONFIG';
  readonly rule?: RuleRef;
  readonly field: string;

  constructor(field: string, detail: string, rule?: RuleRef) {
    const where = rule ? `rule ${rule.index}${rule.name ? ` (${JSON.stringify(rule.name)})` : ''}` : '';
    super([where, field, detail].filter((part) => part !== '').join(': '));
    this.field = field;
    this.rule = rule;
  }
}

const RULE_NAME = /^[a-z0-9][a-z0-9-]*$/;
const TASK_NAME = /^[A-Za-z0-9][A-Za-z0-9_.-]*$/;
const IMAGE = /^[^\s\p{Cc}]+$/u;
const MACHINE_TYPE = /^[a-z][a-z0-9-]*$/;
const CONTENT_TYPE = /^[a-z0-9][a-z0-9!#$&^_.+-]*\/(\*|[a-z0-9][a-z0-9!#$&^_.+-]*)$/;
const TARGETS = ['cloud-run-job', 'vm', 'ignore'];
const RULE_KEYS = ['name', 'match', 'target', 'job', 'retry', 'queue', 'params', 'batch'];
const COST_KEYS = ['mode', 'deadline', 'deadlineQuantile', 'prior'];

export function parseRoutingConfig(raw: unknown): RoutingConfig {
  const fail: Fail = (field, detail) => {
    throw new RoutingConfigError(field, detail);
  };
  if (!isRecord(raw)) fail('config', `must be an object with "rules", got ${describe(raw)}`);
  rejectUnknownKeys(raw, ['rules', 'prices'], '', fail);
  if (!Array.isArray(raw.rules) || raw.rules.length === 0) fail('rules', 'must be a non-empty list');
  const indexByName = new Map<string, number>();
  const rules = raw.rules.map((rule: unknown, i) => parseRule(rule, { index: i + 1 }, indexByName));
  if (raw.prices === undefined) return { rules };
  try {
    return { rules, prices: parsePriceTable(raw.prices) };
  } catch (err) {
    if (err instanceof PriceTableError) return fail(err.field, err.detail);
    throw err;
  }
}

function parseRule(raw: unknown, ref: RuleRef, indexByName: Map<string, number>): Rule {
  const fail: Fail = (field, detail) => {
    throw new RoutingConfigError(field, detail, ref);
  };
  if (!isRecord(raw)) fail('', `must be an object with name, match, target and job, got ${describe(raw)}`);
  // Name the rule in every message as soon as its name is known to be sound.
  if (typeof raw.name === 'string' && RULE_NAME.test(raw.name)) ref.name = raw.name;
  for (const key of Object.keys(raw)) {
    if (RULE_KEYS.includes(key) || COST_KEYS.includes(key)) continue;
    fail(
      key,
      `unknown key (expected one of ${RULE_KEYS.join(', ')}) or, for cost estimates, ${COST_KEYS.join(', ')}`,
    );
  }
  if (typeof raw.name !== 'string' || !RULE_NAME.test(raw.name)) {
    fail('name', `must be lower-case letters, digits and "-" (like "big-files"), got ${describe(raw.name)}`);
  }
  const name = raw.name;
  const earlier = indexByName.get(name);
  if (earlier !== undefined) fail('name', `${quote(name)} is already the name of rule ${earlier}`);
  indexByName.set(name, ref.index);

  const mode = raw.mode ?? 'fixed';
  if (mode !== 'fixed' && mode !== 'cost')
    fail('mode', `must be "fixed" or "cost", got ${describe(raw.mode)}`);
  const target = mode === 'cost' ? candidates(raw.target, fail) : fixedTarget(raw.target, fail);
  if (target === 'ignore' && raw.job !== undefined) fail('job', 'an ignore rule runs nothing; remove job');
  const match = raw.match === undefined ? {} : parseMatch(raw.match, fail);
  if (target === 'ignore' && raw.retry !== undefined)
    fail('retry', 'an ignore rule runs nothing; remove retry');
  if (target === 'ignore' && raw.prior !== undefined)
    fail('prior', 'an ignore rule runs nothing; remove prior');
  if (target === 'ignore' && raw.queue !== undefined)
    fail('queue', 'an ignore rule runs nothing; remove queue');
  if (target === 'ignore' && raw.params !== undefined)
    fail('params', 'an ignore rule runs nothing; remove params');
  const runsOnCloudRun =
    target === 'cloud-run-job' || (Array.isArray(target) && target.includes('cloud-run-job'));
  if (raw.batch !== undefined && !runsOnCloudRun)
    fail('batch', 'only files a rule sends to Cloud Run ("cloud-run-job") are gathered into batches');
  if (raw.deadline !== undefined && mode !== 'cost')
    fail('deadline', 'only a rule with "mode": "cost" chooses where to run by its deadline');
  if (raw.deadlineQuantile !== undefined && raw.deadline === undefined)
    fail(
      'deadlineQuantile',
      'says at which quantile of the run a deadline is judged; the rule has no deadline',
    );
  return {
    name,
    match,
    target,
    job: parseJob(raw.job ?? {}, fail),
    retry: parseRetry(raw.retry ?? {}, fail),
    queue: parseQueuePolicy(raw.queue ?? {}, fail),
    ...withoutUndefined({
      deadlineSeconds: optional(raw.deadline, 'deadline', fail, positiveDuration),
      deadlineQuantile: optional(raw.deadlineQuantile, 'deadlineQuantile', fail, readQuantile),
      prior: optional(raw.prior, 'prior', fail, parsePrior),
      params: optional(raw.params, 'params', fail, parseParamNames),
      batch: optional(raw.batch, 'batch', fail, readBatchPolicy),
    }),
  };
}

/** `"params": ["TARGET_COLUMN", "DELIMITER"]`: names a caller may set, none the pipeline or a loader uses. */
function parseParamNames(raw: unknown, field: string, fail: Fail): string[] {
  if (!Array.isArray(raw))
    fail(field, `must be a list of variable names like ["TARGET_COLUMN"], got ${describe(raw)}`);
  const names = stringList(raw, field, fail);
  const seen = new Set<string>();
  for (const name of names) {
    const unsafe = unsafeParamReason(name);
    if (unsafe !== undefined) fail(`${field}: ${name}`, unsafe);
    if (seen.has(name.toUpperCase())) fail(`${field}: ${name}`, 'is listed twice');
    seen.add(name.toUpperCase());
  }
  return names;
}

function fixedTarget(raw: unknown, fail: Fail): Target | 'ignore' {
  if (Array.isArray(raw)) fail('target', 'a list of targets needs "mode": "cost"');
  if (typeof raw !== 'string' || !TARGETS.includes(raw)) {
    fail('target', `must be "cloud-run-job", "vm" or "ignore", got ${describe(raw)}`);
  }
  return raw as Target | 'ignore';
}

/** Cost mode: "cloud-run-job", "vm" or a list of them, each once. */
function candidates(raw: unknown, fail: Fail): Target[] {
  const list: unknown[] = Array.isArray(raw) ? raw : [raw];
  const valid = list.length > 0 && list.every((item) => item === 'cloud-run-job' || item === 'vm');
  if (!valid) {
    fail('target', `in cost mode must be "cloud-run-job", "vm" or a list of them, got ${describe(raw)}`);
  }
  if (new Set(list).size !== list.length) fail('target', `lists a target twice: ${quote(raw)}`);
  return list as Target[];
}

/** `prior`: `{ "base": "30s", "perGiB": "60s" }`; a key left out keeps DEFAULT_PRIOR's. */
function parsePrior(raw: unknown, field: string, fail: Fail): DurationPrior {
  if (!isRecord(raw))
    fail(field, `must be an object like {"base": "30s", "perGiB": "60s"}, got ${describe(raw)}`);
  rejectUnknownKeys(raw, ['base', 'perGiB'], `${field}.`, fail);
  return {
    baseSeconds: optional(raw.base, `${field}.base`, fail, readDuration) ?? DEFAULT_PRIOR.baseSeconds,
    secondsPerGiB: optional(raw.perGiB, `${field}.perGiB`, fail, readDuration) ?? DEFAULT_PRIOR.secondsPerGiB,
  };
}

const RETRY_KEYS = [
  'maxAttempts',
  'backoff',
  'backoffMultiplier',
  'maxBackoff',
  'retryExitCodes',
  'noRetryExitCodes',
  'maxPreemptions',
  'spotFallbackAfter',
];

/** `queue`: `{ "maxConcurrent": 5, "maxQueueTime": "6h" }`; left out: no cap, DEFAULT_QUEUE_POLICY's wait. */
function parseQueuePolicy(raw: unknown, fail: Fail): QueuePolicy {
  if (!isRecord(raw)) fail('queue', `must be an object like {"maxConcurrent": 5}, got ${describe(raw)}`);
  rejectUnknownKeys(raw, ['maxConcurrent', 'maxQueueTime'], 'queue.', fail);
  const cap = raw.maxConcurrent;
  if (cap !== undefined && (typeof cap !== 'number' || !Number.isInteger(cap) || cap < 1 || cap > 100_000))
    fail('queue.maxConcurrent', `must be a whole number from 1 to 100000, got ${describe(cap)}`);
  return {
    maxQueueSeconds:
      optional(raw.maxQueueTime, 'queue.maxQueueTime', fail, positiveDuration) ??
      DEFAULT_QUEUE_POLICY.maxQueueSeconds,
    ...(cap === undefined ? {} : { maxConcurrent: cap as number }),
  };
}

/** `retry`: each key left out keeps its DEFAULT_RETRY_POLICY value. */
function parseRetry(raw: unknown, fail: Fail): RetryPolicy {
  if (!isRecord(raw)) fail('retry', `must be an object, got ${describe(raw)}`);
  rejectUnknownKeys(raw, RETRY_KEYS, 'retry.', fail);
  const count = (value: unknown, field: string, min: number): number | undefined => {
    if (value === undefined) return undefined;
    if (typeof value !== 'number' || !Number.isInteger(value) || value < min || value > 1000)
      fail(field, `must be a whole number from ${min} to 1000, got ${describe(value)}`);
    return value as number;
  };
  const codes = (value: unknown, field: string): number[] | undefined => {
    if (value === undefined) return undefined;
    if (!Array.isArray(value) || !value.every((c) => Number.isInteger(c) && c >= 0 && c <= 255))
      fail(field, `must be a list of exit codes (0 to 255), got ${describe(value)}`);
    return [...(value as number[])];
  };
  const multiplier = raw.backoffMultiplier;
  if (multiplier !== undefined && (typeof multiplier !== 'number' || !(multiplier >= 1 && multiplier <= 10)))
    fail('retry.backoffMultiplier', `must be a number from 1 to 10, got ${describe(multiplier)}`);
  const policy: RetryPolicy = {
    ...DEFAULT_RETRY_POLICY,
    ...(withoutUndefined({
      maxAttempts: count(raw.maxAttempts, 'retry.maxAttempts', 1),
      backoffSeconds: optional(raw.backoff, 'retry.backoff', fail, readDuration),
      backoffMultiplier: multiplier as number | undefined,
      maxBackoffSeconds: optional(raw.maxBackoff, 'retry.maxBackoff', fail, readDuration),
      retryExitCodes: codes(raw.retryExitCodes, 'retry.retryExitCodes'),
      noRetryExitCodes: codes(raw.noRetryExitCodes, 'retry.noRetryExitCodes'),
      maxPreemptions: count(raw.maxPreemptions, 'retry.maxPreemptions', 0),
      spotFallbackAfter: count(raw.spotFallbackAfter, 'retry.spotFallbackAfter', 0),
    }) as Partial<RetryPolicy>),
  };
  const both = (policy.retryExitCodes ?? []).filter((c) => policy.noRetryExitCodes.includes(c));
  if (both.length > 0)
    fail('retry.retryExitCodes', `exit codes ${both.join(', ')} are also in noRetryExitCodes`);
  if (policy.retryExitCodes?.includes(0))
    fail('retry.retryExitCodes', 'exit code 0 is success; it never retries');
  return policy;
}

const MATCH_KEYS = [
  'path',
  'contentType',
  'minSize',
  'maxSize',
  'runtime',
  'metadata',
  'minCpu',
  'maxCpu',
  'minMemory',
  'maxMemory',
  'gpu',
  'minDuration',
  'maxDuration',
];

function parseMatch(raw: unknown, fail: Fail): RuleMatch {
  if (!isRecord(raw)) fail('match', `must be an object, got ${describe(raw)}`);
  rejectUnknownKeys(raw, MATCH_KEYS, 'match.', fail);
  const match: RuleMatch = {};
  if (raw.path !== undefined) {
    match.paths = stringList(raw.path, 'match.path', fail).map((glob) => {
      try {
        return compileGlob(glob);
      } catch (error) {
        return fail('match.path', (error as Error).message);
      }
    });
  }
  if (raw.contentType !== undefined) {
    match.contentTypes = stringList(raw.contentType, 'match.contentType', fail).map((type) => {
      const lower = type.trim().toLowerCase();
      if (!CONTENT_TYPE.test(lower))
        fail('match.contentType', `${quote(type)} is not like "text/csv" or "image/*"`);
      return lower;
    });
  }
  if (raw.runtime !== undefined) {
    if (raw.runtime !== 'cloud-run-job' && raw.runtime !== 'vm') {
      fail('match.runtime', `must be "cloud-run-job" or "vm", got ${describe(raw.runtime)}`);
    }
    match.runtime = raw.runtime;
  }
  if (raw.metadata !== undefined) match.metadata = stringMap(raw.metadata, 'match.metadata', fail);
  if (raw.gpu !== undefined) match.gpu = boolean(raw.gpu, 'match.gpu', fail);
  match.minSizeBytes = optional(raw.minSize, 'match.minSize', fail, readBytes);
  match.maxSizeBytes = optional(raw.maxSize, 'match.maxSize', fail, readBytes);
  match.minCpu = optional(raw.minCpu, 'match.minCpu', fail, positiveNumber);
  match.maxCpu = optional(raw.maxCpu, 'match.maxCpu', fail, positiveNumber);
  match.minMemoryBytes = optional(raw.minMemory, 'match.minMemory', fail, readBytes);
  match.maxMemoryBytes = optional(raw.maxMemory, 'match.maxMemory', fail, readBytes);
  match.minExpectedSeconds = optional(raw.minDuration, 'match.minDuration', fail, readDuration);
  match.maxExpectedSeconds = optional(raw.maxDuration, 'match.maxDuration', fail, readDuration);
  for (const [low, high, what] of [
    [match.minSizeBytes, match.maxSizeBytes, 'Size'],
    [match.minCpu, match.maxCpu, 'Cpu'],
    [match.minMemoryBytes, match.maxMemoryBytes, 'Memory'],
    [match.minExpectedSeconds, match.maxExpectedSeconds, 'Duration'],
  ] as const) {
    if (low !== undefined && high !== undefined && high < low) {
      fail(
        `match.max${what}`,
        `${quote(raw[`max${what}`])} is below match.min${what} ${quote(raw[`min${what}`])}`,
      );
    }
  }
  return withoutUndefined(match);
}

const JOB_KEYS = [
  'task',
  'image',
  'args',
  'env',
  'cpu',
  'memory',
  'timeout',
  'machineType',
  'spot',
  'standardIfNoSpot',
  'accelerator',
];

function parseJob(raw: unknown, fail: Fail): JobTemplate {
  if (!isRecord(raw)) fail('job', `must be an object, got ${describe(raw)}`);
  rejectUnknownKeys(raw, JOB_KEYS, 'job.', fail);
  const job: JobTemplate = { args: [], env: {}, spot: false };
  if (raw.task !== undefined)
    job.task = matching(raw.task, TASK_NAME, 'job.task', 'a task name like "logreg"', fail);
  if (raw.image !== undefined)
    job.image = matching(raw.image, IMAGE, 'job.image', 'an image reference', fail);
  if (job.task === undefined && job.image === undefined) job.task = DEFAULT_TASK;
  if (raw.args !== undefined) {
    if (!Array.isArray(raw.args)) fail('job.args', `must be a list of strings, got ${describe(raw.args)}`);
    job.args = raw.args.map((arg: unknown, i) => noNul(arg, `job.args[${i}]`, fail));
  }
  if (raw.env !== undefined) {
    job.env = stringMap(raw.env, 'job.env', fail);
    for (const key of Object.keys(job.env)) {
      if (!isVariableName(key)) fail(`job.env.${key}`, 'is not a variable name like "LEARNING_RATE"');
      if (RESERVED_ENV_KEYS.includes(key) || key.startsWith(RESERVED_ENV_PREFIX)) {
        fail(`job.env.${key}`, 'is set by the pipeline itself and cannot be overridden');
      }
      noNul(job.env[key], `job.env.${key}`, fail);
    }
  }
  job.cpu = optional(raw.cpu, 'job.cpu', fail, positiveNumber);
  job.memoryBytes = optional(raw.memory, 'job.memory', fail, positiveBytes);
  job.timeoutSeconds = optional(raw.timeout, 'job.timeout', fail, positiveDuration);
  if (raw.machineType !== undefined) {
    job.machineType = matching(
      raw.machineType,
      MACHINE_TYPE,
      'job.machineType',
      'a machine type like "e2-standard-4"',
      fail,
    );
  }
  if (raw.spot !== undefined) job.spot = boolean(raw.spot, 'job.spot', fail);
  if (raw.standardIfNoSpot !== undefined)
    job.standardIfNoSpot = boolean(raw.standardIfNoSpot, 'job.standardIfNoSpot', fail);
  if (raw.accelerator !== undefined)
    job.accelerator = readAccelerator(raw.accelerator, 'job.accelerator', fail);
  return withoutUndefined(job);
}
/** `"deadlineQuantile": 0.95`: from 0.5 (the median: estimates taken as exact) to 0.999. */
function readQuantile(raw: unknown, field: string, fail: Fail): number {
  if (typeof raw !== 'number' || !(raw >= 0.5 && raw <= 0.999))
    fail(field, `must be a number from 0.5 (the median) to 0.999, like 0.9, got ${describe(raw)}`);
  return raw as number;
}
