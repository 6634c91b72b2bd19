#!/usr/bin/env node
// The `pipeline` command. Node 24 runs the TypeScript sources directly (type stripping).
import { cli, CliError, USAGE } from '../src/cli.ts';

try {
  process.exitCode = await cli(process.argv.slice(2), process.env, (text) =>
    process.stdout.write(`${text}\n`),
  );
} catch (err) {
  if (!(err instanceof CliError)) throw err;
  process.stderr.write(`pipeline: ${err.message}\n${USAGE}\n`);
  process.exitCode = 2;
}
