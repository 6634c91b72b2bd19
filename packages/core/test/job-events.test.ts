// Which writes of a job publish an event, as a table over the transitions themselves (so the table
// follows what transitions.ts really writes), and the event, its attributes and its parser.
import { describe, expect, it } from 'vitest';
import {
  adopted,
  cancelled,
  DEFAULT_PRICES,
  endAttempt,
  eventsFor,
  failedInQueue,
  jobIdFor,
  JOB_EVENT_SCHEMA,
  jobEventAttributes,
  jobEventId,
  launchFailed,
  launching,
  newJob,
  newScheduledJob,
  notedOnce,
  parseJobEvent,
  parseJobEventPush,
  parseRoutingConfig,
  placeJob,
  requeued,
  retried,
  routed,
  started,
  takeOver,
  type Job,
  type JobEvent,
} from '../src/index.ts';

const at = (seconds: number) => new Date(Date.UTC(2026, 2, 1, 0, 0, seconds)).toISOString();
const OBJECT = { bucket: 'input', name: 'q3 "final".csv', generation: '7', size: 2048, metadata: {} };
const ROUTING = parseRoutingConfig({
  rules: [
    {
      name: 'csv',
      match: { path: '**' },
      target: 'cloud-run-job',
      job: { task: 'logreg', cpu: 1, memory: '2GiB' },
    },
  ],
});
const uri = (p: string) => `gs://output/${p}`;
/** The upload's own job id: it writes under the object's name and generation. */
const ID = jobIdFor('input', 'q3.csv', '7');

function queuedJob(): Job {
  const job = newJob(ID, { kind: 'object', object: { ...OBJECT, name: 'q3.csv' } }, at(0));
  return routed(job, placeJob(job, ROUTING), at(1), ROUTING, uri);
}
const launched = () => launching(queuedJob(), 1, at(2))!;
const adoptedJob = () => adopted(launched(), 1, at(2), { execution: 'exec-1' })!;
const runningJob = () => started(adoptedJob(), 1, at(3))!;
const ended = (job: Job, exitCode: number) =>
  endAttempt(
    job,
    1,
    { outcome: exitCode === 0 ? 'succeeded' : 'failed', exitCode, finishedAt: at(9) },
    at(9),
    DEFAULT_PRICES,
  )!.job;

/** [what, before, after, the states whose events the write publishes]. */
const WRITES: [string, () => Job | undefined, () => Job, string[]][] = [
  ['a claim routed at once (a push)', () => undefined, queuedJob, ['QUEUED']],
  [
    'a claim of a bare RECEIVED job',
    () => undefined,
    () => newJob('b'.repeat(32), { kind: 'object', object: OBJECT }, at(0)),
    [],
  ],
  [
    'a scheduled job made',
    () => undefined,
    () =>
      newScheduledJob('c'.repeat(32), { kind: 'request', task: 'logreg', args: [], env: {} }, at(0), at(60)),
    ['SCHEDULED'],
  ],
  [
    'a RECEIVED job routed',
    () => newJob('d'.repeat(32), { kind: 'object', object: OBJECT }, at(0)),
    () => {
      const job = newJob('d'.repeat(32), { kind: 'object', object: OBJECT }, at(0));
      return routed(job, placeJob(job, ROUTING), at(1), ROUTING, uri);
    },
    ['QUEUED'],
  ],
  ['a launch admitted', queuedJob, launched, ['LAUNCHED']],
  ['its execution recorded', launched, adoptedJob, []],
  ['a start', adoptedJob, runningJob, ['RUNNING']],
  ['a success', runningJob, () => ended(runningJob(), 0), ['SUCCEEDED']],
  ['a failure with retries left (SCHEDULED)', runningJob, () => ended(runningJob(), 1), ['SCHEDULED']],
  [
    'a launch refused for now, back in the queue',
    launched,
    () => requeued(launched(), 1, at(3), { reason: '429', backoffMs: 2000 })!,
    ['QUEUED'],
  ],
  [
    'a launch refused for good',
    launched,
    () => launchFailed(launched(), 1, at(3), 'bad request')!,
    ['FAILED'],
  ],
  [
    'a job failed in the queue',
    queuedJob,
    () => failedInQueue(queuedJob(), 1, at(3), 'waited too long')!,
    ['FAILED'],
  ],
  [
    'a cancel of a running job',
    runningJob,
    () => cancelled(runningJob(), at(5), DEFAULT_PRICES),
    ['CANCELLED'],
  ],
  [
    'a retry (RECEIVED again)',
    () => launchFailed(launched(), 1, at(3), 'x')!,
    () => retried(launchFailed(launched(), 1, at(3), 'x')!, at(4))!,
    [],
  ],
  ['a note', runningJob, () => notedOnce(runningJob(), at(4), 'pointer not moved')!, []],
  [
    'a claim taken over',
    () => newJob('e'.repeat(32), { kind: 'object', object: OBJECT }, at(0)),
    () => takeOver(newJob('e'.repeat(32), { kind: 'object', object: OBJECT }, at(0)), at(999)),
    [],
  ],
];

