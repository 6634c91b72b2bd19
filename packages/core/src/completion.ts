// Completion events, as the worker (on Cloud Run) and the VM agent publish them to the completions
// topic, read from a Pub/Sub push delivery. Pure: the dispatcher decides what they change.
import { isPushEnvelope } from './events.ts';
import type { Completion } from './ports.ts';

export type CompletionParse =
  { kind: 'completion'; completion: Completion } | { kind: 'malformed'; reason: string };

export function parseCompletionPush(body: unknown): CompletionParse {
  if (!isPushEnvelope(body)) return { kind: 'malformed', reason: 'the body is not a Pub/Sub push envelope' };
  let data: unknown;
  try {
    data = JSON.parse(Buffer.from(body.message.data ?? '', 'base64').toString('utf8'));
  } catch {
    return { kind: 'malformed', reason: 'message.data is not base64 of a JSON completion' };
  }
  if (typeof data !== 'object' || data === null || Array.isArray(data))
    return { kind: 'malformed', reason: 'the completion is not a JSON object' };
  const c = data as Record<string, unknown>;
  if (typeof c.jobId !== 'string' || !/^[0-9a-f]{32}$/.test(c.jobId))
    return { kind: 'malformed', reason: 'the completion has no valid jobId' };
  if (!Number.isInteger(c.attempt) || (c.attempt as number) < 1)
    return { kind: 'malformed', reason: 'the completion has no valid attempt' };
  if (!Number.isInteger(c.exitCode))
    return { kind: 'malformed', reason: 'the completion has no integer exitCode' };
  const time = (value: unknown) =>
    typeof value === 'string' && !Number.isNaN(Date.parse(value)) ? value : undefined;
  const finishedAt = time(c.finishedAt);
  if (finishedAt === undefined)
    return { kind: 'malformed', reason: 'the completion has no valid finishedAt' };
  return {
    kind: 'completion',
    completion: {
      jobId: c.jobId,
      attempt: c.attempt as number,
      exitCode: c.exitCode as number,
      finishedAt,
      startedAt: time(c.startedAt),
      preempted: c.preempted === true,
      ...(typeof c.error === 'string' && c.error !== '' ? { error: c.error.slice(0, 4096) } : {}),
    },
  };
}
