// CloudRunJobLauncher after a lost answer, with the real @google-cloud/run client (REST) against the
// loopback double: find looks for an attempt's execution by the env its RunJob set, and a RunJob
// whose answer is lost (a reset connection, a timeout, a 5xx) is an ambiguous LaunchError, while a
// full platform (429) is a capacity refusal that started nothing.
import { afterAll, afterEach, describe, expect, it } from 'vitest';
import { OAuth2Client } from 'google-auth-library';
import { LaunchError, type Job } from '@pipeline/core';
import { closeGoogleClients, CredentialsError } from '../../src/gcp/clients.ts';
import type { CloudRunJobLauncherSettings } from '../../src/gcp/run-launcher.ts';
import { testBatchLaunchRequest, testLaunchRequest, testRunLauncher } from './test-launchers.ts';
import {
  googleError,
  isListExecutions,
  isRunJob,
  startFakeRun,
  type EndedExecution,
  type FakeRun,
  type FakeRunOptions,
  type StartedExecution,
} from '../../../../test/support/fake-run.ts';

const auth = new OAuth2Client();
auth.setCredentials({ access_token: 'test-token', expiry_date: Date.now() + 24 * 3600 * 1000 });

/** The launcher of project acme's pipeline-worker job at `endpoint`, with `changes`. */
const launcherAt = (endpoint: string, changes: Partial<CloudRunJobLauncherSettings> = {}) =>
  testRunLauncher(endpoint, auth, changes);

const fakes: FakeRun[] = [];
async function fakeRun(options: FakeRunOptions = {}): Promise<FakeRun> {
  const run = await startFakeRun(options);
  fakes.push(run);
  return run;
}
afterEach(async () => {
  await Promise.all(fakes.splice(0).map((run) => run.close()));
});
afterAll(() => closeGoogleClients());

async function launchError(launch: Promise<unknown>): Promise<LaunchError> {
  const err = await launch.then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(err).toBeInstanceOf(LaunchError);
  return err as LaunchError;
}

/** `job` with its current attempt's record launched at `launchedAt`. */
function launchedAt(job: Job, at: string): Job {
  return { ...job, attempts: [{ attempt: job.attempt, target: 'cloud-run-job', launchedAt: at }] };
}

const request = () => testLaunchRequest('cloud-run-job');
const lists = (run: FakeRun) => run.requests.filter(isListExecutions);

