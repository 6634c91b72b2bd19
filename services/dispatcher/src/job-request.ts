// The body of POST /jobs, validated: either an object to process,
//   { "inputUri": "gs://bucket/object", "generation": "1763771234567890" }     (generation optional)
// with, optionally, per-job parameters its rule allows: "params": { "TARGET_COLUMN": "label" } (a run
// with parameters is a job of its own beside the upload's, writing under runs/<job id>/),
// or a container run with no input file,
//   { "image": "...", "args": [...], "env": {...}, "cpu": 4, "memory": "8GiB", "gpu": "nvidia-l4:1",
//     "expectedDuration": "2h" }                     ("task": "logreg" instead of "image" runs a worker task)
// Either one may be for later: "runAt": "2026-12-01T06:00:00Z" (once), or "cron": "0 6 * * 1-5"
// (repeating, five fields in UTC).
//
// The body of POST /plan, a dry run: POST /jobs's, or a file not uploaded yet,
//   { "file": { "name": "q3.csv", "size": 1024, "contentType": "text/csv", "metadata": {...} } }
// (contentType and metadata optional).
import {
  isVariableName,
  parseBytes,
  parseCron,
  parseDuration,
  RESERVED_ENV_KEYS,
  RESERVED_ENV_PREFIX,
  type Resources,
  type StorageObject,
} from '@pipeline/core';
import type { ContainerRequest, When } from './dispatcher.ts';
import { RequestError } from './errors.ts';

export type JobRequest = (
  | {
      kind: 'object';
      bucket: string;
      name: string;
      generation?: string;
      params?: Record<string, string>;
    }
  | { kind: 'container'; container: ContainerRequest }
) & { when?: When };

const WHEN_KEYS = ['runAt', 'cron'];
const OBJECT_KEYS = new Set(['inputUri', 'generation', 'params', ...WHEN_KEYS]);
const CONTAINER_KEYS = new Set([
  'image',
  'task',
  'args',
  'env',
  'cpu',
  'memory',
  'gpu',
  'expectedDuration',
  ...WHEN_KEYS,
]);
/** How far ahead a job may be scheduled once. */
const MAX_RUN_AT_AHEAD_MS = 366 * 24 * 3600 * 1000;

export function parseJobRequest(body: unknown): JobRequest {
  if (typeof body !== 'object' || body === null || Array.isArray(body))
    invalid('the body must be a JSON object');
  const fields = body as Record<string, unknown>;
  if ('inputUri' in fields) {
    rejectUnknown(fields, OBJECT_KEYS);
    const { inputUri, generation } = fields;
    if (typeof inputUri !== 'string') invalid('inputUri must be a string like gs://bucket/object');
    const match = /^gs:\/\/([^/]+)\/(.+)$/s.exec(inputUri);
    if (match === null) invalid('inputUri must look like gs://bucket/object');
    if (generation !== undefined && (typeof generation !== 'string' || !/^\d{1,20}$/.test(generation))) {
      invalid('generation must be a string of digits');
    }
    const params = fields.params === undefined ? undefined : paramsOf(fields.params);
    return {
      kind: 'object',
      bucket: match[1],
      name: match[2],
      generation: generation as string | undefined,
      ...(params && { params }),
      ...whenOf(fields),
    };
  }
  rejectUnknown(fields, CONTAINER_KEYS);
  const { image, task, args = [], env = {}, cpu, memory, gpu, expectedDuration } = fields;
  if ((image === undefined) === (task === undefined))
    invalid('give inputUri, or exactly one of image and task');
  if (image !== undefined && (typeof image !== 'string' || image.trim() === ''))
    invalid('image must be a non-empty string');
  if (task !== undefined && (typeof task !== 'string' || !/^[a-z][a-z0-9-]*$/.test(task)))
    invalid('task must be a task name like "logreg"');
  if (!Array.isArray(args) || !args.every((a) => typeof a === 'string'))
    invalid('args must be a list of strings');
  if (typeof env !== 'object' || env === null || Array.isArray(env))
    invalid('env must be an object of strings');
  for (const [key, value] of Object.entries(env)) {
    if (!isVariableName(key)) invalid(`env: ${JSON.stringify(key)} is not a variable name`);
    if (RESERVED_ENV_KEYS.includes(key) || key.startsWith(RESERVED_ENV_PREFIX))
      invalid(`env: ${key} is set by the pipeline`);
    if (typeof value !== 'string') invalid(`env.${key} must be a string`);
  }
  const declared: Resources = {};
  if (cpu !== undefined) {
    if (typeof cpu !== 'number' || !(cpu > 0)) invalid('cpu must be a positive number');
    declared.cpu = cpu;
  }
  if (memory !== undefined)
    declared.memoryBytes = checked(() => parseBytes(memory as string | number, 'memory'));
  if (expectedDuration !== undefined) {
    declared.expectedSeconds = checked(() =>
      parseDuration(expectedDuration as string | number, 'expectedDuration'),
    );
  }
  if (gpu !== undefined) {
    const match = typeof gpu === 'string' ? /^([a-z0-9-]+)(?::(\d+))?$/.exec(gpu) : null;
    if (match === null) invalid('gpu must look like "nvidia-l4" or "nvidia-l4:2"');
    declared.gpu = { type: match[1], count: match[2] === undefined ? 1 : Number(match[2]) };
  }
  return {
    kind: 'container',
    container: {
      image: image as string | undefined,
      task: task as string | undefined,
      args: args as string[],
      env: env as Record<string, string>,
      declared,
    },
    ...whenOf(fields),
  };
}

