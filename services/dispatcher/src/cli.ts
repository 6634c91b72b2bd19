// `pipeline`: run the local pipeline, put files into an input bucket, and operate jobs through the
// HTTP API of the local pipeline or of a deployed dispatcher. Each command lives in cli/; they are
// loaded when used, so `pipeline jobs` does not load the local pipeline or the Google clients.
import { HelpRequested, SettingsError, UsageError, type Io } from './cli/errors.ts';

export { putObject } from './cli/put-object.ts';
export { Failure, HelpRequested, UsageError, type Io } from './cli/errors.ts';

/** One entry per command: its synopsis (the first line) and more lines of options. */
const COMMANDS: Record<string, string[]> = {
  start: [
    'start [--port N] [--dir DIR] [--config FILE]',
    'run the pipeline on this machine (as npm start does)',
  ],
  submit: [
    'submit FILE... [--name NAME] [--runtime vm|cloud-run-job] [--meta KEY=VALUE]...',
    '    [--param NAME=VALUE]... [--dir DIR | --bucket BUCKET [--progress]] [--json]',
    'put files into the input bucket: the local folder, or with --bucket (or $PIPELINE_INPUT_BUCKET)',
    'a Cloud Storage bucket; a progress bar from 8 MiB, or with --progress. --param sets the',
    "object's metadata pipeline-param-NAME: the job's parameter NAME, if its rule lets uploads set it",
  ],
  jobs: [
    'jobs [--state STATE] [--limit N] [--page-token T]',
    'list jobs, newest first; --state queued: what waits to launch, in launch order, each with',
    'its position, how long it has waited and why it waits. "more:" says the next page\'s command',
  ],
  job: [
    'job ID',
    'one job: route, reason and parameters, its place in the queue (queued at, why it waits,',
    'refusals), attempts with exit codes, durations and the zones that refused them, outputs, logs,',
    'history',
  ],
  capacity: [
    'capacity [--limit N]',
    'what bounds launches: each limit and what is in use per target, ceilings learned from',
    'refusals, and the first N queued jobs (20) with why each waits',
  ],
  logs: [
    'logs ID [--attempt N] [--tail BYTES] [--follow [--interval SECONDS]]',
    "an attempt's log (the last 64 KiB); --follow keeps reading until the job ends,",
    'then exits 0 if it SUCCEEDED, 1 otherwise',
  ],
  cancel: [
    'cancel ID...',
    'stop jobs on their platform, or before they start; a line for each, exit 1 if any was refused',
  ],
  retry: [
    'retry ID...',
    'run FAILED or CANCELLED jobs again, as a new attempt; a line for each, exit 1 if any was',
    'refused or failed at once',
  ],
  run: [
    'run (--task T | --image I) [--arg A]... [--env K=V]... [--cpu N] [--memory M] [--gpu G]',
    '    [--expected-duration D] [--at TIME | --cron EXPR]',
    'run a container with no input file; or run --input gs://B/O [--param NAME=VALUE]...',
    '[--at TIME | --cron EXPR]: the object again, with parameters of this run (its rule must allow',
    'them). TIME: ISO 8601 (2026-12-01T06:00:00Z) or +DURATION (+10m); EXPR: five cron fields, UTC',
  ],
  plan: [
    'plan FILE|gs://BUCKET/OBJECT... [--runtime vm|cloud-run-job] [--meta KEY=VALUE]...',
    'a dry run: where each would run, why, and the expected time and cost on every place priced',
  ],
  simulate: [
    'simulate WORKLOAD [--config FILE] [--threshold SIZE]',
    'replay a workload file under every routing policy: cost, makespan, deadline misses',
    '(runs here; --config takes prices from a routing config; workloads/week.json is one)',
  ],
  deadletters: ['deadletters [--limit N]', 'messages Pub/Sub gave up delivering, and why'],
  replay: ['replay ID', 'publish a dead letter again to the topic it came from'],
};

const JOB_ID_NOTE =
  "A job's ID is its 32 characters, or the first 6 or more of them if no other job's id starts so";
/** The commands that take job IDs. */
const TAKE_JOB_IDS = new Set(['job', 'logs', 'cancel', 'retry']);

const API_NOTE = `Every command but start, submit and simulate talks to --url URL (default $PIPELINE_URL or http://127.0.0.1:8080)
and takes --json for the API's own JSON. An https URL off this machine gets an identity token from
gcloud auth print-identity-token ($PIPELINE_TOKEN gives one; $PIPELINE_AUTH=on|off|auto).
${JOB_ID_NOTE}.
Exit codes: 0 done; 1 the work failed; 2 a wrong command line or setting, found before any request.`;

/** The synopsis, then its continuation lines (which start with spaces) and what it does, indented. */
function usageOf(command: string): string {
  const [synopsis, ...more] = COMMANDS[command];
  return [`  ${synopsis}`, ...more.map((line) => `      ${line}`)].join('\n');
}

export const USAGE = `usage: pipeline <command> [options]\n${Object.keys(COMMANDS).map(usageOf).join('\n')}\n${API_NOTE}`;

/** The usage to print with an error, or for --help: one command's, or all. */
export function usageFor(command: string | undefined): string {
  if (command === undefined || !Object.hasOwn(COMMANDS, command)) return USAGE;
  const api =
    command === 'start' || command === 'submit' || command === 'simulate'
      ? ''
      : '\n      also --url URL and --json (pipeline help says more)';
  const ids = TAKE_JOB_IDS.has(command) ? `\n      ${JOB_ID_NOTE}` : '';
  return `usage: pipeline ${usageOf(command).trimStart()}${ids}${api}`;
}

type Command = (args: string[], env: NodeJS.ProcessEnv, io: Io) => Promise<number>;

const LOADERS: Record<string, () => Promise<Command>> = {
  start: async () => startCommand,
  submit: async () => (await import('./cli/submit.ts')).submitCommand,
  jobs: async () => (await import('./cli/jobs.ts')).jobsCommand,
  job: async () => (await import('./cli/jobs.ts')).jobCommand,
  capacity: async () => (await import('./cli/capacity.ts')).capacityCommand,
  cancel: async () => (await import('./cli/jobs.ts')).cancelCommand,
  retry: async () => (await import('./cli/jobs.ts')).retryCommand,
  logs: async () => (await import('./cli/logs.ts')).logsCommand,
  run: async () => (await import('./cli/run.ts')).runCommand,
  plan: async () => (await import('./cli/plan.ts')).planCommand,
  simulate: async () => (await import('./cli/plan.ts')).simulateCommand,
  deadletters: async () => (await import('./cli/deadletters.ts')).deadLettersCommand,
  replay: async () => (await import('./cli/deadletters.ts')).replayCommand,
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
  const load = Object.hasOwn(LOADERS, command) ? LOADERS[command] : undefined;
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
  const { parse, integerOption } = await import('./cli/args.ts');
  const { localSettingsOf } = await import('./cli/settings.ts');
  const { runLocalUntilSignal } = await import('./local/main.ts');
  const { RoutingFileError } = await import('./routing-config.ts');
  const { values } = parse('start', args, {
    port: { type: 'string' },
    dir: { type: 'string' },
    config: { type: 'string' },
  });
  const port = integerOption('start', 'port', values.port, 0, 65535);
  const settings = localSettingsOf(env, { port, dir: values.dir, config: values.config });
  try {
    await runLocalUntilSignal(settings);
  } catch (err) {
    // The routing config is read before anything starts: its message names the file, rule and field.
    if (err instanceof RoutingFileError) throw new SettingsError(err.message, { cause: err });
    throw err;
  }
  return 0;
}
