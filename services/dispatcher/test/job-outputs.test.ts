// GET /jobs/:id/outputs and /jobs/:id/outputs/NAME against real folders as buckets (FolderBlobStore in
// a temporary directory): the listing, the bytes and headers of each kind of output, a download
// larger than one read, and the names that must not reach outside the job's own prefix.
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import request from 'supertest';
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { jobIdFor, newJob, outputPrefix, type Job, type StorageObject } from '@pipeline/core';
import { attachmentDisposition, READ_CHUNK_BYTES, relativeOutputName } from '../src/job-outputs.ts';
import { testApp } from './support.ts';

const OUTPUT_BUCKET = 'acme-pipeline-output';

let t: ReturnType<typeof testApp>;
beforeEach(() => {
  t = testApp(OUTPUT_BUCKET);
});
afterEach(() => t.cleanup());

function objectSource(name: string, generation = '1700000000000000001'): StorageObject {
  return { bucket: 'acme-pipeline-input', name, generation, size: 100, metadata: {} };
}

/** An upload's job, in the ledger as the dispatcher would have claimed it. */
async function uploadJob(name: string, generation?: string): Promise<Job> {
  const object = objectSource(name, generation);
  const job = newJob(
    jobIdFor(object.bucket, object.name, object.generation),
    { kind: 'object', object },
    new Date().toISOString(),
  );
  const claim = await t.ledger.claim(job, 60_000);
  expect(claim.claimed).toBe(true);
  return claim.job;
}

/** Writes an object into the output bucket's folder, as a task would. */
function writeOutput(name: string, content: string | Buffer): string {
  const file = path.join(t.dir, 'out', ...name.split('/'));
  fs.mkdirSync(path.dirname(file), { recursive: true });
  fs.writeFileSync(file, content);
  return file;
}

const CSV = 'x1,x2,label,prediction\n1,2,1,0.91\n-3,0,0,0.08\n';
const MODEL = { target: 'label', classes: ['0', '1'], metrics: { accuracy: 0.95, logLoss: 0.2 } };

async function jobWithOutputs(): Promise<Job> {
  const job = await uploadJob('reports/q3.csv');
  const prefix = outputPrefix(job);
  writeOutput(`${prefix}predictions.csv`, CSV);
  writeOutput(`${prefix}model.json`, `${JSON.stringify(MODEL)}\n`);
  writeOutput(`${prefix}logs/attempt-1.log`, '{"severity":"INFO","message":"done"}\n');
  writeOutput(`${prefix}_SUCCESS`, '{"jobId":"x"}\n');
  return job;
}

