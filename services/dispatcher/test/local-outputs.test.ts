// Every job's results are its own, on the real local pipeline (folders, watcher, sqlite, the worker
// as child processes, the repository's routing rules): one object uploaded twice, run again with a
// parameter by POST /jobs, and run by an occurrence of a schedule makes four jobs with four disjoint
// output prefixes, each log holding its own job's lines only, each _SUCCESS naming its own job, and
// _LATEST naming the newest generation.
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { FINAL_STATES, parseLatestPointer, type Job } from '@pipeline/core';
import { putObject } from '../src/local/put-object.ts';
import { cliRun, jobWhen, startTestPipeline, until } from '../../../packages/cli/test/cli-support.ts';

const escape = (text: string) => text.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');

let pipeline: Awaited<ReturnType<typeof startTestPipeline>>;
beforeAll(async () => {
  pipeline = await startTestPipeline();
});
afterAll(async () => {
  await pipeline?.removeAll();
});

function csv(rows: number): string {
  const lines = ['x1,x2,label'];
  for (let i = 0; i < rows; i++) lines.push(`${(i % 9) - 4},${(i * 7) % 5},${(i % 9) - 4 > 0 ? 1 : 0}`);
  return `${lines.join('\n')}\n`;
}

function tempFile(text: string): string {
  const file = path.join(fs.mkdtempSync(path.join(os.tmpdir(), 'upload-')), 'x.csv');
  fs.writeFileSync(file, text);
  return file;
}

const ended = (id: string) => jobWhen(pipeline, id, (job) => FINAL_STATES.includes(job.state));

async function post(body: unknown, status = 201): Promise<{ id: string; job: Job }> {
  const res = await fetch(`${pipeline.url}/jobs`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify(body),
  });
  expect(res.status, await res.clone().text()).toBe(status);
  return (await res.json()) as { id: string; job: Job };
}

describe('outputs per job on the local pipeline', () => {
  it("gives an object's two generations, a rerun with a parameter and a cron occurrence four disjoint prefixes", async () => {
    const name = 'team/iris.csv';
    const first = putObject(pipeline.blobs, name, tempFile(csv(40)), {});
    const upload1 = await ended((await until(() => jobOfGeneration(name, first))).id);
    const second = putObject(pipeline.blobs, name, tempFile(csv(60)), {});
    const upload2 = await ended((await until(() => jobOfGeneration(name, second))).id);

    const rerun = await post({ inputUri: `gs://input/${name}`, params: { TARGET_COLUMN: 'label' } });
    const rerunJob = await ended(rerun.id);
    // The same request again is the same job, not a second run.
    expect((await post({ inputUri: `gs://input/${name}`, params: { TARGET_COLUMN: 'label' } }, 200)).id).toBe(
      rerun.id,
    );

    const series = await post({ inputUri: `gs://input/${name}`, cron: '0 0 1 1 *' });
    expect(series.job.state).toBe('SCHEDULED');
    // Its occurrence, now rather than next January: what the reconciler does when it is due.
    const launched = await pipeline.dispatcher.launchDue(series.job);
    expect(launched).toBeDefined();
    const occurrence = await ended(series.id);

    const jobs = [upload1, upload2, rerunJob, occurrence];
    expect(jobs.map((j) => j.state)).toEqual(['SUCCEEDED', 'SUCCEEDED', 'SUCCEEDED', 'SUCCEEDED']);
    expect(new Set(jobs.map((j) => j.id)).size).toBe(4);
    expect(rerunJob.params).toEqual({ TARGET_COLUMN: 'label' });

    const prefixes = jobs.map((j) => j.outputUri!);
    expect(prefixes[0]).toBe(path.join(pipeline.blobs.folder('output'), name, first) + '/');
    expect(prefixes[1]).toBe(path.join(pipeline.blobs.folder('output'), name, second) + '/');
    expect(prefixes[2]).toBe(path.join(pipeline.blobs.folder('output'), 'runs', rerunJob.id) + '/');
    expect(prefixes[3]).toBe(path.join(pipeline.blobs.folder('output'), 'runs', occurrence.id) + '/');
    for (const a of prefixes) for (const b of prefixes) if (a !== b) expect(b.startsWith(a)).toBe(false);

    for (const job of jobs) {
      const marker = JSON.parse(fs.readFileSync(path.join(job.outputUri!, '_SUCCESS'), 'utf8'));
      expect(marker.jobId).toBe(job.id);
      const log = fs.readFileSync(path.join(job.outputUri!, 'logs', 'attempt-1.log'), 'utf8');
      expect(log).toContain(job.id);
      for (const other of jobs) if (other.id !== job.id) expect(log).not.toContain(other.id);
      expect(fs.readdirSync(path.join(job.outputUri!, 'logs'))).toEqual(['attempt-1.log']);
    }

    const pointer = parseLatestPointer(
      fs.readFileSync(path.join(pipeline.blobs.folder('output'), name, '_LATEST'), 'utf8'),
    );
    expect(pointer).toMatchObject({ generation: second, jobId: upload2.id, prefix: `${name}/${second}/` });

    // `pipeline job` follows it: the older generation's job names the newer one.
    const env = { PIPELINE_URL: pipeline.url };
    expect((await cliRun(['job', upload1.id], env)).stdout).toMatch(
      new RegExp(`newest +generation ${second}, job ${upload2.id}: ${escape(prefixes[1])}`),
    );
    expect((await cliRun(['job', upload2.id], env)).stdout).toMatch(
      /newest +these: the object's _LATEST names this job/,
    );
    expect((await cliRun(['job', rerunJob.id], env)).stdout).not.toContain('newest');
  });
});

async function jobOfGeneration(name: string, generation: string): Promise<Job | undefined> {
  const { jobs } = await pipeline.ledger.list({ limit: 100 });
  return jobs.find(
    (j) =>
      j.source.kind === 'object' &&
      j.source.object.name === name &&
      j.source.object.generation === generation,
  );
}
