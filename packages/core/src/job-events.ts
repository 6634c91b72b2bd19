// Job events: what the pipeline tells the next system (a loader, a dashboard, a person) when a job
// changes state, published to the job-events topic on Google Cloud and written to
// local/events.ndjson and GET /events in local mode. One definition for both sides: the dispatcher
// makes them with eventsFor and jobEventAttributes; a subscriber reads them with parseJobEvent (or
// parseJobEventPush for a push subscription). Pure: the ledger stores them in the same write as the
// job change (the outbox), and the dispatcher's drain publishes them.
//
// Delivery is at least once: a drain whose answer from Pub/Sub was lost publishes again, and two
// dispatchers may drain the same entries. `eventId` is what a subscriber deduplicates on: it is
// derived from the job, its attempt, the state and the job's version, so the same transition always
// has the same id, and two transitions never share one.
import { createHash } from 'node:crypto';
import { isPushEnvelope } from './events.ts';
import { JOB_STATES, type Job, type JobState } from './job.ts';
import type { ActualCost } from './cost/actual.ts';
import type { Target } from './template.ts';

/**
 * The states whose entry is published: every state but RECEIVED, a claim's moment before its
 * routing. A loader acts on SUCCEEDED and FAILED; the dashboard, which refreshes on events instead
 * of polling, needs RUNNING, SCHEDULED (a run for later, a retry's backoff) and IGNORED too, and a
 * subscriber that wants fewer filters on the `state` attribute.
 */
export type JobEventState = Exclude<JobState, 'RECEIVED'>;
export const JOB_EVENT_STATES: readonly JobEventState[] = JOB_STATES.filter(
  (state): state is JobEventState => state !== 'RECEIVED',
);

/** The schema of the JSON document, for subscribers that read several versions. */
export const JOB_EVENT_SCHEMA = 'pipeline.job-event/1';

/** The longest reason an event carries (a failure's error can be a task's stderr tail). */
export const JOB_EVENT_REASON_MAX = 4096;

/** What started the job, as the event names it: the object version, or the container run. */
export type JobEventSource =
  | { kind: 'object'; bucket: string; name: string; generation: string }
  | { kind: 'request'; task?: string; image?: string };

/** The JSON body of a job-events message. */
export interface JobEvent {
  schema: typeof JOB_EVENT_SCHEMA;
  /** Stable per transition: a subscriber deduplicates on it (see jobEventId). */
  eventId: string;
  jobId: string;
  /** The state the job entered. */
  state: JobEventState;
  /** The state it left; absent when the job was made in this state (a push routed at once). */
  previousState?: JobState;
  attempt: number;
  /** The job's version after the change (the ledger's compare-and-set counter). */
  version: number;
  /** When the change was made (the job's updatedAt). */
  at: string;
  source: JobEventSource;
  rule?: string;
  target?: Target;
  /** Why: the routing reason (QUEUED), the error (FAILED), what was stopped (CANCELLED), ... */
  reason?: string;
  /** What runs or ran it (a Cloud Run execution, a VM, a process), once known. */
  execution?: string;
  exitCode?: number;
  /** Where the job writes its results (its prefix of the output bucket). */
  outputs?: string;
  /** What its attempts cost, once it ended and they were priced. */
  cost?: ActualCost;
}

/** The id of the event of `job` entering its state: the same however often it is made. */
export function jobEventId(job: Pick<Job, 'id' | 'attempt' | 'state' | 'version'>): string {
  return createHash('sha256')
    .update(`${job.id}/${job.attempt}/${job.state}/${job.version}`, 'utf8')
    .digest('hex')
    .slice(0, 32);
}

/**
 * The events a write of `after` over `before` publishes (undefined `before`: the write makes the
 * job): one when the job enters a state of JOB_EVENT_STATES, none otherwise (a note, an execution
 * recorded, a claim, a claim taken over, a retry's RECEIVED). A launch refused for now goes back to
 * QUEUED, and that is published too: the job is waiting again, and says why.
 */
