// Progress while a big input is read: every few seconds, and once when reading ends, one log line
//   {"severity":"INFO","message":"read 120.0 MB of 354.0 MB (33.9%), 1,200,000 rows",
//    "progress":{"bytesRead":120000000,"totalBytes":354000000,"rows":1200000}}
// that the dashboard parses (totalBytes is absent when the size is unknown; the last line also has
// "done": true). MB are 10^6 bytes. Small inputs are read in a moment, so they log none: the line
// that says the input is loaded is enough. The clock is injected so tests need not wait.
import type { Log } from '../log.ts';

export interface ProgressOptions {
  /** Inputs larger than this many bytes (or of unknown size) report progress. */
  minBytes: number;
  /** Milliseconds between two progress lines. */
  intervalMs: number;
  /** Milliseconds on any monotonic scale. */
  now: () => number;
}

export const DEFAULT_PROGRESS: ProgressOptions = {
  minBytes: 64 * 1024 * 1024,
  intervalMs: 5000,
  now: () => performance.now(),
};

export class ReadProgress {
  private readonly log: Log;
  private readonly totalBytes: number | undefined;
  private readonly options: ProgressOptions;
  private readonly active: boolean;
  private last: number;

  /** `totalBytes`: the input's size, or undefined (or NaN) when it is not known. */
  constructor(totalBytes: number | undefined, log: Log, options: Partial<ProgressOptions> = {}) {
    this.log = log;
    this.totalBytes = totalBytes !== undefined && Number.isFinite(totalBytes) ? totalBytes : undefined;
    this.options = { ...DEFAULT_PROGRESS, ...options };
    this.active = this.totalBytes === undefined || this.totalBytes > this.options.minBytes;
    this.last = this.options.now();
  }

  /** After each chunk: logs a line if the interval has passed since the last one. */
  update(bytesRead: number, rows: number): void {
    if (!this.active) return;
    const now = this.options.now();
    if (now - this.last < this.options.intervalMs) return;
    this.last = now;
    this.emit(bytesRead, rows, false);
  }

  /** When reading has ended: the last line, with the final counts. */
  finish(bytesRead: number, rows: number): void {
    if (this.active) this.emit(bytesRead, rows, true);
  }

  private emit(bytesRead: number, rows: number, done: boolean): void {
    const total = this.totalBytes;
    const progress = { bytesRead, ...(total === undefined ? {} : { totalBytes: total }), rows };
    this.log(progressMessage(bytesRead, total, rows), { progress: done ? { ...progress, done } : progress });
  }
}

export function progressMessage(bytesRead: number, totalBytes: number | undefined, rows: number): string {
  const read = megabytes(bytesRead);
  const of =
    totalBytes === undefined
      ? ''
      : ` of ${megabytes(totalBytes)} (${(totalBytes === 0 ? 100 : (100 * bytesRead) / totalBytes).toFixed(1)}%)`;
  return `read ${read}${of}, ${rows.toLocaleString('en-US')} rows`;
}

function megabytes(bytes: number): string {
  return `${(bytes / 1e6).toFixed(1)} MB`;
}
