// The project's images, built here with `docker build` from the Dockerfiles that ship. Their base,
// `node:24-bookworm-slim`, cannot be pulled on these machines, so a stand-in is made under that exact
// name: the Node 24 that runs the tests (the `node` devDependency's binary), this machine's npm, a shell, the shared
// libraries they load (read from `ldd`), CA certificates, and the `node` user (uid 1000) of the
// official image. The build's `npm ci` reaches the npm registry through `--network host`. Both images
// are tagged by a hash of their inputs, so a second run on the same engine reuses them.
import { execFileSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { docker, imageExists, importRootFs } from './docker-engine.ts';

const ROOT = path.resolve(import.meta.dirname, '../..');
export const NODE_BASE_IMAGE = 'node:24-bookworm-slim';
// The Node that runs the tests: the `node` devDependency's binary, Node 24.
const NODE_BIN = fs.realpathSync(process.execPath);
const NPM_DIR = '/usr/lib/node_modules/npm';
const HOST_TOOLS = ['/bin/sh', '/usr/bin/id', '/usr/bin/env', '/usr/bin/cat', '/usr/bin/ls'];
const CA_BUNDLE = '/etc/ssl/certs/ca-certificates.crt';

/** The stand-in base image; made when the engine has none of its inputs' hash. */
export async function ensureNodeBaseImage(): Promise<string> {
  return (await nodeBase()).name;
}

/** The base's stand-in: its name as the Dockerfiles use it, and the tag of these inputs. */
async function nodeBase(): Promise<{ name: string; tagged: string }> {
  if (!process.versions.node.startsWith('24.'))
    throw new Error(`the base image needs Node 24, not ${process.version}`);
  // This file is the recipe: a change to it makes a new base.
  const inputs = [import.meta.filename, NODE_BIN, ...HOST_TOOLS, path.join(NPM_DIR, 'package.json')];
  const key = hashFiles(inputs, process.env.NODE_EXTRA_CA_CERTS ?? '');
  const tagged = `pipeline-test/node-base:${key}`;
  if (!(await imageExists(tagged))) {
    // This machine reaches the npm registry through a proxy whose CA Node is told of in
    // NODE_EXTRA_CA_CERTS; the build's npm ci needs the same (makeRoot copies the bundle).
    const extraCa =
      process.env.NODE_EXTRA_CA_CERTS === undefined ? [] : [`ENV NODE_EXTRA_CA_CERTS=${CA_BUNDLE}`];
    await importRootFs(
      tagged,
      ['ENV PATH=/usr/local/bin:/usr/bin:/bin', ...extraCa, 'CMD ["node"]'],
      makeRoot,
    );
  }
  await docker(['tag', tagged, NODE_BASE_IMAGE]);
  return { name: NODE_BASE_IMAGE, tagged };
}

function makeRoot(root: string): void {
  const put = (file: string, to = file) => {
    const target = path.join(root, to);
    fs.mkdirSync(path.dirname(target), { recursive: true });
    fs.copyFileSync(fs.realpathSync(file), target);
    fs.chmodSync(target, fs.statSync(fs.realpathSync(file)).mode & 0o7777);
  };
  put(NODE_BIN, '/usr/local/bin/node');
  for (const tool of HOST_TOOLS) put(tool);
  for (const library of sharedLibraries([NODE_BIN, ...HOST_TOOLS])) put(library);
  fs.cpSync(NPM_DIR, path.join(root, 'usr/local/lib/node_modules/npm'), { recursive: true });
  fs.symlinkSync('../lib/node_modules/npm/bin/npm-cli.js', path.join(root, 'usr/local/bin/npm'));
  fs.symlinkSync('../lib/node_modules/npm/bin/npx-cli.js', path.join(root, 'usr/local/bin/npx'));
  put(CA_BUNDLE);
  fs.writeFileSync(
    path.join(root, 'etc/passwd'),
    'root:x:0:0:root:/root:/bin/sh\nnode:x:1000:1000::/home/node:/bin/sh\n',
  );
  fs.writeFileSync(path.join(root, 'etc/group'), 'root:x:0:\nnode:x:1000:\n');
  for (const dir of ['tmp', 'root', 'home/node']) fs.mkdirSync(path.join(root, dir), { recursive: true });
  fs.chmodSync(path.join(root, 'tmp'), 0o1777);
  fs.chownSync(path.join(root, 'home/node'), 1000, 1000);
}

/** The shared libraries (and the loader) that `binaries` load, as `ldd` lists them. */
function sharedLibraries(binaries: string[]): Set<string> {
  const libraries = new Set<string>();
  for (const binary of binaries) {
    const listing = execFileSync('ldd', [fs.realpathSync(binary)]).toString();
    for (const match of listing.matchAll(/(?:=>\s*)?(\/\S+)\s+\(0x/g)) libraries.add(match[1]);
  }
  return libraries;
}

function hashFiles(files: string[], extra = ''): string {
  const hash = createHash('sha256').update(extra);
  for (const file of files) hash.update(file).update(fs.readFileSync(file));
  return hash.digest('hex').slice(0, 12);
}

/**
 * `docker build -f DOCKERFILE` of the repository, tagged pipeline-test/NAME:HASH, where the hash
 * covers the Dockerfile, the lockfile and `sources` (files or folders); an image of the same hash is reused.
 */
export async function buildProjectImage(
  name: string,
  dockerfile: string,
  sources: string[],
): Promise<string> {
  const base = await nodeBase();
  const files = [
    dockerfile,
    'package-lock.json',
    ...sources.flatMap((dir) => listFiles(path.join(ROOT, dir))),
  ];
  const tag = `pipeline-test/${name}:${hashFiles(
    files.map((file) => path.resolve(ROOT, file)),
    base.tagged,
  )}`;
  if (await imageExists(tag)) return tag;
  // The legacy builder: Debian's engine has no BuildKit plugin. --network host: npm ci needs the registry.
  await docker(['build', '--network', 'host', '-f', dockerfile, '-t', tag, '.'], {
    env: { ...process.env, DOCKER_BUILDKIT: '0' },
    timeoutMs: 600_000,
    cwd: ROOT,
  });
  return tag;
}

/** A file, or every file under a folder. */
function listFiles(dir: string): string[] {
  if (fs.statSync(dir).isFile()) return [dir];
  return fs
    .readdirSync(dir, { recursive: true, withFileTypes: true })
    .filter((entry) => entry.isFile())
    .map((entry) => path.join(entry.parentPath, entry.name))
    .sort();
}

/**
 * A stand-in for a Container-Optimized OS VM, to run vm-startup.sh in: a root file system of mount
 * points and Debian's merged-/usr links, run with this machine's /usr mounted read-only (bash, curl,
 * coreutils, the docker CLI) and the engine's socket, as COS has its own. Its /etc knows root only.
 */
export async function ensureCosStandInImage(): Promise<string> {
  const tag = `pipeline-test/cos-standin:${hashFiles([import.meta.filename])}`;
  if (await imageExists(tag)) return tag;
  await importRootFs(tag, ['ENV PATH=/usr/local/bin:/usr/bin:/bin'], (root) => {
    for (const dir of ['usr', 'etc', 'tmp', 'root', 'var/run', 'dev', 'proc', 'sys'])
      fs.mkdirSync(path.join(root, dir), { recursive: true });
    fs.chmodSync(path.join(root, 'tmp'), 0o1777);
    for (const link of ['bin', 'sbin', 'lib', 'lib64']) fs.symlinkSync(`usr/${link}`, path.join(root, link));
    fs.writeFileSync(path.join(root, 'etc/passwd'), 'root:x:0:0:root:/root:/bin/bash\n');
    fs.writeFileSync(path.join(root, 'etc/group'), 'root:x:0:\n');
    fs.writeFileSync(path.join(root, 'etc/hosts'), '127.0.0.1 localhost\n');
  });
  return tag;
}

/** The worker image (the task image of `logreg`, and the VM agent's), built from jobs/worker/Dockerfile. */
export function buildWorkerImage(): Promise<string> {
  return buildProjectImage('worker', 'jobs/worker/Dockerfile', [
    '.dockerignore',
    'package.json',
    'packages/core/package.json',
    'packages/core/src',
    'services/dispatcher/package.json',
    'jobs/worker/package.json',
    'jobs/worker/bin',
    'jobs/worker/src',
  ]);
}