describe('GET /jobs/:id/outputs', () => {
  it("lists what the job wrote under its own prefix, by name relative to it, and nothing of another job's", async () => {
    const job = await jobWithOutputs();
    // Another version of the same object: its own job, its own prefix, next to this one's.
    const other = await uploadJob('reports/q3.csv', '1700000000000000002');
    expect(outputPrefix(other)).not.toBe(outputPrefix(job));
    writeOutput(`${outputPrefix(other)}predictions.csv`, 'other,job\n');

    const res = await request(t.app).get(`/jobs/${job.id}/outputs`).expect(200);
    expect(res.headers['cache-control']).toBe('no-store');
    expect(res.body.prefix).toBe(outputPrefix(job));
    expect(res.body.uri).toBe(t.blobs.uri(OUTPUT_BUCKET, outputPrefix(job)));
    expect(res.body.more).toBeUndefined();
    expect(res.body.outputs.map((o: { name: string }) => o.name)).toEqual([
      '_SUCCESS',
      'logs/attempt-1.log',
      'model.json',
      'predictions.csv',
    ]);
    const predictions = res.body.outputs.find((o: { name: string }) => o.name === 'predictions.csv');
    expect(predictions).toEqual({
      name: 'predictions.csv',
      size: Buffer.byteLength(CSV),
      updated: expect.stringMatching(/^\d{4}-\d\d-\d\dT/),
      contentType: 'text/csv',
    });
  });

  it('says when the listing stopped at its limit, and refuses a limit out of range', async () => {
    const job = await jobWithOutputs();
    const res = await request(t.app).get(`/jobs/${job.id}/outputs?limit=2`).expect(200);
    expect(res.body.outputs).toHaveLength(2);
    expect(res.body.more).toBe(true);
    await request(t.app).get(`/jobs/${job.id}/outputs?limit=0`).expect(400);
    await request(t.app).get(`/jobs/${job.id}/outputs?limit=1001`).expect(400);
  });

  it('lists nothing for a job that wrote nothing yet', async () => {
    const job = await uploadJob('fresh.csv');
    const res = await request(t.app).get(`/jobs/${job.id}/outputs`).expect(200);
    expect(res.body).toEqual({
      prefix: outputPrefix(job),
      uri: t.blobs.uri(OUTPUT_BUCKET, outputPrefix(job)),
      outputs: [],
    });
  });

  it('answers 404 for a job the ledger does not know', async () => {
    const res = await request(t.app)
      .get(`/jobs/${'a'.repeat(32)}/outputs`)
      .expect(404);
    expect(res.body.error).toBe(`no job ${'a'.repeat(32)}`);
    await request(t.app).get('/jobs/not-an-id/outputs').expect(404);
  });
});

