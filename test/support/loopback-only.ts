// Test setup: tests talk only to loopback. Any attempt to open a TCP connection elsewhere (the metadata
// server at 169.254.169.254, a Google API, the internet) throws at once, with the address in the message.
// Loaded by vitest (setupFiles) and, with `--import`, by every child process a test starts.
import net from 'node:net';

// A test that runs a fake metadata server on loopback (GCE_METADATA_HOST) may ask for detection.
process.env.METADATA_SERVER_DETECTION ??= 'none';

const LOOPBACK_NAMES = new Set(['localhost', '::1', '[::1]', '0:0:0:0:0:0:0:1', '']);

export function isLoopbackHost(host: string | undefined): boolean {
  if (host === undefined) return true; // net's default host is localhost
  const h = host.toLowerCase();
  if (LOOPBACK_NAMES.has(h)) return true;
  if (h.endsWith('.localhost')) return true;
  if (/^127\.\d{1,3}\.\d{1,3}\.\d{1,3}$/.test(h)) return true;
  if (h.startsWith('::ffff:127.')) return true;
  return false;
}

interface ConnectTarget {
  host?: string;
  port?: number | string;
  path?: string;
}

function targetOf(args: unknown[]): ConnectTarget {
  const first = Array.isArray(args[0]) ? args[0][0] : args[0];
  if (first !== null && typeof first === 'object') return first as ConnectTarget;
  if (typeof first === 'string' && Number.isNaN(Number(first))) return { path: first };
  return { port: first as number, host: typeof args[1] === 'string' ? args[1] : undefined };
}

// Once per process: with `isolate: false` (vitest.config.ts) this file runs again before each test
// file in the same worker, and must not wrap its own wrapper.
const GUARDED = Symbol.for('pipeline.loopbackOnly');
const originalConnect =
  (net.Socket.prototype.connect as { [GUARDED]?: typeof net.Socket.prototype.connect })[GUARDED] ??
  net.Socket.prototype.connect;
net.Socket.prototype.connect = function connectLoopbackOnly(this: net.Socket, ...args: unknown[]) {
  const target = targetOf(args);
  if (target.path === undefined && !isLoopbackHost(target.host)) {
    throw new Error(
      `test setup refused a connection to ${target.host}:${target.port}: tests talk only to loopback`,
    );
  }
  return (originalConnect as (...a: unknown[]) => net.Socket).apply(this, args);
} as typeof net.Socket.prototype.connect;
Object.defineProperty(net.Socket.prototype.connect, GUARDED, { value: originalConnect });