describe('eventsFor', () => {
  it.each(WRITES)('%s publishes %j', (_what, before, after, states) => {
    const events = eventsFor(before(), after());
    expect(events.map((event) => event.state)).toEqual(states);
    for (const event of events) {
      expect(event.eventId).toBe(jobEventId(after()));
      expect(event.version).toBe(after().version);
      expect(event.previousState).toBe(before()?.state);
    }
  });

  it('gives one transition the same id however often it is made, and two transitions different ids', () => {
    expect(eventsFor(queuedJob(), launched())[0]!.eventId).toBe(
      eventsFor(queuedJob(), launched())[0]!.eventId,
    );
    const ids = [
      jobEventId({ id: 'a'.repeat(32), attempt: 1, state: 'QUEUED', version: 2 }),
      jobEventId({ id: 'a'.repeat(32), attempt: 1, state: 'QUEUED', version: 5 }), // queued again
      jobEventId({ id: 'a'.repeat(32), attempt: 2, state: 'QUEUED', version: 5 }),
      jobEventId({ id: 'a'.repeat(32), attempt: 1, state: 'LAUNCHED', version: 5 }),
      jobEventId({ id: 'b'.repeat(32), attempt: 1, state: 'QUEUED', version: 2 }),
    ];
    expect(new Set(ids).size).toBe(ids.length);
    for (const id of ids) expect(id).toMatch(/^[0-9a-f]{32}$/);
  });

  it('publishes an IGNORED job, which a loader waiting for its file needs to hear of', () => {
    const job = newJob(ID, { kind: 'object', object: { ...OBJECT, name: 'notes.txt' } }, at(0));
    const ignored = routed(job, { kind: 'ignore', reason: 'no rule matched' }, at(1), ROUTING, uri);
    expect(eventsFor(undefined, ignored).map((e) => [e.state, e.reason])).toEqual([
      ['IGNORED', 'no rule matched'],
    ]);
  });

  it('says what the next system needs: the object, outputs, reason, execution, exit code and cost', () => {
    const [success] = eventsFor(runningJob(), ended(runningJob(), 0));
    expect(success).toMatchObject({
      schema: JOB_EVENT_SCHEMA,
      jobId: ID,
      state: 'SUCCEEDED',
      previousState: 'RUNNING',
      attempt: 1,
      at: at(9),
      source: { kind: 'object', bucket: 'input', name: 'q3.csv', generation: '7' },
      rule: 'csv',
      target: 'cloud-run-job',
      reason: 'exit code 0',
      execution: 'exec-1',
      exitCode: 0,
      outputs: 'gs://output/q3.csv/7/',
    });
    expect(success!.cost?.usd).toBeGreaterThan(0);
    const [failure] = eventsFor(launched(), launchFailed(launched(), 1, at(3), 'bad\nrequest')!);
    expect(failure!.reason).toBe('bad\nrequest');
    const [queued] = eventsFor(undefined, queuedJob());
    expect(queued!.previousState).toBeUndefined();
    expect(queued!.reason).toBe(queuedJob().reason);
  });
});

describe('jobEventAttributes', () => {
  it('carries state, rule, target and the ids for filters, all strings', () => {
    const [event] = eventsFor(runningJob(), ended(runningJob(), 0));
    expect(jobEventAttributes(event!)).toEqual({
      eventId: event!.eventId,
      jobId: ID,
      state: 'SUCCEEDED',
      attempt: '1',
      rule: 'csv',
      target: 'cloud-run-job',
      bucket: 'input',
    });
  });

  it("cuts a value to Pub/Sub's 1024 bytes without splitting a character, and leaves the object name out", () => {
    const [event] = eventsFor(undefined, queuedJob());
    const long = {
      ...event!,
      rule: 'é'.repeat(600),
      source: { ...event!.source, name: 'x'.repeat(1024) },
    } as JobEvent;
    const attributes = jobEventAttributes(long);
    expect(Buffer.byteLength(attributes.rule!, 'utf8')).toBe(1024);
    expect(attributes.rule).toBe('é'.repeat(512));
    expect(Object.values(attributes).join('')).not.toContain('x'.repeat(100));
  });
});

describe('parseJobEvent', () => {
  const [event] = eventsFor(runningJob(), ended(runningJob(), 0));

  it("reads what the dispatcher writes, as JSON text and as a push delivery's base64", () => {
    expect(parseJobEvent(JSON.parse(JSON.stringify(event)))).toEqual({ kind: 'event', event });
    const push = {
      message: {
        data: Buffer.from(JSON.stringify(event)).toString('base64'),
        attributes: jobEventAttributes(event!),
      },
    };
    expect(parseJobEventPush(push)).toEqual({ kind: 'event', event });
  });

  it.each([
    [null, 'not a JSON object'],
    [{ ...event, schema: 'other/9' }, 'schema'],
    [{ ...event, eventId: 'nope' }, 'eventId'],
    [{ ...event, jobId: undefined }, 'jobId'],
    [{ ...event, state: 'RECEIVED' }, 'state'],
    [{ ...event, attempt: 0 }, 'attempt'],
    [{ ...event, at: 'yesterday' }, 'time'],
    [{ ...event, source: { kind: 'object', bucket: 'b' } }, 'source'],
    [{ ...event, previousState: 'LOST' }, 'previousState'],
  ])('refuses %j, saying why', (data, why) => {
    const parsed = parseJobEvent(data);
    expect(parsed.kind).toBe('malformed');
    expect(parsed.kind === 'malformed' && parsed.reason).toContain(why);
  });

  it('refuses a push whose data is not JSON', () => {
    expect(parseJobEventPush({ message: { data: Buffer.from('{').toString('base64') } }).kind).toBe(
      'malformed',
    );
    expect(parseJobEventPush({ nope: true }).kind).toBe('malformed');
  });
});