describe('GET /jobs/:id/outputs/NAME', () => {
  it('sends predictions.csv as a download, with headers that keep it inert', async () => {
    const job = await jobWithOutputs();
    const res = await request(t.app).get(`/jobs/${job.id}/outputs/predictions.csv`).expect(200);
    expect(res.text).toBe(CSV);
    expect(res.headers['content-type']).toBe('text/csv');
    expect(res.headers['content-length']).toBe(String(Buffer.byteLength(CSV)));
    expect(res.headers['content-disposition']).toBe(
      `attachment; filename="predictions.csv"; filename*=UTF-8''predictions.csv`,
    );
    expect(res.headers['x-content-type-options']).toBe('nosniff');
    expect(res.headers['content-security-policy']).toBe("sandbox; default-src 'none'");
  });

  it('shows JSON and logs as they are, and sends anything else as bytes to save', async () => {
    const job = await jobWithOutputs();
    const model = await request(t.app).get(`/jobs/${job.id}/outputs/model.json`).expect(200);
    expect(model.headers['content-type']).toBe('application/json');
    expect(model.headers['content-disposition']).toBeUndefined();
    expect(model.body).toEqual(MODEL);

    const log = await request(t.app).get(`/jobs/${job.id}/outputs/logs/attempt-1.log`).expect(200);
    expect(log.headers['content-type']).toBe('text/plain; charset=utf-8');
    expect(log.headers['content-disposition']).toBeUndefined();
    expect(log.text).toBe('{"severity":"INFO","message":"done"}\n');

    const marker = await request(t.app)
      .get(`/jobs/${job.id}/outputs/_SUCCESS`)
      .buffer(true)
      .parse((res, done) => {
        const parts: Buffer[] = [];
        res.on('data', (part: Buffer) => parts.push(part));
        res.on('end', () => done(null, Buffer.concat(parts)));
      })
      .expect(200);
    expect(marker.headers['content-type']).toBe('application/octet-stream');
    expect(marker.headers['content-disposition']).toMatch(/^attachment; filename="_SUCCESS"/);
    expect(marker.headers['x-content-type-options']).toBe('nosniff');
    expect(String(marker.body)).toBe('{"jobId":"x"}\n');
  });

  it('streams an output larger than one read in chunks of at most READ_CHUNK_BYTES', async () => {
    const job = await uploadJob('big.csv');
    const size = READ_CHUNK_BYTES * 2 + 12_345;
    const content = Buffer.alloc(size);
    for (let i = 0; i < size; i++) content[i] = 97 + (i % 26);
    writeOutput(`${outputPrefix(job)}predictions.csv`, content);
    const reads = vi.spyOn(t.blobs, 'read');

    const res = await request(t.app).get(`/jobs/${job.id}/outputs/predictions.csv`).expect(200);
    expect(res.headers['content-length']).toBe(String(size));
    expect(Buffer.from(res.text).equals(content)).toBe(true);
    expect(reads.mock.calls.map(([, offset, maxBytes]) => [offset, maxBytes])).toEqual([
      [0, READ_CHUNK_BYTES],
      [READ_CHUNK_BYTES, READ_CHUNK_BYTES],
      [READ_CHUNK_BYTES * 2, 12_345],
    ]);
  });

  it('answers HEAD with the headers, reading no more than the first chunk', async () => {
    const job = await uploadJob('big.csv');
    writeOutput(`${outputPrefix(job)}predictions.csv`, Buffer.alloc(READ_CHUNK_BYTES + 10, 'a'));
    const reads = vi.spyOn(t.blobs, 'read');
    const res = await request(t.app).head(`/jobs/${job.id}/outputs/predictions.csv`).expect(200);
    expect(res.headers['content-length']).toBe(String(READ_CHUNK_BYTES + 10));
    expect(res.headers['content-type']).toBe('text/csv');
    expect(reads).toHaveBeenCalledTimes(1);
  });

  it('cuts the download short when the object changes under it, rather than mixing two versions', async () => {
    const job = await uploadJob('changing.csv');
    const file = writeOutput(`${outputPrefix(job)}predictions.csv`, Buffer.alloc(READ_CHUNK_BYTES + 10, 'a'));
    const read = t.blobs.read.bind(t.blobs);
    vi.spyOn(t.blobs, 'read').mockImplementation(async (uri, offset, maxBytes) => {
      // A task writes the file again between the first chunk and the second.
      if (offset > 0) fs.appendFileSync(file, 'more');
      return read(uri, offset, maxBytes);
    });
    const outcome = await request(t.app)
      .get(`/jobs/${job.id}/outputs/predictions.csv`)
      .then(
        (res) => ({ completed: true, bytes: res.text.length }),
        (err: Error) => ({ completed: false, error: err.message }),
      );
    expect(outcome).toEqual({ completed: false, error: 'aborted' });
    // The server logs it once its side of the stream has ended, which may be after the client's.
    await vi.waitFor(() =>
      expect(t.logs.find((line) => line.message === 'output download cut short')).toMatchObject({
        jobId: job.id,
        output: 'predictions.csv',
        err: { message: expect.stringContaining('changed during the download') },
      }),
    );
  });

  it('answers 404 for an output that is not there, a folder, and a job that does not exist', async () => {
    const job = await jobWithOutputs();
    const absent = await request(t.app).get(`/jobs/${job.id}/outputs/nothing.csv`).expect(404);
    expect(absent.body.error).toBe(`job ${job.id} has no output nothing.csv`);
    await request(t.app).get(`/jobs/${job.id}/outputs/logs`).expect(404);
    await request(t.app)
      .get(`/jobs/${'b'.repeat(32)}/outputs/predictions.csv`)
      .expect(404);
  });

  it("never serves what a link written into the job's folder points at outside the buckets", async () => {
    const job = await jobWithOutputs();
    const secret = path.join(fs.mkdtempSync(path.join(os.tmpdir(), 'secret-')), 'key.txt');
    fs.writeFileSync(secret, 'not for the dashboard');
    fs.symlinkSync(secret, path.join(t.dir, 'out', ...outputPrefix(job).split('/'), 'link.txt'));
    const res = await request(t.app).get(`/jobs/${job.id}/outputs/link.txt`);
    expect(res.status).toBeGreaterThanOrEqual(400);
    expect(res.text).not.toContain('not for the dashboard');
  });

  it("refuses names that would leave the job's prefix, before asking the bucket anything", async () => {
    const job = await jobWithOutputs();
    // What those names would reach if they were followed: another job's outputs, the input bucket.
    const other = await uploadJob('reports/q3.csv', '1700000000000000002');
    writeOutput(`${outputPrefix(other)}predictions.csv`, 'ANOTHER-JOBS-ROWS\n');
    fs.mkdirSync(path.join(t.dir, 'in'), { recursive: true });
    fs.writeFileSync(path.join(t.dir, 'in', 'secret.csv'), 'AN-INPUT-NOT-SERVED\n');
    const reads = vi.spyOn(t.blobs, 'read');
    const stats = vi.spyOn(t.blobs, 'stat');
    const up = outputPrefix(job)
      .split('/')
      .filter((s) => s !== '')
      .map(() => '..')
      .join('/');
    for (const name of [
      `../${outputPrefix(other).split('/').at(-2)}/predictions.csv`,
      `${up}/../in/secret.csv`,
      '%2e%2e/%2E%2E/in/secret.csv',
      'logs/..%2f..%2f..%2fin%2fsecret.csv',
      './predictions.csv',
      'logs//attempt-1.log',
      'logs/',
      '%2Fetc%2Fpasswd',
      '/etc/passwd',
      'predictions.csv%00.json',
    ]) {
      const res = await request(t.app).get(`/jobs/${job.id}/outputs/${name}`);
      expect(res.status, name).toBe(400);
      expect(res.body.error, name).toMatch(/^an output name/);
      expect(res.text, name).not.toMatch(/ANOTHER-JOBS-ROWS|AN-INPUT-NOT-SERVED/);
    }
    expect(reads).not.toHaveBeenCalled();
    expect(stats).not.toHaveBeenCalled();
    // A name that is not valid percent-encoding is refused by the router itself.
    expect((await request(t.app).get(`/jobs/${job.id}/outputs/%E0%A4%A`)).status).toBe(400);
  });

  it('serves an output whose name is markup, quotes and spaces, with a filename that cannot break the header', async () => {
    const job = await uploadJob('odd.csv');
    const name = 'sub dir/<img src=x>"quoted" résumé\\.csv';
    writeOutput(`${outputPrefix(job)}${name}`, 'a,b\n');
    const url = `/jobs/${job.id}/outputs/${name.split('/').map(encodeURIComponent).join('/')}`;
    const res = await request(t.app).get(url).expect(200);
    expect(res.text).toBe('a,b\n');
    expect(res.headers['content-type']).toBe('text/csv');
    expect(res.headers['content-disposition']).toBe(
      `attachment; filename="_img src_x__quoted_ r_sum__.csv"; filename*=UTF-8''%3Cimg%20src%3Dx%3E%22quoted%22%20r%C3%A9sum%C3%A9%5C.csv`,
    );
  });
});

describe('output names and filenames', () => {
  it('joins decoded segments into one name relative to the prefix', () => {
    expect(relativeOutputName(['logs', 'attempt-2.log'])).toBe('logs/attempt-2.log');
    expect(relativeOutputName(['a/b.csv'])).toBe('a/b.csv'); // %2F inside a segment is still a slash
    expect(relativeOutputName(['..hidden', 'x..y'])).toBe('..hidden/x..y'); // dots inside names are fine
    expect(() => relativeOutputName(['a/../b'])).toThrow(/segment/);
    expect(() => relativeOutputName([''])).toThrow(/needed/);
  });

  it('never lets a filename end its quote or the header line', () => {
    const disposition = attachmentDisposition('x/evil"\r\nSet-Cookie: a=b;.csv');
    expect(disposition).toBe(
      `attachment; filename="evil___Set-Cookie_ a_b_.csv"; filename*=UTF-8''evil%22%0D%0ASet-Cookie%3A%20a%3Db%3B.csv`,
    );
    expect(attachmentDisposition('...')).toBe(`attachment; filename="download"; filename*=UTF-8''...`);
  });
});
