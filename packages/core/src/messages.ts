// @pipeline/core/messages: the messages between the parts (the VM task, the completion event, the
// job event) and
// nothing else, for the worker and the VM agent, which need them without the routing and cost code.
export * from './vm-task.ts';
export * from './completion.ts';
export * from './job-events.ts';
export * from './batch-manifest.ts';
