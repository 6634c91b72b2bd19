#!/usr/bin/env node
// The VM agent's command, the agent image's entrypoint. Node 24 runs the TypeScript sources directly
// (type stripping).
import { main } from '../src/cli.ts';

process.exitCode = await main(process.argv.slice(2), process.env);
