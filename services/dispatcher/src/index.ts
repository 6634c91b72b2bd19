// `npm run dispatcher`: the dispatcher on Google Cloud, configured from the environment alone
// (see README, "The dispatcher on Google Cloud"). A bad setting or routing config is one CRITICAL log
// line, the message naming the variable (or the file, rule and field), and exit 1: no stack, which
// would bury the one line that says what to fix.
// On SIGTERM (Cloud Run stopping the instance) it stops taking work, lets requests in flight finish,
// and flushes its logs. An error that escapes every await is logged at CRITICAL severity with its job
// (process-guard.ts): a stray rejection leaves the process serving, an uncaught exception ends it.
import type { AddressInfo } from 'node:net';
import { ConfigError, parseConfig } from './config.ts';
import { buildCloudDispatcher } from './gcp/wiring.ts';
import { createLogger } from './logger.ts';
import { installProcessGuards } from './process-guard.ts';
import { RoutingFileError } from './routing-config.ts';

const logger = createLogger();
installProcessGuards(logger);

/** The config and the dispatcher built from it; undefined (logged) when a setting is wrong. */
function configured() {
  try {
    const config = parseConfig(process.env);
    return { config, cloud: buildCloudDispatcher(config, logger) };
  } catch (err) {
    if (!(err instanceof ConfigError || err instanceof RoutingFileError)) throw err;
    const variable = err instanceof ConfigError ? { variable: err.variable } : {};
    logger.fatal(variable, `the dispatcher cannot start: ${err.message}`);
    return undefined;
  }
}

function serve({ config, cloud }: NonNullable<ReturnType<typeof configured>>): void {
  const { app, close } = cloud;
  const server = config.host === undefined ? app.listen(config.port) : app.listen(config.port, config.host);
  server.once('listening', () => {
    logger.info(
      { port: (server.address() as AddressInfo).port, project: config.project },
      'dispatcher listening',
    );
  });
  process.once('SIGTERM', () => {
    logger.info('SIGTERM: stopping');
    server.close(async () => {
      await close();
      logger.flush();
    });
    server.closeIdleConnections();
  });
}

const started = configured();
// Nothing else holds the process: it ends once the log line is written.
if (started === undefined) process.exitCode = 1;
else serve(started);
