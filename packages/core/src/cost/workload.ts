// A workload to replay: the kinds of work (each like a routing rule: its shape and GPUs, whether it may
// run on spot, its prior) and the tasks, each with its true duration. parseWorkload checks a file strictly;
// every error names the field (`tasks[12].trueSeconds: ...`).

import {
  boolean,
  describe,
  isRecord,
  optional,
  positiveBytes,
  positiveNumber,
  readAccelerator,
  readDuration,
  rejectUnknownKeys,
  withoutUndefined,
  type Fail,
  type Raw,
} from '../readers.ts';
import type { Accelerator } from '../template.ts';
import { quote } from '../units.ts';
import { DEFAULT_PRIOR, type DurationPrior } from './estimator.ts';
import { readBatchPolicy, type BatchPolicy } from './batching.ts';

export interface WorkloadRule {
  cpu: number;
  memoryBytes: number;
  /** GPUs, as a routing rule's `job.accelerator`: they decide where it can run and what it costs. */
  accelerator?: Accelerator;
  /** Whether its VMs may be spot (a rule's `job.spot`). */
  spot: boolean;
  prior: DurationPrior;
  /** Its files that run on Cloud Run are gathered into executions of many tasks (batching.ts). */
  batch?: BatchPolicy;
}

export interface WorkloadTask {
  id: string;
  rule: string;
  /** Seconds from the start of the workload. */
  arrival: number;
  inputBytes: number;
  /** The run itself, start-up excluded, on the shape the task asks for. */
  trueSeconds: number;
  /** The longest acceptable wait from arrival to result. */
  deadlineSeconds?: number;
  /** Override the rule's shape. */
  cpu?: number;
  memoryBytes?: number;
  accelerator?: Accelerator;
}

export interface Workload {
  description?: string;
  rules: Record<string, WorkloadRule>;
  tasks: WorkloadTask[];
}

export class WorkloadError extends Error {
  override readonly name = 'WorkloadError';
  readonly code = 'WORKLOAD';
  readonly field: string;

  constructor(field: string, detail: string) {
    super(`${field}: ${detail}`);
    this.field = field;
  }
}

const NAME = /^[a-z0-9][a-z0-9-]*$/;

export function parseWorkload(raw: unknown): Workload {
  const fail: Fail = (field, detail) => {
    throw new WorkloadError(field, detail);
  };
  const top = record(raw, 'workload', fail);
  rejectUnknownKeys(top, ['description', 'rules', 'tasks'], '', fail);
  if (top.description !== undefined && typeof top.description !== 'string')
    fail('description', `must be a string, got ${describe(top.description)}`);
  const rawRules = record(top.rules, 'rules', fail);
  const rules: Record<string, WorkloadRule> = {};
  for (const [name, value] of Object.entries(rawRules)) {
    if (!NAME.test(name)) fail(`rules.${name}`, 'is not a rule name like "large-csv"');
    rules[name] = parseRule(value, `rules.${name}`, fail);
  }
  if (!Array.isArray(top.tasks) || top.tasks.length === 0) fail('tasks', 'must be a non-empty list');
  const ids = new Set<string>();
  const tasks = (top.tasks as unknown[]).map((value, i) => {
    const task = parseTask(value, `tasks[${i}]`, rules, fail);
    if (ids.has(task.id)) fail(`tasks[${i}].id`, `${quote(task.id)} is already the id of another task`);
    ids.add(task.id);
    return task;
  });
  return {
    ...(top.description === undefined ? {} : { description: top.description as string }),
    rules,
    tasks,
  };
}

function parseRule(raw: unknown, field: string, fail: Fail): WorkloadRule {
  const rule = record(raw, field, fail);
  rejectUnknownKeys(rule, ['cpu', 'memory', 'accelerator', 'spot', 'prior', 'batch'], `${field}.`, fail);
  const prior = rule.prior === undefined ? {} : record(rule.prior, `${field}.prior`, fail);
  rejectUnknownKeys(prior, ['base', 'perGiB'], `${field}.prior.`, fail);
  return {
    cpu: positiveNumber(rule.cpu, `${field}.cpu`, fail),
    memoryBytes: positiveBytes(rule.memory, `${field}.memory`, fail),
    spot: optional(rule.spot, `${field}.spot`, fail, boolean) ?? false,
    prior: {
      baseSeconds:
        optional(prior.base, `${field}.prior.base`, fail, readDuration) ?? DEFAULT_PRIOR.baseSeconds,
      secondsPerGiB:
        optional(prior.perGiB, `${field}.prior.perGiB`, fail, readDuration) ?? DEFAULT_PRIOR.secondsPerGiB,
    },
    ...withoutUndefined({
      accelerator: optional(rule.accelerator, `${field}.accelerator`, fail, readAccelerator),
      batch: optional(rule.batch, `${field}.batch`, fail, readBatchPolicy),
    }),
  };
}

const TASK_KEYS = [
  'id',
  'rule',
  'arrival',
  'inputBytes',
  'trueSeconds',
  'deadlineSeconds',
  'cpu',
  'memory',
  'accelerator',
];

function parseTask(
  raw: unknown,
  field: string,
  rules: Record<string, WorkloadRule>,
  fail: Fail,
): WorkloadTask {
  const task = record(raw, field, fail);
  rejectUnknownKeys(task, TASK_KEYS, `${field}.`, fail);
  if (typeof task.id !== 'string' || task.id === '')
    fail(`${field}.id`, `must be a non-empty string, got ${describe(task.id)}`);
  if (typeof task.rule !== 'string' || !Object.hasOwn(rules, task.rule))
    fail(
      `${field}.rule`,
      `must name one of the rules (${Object.keys(rules).join(', ')}), got ${describe(task.rule)}`,
    );
  const atLeastZero = (value: unknown, name: string) => {
    if (typeof value !== 'number' || !Number.isFinite(value) || value < 0)
      fail(`${field}.${name}`, `must be a number of at least 0, got ${describe(value)}`);
    return value as number;
  };
  const inputBytes = atLeastZero(task.inputBytes, 'inputBytes');
  if (!Number.isSafeInteger(inputBytes))
    fail(`${field}.inputBytes`, `must be a whole number of bytes, got ${inputBytes}`);
  return {
    id: task.id as string,
    rule: task.rule as string,
    arrival: atLeastZero(task.arrival, 'arrival'),
    inputBytes,
    trueSeconds: positiveNumber(task.trueSeconds, `${field}.trueSeconds`, fail),
    ...withoutUndefined({
      deadlineSeconds: optional(task.deadlineSeconds, `${field}.deadlineSeconds`, fail, positiveNumber),
      cpu: optional(task.cpu, `${field}.cpu`, fail, positiveNumber),
      memoryBytes: optional(task.memory, `${field}.memory`, fail, positiveBytes),
      accelerator: optional(task.accelerator, `${field}.accelerator`, fail, readAccelerator),
    }),
  };
}

function record(value: unknown, field: string, fail: Fail): Raw {
  return isRecord(value) ? value : fail(field, `must be an object, got ${describe(value)}`);
}
