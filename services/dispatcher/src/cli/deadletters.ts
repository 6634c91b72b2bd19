// Messages Pub/Sub gave up delivering, and sending one again: deadletters, replay.
import type { DeadLetter } from '@pipeline/core';
import { Api } from './api.ts';
import { API_OPTIONS, integerOption, parse } from './args.ts';
import { say, UsageError, type Io } from './errors.ts';
import { deadLettersTable, printable } from './format.ts';

export async function deadLettersCommand(args: string[], env: NodeJS.ProcessEnv, io: Io): Promise<number> {
  const { values } = parse('deadletters', args, { ...API_OPTIONS, limit: { type: 'string' } });
  const limit = integerOption('deadletters', 'limit', values.limit, 1, 1000) ?? 100;
  const api = new Api(values.url, env, 'deadletters');
  const answer = await api.json<{ messages: DeadLetter[]; note?: string }>(
    'GET',
    `/deadletters?limit=${limit}`,
  );
  say(io, values.json ? JSON.stringify(answer, null, 2) : deadLettersTable(answer.messages, answer.note));
  return 0;
}

export async function replayCommand(args: string[], env: NodeJS.ProcessEnv, io: Io): Promise<number> {
  const { values, positionals } = parse('replay', args, API_OPTIONS, { min: 1, max: 1, what: 'message ID' });
  // Pub/Sub message ids, as the API takes them.
  if (!/^[0-9A-Za-z_-]{1,100}$/.test(positionals[0]))
    throw new UsageError(`${JSON.stringify(positionals[0])} is not a message id`, 'replay');
  const api = new Api(values.url, env, 'replay');
  const answer = await api.json<{ id: string; topic: string; messageId: string }>(
    'POST',
    `/deadletters/${encodeURIComponent(positionals[0])}/replay`,
  );
  say(
    io,
    values.json
      ? JSON.stringify(answer, null, 2)
      : `dead letter ${printable(answer.id)} published again to ${printable(answer.topic)} as message ${printable(answer.messageId)}`,
  );
  return 0;
}