/** What to plan: a job request as POST /jobs takes it, or a file described but not uploaded. */
export type PlanRequest = JobRequest | { kind: 'file'; object: StorageObject };

export function parsePlanRequest(body: unknown): PlanRequest {
  if (typeof body === 'object' && body !== null && 'file' in body)
    return { kind: 'file', object: hypotheticalObject(body.file) };
  return parseJobRequest(body);
}

/** A file described by the planner (name, size, type, metadata), as if it had been uploaded. */
function hypotheticalObject(raw: unknown): StorageObject {
  if (typeof raw !== 'object' || raw === null || Array.isArray(raw))
    throw new RequestError('INVALID', 'file must be an object like { "name": "x.csv", "size": 1024 }');
  const { name, size, contentType, metadata = {} } = raw as Record<string, unknown>;
  if (typeof name !== 'string' || name === '' || name.length > 1024)
    throw new RequestError('INVALID', 'file.name must be a non-empty string');
  if (typeof size !== 'number' || !Number.isSafeInteger(size) || size < 0)
    throw new RequestError('INVALID', 'file.size must be a whole number of bytes');
  if (contentType !== undefined && typeof contentType !== 'string')
    throw new RequestError('INVALID', 'file.contentType must be a string');
  if (
    typeof metadata !== 'object' ||
    metadata === null ||
    Array.isArray(metadata) ||
    !Object.values(metadata).every((v) => typeof v === 'string')
  )
    throw new RequestError('INVALID', 'file.metadata must be an object of strings');
  return {
    bucket: 'plan',
    name,
    generation: '0',
    size,
    ...(contentType === undefined ? {} : { contentType }),
    metadata: metadata as Record<string, string>,
  };
}

/** "params": names like environment variables, string values; which ones may be set, the rule says. */
function paramsOf(value: unknown): Record<string, string> | undefined {
  if (typeof value !== 'object' || value === null || Array.isArray(value))
    invalid('params must be an object of strings, like {"TARGET_COLUMN": "label"}');
  const entries = Object.entries(value);
  for (const [key, item] of entries) {
    if (!isVariableName(key)) invalid(`params: ${JSON.stringify(key)} is not a variable name`);
    if (typeof item !== 'string') invalid(`params.${key} must be a string`);
  }
  return entries.length === 0 ? undefined : (value as Record<string, string>);
}

function whenOf(fields: Record<string, unknown>, now = Date.now()): { when?: When } {
  const { runAt, cron } = fields;
  if (runAt !== undefined && cron !== undefined) invalid('give runAt or cron, not both');
  if (cron !== undefined) {
    if (typeof cron !== 'string') invalid('cron must be a string like "0 6 * * 1-5"');
    checked(() => parseCron(cron));
    return { when: { cron } };
  }
  if (runAt !== undefined) {
    const time = typeof runAt === 'string' && /^\d{4}-\d\d-\d\dT/.test(runAt) ? Date.parse(runAt) : NaN;
    if (Number.isNaN(time)) invalid('runAt must be an ISO 8601 time like "2026-12-01T06:00:00Z"');
    if (time - now > MAX_RUN_AT_AHEAD_MS) invalid('runAt must be within a year');
    return { when: { runAt: new Date(time).toISOString() } };
  }
  return {};
}

function rejectUnknown(fields: Record<string, unknown>, known: Set<string>): void {
  for (const key of Object.keys(fields)) if (!known.has(key)) invalid(`unknown field ${JSON.stringify(key)}`);
}

function checked<T>(parse: () => T): T {
  try {
    return parse();
  } catch (err) {
    return invalid((err as Error).message);
  }
}

function invalid(message: string): never {
  throw new RequestError('INVALID', message);
}
