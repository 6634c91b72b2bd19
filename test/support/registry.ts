// A real container registry on loopback: Debian's docker-registry (distribution 2.8), with htpasswd
// auth. Its one user is `oauth2accesstoken` and its password an access token, as Artifact Registry
// takes a VM's token: a pull with another token is refused with 401, as the real one refuses it.
// The engine treats 127.0.0.0/8 registries as insecure (plain http) on its own.
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import bcrypt from 'bcryptjs';
import { docker } from './docker-engine.ts';
import { freePort } from './emulators.ts';

export const REGISTRY_BIN = '/usr/bin/docker-registry';
export const TOKEN_USER = 'oauth2accesstoken';

export interface Registry {
  /** host:port, the first component of image names pushed here. */
  host: string;
  /** A docker CLI config folder logged in to the registry (`docker --config DIR pull`). */
  dockerConfig: string;
  /** Tags `local` as host/name and pushes it with the registry's credentials; returns the new name. */
  push(local: string, name: string): Promise<string>;
  stop(): Promise<void>;
}

export async function startRegistry(token: string): Promise<Registry> {
  if (!fs.existsSync(REGISTRY_BIN))
    throw new Error(`${REGISTRY_BIN} is missing: apt-get install docker-registry`);
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'registry-'));
  const port = await freePort();
  const host = `127.0.0.1:${port}`;
  fs.writeFileSync(path.join(dir, 'htpasswd'), `${TOKEN_USER}:${bcrypt.hashSync(token, 4)}\n`);
  fs.writeFileSync(
    path.join(dir, 'config.yml'),
    [
      'version: 0.1',
      'log: { level: warn }',
      `storage: { filesystem: { rootdirectory: ${JSON.stringify(path.join(dir, 'data'))} } }`,
      `http: { addr: "${host}" }`,
      `auth: { htpasswd: { realm: pipeline-test, path: ${JSON.stringify(path.join(dir, 'htpasswd'))} } }`,
      '',
    ].join('\n'),
  );
  const child = spawn(REGISTRY_BIN, ['serve', path.join(dir, 'config.yml')], {
    stdio: ['ignore', 'ignore', 'pipe'],
  });
  let stderr = '';
  child.stderr.on('data', (chunk) => (stderr += chunk));
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  await waitForRegistry(
    host,
    () => child.exitCode !== null,
    () => stderr,
  );
  // The CLI's login is kept in a config of the registry's own, never the user's ~/.docker.
  const config = path.join(dir, 'docker-config');
  await docker(['--config', config, 'login', '--username', TOKEN_USER, '--password-stdin', host], {
    input: token,
  });
  return {
    host,
    dockerConfig: config,
    async push(local, name) {
      const remote = `${host}/${name}`;
      await docker(['tag', local, remote]);
      await docker(['--config', config, 'push', remote]);
      await docker(['image', 'rm', remote]); // only the registry keeps it: a run must pull it
      return remote;
    },
    async stop() {
      child.kill('SIGTERM');
      await exited;
      fs.rmSync(dir, { recursive: true, force: true });
    },
  };
}

async function waitForRegistry(host: string, died: () => boolean, stderr: () => string): Promise<void> {
  for (let i = 0; i < 200; i++) {
    if (died()) throw new Error(`docker-registry exited: ${stderr()}`);
    try {
      // 401 without credentials is the answer of a registry that is up.
      const response = await fetch(`http://${host}/v2/`);
      if (response.status === 401 || response.ok) return;
    } catch {
      // not listening yet
    }
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
  throw new Error(`docker-registry did not answer on ${host}: ${stderr()}`);
}
