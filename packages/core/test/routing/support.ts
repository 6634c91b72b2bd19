// What the routing tests share: sizes, a storage object, a config of rules, and a launch decision.
import type { StorageObject } from '../../src/events.ts';
import { parseRoutingConfig } from '../../src/routing/config.ts';
import type { RouteDecision } from '../../src/routing/route.ts';

export const GiB = 1024 ** 3;
export const MiB = 1024 ** 2;

export function object(name: string, fields: Partial<StorageObject> = {}): StorageObject {
  return { bucket: 'in', name, generation: '1700000000000001', size: 10 * MiB, metadata: {}, ...fields };
}

export function config(...rules: unknown[]) {
  return parseRoutingConfig({ rules });
}

export function launched(decision: RouteDecision) {
  if (decision.action !== 'launch') throw new Error(`expected a launch, got: ${decision.reason}`);
  return decision;
}
