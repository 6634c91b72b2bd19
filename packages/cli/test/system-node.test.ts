// The project's commands on the machine's own Node (here Node 20, /usr/bin), not the project's Node
// 24: `npx pipeline` and `npm start` print no EBADENGINE warning (npx runs the workspace's bin and
// installs nothing), and the bin started by that Node runs itself on the project's Node, passing a
// signal on to it once.
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { PIPELINE_BIN } from './cli-support.ts';

const REPO = path.resolve(import.meta.dirname, '../../..');
const SYSTEM = '/usr/bin';
const available = ['node', 'npm', 'npx'].every((tool) => fs.existsSync(path.join(SYSTEM, tool)));

let scratch: string;

beforeAll(() => {
  scratch = fs.mkdtempSync(path.join(os.tmpdir(), 'system-node-'));
});
afterAll(() => fs.rmSync(scratch, { recursive: true, force: true }));

interface Ran {
  code: number | null;
  stdout: string;
  stderr: string;
}

/** `command` with the system's tools first on PATH, an npm cache of its own, and npm offline. */
function system(
  command: string,
  args: string[],
  onStderr?: (text: string, pid: number) => void,
): Promise<Ran> {
  return new Promise((resolve, reject) => {
    const child = spawn(path.join(SYSTEM, command), args, {
      cwd: REPO,
      env: {
        PATH: `${SYSTEM}:/bin`,
        HOME: scratch,
        npm_config_cache: path.join(scratch, 'npm-cache'),
        npm_config_offline: 'true',
        npm_config_update_notifier: 'false',
        METADATA_SERVER_DETECTION: 'none',
      },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d) => (stdout += d));
    child.stderr.on('data', (d) => {
      stderr += d;
      onStderr?.(stderr, child.pid!);
    });
    child.on('error', reject);
    child.on('close', (code) => resolve({ code, stdout, stderr }));
  });
}

describe.skipIf(!available)("the project's commands on the machine's Node", () => {
  it('npx pipeline runs the command, with no EBADENGINE and nothing installed into the npx cache', async () => {
    const ran = await system('npx', ['pipeline', '--help']);
    expect(ran.stderr).not.toContain('EBADENGINE');
    expect(ran).toMatchObject({ code: 0, stdout: expect.stringMatching(/^usage: pipeline <command>/) });
    expect(fs.existsSync(path.join(scratch, 'npm-cache', '_npx'))).toBe(false);
  });

  it('npm start runs pipeline start, with no EBADENGINE', async () => {
    const ran = await system('npm', ['start', '--', '--help']);
    expect(ran.stderr).not.toContain('EBADENGINE');
    expect(ran.code).toBe(0);
    expect(ran.stdout).toContain('usage: pipeline start [--port N]');
  });

  it('the bin, started by the system Node, runs on the project Node', async () => {
    const ran = await system('node', [PIPELINE_BIN, 'help', 'start']);
    expect(ran).toMatchObject({ code: 0, stderr: '' });
    expect(ran.stdout).toMatch(/^usage: pipeline start \[--port N\]/);
    // Whatever the system Node is, a wrong command line still exits 2 through it.
    expect(await system('node', [PIPELINE_BIN, 'no-such-command'])).toMatchObject({
      code: 2,
      stderr: expect.stringContaining('pipeline: unknown command "no-such-command"'),
    });
  });

  it('passes a SIGTERM to pipeline start once: it stops cleanly and exits 0', async () => {
    const dir = path.join(scratch, 'local');
    fs.mkdirSync(path.join(dir, 'input'), { recursive: true }); // not a first start: no sample
    const config = path.join(scratch, 'config.json');
    fs.writeFileSync(
      config,
      JSON.stringify({ rules: [{ name: 'all', match: { path: '**' }, target: 'ignore' }] }),
    );
    const args = [PIPELINE_BIN, 'start', '--dir', dir, '--port', '0', '--config', config];
    let signalled = false;
    const ran = await system('node', args, (stderr, pid) => {
      if (!signalled && stderr.includes('pipeline: listening on ')) {
        signalled = true;
        process.kill(pid, 'SIGTERM'); // the system Node's process, which runs the project's
      }
    });
    expect(ran.code).toBe(0);
    expect(ran.stderr).toContain('pipeline: SIGTERM: stopping');
    expect(ran.stderr).toContain('pipeline: stopped');
    expect(ran.stderr).not.toContain('already stopping');
  });
});
