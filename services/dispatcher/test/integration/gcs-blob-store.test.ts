// GcsBlobStore.read with the real @google-cloud/storage against the loopback Cloud Storage double
// (STORAGE_EMULATOR_HOST): the byte ranges it asks for and what it makes of the answers.
import { afterAll, beforeAll, beforeEach, describe, expect, it, vi } from 'vitest';
import { Storage } from '@google-cloud/storage';
import { GcsBlobStore } from '../../src/gcp/gcs-blob-store.ts';
import { startFakeGcs, type FakeGcs } from '../../../../test/support/fake-gcs.ts';

const LOG = Buffer.from(Array.from({ length: 100 }, (_, i) => `line ${i}: ünïcødé\n`).join(''));
const NAME = 'data/q1 "x".csv/\nlogs/attempt-1.log';

describe('GcsBlobStore.read', () => {
  let gcs: FakeGcs;
  let store: GcsBlobStore;
  beforeAll(async () => {
    gcs = await startFakeGcs();
    vi.stubEnv('STORAGE_EMULATOR_HOST', gcs.url);
    store = new GcsBlobStore();
  });
  afterAll(async () => {
    vi.unstubAllEnvs();
    await gcs.close();
  });
  beforeEach(() => {
    gcs.put('out', NAME, LOG, { contentType: 'text/plain; charset=utf-8' });
    gcs.requests.splice(0);
  });

  const mediaRequests = () => gcs.requests.filter((r) => r.url.includes('alt=media'));

  it('reads a range from an offset, at most maxBytes, with the whole size', async () => {
    const got = await store.read(`gs://out/${NAME}`, 100, 250);
    expect(got?.size).toBe(LOG.length);
    expect(got?.data.equals(LOG.subarray(100, 350))).toBe(true);
    const [media] = mediaRequests();
    expect(media.range).toBe('bytes=100-349');
    const { generation } = gcs.get('out', NAME)!;
    expect(new URL(media.url, 'http://x').searchParams.get('generation')).toBe(generation);
  });

  it('reads up to the end when maxBytes goes past it', async () => {
    const got = await store.read(`gs://out/${NAME}`, LOG.length - 10, 1 << 20);
    expect(got?.data.equals(LOG.subarray(LOG.length - 10))).toBe(true);
    expect(mediaRequests()[0].range).toBe(`bytes=${LOG.length - 10}-${LOG.length - 1}`);
    const whole = await store.read(`gs://out/${NAME}`, 0, LOG.length);
    expect(whole?.data.equals(LOG)).toBe(true);
  });

  it('answers no bytes, without downloading, from the end on or for maxBytes 0', async () => {
    for (const [offset, maxBytes] of [
      [LOG.length, 100],
      [LOG.length + 5, 100],
      [10, 0],
    ]) {
      const got = await store.read(`gs://out/${NAME}`, offset, maxBytes);
      expect(got).toEqual({ data: Buffer.alloc(0), size: LOG.length });
    }
    expect(mediaRequests()).toHaveLength(0);
  });

  it('answers undefined for an object that does not exist', async () => {
    expect(await store.read('gs://out/no/such.log', 0, 100)).toBeUndefined();
    expect(await store.read('gs://no-bucket/x.log', 0, 100)).toBeUndefined();
  });

  it('refuses what is not a gs://bucket/name URI, or not byte counts, before any request', async () => {
    for (const uri of ['/tmp/out/logs/attempt-1.log', 'gs://out', 'gs://out/', 'https://out/x.log']) {
      await expect(store.read(uri, 0, 10)).rejects.toThrow(
        'is not a Cloud Storage object (gs://bucket/name)',
      );
    }
    await expect(store.read(`gs://out/${NAME}`, -1, 10)).rejects.toThrow('not byte counts');
    await expect(store.read(`gs://out/${NAME}`, 0, 1.5)).rejects.toThrow('not byte counts');
    expect(gcs.requests).toHaveLength(0);
  });

  it('reads the newer version when the one it measured is replaced before its bytes are read', async () => {
    const old = gcs.get('out', NAME)!.generation;
    const release = gcs.holdMedia();
    const reading = store.read(`gs://out/${NAME}`, 0, 10);
    await vi.waitFor(() => expect(mediaRequests()).toHaveLength(1));
    // The log is rewritten, and its old generation is gone (no versioning on the output bucket).
    gcs.put('out', NAME, 'rewritten log\n');
    const storage = new Storage({ apiEndpoint: gcs.url, projectId: 'test' });
    await storage.bucket('out').file(NAME, { generation: old }).delete();
    release();
    const got = await reading;
    expect(got?.data.toString()).toBe('rewritten ');
    expect(got?.size).toBe('rewritten log\n'.length);
    expect(mediaRequests()).toHaveLength(2);
  });
});
