// A loopback test double of the Compute Engine API v1 (REST) for @google-cloud/compute's
// InstancesClient and ZoneOperationsClient: `POST /compute/v1/projects/P/zones/Z/instances` creates
// an instance (by name: a second insert of the same name answers 409 alreadyExists, as Compute does)
// and answers a zonal Operation RUNNING; `POST .../zones/Z/operations/OP/wait` answers it, DONE unless
// told otherwise. Errors are shaped as Compute shapes them: `{ error: { code, message, errors: [{
// domain, reason, message }] } }`, without `status`, so gax maps them from the HTTP status alone.
import { randomBytes } from 'node:crypto';
import { startRecordingServer, type ApiAnswer, type RecordingServer } from './fake-run.ts';

export interface OperationError {
  code: string;
  message: string;
}

export type FakeCompute = RecordingServer & {
  /** The instance resources inserted, by name. */
  instances: Map<string, Record<string, unknown>>;
  /** The next insert's operation ends DONE with these errors (its instance is then not created). */
  failNextOperation(errors: OperationError[], httpErrorStatusCode?: number): void;
  /** How many wait calls answer the operation still RUNNING before DONE; default 0. */
  pendingWaits: number;
};

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
const WAIT = /^\/compute\/v1\/projects\/([^/]+)\/zones\/([^/]+)\/operations\/([^/]+)\/wait$/;
const BASE = 'https://www.googleapis.com/compute/v1';

export async function startFakeCompute(): Promise<FakeCompute> {
  const instances = new Map<string, Record<string, unknown>>();
  const operations = new Map<string, StoredOperation>();
  let nextOutcome: StoredOperation['outcome'];

  function insert(project: string, zone: string, resource: Record<string, unknown>): ApiAnswer {
    const name = String(resource.name);
    if (instances.has(name)) {
      return computeError(
        409,
        'alreadyExists',
        `The resource 'projects/${project}/zones/${zone}/instances/${name}' already exists`,
      );
    }
    const outcome = nextOutcome;
    nextOutcome = undefined;
    if (outcome === undefined) instances.set(name, resource);
    const id = randomBytes(8).readBigUInt64BE().toString();
    const operation = {
      kind: 'compute#operation',
      id,
      name: `operation-${Date.now()}-${randomBytes(6).toString('hex')}`,
      zone: `${BASE}/projects/${project}/zones/${zone}`,
      operationType: 'insert',
      targetLink: `${BASE}/projects/${project}/zones/${zone}/instances/${name}`,
      status: 'RUNNING',
      progress: 0,
      insertTime: new Date().toISOString(),
      selfLink: `${BASE}/projects/${project}/zones/${zone}/operations/${id}`,
    };
    operations.set(operation.name, { body: operation, waits: 0, outcome });
    return { status: 200, body: operation };
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

  const server = await startRecordingServer(({ method, path, body }) => {
    const inserting = INSERT.exec(path);
    if (method === 'POST' && inserting !== null) {
      return insert(inserting[1], inserting[2], (body ?? {}) as Record<string, unknown>);
    }
    const waiting = WAIT.exec(path);
    if (method === 'POST' && waiting !== null) return wait(waiting[3]);
    return computeError(404, 'notFound', `no route ${method} ${path}`);
  });
  const fake: FakeCompute = Object.assign(server, {
    instances,
    pendingWaits: 0,
    failNextOperation(errors: OperationError[], httpErrorStatusCode?: number) {
      nextOutcome = { errors, httpErrorStatusCode };
    },
  });
  return fake;
}
