// The dispatcher's HTTP API, built from its ports; it never listens (index/local main do).
//
//   POST /pubsub/push   a Pub/Sub push delivery of a Cloud Storage notification
//   POST /pubsub/completions  a push delivery of a task's completion event
//   POST /jobs          submit an object ({ "inputUri": "gs://bucket/object" }) or a container run
//   GET  /jobs          newest first; ?state=FAILED&limit=50&pageToken=...
//   GET  /jobs/:id      one job, with its route, reason and history
//   GET  /healthz       liveness
//   POST /reap          delete the pipeline VMs that outlived their work (Cloud Scheduler)
import express, { type NextFunction, type Request, type RequestHandler, type Response } from 'express';
import {
  isJobId,
  JOB_STATES,
  parseCompletionPush,
  parsePush,
  type JobState,
  type Ledger,
} from '@pipeline/core';
import type { Logger } from 'pino';
import { RequestError, RetryLaterError, type Dispatcher, type Intake } from './dispatcher.ts';
import { parseJobRequest } from './job-request.ts';

export interface AppPorts {
  dispatcher: Dispatcher;
  ledger: Ledger;
  logger: Logger;
  /** Who may call: `push` guards POST /pubsub/push, `api` the /jobs routes. None in local mode (loopback only). */
  auth?: { push: RequestHandler; api: RequestHandler };
  /** Deletes VMs that outlived their work (gcp/reaper.ts); none in local mode, which makes no VMs. */
  reaper?: { reap(): Promise<unknown> };
}

const open: RequestHandler = (_req, _res, next) => next();

const MAX_PAGE = 200;

export function buildApp({ dispatcher, ledger, logger, auth, reaper }: AppPorts): express.Express {
  const app = express();
  const push = auth?.push ?? open;
  const api = auth?.api ?? open;
  app.disable('x-powered-by');
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
        ? await dispatcher.submitObject(request.bucket, request.name, request.generation)
        : await dispatcher.submitContainer(request.container);
    if (intake.outcome === 'skipped') throw new RequestError('INVALID', intake.reason);
    answer(res, intake);
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
    let page;
    try {
      page = await ledger.list({ state: state as JobState | undefined, limit, pageToken });
    } catch (err) {
      if (err instanceof RangeError) throw new RequestError('INVALID', err.message);
      throw err;
    }
    res.json(page);
  });

  app.get('/jobs/:id', api, async (req, res) => {
    const id = String(req.params.id);
    const job = isJobId(id) ? await ledger.get(id) : undefined;
    if (job === undefined) throw new RequestError('NOT_FOUND', `no job ${id}`);
    res.json(job);
  });

  app.post('/reap', api, async (_req, res) => {
    if (reaper === undefined) {
      res.status(404).json({ error: 'no reaper in this mode' });
      return;
    }
    res.json(await reaper.reap());
  });

  app.use((_req, res) => {
    res.status(404).json({ error: 'no such route' });
  });

  app.use((err: unknown, _req: Request, res: Response, _next: NextFunction) => {
    void _next;
    if (err instanceof RetryLaterError) {
      res.status(503).json({ error: err.message });
      return;
    }
    if (err instanceof RequestError) {
      res.status(err.code === 'NOT_FOUND' ? 404 : 400).json({ error: err.message });
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

function answer(res: Response, intake: Exclude<Intake, { outcome: 'skipped' }>): void {
  const { job } = intake;
  res
    .status(intake.outcome === 'created' ? 201 : 200)
    .json({ id: job.id, state: job.state, duplicate: intake.outcome === 'duplicate', job });
}
