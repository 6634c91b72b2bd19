// `npm run images`: builds the project's images on this machine's Docker engine, as the tests do
// (test/support/images.ts): the base `node:24-bookworm-slim` (debootstrap's minimal bookworm and the
// official Node distribution from the npm registry), the worker image (jobs/worker/Dockerfile), the VM
// agent's (jobs/agent/Dockerfile) and the dispatcher's (services/dispatcher/Dockerfile). Each is reused
// when its inputs have not changed. Then it checks each one by running it with no network: the node
// user exists, the project's images run as that user and not as root, the worker and the agent answer
// --help through their entrypoints, the dispatcher loads its config module. Prints a table of sizes and users; exits 1 if an image is missing a check.
import {
  buildAgentImage,
  buildDispatcherImage,
  buildWorkerImage,
  ensureNodeBaseImage,
  NODE_BASE_IMAGE,
} from '../test/support/images.ts';
import { docker } from '../test/support/docker-engine.ts';

interface Row {
  image: string;
  tag: string;
  sizeMb: number;
  user: string;
}

const problems: string[] = [];

async function step<T>(what: string, make: () => Promise<T>): Promise<T> {
  const started = Date.now();
  process.stdout.write(`${what}...\n`);
  try {
    const result = await make();
    process.stdout.write(`${what}: ${((Date.now() - started) / 1000).toFixed(1)} s\n`);
    return result;
  } catch (error) {
    process.stderr.write(`images: ${what} failed: ${(error as Error).message}\n`);
    process.exit(1);
  }
}

/** `docker run --rm --network none` of `image` with `args`; its stdout, or a problem noted and null. */
async function runIn(image: string, args: string[], what: string): Promise<string | null> {
  try {
    return (await docker(['run', '--rm', '--network', 'none', ...args])).stdout.trim();
  } catch (error) {
    problems.push(`${image}: ${what} failed to start: ${(error as Error).message}`);
    return null;
  }
}

async function inspect(image: string): Promise<{ size: number; user: string; tags: string[] }> {
  const { stdout } = await docker([
    'image',
    'inspect',
    '--format',
    '{{.Size}}\t{{.Config.User}}\t{{join .RepoTags ","}}',
    image,
  ]);
  const [size, user, tags] = stdout.trim().split('\t');
  return { size: Number(size), user, tags: tags.split(',') };
}

/** A row of the table: size and configured user; for the project's images, a user that is not root. */
async function row(role: string, image: string, uid: string | null, nonRoot: boolean): Promise<Row> {
  const { size, user, tags } = await inspect(image);
  if (nonRoot && (user === '' || user === 'root' || user === '0'))
    problems.push(`${image} runs as root: its Dockerfile must end with USER node`);
  if (nonRoot && uid === '0') problems.push(`${image} runs as root: id -u says 0`);
  const tag =
    role === 'base' ? `${NODE_BASE_IMAGE} = ${tags.find((t) => t.startsWith('pipeline-test/'))}` : image;
  return { image: role, tag, sizeMb: Math.round(size / 1e6), user: `${user || 'root'} (uid ${uid ?? '?'})` };
}

/** `id -u` as the image's configured user: the entrypoint replaced, no network. */
const uidOf = (image: string) => runIn(image, ['--entrypoint', 'id', image, '-u'], 'id -u');

async function checkBase(image: string): Promise<Row> {
  // The base runs as root, as the official one does; its node user (1000) is the one of the images'
  // USER node. One run for all: on the vfs driver each container starts with a copy of its image.
  const said = await runIn(
    image,
    [
      '--entrypoint',
      'sh',
      image,
      '-c',
      'id -u && id -u node && node --version && npm --version && corepack --version',
    ],
    'id -u, id -u node, node, npm and corepack --version',
  );
  const [uid, nodeUid, node, npm, corepack] = said?.split('\n') ?? [];
  if (said !== null) {
    if (nodeUid !== '1000') problems.push(`${image}: the node user is uid ${nodeUid}, not 1000`);
    process.stdout.write(
      `base: node ${node}, npm ${npm}, corepack ${corepack}, user node is uid ${nodeUid}\n`,
    );
  }
  return row('base', image, uid ?? null, false);
}

/** `IMAGE --help` through its own entrypoint, `bin`: it must print `usage: BIN` and exit 0. */
async function checkUsage(role: string, image: string, bin: string): Promise<Row> {
  const [uid, usage] = await Promise.all([uidOf(image), runIn(image, [image, '--help'], `${bin} --help`)]);
  if (usage !== null && !usage.startsWith(`usage: ${bin}`))
    problems.push(`${image}: ${bin} --help printed no usage, but: ${usage.split('\n')[0]}`);
  else if (usage !== null) process.stdout.write(`${role}: ${usage.split('\n')[0]}\n`);
  return row(role, image, uid, true);
}

async function checkDispatcher(image: string): Promise<Row> {
  // parseConfig of an empty environment must fail with a ConfigError naming a variable: the module,
  // @pipeline/core and the production dependencies load.
  const script =
    "const { parseConfig, ConfigError } = await import('/app/services/dispatcher/src/config.ts');" +
    'try { parseConfig({}); } catch (e) { if (e instanceof ConfigError) { console.log(e.message); process.exit(0); } throw e; }' +
    "console.log('parseConfig took an empty environment'); process.exit(1);";
  const [uid, config] = await Promise.all([
    uidOf(image),
    runIn(
      image,
      ['--entrypoint', 'node', image, '--input-type=module', '-e', script],
      'node (its config module)',
    ),
  ]);
  if (config !== null)
    process.stdout.write(`dispatcher: config module loaded (an empty environment: ${config})\n`);
  return row('dispatcher', image, uid, true);
}

const baseImage = await step('base image', ensureNodeBaseImage);
const workerImage = await step('worker image', buildWorkerImage);
const agentImage = await step('agent image', buildAgentImage);
const dispatcherImage = await step('dispatcher image', buildDispatcherImage);
const rows = await step('checks', () =>
  Promise.all([
    checkBase(baseImage),
    checkUsage('worker', workerImage, 'pipeline-worker'),
    // As a VM starts it (vm-startup.sh: `docker run ... IMAGE`), through its entrypoint.
    checkUsage('agent', agentImage, 'pipeline-agent'),
    checkDispatcher(dispatcherImage),
  ]),
);

const header: Row = { image: 'image', tag: 'tag', sizeMb: 0, user: 'user' };
const width = (key: 'image' | 'tag' | 'user') => Math.max(...[header, ...rows].map((row) => row[key].length));
const line = (row: Row, size: string) =>
  `${row.image.padEnd(width('image'))}  ${row.tag.padEnd(width('tag'))}  ${size.padStart(7)}  ${row.user}`;
process.stdout.write(`\n${line(header, 'size MB')}\n`);
for (const row of rows) process.stdout.write(`${line(row, String(row.sizeMb))}\n`);
process.stdout.write(
  '\nThe agent image is the VM agent: vm-startup.sh runs it on every task VM as `pipeline-agent`, as its user; the worker image is the task of `logreg`.\n',
);

if (problems.length > 0) {
  process.stderr.write(
    `\nimages: ${problems.length} problem(s):\n${problems.map((p) => `  - ${p}`).join('\n')}\n`,
  );
  process.exit(1);
}
process.stdout.write('images: all images built, run as their user and start.\n');
