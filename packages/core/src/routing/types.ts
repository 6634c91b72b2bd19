// The routing config as the router uses it, after parseRoutingConfig (./config.ts) checked it.

import type { BatchPolicy } from '../cost/batching.ts';
import type { DurationPrior } from '../cost/estimator.ts';
import type { GlobMatcher } from '../glob.ts';
import type { RetryPolicy } from '../retry.ts';
import type { PriceTable } from '../cost/prices.ts';
import type { JobTemplate, Target } from '../template.ts';

// What a job runs and on what (template.ts), as part of the routing API.
export type { Accelerator, JobTemplate, Resources, Target } from '../template.ts';

/** Every condition present must hold; an empty match matches every request. */
export interface RuleMatch {
  /** Any of these globs on the object name (kept with their source, for reasons). */
  paths?: GlobMatcher[];
  /** Lower-case, exact ("text/csv") or a whole type ("image/*"). */
  contentTypes?: string[];
  minSizeBytes?: number;
  maxSizeBytes?: number;
  /** Object metadata `pipeline-runtime` equals this. */
  runtime?: Target;
  /** Object metadata: every key equals its value. */
  metadata?: Record<string, string>;
  minCpu?: number;
  maxCpu?: number;
  minMemoryBytes?: number;
  maxMemoryBytes?: number;
  /** Declares a GPU (true) or declares none (false). */
  gpu?: boolean;
  minExpectedSeconds?: number;
  maxExpectedSeconds?: number;
}

export interface Rule {
  name: string;
  match: RuleMatch;
  /**
   * Where the job runs; a list when the rule says `"mode": "cost"`: the candidates the router prices
   * for each request, picking the cheapest that meets the limits and the deadline.
   */
  target: Target | 'ignore' | Target[];
  /** For an ignore rule, the default template; it never runs. */
  job: JobTemplate;
  /** What happens after a failed attempt (DEFAULT_RETRY_POLICY where the rule says nothing). */
  retry: RetryPolicy;
  /** How its jobs wait for capacity (DEFAULT_QUEUE_POLICY where the rule says nothing). */
  queue: QueuePolicy;
  /** Cost mode: the longest wait from launch to result (start-up and run) the rule accepts. */
  deadlineSeconds?: number;
  /** Cost mode: the quantile of the run's duration the deadline is judged at (0.9 when absent). */
  deadlineQuantile?: number;
  /** What a run takes before there is history (DEFAULT_PRIOR where the rule says nothing). */
  prior?: DurationPrior;
  /** The per-job parameters an upload or a request may set (params.ts); absent: none. */
  params?: string[];
  /** Its files routed to Cloud Run are gathered into executions of many tasks (batch-gathering.ts). */
  batch?: BatchPolicy;
}

/** How a rule's jobs wait for capacity (capacity.ts). */
export interface QueuePolicy {
  /** At most this many of the rule's jobs launched or running at once; absent: no cap of its own. */
  maxConcurrent?: number;
  /** A job that waited this long without launching fails, saying what it waited for. */
  maxQueueSeconds: number;
}

/** A day: long enough for a backlog to drain, short enough that capacity which never comes is said. */
export const DEFAULT_QUEUE_POLICY: QueuePolicy = { maxQueueSeconds: 24 * 3600 };

export interface RoutingConfig {
  rules: Rule[];
  /** What estimates and costs are priced with: DEFAULT_PRICES, with the config's `prices` over it. */
  prices?: PriceTable;
}

/** The task the worker runs when a rule names neither a task nor an image. */
export const DEFAULT_TASK = 'logreg';

/** Set by the pipeline for every job; a template may not override them. */
export const RESERVED_ENV_KEYS: readonly string[] = [
  'INPUT_URI',
  'INPUT_GENERATION',
  'OUTPUT_URI',
  'JOB_ID',
  'ATTEMPT',
  'TASK',
  // Where the worker uploads its output on Cloud Run (set by the cloud-run-job launcher).
  'LOGS_URI',
  // A batched task's execution (batch-manifest.ts).
  'BATCH_ID',
  'BATCH_MANIFEST_URI',
];
/** Cloud Run sets CLOUD_RUN_TASK_INDEX, CLOUD_RUN_TASK_COUNT and others with this prefix. */
export const RESERVED_ENV_PREFIX = 'CLOUD_RUN_';
