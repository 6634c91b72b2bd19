// Every command of `pipeline`, declared once: what it does, its arguments and its options (name,
// value placeholder, description, how the value is read, default). The commands parse their command
// lines from these (args.ts), and the usage is written from them (usage.ts), which the README's
// reference must equal (a test checks). Kept apart from the commands' code, so the usage of all of
// them loads none of it.
import { formatBytes, JOB_STATES } from '@pipeline/core';
import { MAX_LOG_READ, MAX_PAGE } from './api.ts';
import { API_OPTIONS, choice, command, numberIn, wholeNumber } from './args.ts';

export const JOB_ID = {
  name: 'ID',
  what: 'job ID',
  description: "its 32 characters, or the first 6 or more of them if no other job's id starts so",
} as const;
const JOB_IDS = { ...JOB_ID, repeats: true } as const;

const RUNTIME = {
  value: 'vm|cloud-run-job',
  description: "where to run it, if its rule lets uploads choose (the object's metadata pipeline-runtime)",
  read: choice(['vm', 'cloud-run-job']),
} as const;
const META = {
  value: 'KEY=VALUE',
  repeats: true,
  description: "the object's custom metadata, as x-goog-meta-KEY is on Cloud Storage",
} as const;
const AT = {
  value: 'TIME',
  description:
    "run it once at TIME: ISO 8601 (2026-12-01T06:00:00Z; no zone: this machine's), or +DURATION (+10m)",
} as const;
const BACKFILL_SOURCE = {
  name: 'gs://BUCKET/PREFIX',
  what: 'gs://BUCKET/PREFIX',
  description: 'the bucket and the prefix of the names to backfill (gs://BUCKET alone: all of it)',
} as const;
const BACKFILL_ID = {
  name: 'ID',
  what: 'backfill ID',
  description: "the backfill's id (16 hex characters)",
} as const;
const CRON = { value: 'EXPR', description: 'run it on a schedule: five cron fields, UTC' } as const;

