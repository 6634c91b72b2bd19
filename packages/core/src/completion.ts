// Completion events: what a task's reporter publishes to the completions topic when an attempt ends
// (the worker on Cloud Run, the VM agent on a VM), and the dispatcher reads from a Pub/Sub push
// delivery. One definition for both sides: the writers build a CompletionEvent and publish it with
// completionAttributes; the reader parses with parseCompletionPush. Pure: the dispatcher decides what
// they change.
import { isPushEnvelope } from './events.ts';
import type { Completion } from './ports.ts';

/** The JSON body of a completion message. */
export interface CompletionEvent {
  jobId: string;
  attempt: number;
  exitCode: number;
  startedAt: string;
  finishedAt: string;
  preempted: boolean;
  /** The Cloud Run execution that ran it (the worker on Cloud Run). */
  execution?: string;
  /** The VM that ran it (the agent). */
  instance?: string;
  /** Why it failed, for people: a reason, or the tail of the task's output. */
  error?: string;
}

/** The longest error text a completion keeps. */
export const COMPLETION_ERROR_MAX = 4096;

/** The message attributes every completion carries beside its JSON body (for filters and people). */
export function completionAttributes(event: CompletionEvent): Record<string, string> {
  return { jobId: event.jobId, attempt: String(event.attempt), exitCode: String(event.exitCode) };
}

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
  return parseCompletionEvent(data);
}

/** A completion event's JSON body, checked. */
export function parseCompletionEvent(data: unknown): CompletionParse {
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
      ...(typeof c.error === 'string' && c.error !== ''
        ? { error: c.error.slice(0, COMPLETION_ERROR_MAX) }
        : {}),
    },
  };
}
