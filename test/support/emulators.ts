// The Pub/Sub and Firestore emulators of google-cloud-cli, started on a free loopback port for a test
// file and stopped after it. Where google-cloud-cli is missing, integration suites are skipped with a
// visible message; in CI (CI=true) a missing emulator is a failure instead.
import { spawn, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import { describe } from 'vitest';

const SDK = process.env.CLOUDSDK_ROOT_DIR ?? '/usr/lib/google-cloud-sdk';
const COMMANDS = {
  pubsub: (port: number) => [
    path.join(SDK, 'platform/pubsub-emulator/bin/cloud-pubsub-emulator'),
    `--host=127.0.0.1`,
    `--port=${port}`,
  ],
  firestore: (port: number) => [
    path.join(SDK, 'platform/cloud-firestore-emulator/cloud_firestore_emulator'),
    'start',
    `--host=127.0.0.1`,
    `--port=${port}`,
    '--database-mode=firestore-native',
  ],
} as const;

export type EmulatorKind = keyof typeof COMMANDS;

export interface Emulator {
  /** host:port, as PUBSUB_EMULATOR_HOST and FIRESTORE_EMULATOR_HOST want it. */
  host: string;
  stop(): Promise<void>;
}

export function emulatorInstalled(kind: EmulatorKind): boolean {
  return fs.existsSync(COMMANDS[kind](0)[0]);
}

/** `describe` when the emulators are installed; otherwise a skipped suite that says why (or, in CI, a failure). */
export function describeWithEmulators(kinds: EmulatorKind[], name: string, body: () => void): void {
  const missing = kinds.filter((kind) => !emulatorInstalled(kind));
  if (missing.length === 0) {
    describe(name, body);
    return;
  }
  const why = `the ${missing.join(' and ')} emulator of google-cloud-cli is not installed under ${SDK}`;
  if (process.env.CI === 'true') throw new Error(`CI needs ${why}`);
  process.stderr.write(`SKIPPED integration suite "${name}": ${why}\n`);
  describe.skip(`${name} (skipped: ${why})`, body);
}

export async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = net.createServer();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const { port } = server.address() as net.AddressInfo;
      server.close(() => resolve(port));
    });
  });
}

/**
 * The emulators' JVMs compile with C1 only and collect with one thread: a test file's emulator lives
 * for seconds to minutes and serves little, so C2's compilations (and parallel GC threads) cost more
 * CPU than they give back. Starting, the Firestore emulator then uses about a third less CPU and is
 * ready in about half the time on a busy machine. (JAVA_TOOL_OPTIONS, since the Firestore emulator's
 * launcher sets its own JVM flags; the JVM notes it on stderr, which is shown only on a failure.)
 */
const JVM_OPTIONS = [process.env.JAVA_TOOL_OPTIONS, '-XX:TieredStopAtLevel=1 -XX:+UseSerialGC']
  .filter(Boolean)
  .join(' ');

/**
 * Starts an emulator. `busy`: it serves a heavy load for minutes against a time bound
 * (burst.test.ts), so its JVM keeps the default compilers: C1's code is slower once warm.
 */
export async function startEmulator(kind: EmulatorKind, options: { busy?: boolean } = {}): Promise<Emulator> {
  const port = await freePort();
  const [command, ...args] = COMMANDS[kind](port);
  const child: ChildProcess = spawn(command, args, {
    detached: true,
    stdio: ['ignore', 'pipe', 'pipe'],
    env: options.busy === true ? process.env : { ...process.env, JAVA_TOOL_OPTIONS: JVM_OPTIONS },
  });
  let output = '';
  child.stdout?.on('data', (d) => (output += d));
  child.stderr?.on('data', (d) => (output += d));
  const host = `127.0.0.1:${port}`;
  const deadline = Date.now() + 60_000;
  for (;;) {
    if (child.exitCode !== null)
      throw new Error(`the ${kind} emulator exited (${child.exitCode}): ${output.slice(-2000)}`);
    try {
      const response = await fetch(`http://${host}/`);
      if (response.ok) break;
    } catch {
      // not listening yet
    }
    if (Date.now() > deadline) {
      process.kill(-child.pid!, 'SIGKILL');
      throw new Error(`the ${kind} emulator did not start within 60 s: ${output.slice(-2000)}`);
    }
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
  return {
    host,
    async stop() {
      if (child.exitCode !== null) return;
      const exited = new Promise((resolve) => child.once('exit', resolve));
      process.kill(-child.pid!, 'SIGTERM');
      const timer = setTimeout(() => process.kill(-child.pid!, 'SIGKILL'), 5000);
      await exited;
      clearTimeout(timer);
    },
  };
}
