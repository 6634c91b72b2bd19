// LogStream: what it uploads, when, and what it keeps under a cap.
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { LogStream } from '../src/log-stream.ts';

// The intervals run on fake timers: `wait` moves the clock and lets the uploads it started finish.
const wait = (ms: number) => vi.advanceTimersByTimeAsync(ms);

function recording(options: { intervalMs?: number; maxBytes?: number; failUploads?: number } = {}) {
  const uploads: string[] = [];
  const errors: unknown[] = [];
  let failUploads = options.failUploads ?? 0;
  const stream = new LogStream({
    upload: async (content) => {
      if (failUploads-- > 0) throw new Error('503 from storage');
      uploads.push(content.toString('utf8'));
    },
    onUploadError: (err) => errors.push(err),
    intervalMs: options.intervalMs ?? 60_000,
    ...(options.maxBytes === undefined ? {} : { maxBytes: options.maxBytes }),
  });
  return { stream, uploads, errors };
}

describe('LogStream', () => {
  beforeEach(() => {
    vi.useFakeTimers();
  });
  afterEach(() => {
    vi.useRealTimers();
  });

  it('uploads everything so far every interval while something new was written, and at close', async () => {
    const { stream, uploads } = recording({ intervalMs: 20 });
    stream.write(Buffer.from('one\n'));
    await wait(60);
    expect(uploads).toEqual(['one\n']); // once: nothing new was written after it
    stream.write(Buffer.from('two\n'));
    await stream.close();
    expect(uploads).toEqual(['one\n', 'one\ntwo\n']);
    await wait(40);
    expect(uploads).toHaveLength(2); // closed: no more uploads
  });

  it('uploads nothing when nothing was written', async () => {
    const { stream, uploads } = recording({ intervalMs: 10 });
    await wait(30);
    await stream.close();
    expect(uploads).toEqual([]);
  });

  it('tries a failed upload again on the next flush, with everything kept', async () => {
    const { stream, uploads, errors } = recording({ failUploads: 1 });
    stream.write(Buffer.from('a'));
    await stream.flush();
    expect(uploads).toEqual([]);
    expect(errors).toHaveLength(1);
    stream.write(Buffer.from('b'));
    await stream.close();
    expect(uploads).toEqual(['ab']);
  });

  it('keeps only the last maxBytes, after a line that says how much was dropped', async () => {
    const { stream, uploads } = recording({ maxBytes: 10 });
    stream.write(Buffer.from('0123456789'));
    await stream.flush();
    expect(uploads.at(-1)).toBe('0123456789');
    stream.write(Buffer.from('abc'));
    stream.write(Buffer.from('defghijklmnop')); // more than the cap on its own
    await stream.close();
    expect(uploads.at(-1)).toBe(
      '[the first 16 bytes of this log were dropped; its last 10 bytes follow]\nghijklmnop',
    );
  });

  it('runs one upload at a time, in order', async () => {
    const order: string[] = [];
    let release!: () => void;
    const first = new Promise<void>((resolve) => (release = resolve));
    let calls = 0;
    const stream = new LogStream({
      upload: async (content) => {
        const n = ++calls;
        order.push(`start ${n} ${content.toString()}`);
        if (n === 1) await first;
        order.push(`end ${n}`);
      },
      onUploadError: () => {},
      intervalMs: 60_000,
    });
    stream.write(Buffer.from('x'));
    const one = stream.flush();
    await wait(10); // the first upload is under way
    stream.write(Buffer.from('y'));
    const two = stream.flush();
    await wait(10);
    expect(order).toEqual(['start 1 x']); // the second waits for the first
    release();
    await Promise.all([one, two]);
    expect(order).toEqual(['start 1 x', 'end 1', 'start 2 xy', 'end 2']);
  });
});
