// A task's output on its way to its log object: kept in memory and uploaded whole, at least every
// `intervalMs` while something new was written, and once more at the end. Cloud Storage objects
// cannot be appended to, so each upload replaces the object with everything kept so far. Used by the
// VM agent (jobs/agent: the container's output) and by the worker on Cloud Run (its own stdout and
// stderr). Pure: the upload is the caller's.

export interface LogStreamOptions {
  /** Replaces the log object with `content`. */
  upload(content: Buffer): Promise<void>;
  /** An upload failed; the next flush tries again with everything kept. */
  onUploadError(err: unknown): void;
  intervalMs: number;
  /** Keep only the last `maxBytes` (after a line saying how much was dropped); absent: keep all. */
  maxBytes?: number;
}

export class LogStream {
  private readonly options: LogStreamOptions;
  private chunks: Buffer[] = [];
  private kept = 0;
  private dropped = 0;
  /** Everything ever written, and how much of it the last successful upload held. */
  private written = 0;
  private uploaded = 0;
  private readonly timer: NodeJS.Timeout;
  private flushing: Promise<void> = Promise.resolve();

  constructor(options: LogStreamOptions) {
    this.options = options;
    this.timer = setInterval(() => void this.flush(), options.intervalMs);
    this.timer.unref(); // the log never keeps a finished process alive; close() does the last upload
  }

  write(chunk: Buffer): void {
    this.chunks.push(chunk);
    this.kept += chunk.length;
    this.written += chunk.length;
    this.trim();
  }

  /** Uploads what is kept, if anything was written since the last upload; never throws. */
  flush(): Promise<void> {
    this.flushing = this.flushing.then(async () => {
      if (this.written === this.uploaded) return;
      const written = this.written;
      try {
        await this.options.upload(this.content());
        this.uploaded = written;
      } catch (err) {
        this.options.onUploadError(err);
      }
    });
    return this.flushing;
  }

  /** Stops the periodic uploads and does the last one. */
  async close(): Promise<void> {
    clearInterval(this.timer);
    await this.flush();
  }

  private content(): Buffer {
    const body = Buffer.concat(this.chunks);
    this.chunks = [body];
    if (this.dropped === 0) return body;
    const note = `[the first ${this.dropped} bytes of this log were dropped; its last ${this.kept} bytes follow]\n`;
    return Buffer.concat([Buffer.from(note), body]);
  }

  /** Drops the oldest bytes beyond `maxBytes`. */
  private trim(): void {
    const { maxBytes } = this.options;
    if (maxBytes === undefined) return;
    while (this.kept > maxBytes) {
      const first = this.chunks[0];
      const excess = this.kept - maxBytes;
      if (first.length <= excess) {
        this.chunks.shift();
        this.kept -= first.length;
        this.dropped += first.length;
      } else {
        this.chunks[0] = first.subarray(excess);
        this.kept -= excess;
        this.dropped += excess;
      }
    }
  }
}
