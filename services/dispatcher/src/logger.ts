// One JSON line per event with `severity` and `message`, as Cloud Logging reads them.
import { pino, type DestinationStream, type Logger } from 'pino';

const SEVERITY: Record<string, string> = {
  trace: 'DEBUG',
  debug: 'DEBUG',
  info: 'INFO',
  warn: 'WARNING',
  error: 'ERROR',
  fatal: 'CRITICAL',
};

/** Where the logs go unless told: file descriptor `fd` (stdout), as pino writes to it by default. */
export function logDestination(fd = 1) {
  return pino.destination({ dest: fd, sync: false, minLength: 0 });
}

export function createLogger(
  destination: DestinationStream = logDestination(),
  level = process.env.LOG_LEVEL ?? 'info',
): Logger {
  return pino(
    {
      level,
      messageKey: 'message',
      base: undefined,
      timestamp: pino.stdTimeFunctions.isoTime,
      formatters: { level: (label) => ({ severity: SEVERITY[label] ?? 'DEFAULT' }) },
    },
    destination,
  );
}