export const COMMANDS = {
  start: command({
    name: 'start',
    summary: 'run the pipeline on this machine (as npm start does)',
    options: {
      port: {
        value: 'N',
        description: 'the HTTP port; 0: any free one (default $PORT, else 8080)',
        read: wholeNumber(0, 65535),
      },
      dir: {
        value: 'DIR',
        description: 'the folder of the buckets and the ledger (default $LOCAL_DIR, else local/)',
      },
      config: {
        value: 'FILE',
        description: 'the routing rules (default $PIPELINE_CONFIG, else pipeline.config.json)',
      },
    },
  }),
  submit: command({
    name: 'submit',
    summary:
      'put files into the input bucket: the local folder, or with --bucket (or $PIPELINE_INPUT_BUCKET) a Cloud Storage bucket; each file becomes a job',
    args: { name: 'FILE', what: 'FILE', description: 'a file to put in', repeats: true },
    options: {
      name: { value: 'NAME', description: "the object's name (default the file's name); with one FILE only" },
      runtime: RUNTIME,
      meta: META,
      param: {
        value: 'NAME=VALUE',
        repeats: true,
        description:
          "sets the object's metadata pipeline-param-NAME: the job's parameter NAME, if its rule lets uploads set it",
      },
      dir: { value: 'DIR', description: "the local pipeline's folder (default $LOCAL_DIR, else local/)" },
      bucket: {
        value: 'BUCKET',
        description: 'upload to this Cloud Storage bucket (default $PIPELINE_INPUT_BUCKET)',
      },
      progress: {
        description: 'a progress bar on stderr while uploading (without it: for files of 8 MiB or more)',
      },
      url: {
        value: 'URL',
        description:
          'the pipeline the files are for: one off this machine needs --bucket (default $PIPELINE_URL)',
      },
      json: { description: 'print a JSON object per file' },
    },
  }),
  jobs: command({
    name: 'jobs',
    summary:
      'list jobs, newest first; --state queued: what waits to launch, in launch order, each with its position, how long it has waited and why it waits. "more:" says the next page\'s command',
    options: {
      state: {
        value: 'STATE',
        description: `only jobs in STATE: ${JOB_STATES.join(', ')} (any case)`,
        read: choice(JOB_STATES, true),
      },
      limit: {
        value: 'N',
        description: `jobs on a page, 1 to ${MAX_PAGE}`,
        read: wholeNumber(1, MAX_PAGE),
        default: 50,
      },
      'page-token': { value: 'T', description: 'the page that a "more:" line names' },
      ...API_OPTIONS,
    },
  }),
  job: command({
    name: 'job',
    summary:
      'one job: route, reason and parameters, its place in the queue (queued at, why it waits, refusals), attempts with exit codes, durations and the zones that refused them, outputs, logs, history',
    args: JOB_ID,
    options: API_OPTIONS,
  }),
  capacity: command({
    name: 'capacity',
    summary:
      'what bounds launches: each limit and what is in use per target, ceilings learned from refusals, and the first queued jobs with why each waits',
    options: {
      limit: {
        value: 'N',
        description: `queued jobs shown, 1 to ${MAX_PAGE}`,
        read: wholeNumber(1, MAX_PAGE),
        default: 20,
      },
      ...API_OPTIONS,
    },
  }),
  logs: command({
    name: 'logs',
    summary:
      "an attempt's log (the last 64 KiB); --follow keeps reading until the job ends, then exits 0 if it SUCCEEDED, 1 otherwise",
    args: JOB_ID,
    options: {
      attempt: {
        value: 'N',
        description: "this attempt's log (default the current one)",
        read: wholeNumber(1, 1_000_000),
      },
      tail: {
        value: 'BYTES',
        description: `the last BYTES of it, up to ${formatBytes(MAX_LOG_READ)} (default 64 KiB)`,
        read: wholeNumber(0, MAX_LOG_READ),
      },
      follow: { short: 'f', description: 'keep reading until the job ends, across its retries' },
      interval: {
        value: 'SECONDS',
        description: 'how often --follow reads, 0.05 to 60',
        read: numberIn(0.05, 60, 'seconds'),
        default: 1,
      },
      ...API_OPTIONS,
    },
  }),
  cancel: command({
    name: 'cancel',
    summary: 'stop jobs on their platform, or before they start; a line for each, exit 1 if any was refused',
    args: JOB_IDS,
    options: API_OPTIONS,
  }),
  retry: command({
    name: 'retry',
    summary:
      'run FAILED or CANCELLED jobs again, as a new attempt; a line for each, exit 1 if any was refused or failed at once',
    args: JOB_IDS,
    options: API_OPTIONS,
  }),
  run: command({
    name: 'run',
    summary:
      'run a container with no input file (--task or --image), or an object already in a bucket again (--input), with parameters of this run (its rule must allow them); now, at a time, or on a schedule',
    options: {
      task: { value: 'T', description: 'a task of the worker image, like logreg' },
      image: { value: 'I', description: 'a container image' },
      input: { value: 'gs://B/O', description: 'an object already in a bucket' },
      arg: { value: 'A', repeats: true, description: "an argument of the container's command" },
      env: { value: 'K=V', repeats: true, description: "a variable of the container's environment" },
      param: { value: 'NAME=VALUE', repeats: true, description: 'a parameter of this run of --input' },
      cpu: { value: 'N', description: 'vCPUs the container needs' },
      memory: { value: 'M', description: 'memory it needs, like 16GiB' },
      gpu: { value: 'G', description: 'a GPU it needs, like nvidia-l4 or nvidia-l4:2' },
      'expected-duration': { value: 'D', description: 'how long it runs, like 2h, for routing' },
      at: AT,
      cron: CRON,
      ...API_OPTIONS,
    },
    oneOf: [{ options: ['task', 'image', 'input'], required: true }, { options: ['at', 'cron'] }],
  }),
  plan: command({
    name: 'plan',
    summary: 'a dry run: where each would run, why, and the expected time and cost on every place priced',
    args: {
      name: 'FILE|gs://BUCKET/OBJECT',
      what: 'FILE or gs://BUCKET/OBJECT',
      description: 'a file, or an object already in a bucket',
      repeats: true,
    },
    options: { runtime: RUNTIME, meta: META, ...API_OPTIONS },
  }),
  simulate: command({
    name: 'simulate',
    summary:
      'replay a workload file under every routing policy: cost, makespan, deadline misses (runs here, with no pipeline; workloads/week.json is one)',
    args: { name: 'WORKLOAD', what: 'WORKLOAD file', description: 'a workload file (JSON)' },
    options: {
      json: { description: 'print the results as JSON' },
      config: { value: 'FILE', description: "take prices from this routing config's prices" },
      threshold: {
        value: 'SIZE',
        description: "the size-threshold policy's size: inputs from it run on a VM (default 2GiB)",
      },
      'cloud-run-job': {
        value: 'cpu=N,memory=SIZE[,gpu=TYPE][,timeout=DURATION]',
        description:
          "what the worker's Cloud Run job is defined with, as terraform's worker_cpu, worker_memory and worker_timeout_seconds say (cpu=2,memory=4Gi,timeout=3600s): a task that needs more runs on a VM, one on Cloud Run is billed so, and one past the timeout is killed there",
      },
    },
  }),
  backfill: command({
    name: 'backfill',
    summary:
      'make the job of each object version under gs://BUCKET/PREFIX that has none yet (locally, gs://input/ is the input folder): listed a page at a time, queued as capacity allows; a second one is a no-op. --failed-only runs the FAILED ones again. Prints its id and counts',
    args: BACKFILL_SOURCE,
    options: {
      match: {
        value: 'GLOB',
        description: 'only objects whose whole name matches GLOB, as rules match (**/*.csv)',
      },
      since: {
        value: 'TIME',
        description:
          "only objects created at or after TIME: ISO 8601 (no zone: this machine's), or DURATION ago (7d, 12h)",
      },
      'failed-only': {
        description:
          'only run FAILED jobs again, as a new attempt; objects with no job, or another state, are left alone',
      },
      'dry-run': { description: 'count what it would do, page by page, making nothing' },
      ...API_OPTIONS,
    },
  }),
  backfills: command({
    name: 'backfills',
    summary:
      'backfills, newest first, with their progress (pages, listed, matched, new jobs, retried, skipped, errors); with ID one backfill, with the objects it could not submit',
    args: { ...BACKFILL_ID, optional: true },
    options: {
      limit: {
        value: 'N',
        description: `backfills shown, 1 to ${MAX_PAGE}`,
        read: wholeNumber(1, MAX_PAGE),
        default: 20,
      },
      ...API_OPTIONS,
    },
  }),
  'backfill-cancel': command({
    name: 'backfill-cancel',
    summary: 'stop a RUNNING backfill: the page under way ends, no other starts; the jobs it made stay',
    args: BACKFILL_ID,
    options: API_OPTIONS,
  }),
  deadletters: command({
    name: 'deadletters',
    summary: 'messages Pub/Sub gave up delivering, and why',
    options: {
      limit: {
        value: 'N',
        description: 'messages shown, 1 to 1000',
        read: wholeNumber(1, 1000),
        default: 100,
      },
      ...API_OPTIONS,
    },
  }),
  replay: command({
    name: 'replay',
    summary: 'publish a dead letter again to the topic it came from',
    args: { name: 'ID', what: 'message ID', description: "the dead letter's message id" },
    options: API_OPTIONS,
  }),
};

export type CommandName = keyof typeof COMMANDS;
