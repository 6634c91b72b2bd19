// The dispatcher's HTTP API, built from its ports; it never listens (index/local main do). Only HTTP
// lives here: bodies are parsed in job-request.ts, decisions are the dispatcher's and the reconciler's,
// and without identity checks the browser guards of local/browser-guards.ts stand in for them.
// Every route that changes jobs publishes the job events of the outbox before it answers
// (dispatcher.publishEvents), so a push's or a completion's events leave with its request.
//
//   POST /pubsub/push   a Pub/Sub push delivery of a Cloud Storage notification
//   POST /pubsub/completions  a push delivery of a task's completion event
//   POST /jobs          submit an object ({ "inputUri": "gs://bucket/object" }) or a container run,
//                       now or later ("runAt": an ISO time, or "cron": "*/15 * * * *")
//   POST /plan          a dry run: route, reason and estimated cost of a file or request, no job
//   GET  /jobs          newest first; ?state=FAILED&limit=50&pageToken=...; ?state=QUEUED: in queue
//                       order, each with its position and why it waits; ?idPrefix=3f2a1b: the jobs
//                       whose id starts so (6 to 32 lowercase hex), by id: what a short id names
//   GET  /capacity      limits, what is in use, and the head of the queue with why each job waits
//   GET  /jobs/:id      one job, with its route, reason, attempts and history
//   GET  /jobs/:id/logs the log of an attempt as text: ?attempt=N, ?offset=BYTES or ?tail=BYTES
//   GET  /jobs/:id/outputs  what the job wrote under its prefix of the output bucket (job-outputs.ts)
//   GET  /jobs/:id/outputs/NAME  one of them, streamed, read-only
//   GET  /latest?object=NAME  where the newest succeeded generation's results of an object are (_LATEST)
//   POST /jobs/:id/cancel  stop it on its platform; it ends CANCELLED
//   POST /jobs/:id/retry   a FAILED or CANCELLED job runs again, as a new attempt
//   GET  /deadletters   messages Pub/Sub gave up delivering, with why
//   POST /deadletters/:id/replay  publish one again to the topic it came from
//   GET  /events        local mode: job events as Server-Sent Events (the dashboard's live updates)
//   GET  /healthz       liveness
//   POST /reap          delete the pipeline VMs that outlived their work (Cloud Scheduler)
//   POST /reconcile     close what completions missed, time out, launch due jobs (Cloud Scheduler);
//                       then continue RUNNING backfills from their cursor
//   POST /backfill      make the jobs of the objects already in a bucket (backfill.ts); "dryRun": count only
//   GET  /backfills     the newest backfills, with progress; GET /backfills/:id one of them
//   POST /backfills/:id/cancel  stop a RUNNING backfill after its current page
import express, { type NextFunction, type Request, type RequestHandler, type Response } from 'express';
import {
  isJobId,
  JOB_STATES,
  latestPointerName,
  parseLatestPointer,
  parseCompletionPush,
  parsePush,
  type DeadLetterQueue,
  type JobState,
  type Ledger,
} from '@pipeline/core';
import type { Logger } from 'pino';
import { RequestError, RetryLaterError, type Dispatcher, type Intake } from './dispatcher.ts';
import { parseJobRequest, parsePlanRequest } from './job-request.ts';
import type { Backfiller } from './backfill.ts';
import { parseBackfillRequest } from './backfill-request.ts';
import { jobOutputsHandlers } from './job-outputs.ts';
import { onlyLocalHosts, sameOriginWrites } from './local/browser-guards.ts';
import type { LocalJobEvents } from './local/local-events.ts';
import type { Reconciler } from './reconciler.ts';

