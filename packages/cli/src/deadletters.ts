// Messages Pub/Sub gave up delivering, and sending one again: deadletters, replay.
import type { DeadLetter } from '@pipeline/core';
import { Api } from './api.ts';
import { parse } from './args.ts';
import { COMMANDS } from './commands.ts';
import { say, UsageError, type Io } from './errors.ts';
import { deadLettersTable, printable } from './format.ts';

export async function deadLettersCommand(args: string[], env: NodeJS.ProcessEnv, io: Io): Promise<number> {
  const { values } = parse(COMMANDS.deadletters, args);
  const api = new Api(values.url, env, 'deadletters');
  const answer = await api.json<{ messages: DeadLetter[]; note?: string }>(
    'GET',
    `/deadletters?limit=${values.limit}`,
  );
  say(io, values.json ? JSON.stringify(answer, null, 2) : deadLettersTable(answer.messages, answer.note));
  return 0;
}

export async function replayCommand(args: string[], env: NodeJS.ProcessEnv, io: Io): Promise<number> {
  const { values, positionals } = parse(COMMANDS.replay, args);
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