export function eventsFor(before: Job | undefined, after: Job): JobEvent[] {
  const { state } = after;
  if (!isEventState(state)) return [];
  if (before !== undefined && before.state === state) return [];
  return [jobEvent(before?.state, after, state)];
}

function isEventState(state: JobState): state is JobEventState {
  return (JOB_EVENT_STATES as readonly string[]).includes(state);
}

function jobEvent(previousState: JobState | undefined, job: Job, state: JobEventState): JobEvent {
  const reason = reasonOf(job);
  return {
    schema: JOB_EVENT_SCHEMA,
    eventId: jobEventId(job),
    jobId: job.id,
    state,
    ...(previousState === undefined ? {} : { previousState }),
    attempt: job.attempt,
    version: job.version,
    at: job.updatedAt,
    source: sourceOf(job),
    ...(job.rule === undefined ? {} : { rule: job.rule }),
    ...(job.target === undefined ? {} : { target: job.target }),
    ...(reason === undefined ? {} : { reason: reason.slice(0, JOB_EVENT_REASON_MAX) }),
    ...(job.execution === undefined ? {} : { execution: job.execution }),
    ...(job.exitCode === undefined ? {} : { exitCode: job.exitCode }),
    ...(job.outputUri === undefined ? {} : { outputs: job.outputUri }),
    ...(job.cost === undefined ? {} : { cost: job.cost }),
  };
}

/** A failure's error; else what the history says of this change; else the routing reason. */
function reasonOf(job: Job): string | undefined {
  if (job.state === 'FAILED' && job.error !== undefined) return job.error;
  return job.history.at(-1)?.detail ?? job.reason;
}

function sourceOf(job: Job): JobEventSource {
  const { source } = job;
  if (source.kind === 'object') {
    const { bucket, name, generation } = source.object;
    return { kind: 'object', bucket, name, generation };
  }
  return {
    kind: 'request',
    ...(source.task === undefined ? {} : { task: source.task }),
    ...(source.image === undefined ? {} : { image: source.image }),
  };
}

/**
 * Pub/Sub limits: at most 100 attributes, keys up to 256 bytes, values up to 1024 bytes
 * (https://cloud.google.com/pubsub/quotas#resource_limits). Every value here is bounded well below
 * that except a rule's name and a bucket's, which are cut to fit; the object's name (up to 1024
 * bytes of UTF-8, and any bytes) is in the body only.
 */
export const ATTRIBUTE_VALUE_MAX_BYTES = 1024;

/**
 * The attributes a job-events message carries beside its JSON body, for subscription filters such
 * as `attributes.state = "SUCCEEDED"` or `attributes.rule = "csv"`: eventId, jobId, state, attempt,
 * and rule, target and bucket when the job has them.
 */
export function jobEventAttributes(event: JobEvent): Record<string, string> {
  const attributes: Record<string, string> = {
    eventId: event.eventId,
    jobId: event.jobId,
    state: event.state,
    attempt: String(event.attempt),
  };
  if (event.rule !== undefined) attributes.rule = fitAttribute(event.rule);
  if (event.target !== undefined) attributes.target = event.target;
  if (event.source.kind === 'object') attributes.bucket = fitAttribute(event.source.bucket);
  return attributes;
}

/** `value` cut to at most ATTRIBUTE_VALUE_MAX_BYTES of UTF-8, never inside a character. */
function fitAttribute(value: string): string {
  if (Buffer.byteLength(value, 'utf8') <= ATTRIBUTE_VALUE_MAX_BYTES) return value;
  let cut = '';
  for (const char of value) {
    if (Buffer.byteLength(cut + char, 'utf8') > ATTRIBUTE_VALUE_MAX_BYTES) break;
    cut += char;
  }
  return cut;
}

export type JobEventParse = { kind: 'event'; event: JobEvent } | { kind: 'malformed'; reason: string };

