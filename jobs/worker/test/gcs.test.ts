// The worker against gs:// URIs: the real command in a child process, @google-cloud/storage inside it
// talking to a loopback fake of the Cloud Storage JSON API (STORAGE_EMULATOR_HOST).
import { CRC32C, Storage } from '@google-cloud/storage';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { crc32c, startFakeGcs, type FakeGcs } from '../../../test/support/fake-gcs.ts';
import { runWorker } from '../../../test/support/run-worker.ts';

const INPUT_NAME = 'data/part 1.csv';
const INPUT_URI = `gs://in-bucket/${INPUT_NAME}`;
const OUTPUT_URI = 'gs://out-bucket/results/part1/';
const OUT = 'results/part1/';

let gcs: FakeGcs;
beforeEach(async () => {
  gcs = await startFakeGcs();
});
afterEach(async () => {
  await gcs.close();
});

/** `rows` rows of two numeric features, a quoted text column with commas and quotes, and a 0/1 label. */
function csv(rows: number, seed: number, oneClass = false): string {
  let state = seed;
  const random = () => (state = (state * 1103515245 + 12345) % 2 ** 31) / 2 ** 31;
  const lines = ['x1,note,x2,label'];
  for (let i = 0; i < rows; i++) {
    const [x1, x2, noise] = [random() * 10 - 5, random() * 4 - 2, random() * 3 - 1.5];
    const label = !oneClass && x1 + 2 * x2 + noise > 0 ? 1 : 0;
    lines.push(`${x1.toFixed(3)},"row ${i}, group ${i % 7}, said ""hi""",${x2.toFixed(2)},${label}`);
  }
  return `${lines.join('\n')}\n`;
}

function worker(env: Record<string, string> = {}) {
  return runWorker([], {
    INPUT_URI,
    OUTPUT_URI,
    JOB_ID: 'job-123',
    STORAGE_EMULATOR_HOST: gcs.url,
    METADATA_SERVER_DETECTION: 'none',
    ...env,
  });
}

const output = (name: string) => gcs.get('out-bucket', OUT + name)?.body.toString('utf8');

/** Checks predictions.csv against the input: its header and rows, each followed by a prediction. */
function expectPredictionsOf(input: string): void {
  const inputLines = input.trimEnd().split('\n');
  const text = output('predictions.csv') ?? '';
  expect(text.endsWith('\n')).toBe(true);
  const lines = text.trimEnd().split('\n');
  expect(lines).toHaveLength(inputLines.length);
  expect(lines[0]).toBe(`${inputLines[0]},prediction,probability`);
  lines.slice(1).forEach((line, i) => {
    const row = inputLines[i + 1];
    expect(line.startsWith(`${row},`)).toBe(true);
    const [prediction, probability, ...rest] = line.slice(row.length + 1).split(',');
    expect(rest).toEqual([]);
    expect(prediction).toBe(Number(probability) > 0.5 ? '1' : '0');
    expect(Number(probability)).toBeGreaterThanOrEqual(0);
    expect(Number(probability)).toBeLessThanOrEqual(1);
  });
}

