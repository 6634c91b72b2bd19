// A loopback test double of the Compute Engine API v1 (REST) for @google-cloud/compute's
// InstancesClient and ZoneOperationsClient: `POST /compute/v1/projects/P/zones/Z/instances` creates
// an instance (by name: a second insert of the same name answers 409 alreadyExists, as Compute does)
// and answers a zonal Operation RUNNING; `POST .../zones/Z/operations/OP/wait` answers it, DONE unless
// told otherwise. `GET .../zones/Z/instances` lists the zone's instances (with `filter` terms like
// `labels.pipeline = "true"`, and paging by `maxResults`/`pageToken`); `GET .../instances/NAME` answers
// one (a test may change its `status` in `instances`); `DELETE .../instances/NAME` removes one and
// answers a delete Operation RUNNING; both answer 404 when there is none. Errors are shaped as
// Compute shapes them: `{ error: { code, message, errors: [{ domain, reason, message }] } }`, without
// `status`, so gax maps them from the HTTP status alone.
//
// Capacity, for the launcher's zone fallback and the queue: `stockout(zone, spot)` makes an insert's
// operation end with ZONE_RESOURCE_POOL_EXHAUSTED in that zone, as a zone out of capacity does;
// `cpuQuota` is the region's CPUS quota, and an insert that would take the instances' vCPUs past it
// ends with QUOTA_EXCEEDED (vCPUs are read from the machine type's name: e2-standard-8 has 8; a name
// without a number counts 1). `GET .../regions/R` answers the region with its quotas: CPUS (when
// `cpuQuota` is set) with the vCPUs of its instances as usage, then `regionQuotas`. Instance names
// are unique across zones here (Compute: within a zone), so an insert of a name held in another
// zone answers 409 too.
import { randomBytes } from 'node:crypto';
import { startRecordingServer, type ApiAnswer, type RecordingServer } from './fake-run.ts';

export interface OperationError {
  code: string;
  message: string;
}

export type FakeCompute = RecordingServer & {
  /**
   * The instances, by name: those inserted, with the `zone`, `status` and `creationTimestamp` Compute
   * adds, and any a test puts here (one without `zone` is in every zone).
   */
  instances: Map<string, Record<string, unknown>>;
  /** The names of the instances deleted, in order. */
  deleted: string[];
  /** List every instance of the zone whatever the filter says (to test a caller's own check). */
  ignoreFilter: boolean;
  /** The next insert's operation ends DONE with these errors (its instance is then not created). */
  failNextOperation(errors: OperationError[], httpErrorStatusCode?: number): void;
  /** How many wait calls answer the operation still RUNNING before DONE; default 0. */
  pendingWaits: number;
} & FakeComputeOptions;

export interface FakeComputeOptions {
  /** Whether a zone has no capacity now for a VM of this provisioning model; default none is out. */
  stockout?: (zone: string, spot: boolean) => boolean;
  /** The region's CPUS quota: inserts past it end with QUOTA_EXCEEDED; absent: no quota. */
  cpuQuota?: number;
  /** More quotas regions.get lists after CPUS, as they are (GPUs, PREEMPTIBLE_CPUS). */
  regionQuotas?: { metric: string; limit: number; usage: number }[];
  /** Called with each instance an insert creates (a test ends it later: deletes it, publishes its completion). */
  onInstanceCreated?: (instance: Record<string, unknown>) => void;
}

/** The vCPUs of a machine type by its name (zones/Z/machineTypes/e2-standard-8 has 8), 1 without a number. */
export function machineTypeCpus(machineType: string): number {
  const match = /-(\d+)$/.exec(machineType.split('/').at(-1) ?? '');
  return match === null ? 1 : Number(match[1]);
}

/** A Compute-style error body: no `status`, a `reason` in errors[]. */
export function computeError(status: number, reason: string, message: string): ApiAnswer {
  return {
    status,
    body: { error: { code: status, message, errors: [{ domain: 'global', reason, message }] } },
  };
}

interface StoredOperation {
  body: Record<string, unknown>;
  waits: number;
  outcome?: { errors: OperationError[]; httpErrorStatusCode?: number };
}

const INSERT = /^\/compute\/v1\/projects\/([^/]+)\/zones\/([^/]+)\/instances$/;
const INSTANCE = /^\/compute\/v1\/projects\/([^/]+)\/zones\/([^/]+)\/instances\/([^/]+)$/;
const WAIT = /^\/compute\/v1\/projects\/([^/]+)\/zones\/([^/]+)\/operations\/([^/]+)\/wait$/;
const REGION = /^\/compute\/v1\/projects\/([^/]+)\/regions\/([^/]+)$/;
const BASE = 'https://www.googleapis.com/compute/v1';

