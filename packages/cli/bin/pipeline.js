#!/usr/bin/env node
// The `pipeline` command, on the project's own Node 24, which runs the TypeScript sources directly
// (type stripping): started by a Node that cannot, it runs itself again on the project's (project-node.js).
// Exit codes: 0 done; 1 the work failed (the pipeline unreachable or refusing, an upload failing,
// a followed job not SUCCEEDED); 2 a wrong command line, with the usage.
import { projectNode, rerunOn, runsSources } from './project-node.js';

if (runsSources()) {
  await runCommand();
} else {
  const node = projectNode();
  if (node === undefined) {
    process.stderr.write(
      `pipeline: Node ${process.version} cannot run the TypeScript sources, and the project's own Node 24 is not installed: run npm install\n`,
    );
    process.exitCode = 1;
  } else {
    await rerunOn(node, import.meta.url);
  }
}

async function runCommand() {
  // Loaded only here: an older Node cannot even load a .ts module.
  const { cli, Failure, HelpRequested, usageFor, UsageError } = await import('../src/cli.ts');
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
}
