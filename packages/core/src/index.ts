// @pipeline/core: the pipeline's domain. No Google client and no express: events, job ids, routing,
// job states and the ports the adapters implement.
export * from './events.ts';
export * from './job-id.ts';
export * from './job.ts';
export * from './ports.ts';
export * from './routing/index.ts';
export * from './units.ts';
export * from './format.ts';
export * from './glob.ts';
export * from './worker-env.ts';
export * from './latest.ts';
export * from './reaping.ts';
export * from './completion.ts';
export * from './vm-task.ts';
export * from './retry.ts';
export * from './interruption.ts';
export * from './reconcile.ts';
export * from './capacity.ts';
export * from './region-quotas.ts';
export * from './cron.ts';
export * from './cost/prices.ts';
export * from './cost/price-config.ts';
export * from './cost/estimator.ts';
export * from './cost/options.ts';
export * from './placement.ts';
export * from './cost/actual.ts';
export * from './transitions.ts';