describe('pipeline-worker with gs:// input and output', () => {
  it('reads the object at one generation and writes predictions, model and, last, _SUCCESS', async () => {
    const input = csv(200, 1);
    expect(input).toContain('label\n');
    expect(
      new Set(
        input
          .trimEnd()
          .split('\n')
          .slice(1)
          .map((l) => l.at(-1)),
      ),
    ).toEqual(new Set(['0', '1']));
    const { generation } = gcs.put('in-bucket', INPUT_NAME, input, { contentType: 'text/csv' });

    const run = await worker();
    expect(run.stderr).toBe('');
    expect(run.code).toBe(0);

    expect(gcs.list('out-bucket')).toEqual([`${OUT}_SUCCESS`, `${OUT}model.json`, `${OUT}predictions.csv`]);
    expectPredictionsOf(input);
    expect(gcs.get('out-bucket', `${OUT}predictions.csv`)?.contentType).toBe('text/csv');
    expect(gcs.get('out-bucket', `${OUT}model.json`)?.contentType).toBe('application/json');

    const success = JSON.parse(output('_SUCCESS') ?? '');
    expect(success).toMatchObject({
      jobId: 'job-123',
      input: INPUT_URI,
      inputGeneration: generation,
      output: OUTPUT_URI,
    });
    const model = JSON.parse(output('model.json') ?? '');
    expect(model.input).toEqual({ uri: INPUT_URI, generation, bytes: Buffer.byteLength(input) });
    expect(model.features).toEqual(['x1', 'x2']);
    expect(model.unusedColumns).toEqual([{ name: 'note', reason: 'not numeric' }]);

    // _SUCCESS is created after the other outputs, and nothing is created after it.
    expect(gcs.created.map((o) => `${o.bucket}/${o.name}`)).toEqual([
      `in-bucket/${INPUT_NAME}`,
      `out-bucket/${OUT}predictions.csv`,
      `out-bucket/${OUT}model.json`,
      `out-bucket/${OUT}_SUCCESS`,
    ]);
    // Both reads of the media are pinned to the generation the metadata named.
    const reads = gcs.requests.filter((r) => r.method === 'GET' && r.url.includes('alt=media'));
    expect(reads).toHaveLength(2);
    for (const read of reads) {
      expect(read.url).toContain('/b/in-bucket/o/data%2Fpart%201.csv?');
      expect(new URL(read.url, gcs.url).searchParams.get('generation')).toBe(generation);
    }
  });

  it('removes a stale _SUCCESS first, so an input that cannot make a model leaves none', async () => {
    gcs.put('out-bucket', `${OUT}_SUCCESS`, '{"jobId":"an earlier run"}\n');
    gcs.put('in-bucket', INPUT_NAME, csv(50, 2, true));

    const run = await worker();
    expect(run.code).toBe(4);
    expect(run.stderr).toMatch(/one class only/);
    expect(gcs.get('out-bucket', `${OUT}_SUCCESS`)).toBeUndefined();
    expect(gcs.list('out-bucket')).toEqual([]);
    const deletes = gcs.requests.filter((r) => r.method === 'DELETE');
    expect(deletes.map((r) => new URL(r.url, gcs.url).pathname)).toEqual([
      '/b/out-bucket/o/results%2Fpart1%2F_SUCCESS',
    ]);
  });

  it('fails with exit code 3, naming the URI, when the input object does not exist', async () => {
    gcs.put('in-bucket', 'data/other.csv', csv(20, 3));
    const run = await worker({ INPUT_URI: 'gs://in-bucket/data/missing part.csv' });
    expect(run.code).toBe(3);
    expect(run.stderr).toContain('gs://in-bucket/data/missing part.csv');
    expect(run.stderr).toContain('no such object');
    expect(gcs.list('out-bucket')).toEqual([]);
  });

  it('reads the generation named by INPUT_GENERATION after the object was overwritten', async () => {
    const first = csv(200, 4);
    const { generation } = gcs.put('in-bucket', INPUT_NAME, first);
    const { generation: newer } = gcs.put('in-bucket', INPUT_NAME, csv(120, 5));
    expect(BigInt(newer)).toBeGreaterThan(BigInt(generation));

    const run = await worker({ INPUT_GENERATION: generation });
    expect(run.stderr).toBe('');
    expect(run.code).toBe(0);
    expectPredictionsOf(first);
    expect(JSON.parse(output('_SUCCESS') ?? '').inputGeneration).toBe(generation);
  });

  it('fails with exit code 3 when INPUT_GENERATION names no generation of the object', async () => {
    const { generation } = gcs.put('in-bucket', INPUT_NAME, csv(20, 6));
    const run = await worker({ INPUT_GENERATION: String(BigInt(generation) + 1000n) });
    expect(run.code).toBe(3);
    expect(run.stderr).toContain(INPUT_URI);
    expect(gcs.list('out-bucket')).toEqual([]);
  });
});

