// The agent's container runner: dockerode talking to a loopback fake of the Docker Engine API on a unix
// socket (there is no Docker engine in the tests), scripted per image.
import Dockerode from 'dockerode';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { startFakeDocker, type FakeDocker } from '../../../test/support/fake-docker.ts';
import {
  ImagePullError,
  registryAuthFor,
  runContainer,
  type ContainerSpec,
  type OutputStream,
} from '../src/docker.ts';

const AR_IMAGE = 'us-docker.pkg.dev/my-project/jobs/worker:1.2.3';

let fake: FakeDocker;
let docker: Dockerode;
beforeEach(async () => {
  fake = await startFakeDocker();
  docker = new Dockerode({ socketPath: fake.socketPath });
});
afterEach(async () => {
  await fake.close();
});

function spec(overrides: Partial<ContainerSpec> = {}): ContainerSpec {
  return { image: 'busybox', args: ['run'], env: {}, binds: [], ...overrides };
}

/** Runs the container and keeps what it wrote, per stream and in arrival order. */
async function run(containerSpec: ContainerSpec, signal?: AbortSignal) {
  const chunks: { stream: OutputStream; text: string }[] = [];
  const result = await runContainer(
    docker,
    containerSpec,
    (stream, chunk) => chunks.push({ stream, text: chunk.toString('utf8') }),
    signal,
  );
  await result.removed;
  const text = (stream: OutputStream) =>
    chunks
      .filter((c) => c.stream === stream)
      .map((c) => c.text)
      .join('');
  return { ...result, chunks, stdout: text('stdout'), stderr: text('stderr') };
}

const creates = () => fake.requests.filter((r) => r.method === 'POST' && r.path === '/containers/create');
const createBody = () => creates()[0].body as Record<string, unknown>;
const pulls = () => fake.requests.filter((r) => r.path === '/images/create');