describe('CloudRunJobLauncher.find', () => {
  it("finds the attempt's execution by its JOB_ID and ATTEMPT, in one listing of the job", async () => {
    const run = await fakeRun();
    const launcher = launcherAt(run.endpoint);
    const wanted = request();
    await launcher.launch(request());
    const { execution } = await launcher.launch(wanted);
    await launcher.launch(request());
    run.requests.splice(0);

    expect(await launcher.find(wanted.job)).toEqual({ kind: 'found', execution });
    expect(run.requests.map((r) => `${r.method} ${r.path}`)).toEqual([
      'GET /v2/projects/acme/locations/europe-west1/jobs/pipeline-worker/executions',
    ]);
    expect(run.requests[0].query.get('pageSize')).toBe('100');
    expect(run.requests[0].query.get('showDeleted')).toBe('true');
    expect(run.requests[0].headers.authorization).toBe('Bearer test-token');
  });

  it('says absent when no execution has the attempt: another job, or another attempt of the job', async () => {
    const run = await fakeRun();
    const launcher = launcherAt(run.endpoint);
    const launched = request();
    await launcher.launch(launched);

    expect(await launcher.find(request().job)).toEqual({ kind: 'absent' });
    expect(await launcher.find({ ...launched.job, attempt: 2 })).toEqual({ kind: 'absent' });
  });

  it('pages through the listing to the end: found on the third page, absent after the last', async () => {
    const run = await fakeRun();
    const launcher = launcherAt(run.endpoint, { findPageSize: 2 });
    const wanted = request();
    const { execution } = await launcher.launch(wanted);
    for (let i = 0; i < 5; i++) await launcher.launch(request());
    run.requests.splice(0);

    expect(await launcher.find(wanted.job)).toEqual({ kind: 'found', execution });
    expect(lists(run).map((r) => r.query.get('pageToken'))).toEqual([
      null,
      expect.any(String),
      expect.any(String),
    ]);

    run.requests.splice(0);
    expect(await launcher.find(request().job)).toEqual({ kind: 'absent' });
    expect(lists(run)).toHaveLength(3); // 6 executions, 2 a page, the last page has no token
  });

  it("stops at executions older than the attempt's launch (less the margin): they cannot be it", async () => {
    const run = await fakeRun();
    const launcher = launcherAt(run.endpoint, { findPageSize: 2 });
    for (let i = 0; i < 6; i++) await launcher.launch(request());
    run.requests.splice(0);

    const inAnHour = new Date(Date.now() + 3600_000).toISOString();
    expect(await launcher.find(launchedAt(request().job, inAnHour))).toEqual({ kind: 'absent' });
    expect(lists(run)).toHaveLength(1);

    // Launched a minute ago: within the margin, so the listing goes on to the end.
    run.requests.splice(0);
    const aMinuteAgo = new Date(Date.now() - 60_000).toISOString();
    expect(await launcher.find(launchedAt(request().job, aMinuteAgo))).toEqual({ kind: 'absent' });
    expect(lists(run)).toHaveLength(3);
  });

  it('says unknown, not absent, when its pages run out before the listing reaches the launch', async () => {
    const run = await fakeRun();
    const launcher = launcherAt(run.endpoint, { findPageSize: 2, findMaxPages: 2 });
    for (let i = 0; i < 5; i++) await launcher.launch(request());
    run.requests.splice(0);

    const found = await launcher.find(request().job);
    expect(found).toEqual({ kind: 'unknown', reason: expect.stringContaining('newest 4 executions') });
    expect(lists(run)).toHaveLength(2);
  });

  it("finds a batched job's execution by its batch's BATCH_ID, and says absent when no execution has it", async () => {
    const run = await fakeRun();
    const launcher = launcherAt(run.endpoint);
    await launcher.launch(request());
    const batch = testBatchLaunchRequest(3);
    const { execution } = await launcher.launchBatch(batch);
    await launcher.launchBatch(testBatchLaunchRequest(2));

    for (const job of batch.jobs) expect(await launcher.find(job)).toEqual({ kind: 'found', execution });
    // Not found by its JOB_ID: the batch's execution has none.
    const [unbatched] = testBatchLaunchRequest(1).jobs;
    expect(await launcher.find(unbatched)).toEqual({ kind: 'absent' });
  });

  it('says unknown when the listing is refused or fails, with what to do about a refusal', async () => {
    const run = await fakeRun();
    const launcher = launcherAt(run.endpoint);
    const wanted = request();
    await launcher.launch(wanted);

    run.failNext(
      1,
      googleError(
        403,
        "Permission 'run.executions.list' denied on resource 'projects/acme/locations/europe-west1/jobs/pipeline-worker' (or it may not exist).",
      ),
      isListExecutions,
    );
    const refused = await launcher.find(wanted.job);
    expect(refused.kind).toBe('unknown');
    const reason = refused.kind === 'unknown' ? refused.reason : '';
    expect(reason).toContain(`job ${wanted.job.id} attempt 1`);
    expect(reason).toContain('PERMISSION_DENIED');
    expect(reason).toContain('needs run.executions.list on the job (roles/run.viewer');

    run.failNext(1, googleError(500, 'Internal error encountered.'), isListExecutions);
    expect(await launcher.find(wanted.job)).toEqual({
      kind: 'unknown',
      reason: expect.stringContaining('Internal error encountered. (INTERNAL, HTTP 500)'),
    });
    // Once the listing answers again, the execution is there.
    expect((await launcher.find(wanted.job)).kind).toBe('found');
  });
});