describe('the fake Cloud Storage server', () => {
  it('serves the client library under /storage/v1: every kind of upload, download, list, delete', async () => {
    const bucket = new Storage({ apiEndpoint: gcs.url, projectId: 'test' }).bucket('b');
    const big = Buffer.from(Array.from({ length: 600 * 1024 }, (_, i) => (i * 31) % 251));

    await bucket.file('a/small.txt').save('hello, world', { resumable: false, contentType: 'text/plain' });
    await bucket.file('a/big.bin').save(big, { resumable: true, chunkSize: 256 * 1024 });
    expect(gcs.requests.filter((r) => r.url.includes('uploadType=multipart'))).toHaveLength(1);
    expect(gcs.requests.filter((r) => r.method === 'PUT')).toHaveLength(3); // three chunks
    expect(gcs.get('b', 'a/small.txt')).toMatchObject({
      body: Buffer.from('hello, world'),
      contentType: 'text/plain',
    });
    expect(gcs.get('b', 'a/big.bin')?.body.equals(big)).toBe(true);

    const library = new CRC32C();
    library.update(big);
    expect(crc32c(big)).toBe(library.toString());
    // The client checks the x-goog-hash CRC32C of a download. (Objects of more than one network chunk
    // are not downloaded here: storage 8 warns MaxListenersExceededWarning on every such read,
    // googleapis/google-cloud-node#9185.)
    const [downloaded] = await bucket.file('a/small.txt').download();
    expect(downloaded.toString()).toBe('hello, world');
    const [files] = await bucket.getFiles({ prefix: 'a/' });
    expect(files.map((f) => [f.name, f.metadata.size])).toEqual([
      ['a/big.bin', String(big.length)],
      ['a/small.txt', '12'],
    ]);

    const mustNotExist = { preconditionOpts: { ifGenerationMatch: 0 } };
    for (const resumable of [false, true]) {
      const save = bucket.file('a/small.txt').save('x', { resumable, ...mustNotExist });
      await expect(save).rejects.toMatchObject({ code: 412 });
    }
    expect(gcs.get('b', 'a/small.txt')?.body.toString()).toBe('hello, world');
    await bucket.file('a/new.txt').save('new', { resumable: true, ...mustNotExist });
    expect(gcs.list('b')).toEqual(['a/big.bin', 'a/new.txt', 'a/small.txt']);

    await bucket.file('a/new.txt').delete();
    await expect(bucket.file('a/new.txt').delete()).rejects.toMatchObject({ code: 404 });
    await expect(bucket.file('a/new.txt').download()).rejects.toMatchObject({ code: 404 });
  });

  it('shows a resumable upload only when it completes, and honours ifGenerationMatch', async () => {
    const start = (query: string) =>
      fetch(`${gcs.url}/upload/storage/v1/b/b/o?uploadType=resumable&name=r.txt${query}`, {
        method: 'POST',
        headers: { 'Content-Type': 'application/json', 'X-Upload-Content-Type': 'text/plain' },
        body: '{}',
      });
    const session = (await start('')).headers.get('location') ?? '';
    expect(session.startsWith(`${gcs.url}/upload/storage/v1/b/b/o?`)).toBe(true);
    const put = (range: string, body: string) =>
      fetch(session, { method: 'PUT', headers: { 'Content-Range': range }, body });

    const partial = await put('bytes 0-3/*', 'abcd');
    expect(partial.status).toBe(308);
    expect(partial.headers.get('range')).toBe('bytes=0-3');
    expect(gcs.get('b', 'r.txt')).toBeUndefined();
    expect((await put('bytes */*', '')).headers.get('range')).toBe('bytes=0-3');
    const done = await put('bytes 2-6/7', 'cdefg'); // resends two bytes the server has
    expect(done.status).toBe(200);
    const metadata = (await done.json()) as { generation: string };
    expect(metadata).toMatchObject({ name: 'r.txt', size: '7', contentType: 'text/plain' });
    expect(gcs.get('b', 'r.txt')).toMatchObject({
      body: Buffer.from('abcdefg'),
      generation: metadata.generation,
    });

    expect((await start('&ifGenerationMatch=0')).status).toBe(412);
    const late = (await start(`&ifGenerationMatch=${metadata.generation}`)).headers.get('location') ?? '';
    gcs.put('b', 'r.txt', 'changed meanwhile');
    const conflict = await fetch(late, {
      method: 'PUT',
      headers: { 'Content-Range': 'bytes 0-0/1' },
      body: 'x',
    });
    expect(conflict.status).toBe(412);
    expect(await conflict.json()).toMatchObject({ error: { code: 412 } });
    expect(gcs.get('b', 'r.txt')?.body.toString()).toBe('changed meanwhile');
  });
});
