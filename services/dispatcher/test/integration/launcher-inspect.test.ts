// inspect and cancel of the Cloud Run and Compute Engine launchers, with the real @google-cloud/run and
// @google-cloud/compute clients (REST) against the loopback doubles: the requests the libraries send,
// and the RunStatus the launchers make of the real answers and errors.
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { OAuth2Client } from 'google-auth-library';
import { closeGoogleClients } from '../../src/gcp/clients.ts';
import { CANCELLED_EXIT_CODE, CloudRunJobLauncher } from '../../src/gcp/run-launcher.ts';
import { ComputeEngineLauncher } from '../../src/gcp/compute-launcher.ts';
import {
  testBatchLaunchRequest,
  testComputeSettings,
  testLaunchRequest,
  testRunLauncher,
} from './test-launchers.ts';
import {
  googleError,
  startFakeRun,
  type FakeRun,
  type RecordedRequest,
} from '../../../../test/support/fake-run.ts';
import { computeError, startFakeCompute, type FakeCompute } from '../../../../test/support/fake-compute.ts';

const auth = new OAuth2Client();
auth.setCredentials({ access_token: 'test-token', expiry_date: Date.now() + 24 * 3600 * 1000 });
afterAll(() => closeGoogleClients());

/** A launch request for a fresh object, so that each VM gets its own name. */

