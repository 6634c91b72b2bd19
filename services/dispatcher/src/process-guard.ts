// The last line of defence of a long-running dispatcher (index.ts on Google Cloud, `pipeline start`):
// an error that escaped every await or callback is logged at CRITICAL severity, with the job it
// concerned when the code that failed was working for one (job-context.ts).
//
// - unhandledRejection: logged, and the process keeps serving. Such a rejection is a promise nobody
//   waited for (the Google libraries leave some behind when credentials fail); whoever waited for
//   the work it belonged to got its own answer, and the ledger's compare-and-set writes keep every
//   job consistent whatever one request did. Ending the process would drop every request in flight.
// - uncaughtException: logged, then the process exits 1. A throw from a callback may have left
//   something half done (a stream, a socket, a lock) that nothing can know of, so the state of the
//   process is unknown; Cloud Run starts a new instance, and claims a dead process held are taken
//   over after their lease.
import type { Logger } from 'pino';
import { currentJob } from './job-context.ts';

export interface ProcessGuardOptions {
  /** How the process ends after an uncaught exception; default process.exit. */
  exit?: (code: number) => void;
}

export function installProcessGuards(logger: Logger, options: ProcessGuardOptions = {}): () => void {
  const exit = options.exit ?? ((code: number) => process.exit(code));
  const onRejection = (reason: unknown) => {
    logger.fatal(
      { err: reason, ...currentJob() },
      'unhandled promise rejection; the dispatcher keeps running',
    );
  };
  const onException = (err: Error, origin: string) => {
    logger.fatal(
      { err, origin, ...currentJob() },
      'uncaught exception; the dispatcher exits, its state unknown',
    );
    logger.flush();
    exit(1);
  };
  process.on('unhandledRejection', onRejection);
  process.on('uncaughtException', onException);
  return () => {
    process.off('unhandledRejection', onRejection);
    process.off('uncaughtException', onException);
  };
}
