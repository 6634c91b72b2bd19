// Where a claimed job runs: the route of its first attempt, kept by every later one (a retry runs
// where the first attempt did, with the template the retry policy may have changed, e.g. spot off).
import type { Job, JobSource } from './job.ts';
import type { RetryPolicy } from './retry.ts';
import {
  allowedParams,
  declaredFromMetadata,
  paramsFromMetadata,
  route,
  type CostEstimate,
  type JobTemplate,
  type RouteContext,
  type RoutingConfig,
  type Target,
} from './routing/index.ts';

export type Placement =
  | {
      kind: 'launch';
      rule?: string;
      target: Target;
      template: JobTemplate;
      reason?: string;
      retry?: RetryPolicy;
      estimate?: CostEstimate;
      /** The per-job parameters its rule allowed (absent: none given). */
      params?: Record<string, string>;
    }
  | { kind: 'ignore'; rule?: string; reason: string }
  /** The job cannot be routed at all: its object's metadata cannot be read, or sets what its rule forbids. */
  | { kind: 'fail'; error: string };

/** `context`: prices and learned durations, so that the decision carries its estimate. */
export function placeJob(job: Job, routing: RoutingConfig, context?: RouteContext): Placement {
  if (job.target !== undefined && job.template !== undefined) {
    const { rule, target, template, reason, retry, estimate, params } = job;
    return { kind: 'launch', rule, target, template, reason, retry, estimate, ...(params && { params }) };
  }
  const { source } = job;
  const { resources: declared, errors } =
    source.kind === 'object'
      ? declaredFromMetadata(source.object.metadata)
      : { resources: source.declared ?? {}, errors: [] as string[] };
  if (errors.length > 0)
    return { kind: 'fail', error: `the object's metadata cannot be used: ${errors.join('; ')}` };
  const decision = route(
    source.kind === 'object'
      ? { object: source.object, declared }
      : { declared, image: source.image, task: source.task },
    routing,
    context,
  );
  if (decision.action === 'ignore') return { kind: 'ignore', rule: decision.rule, reason: decision.reason };
  const params = paramsOf(
    source,
    routing.rules.find((r) => r.name === decision.rule),
  );
  if ('error' in params) return { kind: 'fail', error: params.error };
  return {
    kind: 'launch',
    rule: decision.rule,
    target: decision.target,
    template: source.kind === 'request' ? withRequest(decision.job, source) : decision.job,
    reason: decision.reason,
    retry: decision.retry,
    estimate: decision.estimate,
    ...(Object.keys(params.params).length > 0 && { params: params.params }),
  };
}

/** An object job's parameters: its metadata's pipeline-param-*, then the request's over them. */
function paramsOf(source: JobSource, rule: { name: string; params?: string[] } | undefined) {
  if (source.kind !== 'object') return { params: {} };
  const fromMetadata = paramsFromMetadata(source.object.metadata);
  const ruleOf = rule ?? { name: '(none)' };
  const checked = allowedParams(ruleOf, fromMetadata, 'object metadata');
  if ('error' in checked || source.params === undefined) return checked;
  const requested = allowedParams(ruleOf, source.params, 'the request');
  return 'error' in requested ? requested : { params: { ...checked.params, ...requested.params } };
}

/** A submitted container job runs what it asked for, with the rule's resources and placement. */
function withRequest(template: JobTemplate, request: Extract<JobSource, { kind: 'request' }>): JobTemplate {
  const image = request.image ?? (request.task === undefined ? template.image : undefined);
  return {
    ...template,
    image,
    task: request.task ?? (request.image === undefined ? template.task : undefined),
    args: request.args.length > 0 ? request.args : template.args,
    env: { ...template.env, ...request.env },
  };
}