describe('CloudRunJobLauncher.inspect and cancel', () => {
  let run: FakeRun;
  let launcher: CloudRunJobLauncher;
  beforeAll(async () => {
    run = await startFakeRun();
    launcher = testRunLauncher(run.endpoint, auth);
  });
  afterAll(() => run.close());
  afterEach(() => {
    run.runWithoutMetadata = false;
    run.requests.splice(0);
  });

  /** Launches an execution and forgets the requests of the launch. */
  async function started(): Promise<string> {
    const { execution } = await launcher.launch(testLaunchRequest('cloud-run-job'));
    run.requests.splice(0);
    return execution;
  }

  it('reports a running execution with one GET of the execution', async () => {
    const execution = await started();
    expect(await launcher.inspect(execution)).toEqual({ kind: 'running' });
    expect(run.requests.map((r) => `${r.method} ${r.path}`)).toEqual([`GET /v2/${execution}`]);
    expect(run.requests[0].headers.authorization).toBe('Bearer test-token');
  });

  it('reports a succeeded execution as ended with exit code 0 and its completion time', async () => {
    const execution = await started();
    run.settle(execution, { phase: 'succeeded' });
    const status = await launcher.inspect(execution);
    expect(status).toEqual({ kind: 'ended', exitCode: 0, finishedAt: expect.any(String) });
    const finishedAt = (status as { finishedAt: string }).finishedAt;
    expect(Math.abs(Date.parse(finishedAt) - Date.now())).toBeLessThan(60_000);
    expect(run.requests).toHaveLength(1); // no task listing for a success
  });

  it("reports a failed execution with its task's exit code and the condition's message", async () => {
    const execution = await started();
    run.settle(execution, { phase: 'failed', exitCode: 4, message: 'Application exited with an error' });
    const status = await launcher.inspect(execution);
    expect(status).toMatchObject({ kind: 'ended', exitCode: 4 });
    const error = (status as { error: string }).error;
    expect(error).toContain('failed with message: Application exited with an error');
    expect(run.requests.map((r) => `${r.method} ${r.path}`)).toEqual([
      `GET /v2/${execution}`,
      `GET /v2/${execution}/tasks`,
    ]);
  });

  it('reports a task the system killed as 128 + its signal, and one without a code as exit code 1', async () => {
    const killed = await started();
    run.settle(killed, { phase: 'failed', termSignal: 9 });
    expect(await launcher.inspect(killed)).toMatchObject({ kind: 'ended', exitCode: 137 });
    const unexplained = await started();
    run.settle(unexplained, { phase: 'failed' });
    const status = await launcher.inspect(unexplained);
    expect(status).toMatchObject({ kind: 'ended', exitCode: 1 });
    expect((status as { error: string }).error).toContain('The container exited with an error');
  });

  it('reports a cancelled execution as ended with the cancel exit code and says it was cancelled', async () => {
    const execution = await started();
    run.settle(execution, { phase: 'cancelled' });
    expect(await launcher.inspect(execution)).toEqual({
      kind: 'ended',
      exitCode: CANCELLED_EXIT_CODE,
      finishedAt: expect.any(String),
      error: 'the execution was cancelled',
    });
  });

  it('reports an execution Cloud Run does not know (404) as gone', async () => {
    const execution = await started();
    run.forget(execution);
    expect(await launcher.inspect(execution)).toEqual({ kind: 'gone' });
  });

  it('reports any other error as unknown, with the reason, and concludes nothing', async () => {
    const execution = await started();
    run.failNext(1, googleError(500, 'the backend is having a moment'));
    const status = await launcher.inspect(execution);
    expect(status.kind).toBe('unknown');
    expect((status as { reason: string }).reason).toContain(execution);
    expect((status as { reason: string }).reason).toContain('the backend is having a moment');
  });

  it('reports a failed execution whose tasks cannot be read as unknown, not with a made-up exit code', async () => {
    const execution = await started();
    run.settle(execution, { phase: 'failed', exitCode: 2 });
    run.failNext(1, googleError(503, 'tasks are unavailable'), (r) => r.path.endsWith('/tasks'));
    const status = await launcher.inspect(execution);
    expect(status).toEqual({ kind: 'unknown', reason: expect.stringContaining('tasks are unavailable') });
    expect((status as { reason: string }).reason).toContain('its tasks could not be read');
    // The next pass reads the exit code.
    expect(await launcher.inspect(execution)).toMatchObject({ kind: 'ended', exitCode: 2 });
  });

  it('refuses a string that names neither an execution nor an operation, without a request', async () => {
    const status = await launcher.inspect('zones/europe-west1-b/instances/pipeline-x-a1');
    expect(status).toMatchObject({ kind: 'unknown' });
    expect((status as { reason: string }).reason).toContain('names neither');
    expect(run.requests).toHaveLength(0);
  });

  it('follows an operation name (a launch whose answer named no execution) to its execution', async () => {
    run.runWithoutMetadata = true;
    const operation = await started();
    expect(operation).toMatch(/^projects\/acme\/locations\/europe-west1\/operations\//);
    const execution = run.executions.at(-1)!;
    run.settle(execution, { phase: 'failed', exitCode: 3 });
    expect(await launcher.inspect(operation)).toMatchObject({ kind: 'ended', exitCode: 3 });
    expect(run.requests.map((r) => `${r.method} ${r.path}`)).toEqual([
      `GET /v2/${operation}`,
      `GET /v2/${execution}`,
      `GET /v2/${execution}/tasks`,
    ]);
  });

  it('cancels with POST .../executions/E:cancel and does not wait for the operation', async () => {
    const execution = await started();
    await launcher.cancel(execution);
    expect(run.requests.map((r) => `${r.method} ${r.path}`)).toEqual([`POST /v2/${execution}:cancel`]);
    expect(run.requests[0].headers.authorization).toBe('Bearer test-token');
    expect(await launcher.inspect(execution)).toMatchObject({ kind: 'ended', exitCode: CANCELLED_EXIT_CODE });
  });

  it('cancels an execution already complete (FAILED_PRECONDITION) or gone (404) without an error', async () => {
    const done = await started();
    const gone = await started();
    run.settle(done, { phase: 'succeeded' });
    run.forget(gone);
    await expect(launcher.cancel(done)).resolves.toBeUndefined();
    await expect(launcher.cancel(gone)).resolves.toBeUndefined();
    expect(run.requests.map((r) => r.method)).toEqual(['POST', 'POST']);
  });

  it('throws a clear error when Cloud Run refuses the cancellation', async () => {
    const execution = await started();
    run.failNext(1, googleError(403, 'Permission run.executions.cancel denied'));
    await expect(launcher.cancel(execution)).rejects.toThrow(
      new RegExp(`cancelling Cloud Run execution ${execution} failed: .*run.executions.cancel denied`),
    );
  });
});

describe("CloudRunJobLauncher.inspect of a batch's tasks", () => {
  let run: FakeRun;
  let launcher: CloudRunJobLauncher;
  beforeAll(async () => {
    // Two tasks a page: a batch of three is listed in two pages, which the launcher reads both of.
    run = await startFakeRun({ tasksPageSize: 2 });
    launcher = testRunLauncher(run.endpoint, auth);
  });
  afterAll(() => run.close());
  afterEach(() => run.requests.splice(0));

  const isListTasks = (r: RecordedRequest) => r.method === 'GET' && r.path.endsWith('/tasks');
  /** The task listings sent, by page token. */
  const listings = () => run.requests.filter(isListTasks).map((r) => r.query.get('pageToken'));

  /** Launches a batch of `size` and forgets the requests of the launch. */
  async function startedBatch(size = 3, on = launcher): Promise<string> {
    const { execution } = await on.launchBatch(testBatchLaunchRequest(size));
    run.requests.splice(0);
    return execution;
  }

  it('reports each task as it is: task 0 succeeded, task 1 failed with exit code 3, task 2 runs', async () => {
    const execution = await startedBatch();
    run.settleTask(execution, 0, { phase: 'succeeded' });
    run.settleTask(execution, 1, {
      phase: 'failed',
      exitCode: 3,
      message: 'Application exited with an error',
    });

    expect(await launcher.inspect(execution, 0)).toEqual({
      kind: 'ended',
      exitCode: 0,
      finishedAt: expect.any(String),
    });
    const failed = await launcher.inspect(execution, 1);
    expect(failed).toMatchObject({ kind: 'ended', exitCode: 3, finishedAt: expect.any(String) });
    expect((failed as { error: string }).error).toContain(
      '-task1 failed with message: Application exited with an error',
    );
    expect(await launcher.inspect(execution, 2)).toEqual({ kind: 'running' });
    // One listing, read to its end (two pages), for the three; the execution itself is not read.
    expect(listings()).toEqual([null, '2']);
    expect(run.requests.every(isListTasks)).toBe(true);
    expect(run.requests[0].path).toBe(`/v2/${execution}/tasks`);
  });

  it('reports a whole execution as failed when one of its tasks failed, whatever the others did', async () => {
    const execution = await startedBatch();
    run.settleTask(execution, 0, { phase: 'succeeded' });
    run.settleTask(execution, 1, {
      phase: 'failed',
      exitCode: 3,
      message: 'Application exited with an error',
    });
    run.settleTask(execution, 2, { phase: 'succeeded' });
    expect(await launcher.inspect(execution)).toMatchObject({ kind: 'ended', exitCode: 3 });
    const all = await startedBatch();
    for (const task of [0, 1, 2]) run.settleTask(all, task, { phase: 'succeeded' });
    expect(await launcher.inspect(all)).toMatchObject({ kind: 'ended', exitCode: 0 });
  });

  it("lists an execution's tasks once for inspects within the cache time, at once or one after another", async () => {
    const execution = await startedBatch();
    await Promise.all([0, 1, 2].map((task) => launcher.inspect(execution, task)));
    for (const task of [0, 1, 2]) await launcher.inspect(execution, task);
    expect(listings()).toEqual([null, '2']);

    // Another execution has a listing of its own.
    const other = await startedBatch(2);
    await launcher.inspect(other, 0);
    await launcher.inspect(execution, 0);
    expect(listings()).toEqual([null]);
  });

  it('lists again once the cached listing expired, and sees the tasks that ended since', async () => {
    const uncached = testRunLauncher(run.endpoint, auth, { taskListingTtlMs: 0 });
    const execution = await startedBatch(2, uncached);
    expect(await uncached.inspect(execution, 1)).toEqual({ kind: 'running' });
    run.settleTask(execution, 1, { phase: 'failed', termSignal: 9 });
    expect(await uncached.inspect(execution, 1)).toMatchObject({ kind: 'ended', exitCode: 137 });
    expect(listings()).toEqual([null, null]);
  });

  it('does not keep a listing that failed: unknown, then the next inspect lists again', async () => {
    const execution = await startedBatch();
    run.settleTask(execution, 2, { phase: 'failed', exitCode: 4 });
    run.failNext(1, googleError(403, 'Permission run.tasks.list denied'), isListTasks);
    const status = await launcher.inspect(execution, 2);
    expect(status).toEqual({ kind: 'unknown', reason: expect.stringContaining('run.tasks.list denied') });
    expect((status as { reason: string }).reason).toContain(`the tasks of Cloud Run execution ${execution}`);
    expect(await launcher.inspect(execution, 2)).toMatchObject({ kind: 'ended', exitCode: 4 });
  });

  it('reports the tasks of a cancelled batch as cancelled, and those that ended before as they ended', async () => {
    const execution = await startedBatch();
    run.settleTask(execution, 0, { phase: 'succeeded' });
    await launcher.cancel(execution);
    expect(await launcher.inspect(execution, 0)).toMatchObject({ kind: 'ended', exitCode: 0 });
    expect(await launcher.inspect(execution, 2)).toEqual({
      kind: 'ended',
      exitCode: CANCELLED_EXIT_CODE,
      finishedAt: expect.any(String),
      error: 'the task was cancelled',
    });
  });

  it('says unknown for a task the execution does not list, and gone for an execution Cloud Run does not know', async () => {
    const execution = await startedBatch(2);
    expect(await launcher.inspect(execution, 2)).toEqual({
      kind: 'unknown',
      reason: expect.stringContaining('lists no task 2 (it lists 2)'),
    });
    const forgotten = await startedBatch(2);
    run.forget(forgotten);
    expect(await launcher.inspect(forgotten, 0)).toEqual({ kind: 'gone' });
  });
});

describe('ComputeEngineLauncher.inspect and cancel', () => {
  let compute: FakeCompute;
  let launcher: ComputeEngineLauncher;
  beforeAll(async () => {
    compute = await startFakeCompute();
    launcher = new ComputeEngineLauncher(testComputeSettings(compute.endpoint, auth));
  });
  afterAll(() => compute.close());
  afterEach(() => compute.requests.splice(0));

  /** Creates a VM and forgets the requests of the launch. */
  async function started(): Promise<{ execution: string; name: string }> {
    const { execution } = await launcher.launch(testLaunchRequest('vm'));
    compute.requests.splice(0);
    return { execution, name: execution.split('/').at(-1)! };
  }

  it.each([
    ['PROVISIONING', 'running'],
    ['STAGING', 'running'],
    ['RUNNING', 'running'],
    ['REPAIRING', 'running'],
    ['PENDING_STOP', 'running'],
    ['STOPPING', 'gone'],
    ['STOPPED', 'gone'],
    ['SUSPENDING', 'gone'],
    ['SUSPENDED', 'gone'],
    ['TERMINATED', 'gone'],
  ])('reports a VM with status %s as %s', async (status, kind) => {
    const { execution, name } = await started();
    compute.instances.get(name)!.status = status;
    expect(await launcher.inspect(execution)).toEqual({ kind });
    expect(compute.requests.map((r) => `${r.method} ${r.path}`)).toEqual([
      `GET /compute/v1/projects/acme/${execution}`,
    ]);
    expect(compute.requests[0].headers.authorization).toBe('Bearer test-token');
  });

  it('reports a VM that no longer exists (404) as gone', async () => {
    const { execution, name } = await started();
    compute.instances.delete(name);
    expect(await launcher.inspect(execution)).toEqual({ kind: 'gone' });
  });

  it('reports a status it does not know, and any other error, as unknown with the reason', async () => {
    const { execution, name } = await started();
    compute.instances.get(name)!.status = 'HIBERNATING';
    expect(await launcher.inspect(execution)).toEqual({
      kind: 'unknown',
      reason: expect.stringContaining('HIBERNATING'),
    });
    // (not 503: the library itself retries a GET that answers UNAVAILABLE)
    compute.failNext(1, computeError(403, 'forbidden', 'Required compute.instances.get permission'));
    expect(await launcher.inspect(execution)).toEqual({
      kind: 'unknown',
      reason: expect.stringContaining('Required compute.instances.get permission'),
    });
  });

  it('refuses an execution that is not zones/Z/instances/NAME, without a request', async () => {
    for (const execution of [
      'projects/acme/locations/europe-west1/jobs/j/executions/e',
      'zones/europe-west1-b/instances/',
      'zones/europe-west1-b/instances/a/../../b',
    ]) {
      expect(await launcher.inspect(execution)).toEqual({
        kind: 'unknown',
        reason: expect.stringContaining('is not a VM of this launcher'),
      });
      await expect(launcher.cancel(execution)).rejects.toThrow('is not a VM of this launcher');
    }
    expect(compute.requests).toHaveLength(0);
  });

  it('cancels with DELETE .../instances/NAME, without waiting for the operation', async () => {
    const { execution, name } = await started();
    await launcher.cancel(execution);
    expect(compute.requests.map((r) => `${r.method} ${r.path}`)).toEqual([
      `DELETE /compute/v1/projects/acme/${execution}`,
    ]);
    expect(compute.deleted).toContain(name);
    expect(await launcher.inspect(execution)).toEqual({ kind: 'gone' });
  });

  it('cancels a VM already gone without an error, and throws a clear one when Compute refuses', async () => {
    const { execution, name } = await started();
    compute.instances.delete(name);
    await expect(launcher.cancel(execution)).resolves.toBeUndefined();
    compute.failNext(1, computeError(403, 'forbidden', 'Required compute.instances.delete permission'));
    await expect(launcher.cancel(execution)).rejects.toThrow(
      `deleting VM ${execution} failed: Required compute.instances.delete permission`,
    );
  });
});