describe('CloudRunJobLauncher.launch when the answer is lost or refused', () => {
  const runJobs = (run: FakeRun) => run.requests.filter(isRunJob);

  it('a reset connection after the double started the execution is ambiguous; find then has the one execution', async () => {
    const run = await fakeRun();
    const launcher = launcherAt(run.endpoint);
    const launched = request();
    run.dropNextAnswers(1, isRunJob);

    const err = await launchError(launcher.launch(launched));
    expect(err).toMatchObject({ ambiguous: true, retryable: true, capacity: false });
    expect(err.message).toContain('ECONNRESET');
    expect(err.message).toContain('may have been carried out');
    expect(runJobs(run)).toHaveLength(1); // gax did not send it again
    expect(run.executions).toHaveLength(1);

    expect(await launcher.find(launched.job)).toEqual({ kind: 'found', execution: run.executions[0] });
  });

  it("a batch's lost answer is ambiguous too; find of any of its jobs then has the one execution", async () => {
    const run = await fakeRun();
    const launcher = launcherAt(run.endpoint);
    const batch = testBatchLaunchRequest(3);
    run.dropNextAnswers(1, isRunJob);

    const err = await launchError(launcher.launchBatch(batch));
    expect(err).toMatchObject({ ambiguous: true, retryable: true, capacity: false });
    expect(err.message).toContain(`batch ${batch.batchId}`);
    expect(runJobs(run)).toHaveLength(1); // gax did not send it again
    expect(run.executions).toHaveLength(1);
    expect(await launcher.find(batch.jobs[2])).toEqual({ kind: 'found', execution: run.executions[0] });
  });

  it('an answer that does not come within the timeout is ambiguous (DEADLINE_EXCEEDED)', async () => {
    const run = await fakeRun();
    const launcher = launcherAt(run.endpoint, { runJobTimeoutMs: 300 });
    const launched = request();
    run.stallNextAnswers(1, isRunJob);

    const err = await launchError(launcher.launch(launched));
    expect(err).toMatchObject({ ambiguous: true, retryable: true, capacity: false });
    expect(err.message).toContain('DEADLINE_EXCEEDED');
    expect(runJobs(run)).toHaveLength(1);
    expect(await launcher.find(launched.job)).toEqual({ kind: 'found', execution: run.executions[0] });
  });

  it.each([
    [500, 'INTERNAL', true],
    [502, undefined, true],
    [503, 'UNAVAILABLE', true],
    [504, 'DEADLINE_EXCEEDED', true],
    [400, 'INVALID_ARGUMENT', false],
    [404, 'NOT_FOUND', false],
  ])('HTTP %i (%s) is ambiguous: %s', async (status, name, ambiguous) => {
    const run = await fakeRun();
    const launcher = launcherAt(run.endpoint);
    run.failNext(1, googleError(status, `the double says ${status}`, name ? { status: name } : {}), isRunJob);
    const err = await launchError(launcher.launch(request()));
    expect(err).toMatchObject({ ambiguous, retryable: ambiguous, capacity: false });
    expect(runJobs(run)).toHaveLength(1);
  });

  it('a full region (maxRunning) is a capacity refusal, not ambiguous, and starts nothing', async () => {
    const run = await fakeRun({ maxRunning: 1 });
    const launcher = launcherAt(run.endpoint);
    const { execution } = await launcher.launch(request());

    const err = await launchError(launcher.launch(request()));
    expect(err).toMatchObject({ capacity: true, ambiguous: false, retryable: true });
    expect(err.message).toContain('RESOURCE_EXHAUSTED');
    expect(err.message).toContain('HTTP 429');
    expect(run.executions).toEqual([execution]);

    run.settle(execution, { phase: 'succeeded' });
    await launcher.launch(request());
    expect(run.executions).toHaveLength(2);
  });

  it("a rate limit (runJobsPerSecond) is a capacity refusal with Google's quota wording", async () => {
    const run = await fakeRun({ runJobsPerSecond: 1 });
    const launcher = launcherAt(run.endpoint);
    await launcher.launch(request());

    const err = await launchError(launcher.launch(request()));
    expect(err).toMatchObject({ capacity: true, ambiguous: false, retryable: true });
    expect(err.message).toContain("limit 'Job run requests per minute per region'");
    expect(err.message).toContain('RATE_LIMIT_EXCEEDED');
    expect(run.executions).toHaveLength(1);
  });

  it('a refused connection and missing credentials sent nothing: retryable, not ambiguous', async () => {
    const closed = await fakeRun();
    const nowhere = launcherAt(closed.endpoint);
    await closed.close();
    const refused = await launchError(nowhere.launch(request()));
    expect(refused).toMatchObject({ retryable: true, ambiguous: false, capacity: false });
    expect(refused.message).toContain('ECONNREFUSED');

    const noCredentials = launcherAt(closed.endpoint, {
      client: () =>
        Promise.reject(new CredentialsError('the run.jobs client has no credentials: none found')),
    });
    const err = await launchError(noCredentials.launch(request()));
    expect(err).toMatchObject({ retryable: true, ambiguous: false, capacity: false });
  });
});