/** A job event's JSON body, checked: what a subscriber reads. Fields it does not know are dropped. */
export function parseJobEvent(data: unknown): JobEventParse {
  const bad = (reason: string): JobEventParse => ({ kind: 'malformed', reason });
  if (!isRecord(data)) return bad('the job event is not a JSON object');
  if (data.schema !== JOB_EVENT_SCHEMA) return bad(`the job event's schema is not ${JOB_EVENT_SCHEMA}`);
  const hex32 = (value: unknown) => typeof value === 'string' && /^[0-9a-f]{32}$/.test(value);
  if (!hex32(data.eventId)) return bad('the job event has no valid eventId');
  if (!hex32(data.jobId)) return bad('the job event has no valid jobId');
  if (typeof data.state !== 'string' || !isEventState(data.state as JobState))
    return bad(`the job event's state is not one of ${JOB_EVENT_STATES.join(', ')}`);
  const positive = (value: unknown) => Number.isInteger(value) && (value as number) >= 1;
  if (!positive(data.attempt)) return bad('the job event has no valid attempt');
  if (!positive(data.version)) return bad('the job event has no valid version');
  if (typeof data.at !== 'string' || Number.isNaN(Date.parse(data.at)))
    return bad('the job event has no valid time (at)');
  const source = parseSource(data.source);
  if (source === undefined) return bad('the job event has no valid source');
  const previous = data.previousState;
  if (previous !== undefined && !(JOB_STATES as readonly unknown[]).includes(previous))
    return bad('the job event has an unknown previousState');
  const text = (value: unknown) => (typeof value === 'string' ? value : undefined);
  const target: Target | undefined =
    data.target === 'vm' || data.target === 'cloud-run-job' ? data.target : undefined;
  const event: JobEvent = {
    schema: JOB_EVENT_SCHEMA,
    eventId: data.eventId as string,
    jobId: data.jobId as string,
    state: data.state as JobEventState,
    ...(previous === undefined ? {} : { previousState: previous as JobState }),
    attempt: data.attempt as number,
    version: data.version as number,
    at: data.at,
    source,
    ...optional('rule', text(data.rule)),
    ...optional('target', target),
    ...optional('reason', text(data.reason)?.slice(0, JOB_EVENT_REASON_MAX)),
    ...optional('execution', text(data.execution)),
    ...optional('exitCode', Number.isInteger(data.exitCode) ? (data.exitCode as number) : undefined),
    ...optional('outputs', text(data.outputs)),
    ...optional('cost', parseCost(data.cost)),
  };
  return { kind: 'event', event };
}

/** A push subscription's delivery of a job event (base64 JSON in message.data). */
export function parseJobEventPush(body: unknown): JobEventParse {
  if (!isPushEnvelope(body)) return { kind: 'malformed', reason: 'the body is not a Pub/Sub push envelope' };
  let data: unknown;
  try {
    data = JSON.parse(Buffer.from(body.message.data ?? '', 'base64').toString('utf8'));
  } catch {
    return { kind: 'malformed', reason: 'message.data is not base64 of a JSON job event' };
  }
  return parseJobEvent(data);
}

function parseSource(value: unknown): JobEventSource | undefined {
  if (!isRecord(value)) return undefined;
  if (value.kind === 'object') {
    const { bucket, name, generation } = value;
    if (typeof bucket !== 'string' || typeof name !== 'string' || typeof generation !== 'string')
      return undefined;
    return { kind: 'object', bucket, name, generation };
  }
  if (value.kind === 'request') {
    return {
      kind: 'request',
      ...optional('task', typeof value.task === 'string' ? value.task : undefined),
      ...optional('image', typeof value.image === 'string' ? value.image : undefined),
    };
  }
  return undefined;
}

function parseCost(value: unknown): ActualCost | undefined {
  if (!isRecord(value) || typeof value.usd !== 'number' || typeof value.billedSeconds !== 'number')
    return undefined;
  const detail = Array.isArray(value.detail) ? value.detail.filter((d) => typeof d === 'string') : [];
  return { usd: value.usd, billedSeconds: value.billedSeconds, detail };
}

function optional<K extends string, V>(key: K, value: V | undefined): { [P in K]?: V } {
  return (value === undefined ? {} : { [key]: value }) as { [P in K]?: V };
}

function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}
