#!/usr/bin/env node
// The `pipeline` command. Node 24 runs the TypeScript sources directly (type stripping).
// Exit codes: 0 done; 1 the work failed (the pipeline unreachable or refusing, an upload failing,
// a followed job not SUCCEEDED); 2 a wrong command line, with the usage.
import { cli, Failure, HelpRequested, usageFor, UsageError } from '../src/cli.ts';

const io = { stdout: process.stdout, stderr: process.stderr };
try {
  process.exitCode = await cli(process.argv.slice(2), process.env, io);
} catch (err) {
  if (err instanceof HelpRequested) {
    process.stdout.write(`${usageFor(err.command)}\n`);
    process.exitCode = 0;
  } else if (err instanceof UsageError) {
    process.stderr.write(`pipeline: ${err.message}\n${usageFor(err.command)}\n`);
    process.exitCode = 2;
  } else if (err instanceof Failure) {
    process.stderr.write(`pipeline: ${err.message}\n`);
    process.exitCode = 1;
  } else {
    throw err;
  }
}
