// Workloads and the routing simulator (`pipeline simulate`), apart from the index: the dispatcher
// never needs them, and every module it loads costs start-up time.
export * from './cost/workload.ts';
export * from './cost/simulate.ts';
