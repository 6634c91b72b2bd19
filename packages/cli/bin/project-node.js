// The project's commands run on its own Node 24 (the `node` devDependency, node_modules/node), which
// runs the TypeScript sources directly (type stripping). npm puts it first on PATH for `npm start`,
// `npm test` and `npx pipeline`; a command started by another Node that cannot run the sources (the
// machine's Node 20, from a shell whose `node` is that one) runs itself again on the project's Node.
// Plain JavaScript, so that any Node can load it.
import { spawn } from 'node:child_process';
import { createRequire } from 'node:module';
import { fileURLToPath } from 'node:url';

const FORWARDED = ['SIGINT', 'SIGTERM', 'SIGHUP'];

/** Whether this Node runs the TypeScript sources (22.18 and later strip types by default). */
export function runsSources() {
  return Boolean(process.features.typescript);
}

/** The project's own Node binary, or undefined before `npm install`. */
export function projectNode() {
  try {
    return createRequire(import.meta.url).resolve('node/bin/node');
  } catch {
    return undefined;
  }
}

/**
 * Runs the command file `entry` (an import.meta.url) again, with this process's arguments, on
 * `node`, and ends this process as it ends: with its exit code, or by the same signal. The run is in
 * a process group of its own, so a Ctrl-C reaches it once, forwarded from here, not twice.
 */
export function rerunOn(node, entry) {
  const child = spawn(node, [...process.execArgv, fileURLToPath(entry), ...process.argv.slice(2)], {
    stdio: 'inherit',
    detached: true,
  });
  const forward = (signal) => child.kill(signal);
  for (const signal of FORWARDED) process.on(signal, forward);
  return new Promise((resolve) => {
    child.once('error', (err) => {
      process.stderr.write(`pipeline: could not run ${node}: ${err.message}\n`);
      process.exitCode = 1;
      resolve();
    });
    child.once('exit', (code, signal) => {
      for (const name of FORWARDED) process.off(name, forward);
      if (signal !== null) process.kill(process.pid, signal);
      else process.exitCode = code ?? 1;
      resolve();
    });
  });
}