export interface AppPorts {
  dispatcher: Dispatcher;
  /** Runs a reconcile pass for POST /reconcile. */
  reconciler: Pick<Reconciler, 'pass'>;
  ledger: Ledger;
  logger: Logger;
  /** Who may call: `push` guards POST /pubsub/push, `api` the /jobs routes. None in local mode (loopback only). */
  auth?: { push: RequestHandler; api: RequestHandler };
  /** Deletes VMs that outlived their work (gcp/reaper.ts); none in local mode, which makes no VMs. */
  reaper?: { reap(): Promise<unknown> };
  /**
   * Without identity checks (local mode), the host names requests may name besides localhost,
   * 127.0.0.1 and ::1: the address the server listens on. Others are refused (DNS rebinding).
   */
  localHosts?: string[];
  /** The dead-letter subscription (gcp/dead-letters.ts); none in local mode, which has no Pub/Sub. */
  deadLetters?: DeadLetterQueue;
  /** Backfills (backfill.ts); without them, the /backfill routes answer 404. */
  backfills?: Pick<Backfiller, 'start' | 'dryRun' | 'get' | 'list' | 'cancel' | 'continueRunning'>;
  /** Local mode's job events, streamed at GET /events; none on Google Cloud (the topic has them). */
  localEvents?: LocalJobEvents;
}

/** How long POST /backfill works on pages before it answers; the reconcile passes do the rest. */
const BACKFILL_REQUEST_MS = 5_000;
/** How long a dry run counts, at most: its answer says whether it got to the end. */
const BACKFILL_DRY_RUN_MS = 50_000;
/** How long a reconcile pass advances backfills, within Cloud Scheduler's 300 s attempt deadline. */
const BACKFILL_PASS_MS = 60_000;
const BACKFILL_ID = /^[0-9a-f]{16}$/;

const open: RequestHandler = (_req, _res, next) => next();

const MAX_PAGE = 200;

const MAX_LOG_BYTES = 1024 * 1024;
const DEFAULT_LOG_TAIL = 64 * 1024;

