// GcsBlobStore.read with the real @google-cloud/storage against the loopback Cloud Storage double
// (STORAGE_EMULATOR_HOST): the byte ranges it asks for and what it makes of the answers. And stat
// and read when Cloud Storage cannot be asked: no credentials, no connection.
import fs from 'node:fs';
import http from 'node:http';
import os from 'node:os';
import path from 'node:path';
import { once } from 'node:events';
import type { AddressInfo } from 'node:net';
import { afterAll, beforeAll, beforeEach, describe, expect, it, vi } from 'vitest';
import { Storage } from '@google-cloud/storage';
import { RetryLaterError } from '../../src/errors.ts';
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

describe('GcsBlobStore when Cloud Storage cannot be asked', () => {
  // Cloud Storage answers an anonymous caller 401; the test says what else it answers.
  let answer = { status: 401, message: 'Anonymous caller does not have storage.objects.get access' };
  let server: http.Server;
  let url: string;
  let home: string;
  beforeAll(async () => {
    server = http.createServer((_req, res) => {
      res.writeHead(answer.status, { 'content-type': 'application/json' });
      res.end(JSON.stringify({ error: { code: answer.status, message: answer.message } }));
    });
    server.listen(0, '127.0.0.1');
    await once(server, 'listening');
    url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
    // No Application Default Credentials anywhere (METADATA_SERVER_DETECTION=none in the test setup).
    home = fs.mkdtempSync(path.join(os.tmpdir(), 'no-adc-'));
    vi.stubEnv('HOME', home);
    vi.stubEnv('GOOGLE_APPLICATION_CREDENTIALS', '');
    vi.stubEnv('CLOUDSDK_CONFIG', '');
    vi.stubEnv('STORAGE_EMULATOR_HOST', '');
  });
  afterAll(async () => {
    vi.unstubAllEnvs();
    server.closeAllConnections();
    server.close();
    fs.rmSync(home, { recursive: true, force: true });
  });

  /**
   * A store that authenticates to `endpoint` as to Google's (an emulator host would skip auth). The
   * library retries connection errors, 429 and 5xx itself first, with backoff: not here.
   */
  const store = (endpoint = url) =>
    new GcsBlobStore({
      apiEndpoint: endpoint,
      useAuthWithCustomEndpoint: true,
      projectId: 'acme',
      retryOptions: { autoRetry: false },
    });

  it('says "later" for stat and read without credentials', async () => {
    answer = { status: 401, message: 'Anonymous caller does not have storage.objects.get access' };
    for (const call of [store().stat('in', 'a.csv'), store().read('gs://out/a/logs/attempt-1.log', 0, 10)]) {
      const err = await call.catch((e: unknown) => e);
      expect(err).toBeInstanceOf(RetryLaterError);
      expect((err as Error).message).toContain('Could not load the default credentials');
    }
  });

  it('says "later" when the connection is refused, or Cloud Storage answers 503 or 429', async () => {
    const closed = http.createServer();
    closed.listen(0, '127.0.0.1');
    await once(closed, 'listening');
    const nobody = `http://127.0.0.1:${(closed.address() as AddressInfo).port}`;
    closed.close();
    await once(closed, 'close');
    await expect(store(nobody).stat('in', 'a.csv')).rejects.toBeInstanceOf(RetryLaterError);
    for (const status of [503, 429]) {
      answer = { status, message: 'try again' };
      await expect(store().stat('in', 'a.csv')).rejects.toBeInstanceOf(RetryLaterError);
    }
  });

  it('passes on an answer that will not change by asking again (403), and says 404 is no object', async () => {
    answer = { status: 403, message: 'caller does not have storage.objects.get access' };
    const err = await store()
      .stat('in', 'a.csv')
      .catch((e: unknown) => e);
    expect(err).not.toBeInstanceOf(RetryLaterError);
    expect((err as { code?: number }).code).toBe(403);
    answer = { status: 404, message: 'No such object: in/a.csv' };
    expect(await store().stat('in', 'a.csv')).toBeUndefined();
  });
});
