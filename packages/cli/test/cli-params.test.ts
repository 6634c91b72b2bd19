// --param NAME=VALUE: a job's parameters. On submit, the object's custom metadata
// pipeline-param-NAME (here the local folder's sidecar; the bucket upload is in cli-remote.test.ts);
// on run --input, the "params" of POST /jobs, as the request the CLI sends shows. `job` shows them.
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { newJob, type Job } from '@pipeline/core';
import { FolderBlobStore } from '../../../services/dispatcher/src/local/folder-blob-store.ts';
import { startRecordingServer, type RecordingServer } from '../../../test/support/recording-server.ts';
import { cliRun } from './cli-support.ts';

const ID = '5ca1ab1e'.padEnd(32, '0');
const OBJECT = { bucket: 'acme-input', name: 'q3.csv', generation: '7', size: 10, metadata: {} };
const JOB: Job = {
  ...newJob(ID, { kind: 'object', object: OBJECT }, '2026-12-01T09:00:00.000Z'),
  state: 'QUEUED',
  target: 'cloud-run-job',
  rule: 'csv',
  params: { TARGET_COLUMN: 'label', NOTE: 'two\nlines' },
};

let server: RecordingServer;
let tmp: string;
beforeAll(async () => {
  server = await startRecordingServer((request) =>
    request.method === 'POST'
      ? { status: 201, body: { id: ID, state: JOB.state, duplicate: false, job: JOB } }
      : { status: 200, body: JOB },
  );
  tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'pipeline-params-'));
});
afterAll(async () => {
  await server?.close();
  fs.rmSync(tmp, { recursive: true, force: true });
});
afterEach(() => {
  server.requests.length = 0;
});

describe('run --input --param', () => {
  it('sends each parameter in "params", a value keeping its = and spaces', async () => {
    const run = await cliRun(
      [
        'run',
        '--input',
        'gs://acme-input/q3.csv',
        '--param',
        'TARGET_COLUMN=label',
        '--param=WHERE=a = b',
        '--at',
        '+1h',
        '--url',
        server.endpoint,
      ],
      {},
    );
    expect([run.code, run.stderr]).toEqual([0, '']);
    expect(run.stdout).toBe(`job ${ID} QUEUED on cloud-run-job (rule csv)\n`);
    expect(server.requests).toHaveLength(1);
    const [{ method, path: route, body }] = server.requests;
    expect([method, route]).toEqual(['POST', '/jobs']);
    expect(body).toEqual({
      inputUri: 'gs://acme-input/q3.csv',
      params: { TARGET_COLUMN: 'label', WHERE: 'a = b' },
      runAt: expect.stringMatching(/^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$/),
    });
  });

  it('sends no "params" without --param', async () => {
    await cliRun(['run', '--input', 'gs://acme-input/q3.csv', '--url', server.endpoint], {});
    expect(server.requests.map((r) => r.body)).toEqual([{ inputUri: 'gs://acme-input/q3.csv' }]);
  });
});

describe('submit --param', () => {
  it("writes pipeline-param-NAME into the object's metadata in the local folder, beside --meta", async () => {
    const file = path.join(tmp, 'q3.csv');
    fs.writeFileSync(file, 'a,label\n1,0\n');
    const dir = path.join(tmp, 'local');
    const run = await cliRun(
      ['submit', file, '--dir', dir, '--meta', 'team=risk', '--param', 'TARGET_COLUMN=label'],
      {},
    );
    expect([run.code, run.stderr]).toEqual([0, '']);
    const blobs = new FolderBlobStore(dir, { input: path.join(dir, 'input') });
    const object = await blobs.stat('input', 'q3.csv');
    expect(object?.metadata).toEqual({ team: 'risk', 'pipeline-param-TARGET_COLUMN': 'label' });
  });
});

describe('job', () => {
  it("shows the job's parameters, one a line, a newline in a value escaped", async () => {
    const run = await cliRun(['job', ID, '--url', server.endpoint], {});
    expect(run.code).toBe(0);
    expect(run.stdout).toContain('\nparams     TARGET_COLUMN=label\n           NOTE=two\\nlines\n');
    expect(server.requests.map((r) => r.path)).toEqual([`/jobs/${ID}`, '/capacity']);
  });
});