export function buildApp({
  dispatcher,
  reconciler,
  ledger,
  logger,
  auth,
  reaper,
  deadLetters,
  backfills,
  localEvents,
  localHosts = [],
}: AppPorts): express.Express {
  const app = express();
  const push = auth?.push ?? open;
  const api = auth?.api ?? sameOriginWrites;
  app.disable('x-powered-by');
  if (auth === undefined) app.use(onlyLocalHosts(localHosts));
  const json = express.json({ limit: '1mb' }); // after the identity check: strangers' bodies are not parsed

  app.get('/healthz', (_req, res) => {
    res.json({ status: 'ok' });
  });

  app.post('/pubsub/push', push, json, async (req, res) => {
    const parsed = parsePush(req.body);
    if (parsed.kind === 'malformed') {
      // 4xx: Pub/Sub delivers it again and, after the subscription's attempts, to the dead-letter topic.
      logger.warn({ messageId: parsed.messageId, reason: parsed.reason }, 'malformed push message refused');
      res.status(400).json({ error: parsed.reason });
      return;
    }
    if (parsed.kind === 'not-storage') {
      logger.info(
        { messageId: parsed.messageId, reason: parsed.reason },
        'not a storage notification: acknowledged and ignored',
      );
      res.status(204).end();
      return;
    }
    const intake = await dispatcher.onStorageEvent(parsed.event);
    await dispatcher.publishEvents();
    const { object } = parsed.event;
    if (intake.outcome === 'skipped') {
      logger.info(
        { object: `${object.bucket}/${object.name}#${object.generation}`, reason: intake.reason },
        'event acknowledged, no work',
      );
      res.status(204).end();
      return;
    }
    answer(res, intake);
  });

  // The end of a task, published by the worker (Cloud Run) or the VM agent to the completions topic.
  // A repeated or late report (an older attempt, a job already final) changes nothing.
  app.post('/pubsub/completions', push, json, async (req, res) => {
    const parsed = parseCompletionPush(req.body);
    if (parsed.kind === 'malformed') {
      logger.warn({ reason: parsed.reason }, 'malformed completion refused');
      res.status(400).json({ error: parsed.reason });
      return;
    }
    const job = await dispatcher.onCompletion(parsed.completion);
    await dispatcher.publishEvents();
    if (job === undefined) {
      logger.warn(
        { jobId: parsed.completion.jobId },
        'a completion for a job the ledger does not know: acknowledged',
      );
    }
    res.status(204).end();
  });

  app.post('/jobs', api, json, async (req, res) => {
    const request = parseJobRequest(req.body);
    const intake =
      request.kind === 'object'
        ? await dispatcher.submitObject(request, request.when)
        : await dispatcher.submitContainer(request.container, request.when);
    await dispatcher.publishEvents();
    if (intake.outcome === 'skipped') throw new RequestError('INVALID', intake.reason);
    answer(res, intake);
  });

  // A dry run: where a file or a request would run and what it would cost on each place priced,
  // without making a job (job-request.ts says what the body may be).
  app.post('/plan', api, json, async (req, res) => {
    const request = parsePlanRequest(req.body);
    const placement =
      request.kind === 'file'
        ? await dispatcher.plan({ kind: 'object', object: request.object })
        : request.kind === 'object'
          ? await dispatcher.planObject(request)
          : await dispatcher.planContainer(request.container);
    res.json(placement);
  });

  app.get('/jobs', api, async (req, res) => {
    const state = typeof req.query.state === 'string' ? req.query.state.toUpperCase() : undefined;
    if (state !== undefined && !(JOB_STATES as readonly string[]).includes(state)) {
      throw new RequestError('INVALID', `state must be one of ${JOB_STATES.join(', ')}`);
    }
    const limit = req.query.limit === undefined ? 50 : Number(req.query.limit);
    if (!Number.isInteger(limit) || limit < 1 || limit > MAX_PAGE)
      throw new RequestError('INVALID', `limit must be 1 to ${MAX_PAGE}`);
    const pageToken = typeof req.query.pageToken === 'string' ? req.query.pageToken : undefined;
    if (req.query.idPrefix !== undefined) {
      const prefix = req.query.idPrefix;
      if (typeof prefix !== 'string' || !/^[0-9a-f]{6,32}$/.test(prefix))
        throw new RequestError('INVALID', 'idPrefix must be 6 to 32 lowercase hex characters of a job id');
      if (state !== undefined || pageToken !== undefined)
        throw new RequestError('INVALID', 'idPrefix takes no state or pageToken');
      res.json({ jobs: await ledger.withIdPrefix(prefix, limit) });
      return;
    }
    if (state === 'QUEUED' && pageToken === undefined) {
      // In the order they launch, not newest first: the head of the queue, each saying why it waits.
      const view = await dispatcher.queue.view(limit);
      const jobs = await Promise.all(view.queue.jobs.map((q) => ledger.get(q.id)));
      res.json({
        jobs: jobs.flatMap((job, i) => {
          const { position, reason } = view.queue.jobs[i];
          return job?.state === 'QUEUED' ? [{ ...job, waiting: { position, reason } }] : [];
        }),
        ...(view.queue.more ? { more: true } : {}),
      });
      return;
    }
    let page;
    try {
      page = await ledger.list({ state: state as JobState | undefined, limit, pageToken });
    } catch (err) {
      if (err instanceof RangeError) throw new RequestError('INVALID', err.message);
      throw err;
    }
    res.json(page);
  });

  app.get('/capacity', api, async (req, res) => {
    const limit = optionalInteger(req.query.limit, 'limit', 1) ?? 50;
    if (limit > MAX_PAGE) throw new RequestError('INVALID', `limit must be 1 to ${MAX_PAGE}`);
    res.json(await dispatcher.queue.view(limit));
  });

  app.get('/jobs/:id', api, async (req, res) => {
    const id = String(req.params.id);
    const job = isJobId(id) ? await ledger.get(id) : undefined;
    if (job === undefined) throw new RequestError('NOT_FOUND', `no job ${id}`);
    res.json(job);
  });

  // The text of one attempt's log. Without ?offset, the last ?tail bytes (64 KiB); with ?offset, up
  // to 1 MiB from there: a follower asks again from X-Next-Offset until X-Job-State is final.
  app.get('/jobs/:id/logs', api, async (req, res) => {
    const attempt = optionalInteger(req.query.attempt, 'attempt', 1);
    const offset = optionalInteger(req.query.offset, 'offset', 0);
    const tail = optionalInteger(req.query.tail, 'tail', 0) ?? DEFAULT_LOG_TAIL;
    const log = await dispatcher.readLog(String(req.params.id), {
      attempt,
      offset,
      tail: Math.min(tail, MAX_LOG_BYTES),
      maxBytes: MAX_LOG_BYTES,
    });
    res
      .status(200)
      .set({
        'Content-Type': 'text/plain; charset=utf-8',
        'Cache-Control': 'no-store',
        'X-Content-Type-Options': 'nosniff',
        'X-Attempt': String(log.attempt),
        'X-Log-Size': String(log.size),
        'X-Next-Offset': String(log.nextOffset),
        'X-Job-State': log.state,
      })
      .send(log.data);
  });

  const outputs = jobOutputsHandlers({
    ledger,
    blobs: dispatcher.ports.blobs,
    outputBucket: dispatcher.ports.outputBucket,
    logger,
  });
  app.get('/latest', api, async (req, res) => {
    const name = req.query.object;
    if (typeof name !== 'string' || name === '')
      throw new RequestError('INVALID', 'give the object name: /latest?object=NAME');
    const { blobs, outputBucket } = dispatcher.ports;
    const stored = await blobs.get(outputBucket, latestPointerName(name));
    const pointer = stored === undefined ? undefined : parseLatestPointer(stored.data.toString('utf8'));
    if (pointer === undefined)
      throw new RequestError('NOT_FOUND', `no job of ${JSON.stringify(name)} has succeeded yet`);
    res.json({ ...pointer, outputUri: blobs.uri(outputBucket, pointer.prefix) });
  });
  app.get('/jobs/:id/outputs', api, outputs.list);
  app.get('/jobs/:id/outputs/*name', api, outputs.send);

  app.post('/jobs/:id/cancel', api, async (req, res) => {
    const job = await dispatcher.cancel(String(req.params.id));
    await dispatcher.publishEvents();
    res.json(job);
  });

  app.post('/jobs/:id/retry', api, async (req, res) => {
    const job = await dispatcher.retry(String(req.params.id));
    await dispatcher.publishEvents();
    res.json(job);
  });

  app.post('/reconcile', api, async (_req, res) => {
    const report = await reconciler.pass();
    const continued = backfills === undefined ? undefined : await backfills.continueRunning(BACKFILL_PASS_MS);
    // The pass's changes and the backfills' new jobs publish their events before the answer.
    await dispatcher.publishEvents();
    res.json(continued === undefined ? report : { ...report, backfills: continued });
  });

  const backfillsHere = () => {
    if (backfills === undefined) throw new RequestError('NOT_FOUND', 'no backfills in this mode');
    return backfills;
  };
  const backfillId = (req: Request) => {
    const id = String(req.params.id);
    if (!BACKFILL_ID.test(id)) throw new RequestError('NOT_FOUND', `no backfill ${id}`);
    return id;
  };

  // 202: it runs on after the answer (the reconcile passes continue it); a dry run makes nothing and
  // answers 200 with what it would do.
  app.post('/backfill', api, json, async (req, res) => {
    const { dryRun, ...request } = parseBackfillRequest(req.body);
    const service = backfillsHere();
    if (dryRun) {
      res.json({ ...(await service.dryRun(request, BACKFILL_DRY_RUN_MS)), dryRun: true });
      return;
    }
    const started = await service.start(request, BACKFILL_REQUEST_MS);
    await dispatcher.publishEvents(); // the jobs its first pages made
    res.status(202).json(started);
  });

  app.get('/backfills', api, async (req, res) => {
    const limit = optionalInteger(req.query.limit, 'limit', 1) ?? 20;
    if (limit > MAX_PAGE) throw new RequestError('INVALID', `limit must be 1 to ${MAX_PAGE}`);
    // A dispatcher without backfills has none to list (as GET /deadletters without Pub/Sub).
    if (backfills === undefined) {
      res.json({ backfills: [], note: 'this dispatcher runs no backfills' });
      return;
    }
    res.json({ backfills: await backfills.list(limit) });
  });

  app.get('/backfills/:id', api, async (req, res) => {
    const id = backfillId(req);
    const backfill = await backfillsHere().get(id);
    if (backfill === undefined) throw new RequestError('NOT_FOUND', `no backfill ${id}`);
    res.json(backfill);
  });

  app.post('/backfills/:id/cancel', api, async (req, res) => {
    res.json(await backfillsHere().cancel(backfillId(req)));
  });

  app.get('/deadletters', api, async (req, res) => {
    const limit = optionalInteger(req.query.limit, 'limit', 1) ?? 100;
    if (limit > 1000) throw new RequestError('INVALID', 'limit must be 1 to 1000');
    if (deadLetters === undefined) {
      res.json({ messages: [], note: 'local mode has no Pub/Sub, so no dead letters' });
      return;
    }
    res.json({ messages: await deadLetters.list(limit) });
  });

  app.post('/deadletters/:id/replay', api, async (req, res) => {
    const id = String(req.params.id);
    if (!/^[0-9A-Za-z_-]{1,100}$/.test(id)) throw new RequestError('INVALID', 'not a message id');
    const replayed = deadLetters === undefined ? undefined : await deadLetters.replay(id);
    if (replayed === undefined) throw new RequestError('NOT_FOUND', `no dead letter ${id}`);
    logger.info({ deadLetter: id, ...replayed }, 'dead letter replayed');
    res.json({ id, ...replayed });
  });

  if (localEvents !== undefined) app.get('/events', api, localEvents.streamHandler());

  app.post('/reap', api, async (_req, res) => {
    if (reaper === undefined) {
      res.status(404).json({ error: 'no reaper in this mode' });
      return;
    }
    res.json(await reaper.reap());
  });

  // The dashboard's router (and its files) load on its first request, not at start: cold starts
  // serve Pub/Sub, not people.
  let dashboard: Promise<RequestHandler> | undefined;
  app.use(async (req, res, next) => {
    const page = req.path === '/' || req.path.startsWith('/dashboard/');
    if (!page || (req.method !== 'GET' && req.method !== 'HEAD')) return next();
    dashboard ??= import('./dashboard/router.ts').then(({ dashboardRouter }) =>
      dashboardRouter(api, undefined, { events: localEvents !== undefined }),
    );
    (await dashboard)(req, res, next);
  });

  app.use((_req, res) => {
    res.status(404).json({ error: 'no such route' });
  });

  app.use(async (err: unknown, req: Request, res: Response, _next: NextFunction) => {
    void _next;
    // A request that failed after it changed a job (a success whose pointer could not move: 503)
    // still publishes what it stored.
    if (req.method === 'POST') await dispatcher.publishEvents();
    if (err instanceof RetryLaterError) {
      res.status(503).json({ error: err.message });
      return;
    }
    if (err instanceof RequestError) {
      const status = { NOT_FOUND: 404, INVALID: 400, CONFLICT: 409 }[err.code];
      res.status(status).json({ error: err.message });
      return;
    }
    const status = (err as { status?: unknown }).status;
    if (typeof status === 'number' && status >= 400 && status < 500) {
      // express.json: a body that is not JSON, or too large
      res.status(status).json({ error: (err as Error).message });
      return;
    }
    logger.error({ err }, 'request failed');
    res.status(500).json({ error: 'internal error' });
  });
  return app;
}

function optionalInteger(value: unknown, name: string, min: number): number | undefined {
  if (value === undefined) return undefined;
  const n = typeof value === 'string' && /^\d{1,15}$/.test(value) ? Number(value) : NaN;
  if (!(n >= min)) throw new RequestError('INVALID', `${name} must be a whole number of at least ${min}`);
  return n;
}

function answer(res: Response, intake: Exclude<Intake, { outcome: 'skipped' }>): void {
  const { job } = intake;
  // What res.json sends, in one write and without its ETag (a hash of the body: of no use on the
  // answer to a POST, and a tenth of a push's cost).
  res
    .status(intake.outcome === 'created' ? 201 : 200)
    .set('Content-Type', 'application/json; charset=utf-8')
    .end(JSON.stringify({ id: job.id, state: job.state, duplicate: intake.outcome === 'duplicate', job }));
}
