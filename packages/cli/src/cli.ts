// `pipeline`: run the local pipeline, put files into an input bucket, and operate jobs through the
// HTTP API of the local pipeline or of a deployed dispatcher. Each command is declared in
// commands.ts and lives in a file of its own here; they are loaded when used, so `pipeline jobs` does
// not load the local pipeline (the dispatcher's, which `start` runs) or the Google clients.
import { HelpRequested, SettingsError, UsageError, type Io } from './errors.ts';

export { Failure, HelpRequested, UsageError, type Io } from './errors.ts';

import type { CommandName } from './commands.ts';

export { overview, usageFor } from './usage.ts';

type Command = (args: string[], env: NodeJS.ProcessEnv, io: Io) => Promise<number>;

/** How each command declared in commands.ts is loaded. */
const LOADERS: Record<CommandName, () => Promise<Command>> = {
  start: async () => startCommand,
  submit: async () => (await import('./submit.ts')).submitCommand,
  jobs: async () => (await import('./jobs.ts')).jobsCommand,
  job: async () => (await import('./jobs.ts')).jobCommand,
  capacity: async () => (await import('./capacity.ts')).capacityCommand,
  cancel: async () => (await import('./jobs.ts')).cancelCommand,
  retry: async () => (await import('./jobs.ts')).retryCommand,
  logs: async () => (await import('./logs.ts')).logsCommand,
  run: async () => (await import('./run.ts')).runCommand,
  plan: async () => (await import('./plan.ts')).planCommand,
  simulate: async () => (await import('./plan.ts')).simulateCommand,
  backfill: async () => (await import('./backfill.ts')).backfillCommand,
  backfills: async () => (await import('./backfill.ts')).backfillsCommand,
  'backfill-cancel': async () => (await import('./backfill.ts')).backfillCancelCommand,
  deadletters: async () => (await import('./deadletters.ts')).deadLettersCommand,
  replay: async () => (await import('./deadletters.ts')).replayCommand,
};

/**
 * Runs one command; its exit code. A wrong setting (SettingsError) it prints itself, on one line,
 * exit 2. Throws UsageError (exit 2), Failure (exit 1) or HelpRequested (exit 0), which
 * bin/pipeline.js prints.
 */
export async function cli(argv: string[], env: NodeJS.ProcessEnv, io: Io): Promise<number> {
  const [command, ...rest] = argv;
  if (command === undefined) throw new UsageError('no command given');
  if (command === 'help' || command === '--help' || command === '-h') throw new HelpRequested(rest[0]);
  const load = Object.hasOwn(LOADERS, command) ? LOADERS[command as CommandName] : undefined;
  if (load === undefined) throw new UsageError(`unknown command ${JSON.stringify(command)}`);
  const run = await load();
  try {
    return await run(rest, env, io);
  } catch (err) {
    if (!(err instanceof SettingsError)) throw err;
    io.stderr.write(`pipeline: ${err.message}\n`);
    return 2;
  }
}

async function startCommand(args: string[], env: NodeJS.ProcessEnv): Promise<number> {
  const { parse } = await import('./args.ts');
  const { COMMANDS } = await import('./commands.ts');
  const { localSettingsOf } = await import('./settings.ts');
  // The local pipeline is the dispatcher's, with its local adapters: loaded by this command only.
  const { runLocalUntilSignal } = await import('@pipeline/dispatcher/local/main.ts');
  const { RoutingFileError } = await import('@pipeline/dispatcher/routing-config.ts');
  const { values } = parse(COMMANDS.start, args);
  const settings = localSettingsOf(env, values);
  try {
    await runLocalUntilSignal(settings);
  } catch (err) {
    // The routing config is read before anything starts: its message names the file, rule and field.
    if (err instanceof RoutingFileError) throw new SettingsError(err.message, { cause: err });
    throw err;
  }
  return 0;
}