describe('the double for bursts: executions that end by themselves', () => {
  it('ends an execution after executionSeconds with exit 0, and tells onExecutionEnded its env', async () => {
    let ended: (execution: EndedExecution) => void = () => {};
    const endings = new Promise<EndedExecution>((resolve) => (ended = resolve));
    const run = await fakeRun({ executionSeconds: 0.05, onExecutionEnded: (execution) => ended(execution) });
    const launcher = launcherAt(run.endpoint);
    const launched = request();
    const { execution } = await launcher.launch(launched);

    const end = await endings;
    expect(end).toMatchObject({ name: execution, outcome: { phase: 'succeeded' } });
    expect(end.env).toMatchObject({ JOB_ID: launched.job.id, ATTEMPT: '1', LOGS_URI: launched.logsUri });
    expect(await launcher.inspect(execution)).toMatchObject({ kind: 'ended', exitCode: 0 });
    expect(run.running()).toBe(0);
  });
});

describe('the double: executions of taskCount tasks', () => {
  it('runs taskCount tasks: the execution completes when the last one ends, and onExecutionEnded hears each', async () => {
    const started: StartedExecution[] = [];
    const ended: EndedExecution[] = [];
    const run = await fakeRun({
      onExecutionStarted: (execution) => started.push(execution),
      onExecutionEnded: (execution) => ended.push(execution),
    });
    const launcher = launcherAt(run.endpoint);
    const batch = testBatchLaunchRequest(3);
    const { execution } = await launcher.launchBatch(batch);
    expect(started).toEqual([
      expect.objectContaining({
        taskCount: 3,
        env: { BATCH_ID: batch.batchId, BATCH_MANIFEST_URI: batch.manifestUri },
      }),
    ]);

    run.settleTask(execution, 1, { phase: 'failed', exitCode: 3 });
    run.settleTask(execution, 0, { phase: 'succeeded' });
    expect(ended).toHaveLength(0);
    expect(run.running()).toBe(1);
    run.settle(execution, { phase: 'succeeded' }); // task 2, the one not ended
    expect(ended).toEqual([
      {
        name: execution,
        env: started[0].env,
        outcome: { phase: 'failed', exitCode: 3 },
        tasks: [{ phase: 'succeeded' }, { phase: 'failed', exitCode: 3 }, { phase: 'succeeded' }],
      },
    ]);
    expect(run.running()).toBe(0);
    expect(() => run.settleTask(execution, 2, { phase: 'succeeded' })).toThrow('already ended');
  });
});
