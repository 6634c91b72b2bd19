// The project's images, built here with `docker build` from the Dockerfiles that ship, on the base
// that node-base.ts makes under the name they use (`node:24-bookworm-slim`). Each is tagged by a hash
// of its inputs (and the base's), so a second run on the same engine reuses it; after a build, older
// tags of the same image go. `npm run images` (scripts/images.ts) builds and checks them all.
import fs from 'node:fs';
import path from 'node:path';
import { createHash } from 'node:crypto';
import { docker, imageExists, importRootFs, removeOtherTags } from './docker-engine.ts';
import { nodeBase } from './node-base.ts';

export { ensureNodeBaseImage, NODE_BASE_IMAGE } from './node-base.ts';

const ROOT = path.resolve(import.meta.dirname, '../..');

/** A hash of the files' names (relative to the repository, so any clone gets the same) and contents. */
function hashFiles(files: string[], extra = ''): string {
  const hash = createHash('sha256').update(extra);
  for (const file of files) hash.update(path.relative(ROOT, file)).update('\0').update(fs.readFileSync(file));
  return hash.digest('hex').slice(0, 12);
}

/**
 * `docker build -f DOCKERFILE` of the repository, tagged pipeline-test/NAME:HASH, where the hash
 * covers the Dockerfile, the lockfile, the base and `sources` (files or folders); an image of the
 * same hash is reused. After a build, older pipeline-test/NAME tags and dangling images are removed.
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
  // 20 minutes at most: on vfs, with two cores and other builds on the engine (the box builds three
  // images at once), one build took over 10 here.
  await docker(['build', '--network', 'host', '-f', dockerfile, '-t', tag, '.'], {
    env: { ...process.env, DOCKER_BUILDKIT: '0' },
    timeoutMs: 1_200_000,
    cwd: ROOT,
  });
  await removeOtherTags(tag);
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
  await removeOtherTags(tag);
  return tag;
}

/** Every workspace's package.json: each Dockerfile copies them all, since npm ci checks the lock file against them. */
const WORKSPACE_MANIFESTS = [
  'package.json',
  'packages/core/package.json',
  'packages/cli/package.json',
  'services/dispatcher/package.json',
  'jobs/worker/package.json',
  'jobs/agent/package.json',
];

/** The worker image (the task image of `logreg`), built from jobs/worker/Dockerfile. */
export function buildWorkerImage(): Promise<string> {
  return buildProjectImage('worker', 'jobs/worker/Dockerfile', [
    '.dockerignore',
    ...WORKSPACE_MANIFESTS,
    'packages/core/src',
    'jobs/worker/bin',
    'jobs/worker/src',
  ]);
}

/** The VM agent's image (AGENT_IMAGE: vm-startup.sh runs it on every task VM), built from jobs/agent/Dockerfile. */
export function buildAgentImage(): Promise<string> {
  return buildProjectImage('agent', 'jobs/agent/Dockerfile', [
    '.dockerignore',
    ...WORKSPACE_MANIFESTS,
    'packages/core/src',
    'jobs/agent/bin',
    'jobs/agent/src',
  ]);
}

/** The dispatcher's image (its Cloud Run service), built from services/dispatcher/Dockerfile. */
export function buildDispatcherImage(): Promise<string> {
  return buildProjectImage('dispatcher', 'services/dispatcher/Dockerfile', [
    '.dockerignore',
    ...WORKSPACE_MANIFESTS,
    'pipeline.config.json',
    'packages/core/src',
    'services/dispatcher/src',
    'services/dispatcher/scripts',
  ]);
}