export async function startFakeCompute(options: FakeComputeOptions = {}): Promise<FakeCompute> {
  const instances = new Map<string, Record<string, unknown>>();
  const operations = new Map<string, StoredOperation>();
  const deleted: string[] = [];
  let nextOutcome: StoredOperation['outcome'];

  function newOperation(project: string, zone: string, type: string, name: string) {
    const id = randomBytes(8).readBigUInt64BE().toString();
    return {
      kind: 'compute#operation',
      id,
      name: `operation-${Date.now()}-${randomBytes(6).toString('hex')}`,
      zone: `${BASE}/projects/${project}/zones/${zone}`,
      operationType: type,
      targetLink: `${BASE}/projects/${project}/zones/${zone}/instances/${name}`,
      status: 'RUNNING',
      progress: 0,
      insertTime: new Date().toISOString(),
      selfLink: `${BASE}/projects/${project}/zones/${zone}/operations/${id}`,
    };
  }

  function insert(project: string, zone: string, resource: Record<string, unknown>): ApiAnswer {
    const name = String(resource.name);
    if (instances.has(name)) {
      return computeError(
        409,
        'alreadyExists',
        `The resource 'projects/${project}/zones/${zone}/instances/${name}' already exists`,
      );
    }
    const outcome = nextOutcome ?? capacityRefusal(project, zone, resource);
    nextOutcome = undefined;
    if (outcome === undefined) {
      const instance = {
        ...resource,
        zone: `${BASE}/projects/${project}/zones/${zone}`,
        status: 'RUNNING',
        creationTimestamp: new Date().toISOString(),
      };
      instances.set(name, instance);
      fake.onInstanceCreated?.(instance);
    }
    const operation = newOperation(project, zone, 'insert', name);
    operations.set(operation.name, { body: operation, waits: 0, outcome });
    return { status: 200, body: operation };
  }

  /** The vCPUs the instances of REGION hold (an instance without a zone counts in every region). */
  function regionCpus(region: string): number {
    let cpus = 0;
    for (const instance of instances.values()) {
      const zone = instance.zone === undefined ? undefined : String(instance.zone).split('/').at(-1);
      if (zone === undefined || zone.startsWith(`${region}-`))
        cpus += machineTypeCpus(String(instance.machineType ?? ''));
    }
    return cpus;
  }

  /** How the insert's operation ends when the zone is out of capacity or the region out of quota. */
  function capacityRefusal(
    project: string,
    zone: string,
    resource: Record<string, unknown>,
  ): StoredOperation['outcome'] {
    const spot =
      (resource.scheduling as { provisioningModel?: string } | undefined)?.provisioningModel === 'SPOT';
    if (fake.stockout?.(zone, spot) === true) {
      const message = `The zone 'projects/${project}/zones/${zone}' does not have enough resources available to fulfill the request.  Try a different zone, or try again later.`;
      return { errors: [{ code: 'ZONE_RESOURCE_POOL_EXHAUSTED', message }], httpErrorStatusCode: 503 };
    }
    const region = zone.replace(/-[a-z]$/, '');
    const wanted = machineTypeCpus(String(resource.machineType ?? ''));
    if (fake.cpuQuota !== undefined && regionCpus(region) + wanted > fake.cpuQuota) {
      const message = `Quota 'CPUS' exceeded.  Limit: ${fake.cpuQuota.toFixed(1)} in region ${region}.`;
      return { errors: [{ code: 'QUOTA_EXCEEDED', message }], httpErrorStatusCode: 403 };
    }
    return undefined;
  }

  function getRegion(project: string, region: string): ApiAnswer {
    const quotas = [
      ...(fake.cpuQuota === undefined
        ? []
        : [{ metric: 'CPUS', limit: fake.cpuQuota, usage: regionCpus(region) }]),
      ...(fake.regionQuotas ?? []),
    ];
    return {
      status: 200,
      body: {
        kind: 'compute#region',
        name: region,
        status: 'UP',
        zones: ['b', 'c', 'd'].map((z) => `${BASE}/projects/${project}/zones/${region}-${z}`),
        quotas,
        selfLink: `${BASE}/projects/${project}/regions/${region}`,
      },
    };
  }

  function wait(name: string): ApiAnswer {
    const stored = operations.get(name);
    if (stored === undefined)
      return computeError(404, 'notFound', `The resource 'operations/${name}' was not found`);
    stored.waits += 1;
    if (stored.waits <= fake.pendingWaits) return { status: 200, body: stored.body };
    const done = { ...stored.body, status: 'DONE', progress: 100, endTime: new Date().toISOString() };
    if (stored.outcome !== undefined) {
      const { errors, httpErrorStatusCode } = stored.outcome;
      Object.assign(done, { error: { errors }, httpErrorStatusCode, httpErrorMessage: errors[0]?.message });
    }
    return { status: 200, body: done };
  }

  /** The zone's instances that pass the filter, a page at a time (the page token is an offset). */
  function list(zone: string, query: URLSearchParams): ApiAnswer {
    const filter = query.get('filter') ?? '';
    const matches = labelFilter(filter);
    if (matches === undefined)
      return computeError(400, 'invalid', `Invalid value for field 'filter': '${filter}'`);
    const all = [...instances.values()].filter(
      (resource) =>
        (resource.zone === undefined || String(resource.zone).split('/').at(-1) === zone) &&
        (fake.ignoreFilter || matches((resource.labels ?? {}) as Record<string, string>)),
    );
    const start = Number(query.get('pageToken') ?? '0');
    const size = Number(query.get('maxResults') ?? '500');
    const items = all.slice(start, start + size);
    const next = start + size < all.length ? { nextPageToken: String(start + size) } : {};
    return { status: 200, body: { kind: 'compute#instanceList', items, ...next } };
  }

  function get(project: string, zone: string, name: string): ApiAnswer {
    const instance = instances.get(name);
    const inZone = instance?.zone === undefined || String(instance.zone).split('/').at(-1) === zone;
    if (instance === undefined || !inZone) {
      return computeError(
        404,
        'notFound',
        `The resource 'projects/${project}/zones/${zone}/instances/${name}' was not found`,
      );
    }
    return { status: 200, body: { kind: 'compute#instance', ...instance } };
  }

  function remove(project: string, zone: string, name: string): ApiAnswer {
    if (!instances.delete(name)) {
      return computeError(
        404,
        'notFound',
        `The resource 'projects/${project}/zones/${zone}/instances/${name}' was not found`,
      );
    }
    deleted.push(name);
    const operation = newOperation(project, zone, 'delete', name);
    operations.set(operation.name, { body: operation, waits: 0 });
    return { status: 200, body: operation };
  }

  const server = await startRecordingServer(({ method, path, query, body }) => {
    const inserting = INSERT.exec(path);
    if (method === 'POST' && inserting !== null) {
      return insert(inserting[1], inserting[2], (body ?? {}) as Record<string, unknown>);
    }
    if (method === 'GET' && inserting !== null) return list(inserting[2], query);
    const instance = INSTANCE.exec(path);
    if (method === 'GET' && instance !== null) return get(instance[1], instance[2], instance[3]);
    if (method === 'DELETE' && instance !== null) return remove(instance[1], instance[2], instance[3]);
    const waiting = WAIT.exec(path);
    if (method === 'POST' && waiting !== null) return wait(waiting[3]);
    const region = REGION.exec(path);
    if (method === 'GET' && region !== null) return getRegion(region[1], region[2]);
    return computeError(404, 'notFound', `no route ${method} ${path}`);
  });
  const fake: FakeCompute = Object.assign(server, {
    instances,
    deleted,
    ignoreFilter: false,
    pendingWaits: 0,
    ...options,
    failNextOperation(errors: OperationError[], httpErrorStatusCode?: number) {
      nextOutcome = { errors, httpErrorStatusCode };
    },
  });
  return fake;
}

