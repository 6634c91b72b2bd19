// The worker's own log on Cloud Run. Cloud Run keeps stdout and stderr in Cloud Logging only; the
// pipeline's readers (dashboard, CLI) read logs/attempt-N.log in the output bucket, as the VM agent and
// the local mode write it. So when LOGS_URI names a gs:// object (the cloud-run-job launcher sets it),
// the worker keeps a copy of what it writes to stdout and stderr, at most the last 8 MiB, and uploads
// it every LOGS_UPLOAD_SECONDS (default 30) while it runs, before it ends (also after a failure), and
// when Cloud Run stops it with SIGTERM (a cancel or the task timeout, 10 s before SIGKILL).
import { LogStream } from '@pipeline/core/log-stream';
import { saveLog } from './gcs.ts';

export const LOG_CAPTURE_MAX_BYTES = 8 * 1024 * 1024;
const DEFAULT_UPLOAD_SECONDS = 30;
/** How a process SIGTERM ended reports itself (128 + 15). */
const SIGTERM_EXIT_CODE = 143;

export interface LogCapture {
  /** Stops copying the output and uploads the log one last time (never throws). */
  close(): Promise<void>;
}

type Write = typeof process.stdout.write;

/** Starts copying stdout and stderr to LOGS_URI; undefined when LOGS_URI is unset or not gs://. */
export function captureLogs(env: NodeJS.ProcessEnv): LogCapture | undefined {
  const uri = env.LOGS_URI;
  if (uri === undefined || !uri.startsWith('gs://')) return undefined;
  const seconds = Number(env.LOGS_UPLOAD_SECONDS ?? DEFAULT_UPLOAD_SECONDS);
  const intervalMs = (Number.isFinite(seconds) && seconds > 0 ? seconds : DEFAULT_UPLOAD_SECONDS) * 1000;
  const streams = [process.stdout, process.stderr];
  const originals = streams.map((stream) => stream.write);
  let reported = false;
  const log = new LogStream({
    upload: (content) => saveLog(uri, content),
    onUploadError: (err) => {
      // Said once, on the real stderr only: a log full of its own upload failures helps no one.
      if (reported) return;
      reported = true;
      originals[1].call(
        process.stderr,
        `pipeline-worker: cannot upload the log to ${uri}: ${(err as Error).message}\n`,
      );
    },
    intervalMs,
    maxBytes: LOG_CAPTURE_MAX_BYTES,
  });
  streams.forEach((stream, i) => {
    const original = originals[i];
    stream.write = function copy(this: NodeJS.WriteStream, chunk: unknown, ...rest: unknown[]) {
      const encoding = typeof rest[0] === 'string' ? (rest[0] as BufferEncoding) : 'utf8';
      log.write(typeof chunk === 'string' ? Buffer.from(chunk, encoding) : Buffer.from(chunk as Uint8Array));
      return (original as (...args: unknown[]) => boolean).call(this, chunk, ...rest);
    } as Write;
  });
  let closing: Promise<void> | undefined;
  const close = () => {
    closing ??= (async () => {
      process.off('SIGTERM', onSigterm);
      streams.forEach((stream, i) => (stream.write = originals[i]));
      await log.close();
    })();
    return closing;
  };
  // Without a handler, SIGTERM ends the process at once and the last part of the log is lost.
  function onSigterm(): void {
    process.stderr.write('pipeline-worker: stopped by SIGTERM\n');
    void close().finally(() => process.exit(SIGTERM_EXIT_CODE));
  }
  process.on('SIGTERM', onSigterm);
  return { close };
}
