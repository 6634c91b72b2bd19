// `npm run dispatcher`: the dispatcher on Google Cloud, configured from the environment alone
// (see README, "The dispatcher on Google Cloud"). A bad setting prints the variable's name and exits 1.
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
let cloud;
let config;
try {
  config = parseConfig(process.env);
  cloud = buildCloudDispatcher(config, logger);
} catch (err) {
  if (!(err instanceof ConfigError || err instanceof RoutingFileError)) throw err;
  process.stderr.write(`dispatcher: ${err.message}\n`);
  process.exit(1);
}
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