// Compute's filter syntax on labels, enough for the tests: terms `labels.KEY = "VALUE"` (quotes
// optional), `labels.KEY != VALUE` or `labels.KEY:*` (has the label); one term alone, or several,
// each in parentheses, which must all hold.
const LABEL_TERM = /^\s*labels\.([a-z0-9_-]+)\s*(?:(=|!=)\s*(?:"([^"]*)"|([a-z0-9_-]*))|:\s*(\*))\s*$/;

/** A predicate on labels for the filter, or undefined when the double does not know the syntax. */
function labelFilter(filter: string): ((labels: Record<string, string>) => boolean) | undefined {
  let terms = [filter];
  if (filter.trim() === '') terms = [];
  else if (filter.includes('(')) {
    const between = filter.replace(/\(([^()]*)\)/g, ' ').replace(/\bAND\b/g, ' ');
    if (between.trim() !== '') return undefined;
    terms = [...filter.matchAll(/\(([^()]*)\)/g)].map((group) => group[1]);
  }
  const tests: ((labels: Record<string, string>) => boolean)[] = [];
  for (const term of terms) {
    const match = LABEL_TERM.exec(term);
    if (match === null) return undefined;
    const [, key, operator, quoted, bare, has] = match;
    const value = quoted ?? bare ?? '';
    if (has !== undefined) tests.push((labels) => labels[key] !== undefined);
    else if (operator === '=') tests.push((labels) => labels[key] === value);
    else tests.push((labels) => labels[key] !== value);
  }
  return (labels) => tests.every((test) => test(labels));
}
