// The routing API in one import: the policy (route.ts: which rule a request meets, where its job runs
// and why), its config's types and parser, the metadata and parameters a request may carry, the cost
// mode's estimate, and the platforms' limits and machine types the policy applies (../platforms.ts).
export * from './route.ts';
export * from './types.ts';
export { parseRoutingConfig, RoutingConfigError, type RuleRef } from './config.ts';
export { declaredFromMetadata, RESOURCE_METADATA_KEYS, RUNTIME_METADATA_KEY } from './metadata.ts';
export {
  allowedParams,
  isVariableName,
  MAX_PARAM_VALUE_BYTES,
  PARAM_METADATA_PREFIX,
  paramsFromMetadata,
  unsafeParamReason,
  type ParamsCheck,
} from './params.ts';
export type { CostEstimate, EstimateOption, RouteContext } from './cost.ts';
export {
  CLOUD_RUN_CPU_STEPS,
  CLOUD_RUN_DEFAULTS,
  CLOUD_RUN_JOB_LIMITS,
  cloudRunLimitBreaches,
  cloudRunShapeBreaches,
  cloudRunTaskTimeout,
  hasBuiltInGpus,
  MACHINE_TYPES,
  machineTypeFor,
  onDefinedCloudRunJob,
  shapeForCloudRun,
  type CloudRunJobShape,
  type MachineType,
} from '../platforms.ts';