describe('runContainer', () => {
  it('pulls, runs and captures the output in order, per stream, then removes the container', async () => {
    fake.script('busybox', {
      output: [
        { stream: 'stdout', data: 'line 1\n' },
        { stream: 'stderr', data: 'warning: é\n', delayMs: 5 },
        { stream: 'stdout', data: 'line 2\n', delayMs: 5 },
        { stream: 'stdout', data: Buffer.alloc(100_000, 'x'), delayMs: 5 },
      ],
    });
    const result = await run(
      spec({ binds: ['/mnt/disks/scratch:/scratch'], labels: { 'pipeline-job': 'job-1' } }),
    );

    expect(result.exitCode).toBe(0);
    expect(result.stdout).toBe(`line 1\nline 2\n${'x'.repeat(100_000)}`);
    expect(result.stderr).toBe('warning: é\n');
    expect(result.chunks.slice(0, 3).map((c) => c.stream)).toEqual(['stdout', 'stderr', 'stdout']);
    expect(fake.pulled).toEqual(['busybox:latest']);
    expect(createBody()).toMatchObject({
      Image: 'busybox',
      Cmd: ['run'],
      Tty: false,
      Labels: { 'pipeline-job': 'job-1' },
      // The VM's network, as the agent's: no bridge or NAT between the task and the metadata server.
      HostConfig: { NetworkMode: 'host', Binds: ['/mnt/disks/scratch:/scratch'] },
    });
    const [id, container] = [...fake.containers][0];
    expect(container).toMatchObject({ started: true, removed: true, exitCode: 0 });
    // Attached before start, so nothing written at start-up can be missed.
    const order = fake.requests.map((r) => `${r.method} ${r.path}`);
    expect(order.indexOf(`POST /containers/${id}/attach`)).toBeLessThan(
      order.indexOf(`POST /containers/${id}/start`),
    );
    expect(order.at(-1)).toBe(`DELETE /containers/${id}`);
  });

  it('answers the exit code before the container is removed, and says when the removal is done', async () => {
    let removeNow!: () => void;
    fake.script('busybox', { exitCode: 3, removal: new Promise((resolve) => (removeNow = resolve)) });
    const run = await runContainer(docker, spec(), () => {});
    expect(run.exitCode).toBe(3);
    const [id, container] = [...fake.containers][0];
    // The removal has been asked for, and is still under way.
    await expect
      .poll(() => fake.requests.some((r) => r.method === 'DELETE' && r.path === `/containers/${id}`))
      .toBe(true);
    expect(container.removed).toBe(false);
    removeNow();
    await run.removed;
    expect(container.removed).toBe(true);
  });

  it('reports a failing exit code', async () => {
    fake.script('busybox', { output: [{ stream: 'stderr', data: 'boom\n' }], exitCode: 1 });
    const result = await run(spec());
    expect(result).toMatchObject({ exitCode: 1, stderr: 'boom\n' });
    expect([...fake.containers.values()][0].removed).toBe(true);
  });

  it('stops the container with SIGTERM when the signal aborts: a task that exits on it ends there', async () => {
    fake.script('busybox', { output: [{ stream: 'stdout', data: 'working\n' }], hangUntilKilled: true });
    const controller = new AbortController();
    const running = run(spec({ stopGraceSeconds: 60 }), controller.signal);
    await expect.poll(() => [...fake.containers.values()][0]?.started).toBe(true);
    controller.abort(new Error('preempted'));

    const result = await running;
    expect(result).toMatchObject({ exitCode: 143, stdout: 'working\n' });
    const [, container] = [...fake.containers][0];
    expect(container).toMatchObject({ signals: ['SIGTERM'], removed: true });
  });

  it('sends SIGKILL once the grace has passed to a task that ignores SIGTERM, and resolves with 137', async () => {
    fake.script('busybox', { hangUntilKilled: true, ignoresSigterm: true });
    const controller = new AbortController();
    const running = run(spec({ stopGraceSeconds: 0.05 }), controller.signal);
    await expect.poll(() => [...fake.containers.values()][0]?.started).toBe(true);
    controller.abort(new Error('preempted'));

    expect(await running).toMatchObject({ exitCode: 137 });
    const [id, container] = [...fake.containers][0];
    expect(container).toMatchObject({
      signals: ['SIGTERM', 'SIGKILL'],
      killedWith: 'SIGKILL',
      removed: true,
    });
    expect(fake.requests.filter((r) => r.path === `/containers/${id}/kill`)).toHaveLength(2);
  });

  it.each([
    ['the image has none', [], {}, '/usr/local/nvidia/lib64'],
    [
      "the image's CUDA paths",
      ['PATH=/usr/bin', 'LD_LIBRARY_PATH=/usr/local/cuda/lib64:/opt/conda/lib'],
      {},
      '/usr/local/nvidia/lib64:/usr/local/cuda/lib64:/opt/conda/lib',
    ],
    [
      'the task sets its own',
      ['LD_LIBRARY_PATH=/image'],
      { LD_LIBRARY_PATH: '/mine' },
      '/usr/local/nvidia/lib64:/mine',
    ],
    ['already there', ['LD_LIBRARY_PATH=/x:/usr/local/nvidia/lib64'], {}, '/x:/usr/local/nvidia/lib64'],
  ])('puts the library path first in LD_LIBRARY_PATH: %s', async (_case, imageEnv, env, expected) => {
    fake.script('cuda/app:1', { env: imageEnv });
    await run(spec({ image: 'cuda/app:1', env, libraryPath: '/usr/local/nvidia/lib64' }));
    expect(createBody().Env).toContain(`LD_LIBRARY_PATH=${expected}`);
  });

  it('leaves LD_LIBRARY_PATH alone and reads no image without a library path', async () => {
    await run(spec());
    expect(createBody().Env).not.toContainEqual(expect.stringMatching(/^LD_LIBRARY_PATH=/));
    expect(fake.requests.some((r) => r.path.startsWith('/images/') && r.path.endsWith('/json'))).toBe(false);
  });

  it('gives the container the stop timeout of its grace, as the daemon uses when it stops it itself', async () => {
    await run(spec({ stopGraceSeconds: 15 }));
    expect(createBody().StopTimeout).toBe(15);
  });

  it('gives the container the devices it is told to, at the same paths', async () => {
    await run(spec({ devices: ['/dev/nvidia0', '/dev/nvidiactl'] }));
    expect(createBody().HostConfig).toMatchObject({
      Devices: [
        { PathOnHost: '/dev/nvidia0', PathInContainer: '/dev/nvidia0', CgroupPermissions: 'rwm' },
        { PathOnHost: '/dev/nvidiactl', PathInContainer: '/dev/nvidiactl', CgroupPermissions: 'rwm' },
      ],
    });
  });

  it('starts nothing when the signal has already aborted', async () => {
    const controller = new AbortController();
    controller.abort(new Error('preempted'));
    await expect(run(spec(), controller.signal)).rejects.toThrow('preempted');
    expect(fake.containers.size).toBe(0);
  });

  it.each(['http', 'stream'] as const)(
    'throws ImagePullError with the daemon message when the pull is denied (%s) and creates nothing',
    async (via) => {
      fake.script('private/thing:v1', { denyPull: { via } });
      const error = await runContainer(docker, spec({ image: 'private/thing:v1' }), () => {}).catch(
        (e: unknown) => e,
      );
      expect(error).toBeInstanceOf(ImagePullError);
      expect((error as ImagePullError).message).toBe(
        'pulling private/thing:v1 failed: ' +
          "pull access denied for private/thing, repository does not exist or may require 'docker login': " +
          'denied: requested access to the resource is denied',
      );
      expect((error as ImagePullError).image).toBe('private/thing:v1');
      expect(creates()).toHaveLength(0);
      expect(fake.containers.size).toBe(0);
    },
  );

  it('hands the env over byte-exact: quotes, command substitution, newlines, non-ASCII', async () => {
    const env = {
      TRICKY: `'"$(touch /tmp/x)\`id\` ; rm -rf /`,
      MULTILINE: 'first\nsecond\r\nthird',
      UNICODE: 'héllo wörld ✓ 日本語 🚀',
      EMPTY: '',
      WITH_EQUALS: 'a=b=c',
    };
    await run(spec({ env }));
    expect(createBody().Env).toEqual([
      `TRICKY='"$(touch /tmp/x)\`id\` ; rm -rf /`,
      'MULTILINE=first\nsecond\r\nthird',
      'UNICODE=héllo wörld ✓ 日本語 🚀',
      'EMPTY=',
      'WITH_EQUALS=a=b=c',
    ]);
  });

  it('leaves Cmd out when there are no args, so the image CMD applies', async () => {
    await run(spec({ args: [] }));
    expect(createBody()).not.toHaveProperty('Cmd');
  });

  it('sends the Artifact Registry credentials with the pull, and none for Docker Hub', async () => {
    const registryAuth = registryAuthFor(AR_IMAGE, 'ya29.token');
    await run(spec({ image: AR_IMAGE, registryAuth }));
    await run(spec({ image: 'busybox' }));

    const [arPull, hubPull] = pulls();
    expect(arPull.query).toMatchObject({
      fromImage: 'us-docker.pkg.dev/my-project/jobs/worker',
      tag: '1.2.3',
    });
    expect(arPull.registryAuth).toEqual({
      username: 'oauth2accesstoken',
      password: 'ya29.token',
      serveraddress: 'https://us-docker.pkg.dev',
    });
    expect(JSON.stringify(arPull.query)).not.toContain('ya29'); // never in the URL
    expect(hubPull.query).toMatchObject({ fromImage: 'busybox', tag: 'latest' });
    expect(hubPull.registryAuth).toBeUndefined();
    expect(fake.pulled).toEqual([AR_IMAGE, 'busybox:latest']);
  });
});

describe('registryAuthFor', () => {
  it.each([
    ['us-docker.pkg.dev/p/r/img:1', 'https://us-docker.pkg.dev'],
    ['europe-west1-docker.pkg.dev/p/r/img@sha256:abc', 'https://europe-west1-docker.pkg.dev'],
    ['gcr.io/p/img', 'https://gcr.io'],
    ['eu.gcr.io/p/img:latest', 'https://eu.gcr.io'],
  ])('uses the access token for %s', (image, serveraddress) => {
    expect(registryAuthFor(image, 't')).toEqual({
      username: 'oauth2accesstoken',
      password: 't',
      serveraddress,
    });
  });

  it.each([
    'busybox',
    'library/busybox:1.36',
    'ghcr.io/owner/img',
    'gcr.io.evil.example/p/img',
    'evil.example/us-docker.pkg.dev/img',
    'localhost:5000/img',
  ])('sends no Google token for %s', (image) => {
    expect(registryAuthFor(image, 't')).toBeUndefined();
  });
});
