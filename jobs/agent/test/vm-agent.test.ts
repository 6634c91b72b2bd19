// The agent's logic with hand-made ports: whatever happens, one completion and one delete.
import { describe, expect, it } from 'vitest';
import {
  AGENT_FAILURE_EXIT_CODE,
  runAgentOnVm,
  type AgentPorts,
  type ContainerSpec,
} from '../src/vm-agent.ts';

const JOB = 'ab'.repeat(16);
const TASK = {
  jobId: JOB,
  attempt: 2,
  image: 'us-docker.pkg.dev/p/r/worker:1',
  args: ['--x'],
  env: { A: '1' },
  logsUri: `gs://out/data.csv/logs/attempt-2.log`,
  timeoutSeconds: 60,
};

interface Recorded {
  published: { topic: string; message: Record<string, unknown>; attributes: Record<string, string> }[];
  deleted: number;
  uploads: string[];
  specs: ContainerSpec[];
}

function ports(options: {
  task?: string;
  run?: (
    spec: ContainerSpec,
    output: (chunk: Buffer) => void,
    signal: AbortSignal,
  ) => Promise<{ exitCode: number; removed?: Promise<void> }>;
  preemptAfterMs?: number;
  /** What the one read of instance/preempted says after a stop from outside. */
  preemptedOnStop?: boolean;
  failUploads?: number;
  flushIntervalMs?: number;
}): { ports: AgentPorts; recorded: Recorded } {
  const recorded: Recorded = { published: [], deleted: 0, uploads: [], specs: [] };
  let failUploads = options.failUploads ?? 0;
  const attributes: Record<string, string> = {
    'pipeline-task': options.task ?? JSON.stringify(TASK),
    'pipeline-job-id': JOB,
    'pipeline-attempt': '2',
    'pipeline-completions-topic': 'completions',
  };
  return {
    recorded,
    ports: {
      attribute: async (name) => attributes[name],
      identity: async () => ({ project: 'acme', zone: 'us-central1-a', instance: 'pipeline-abab-a2' }),
      accessToken: async () => 'token',
      watchPreemption: (signal) =>
        new Promise((resolve) => {
          const timer =
            options.preemptAfterMs === undefined
              ? undefined
              : setTimeout(() => resolve(true), options.preemptAfterMs);
          signal.addEventListener('abort', () => (clearTimeout(timer), resolve(false)), { once: true });
        }),
      isPreempted: async () => options.preemptedOnStop === true,
      copyShared: async () => 0,
      runContainer: async (spec, output, signal) => {
        recorded.specs.push(spec);
        return (options.run ?? (async () => ({ exitCode: 0 })))(spec, output, signal);
      },
      uploadLog: async (_uri, content) => {
        if (failUploads-- > 0) throw new Error('503 from storage');
        recorded.uploads.push(content.toString('utf8'));
      },
      publish: async (_project, topic, message, attributes) => {
        recorded.published.push({ topic, message: { ...message }, attributes });
      },
      deleteInstance: async () => {
        recorded.deleted++;
      },
      log: () => {},
      now: () => new Date(),
      flushIntervalMs: options.flushIntervalMs ?? 20,
    },
  };
}

const wait = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

describe('runAgentOnVm', () => {
  it('runs the task, uploads its output, reports exit 0 once and deletes the VM', async () => {
    const { ports: p, recorded } = ports({
      run: async (_spec, output) => {
        output(Buffer.from('hello\n'));
        await wait(60); // longer than the flush interval: an upload happens mid-run
        output(Buffer.from('bye\n'));
        return { exitCode: 0 };
      },
    });
    const completion = await runAgentOnVm(p);
    expect(completion).toMatchObject({
      jobId: JOB,
      attempt: 2,
      exitCode: 0,
      preempted: false,
      instance: 'pipeline-abab-a2',
    });
    expect(completion.error).toBeUndefined();
    expect(recorded.specs[0]).toMatchObject({
      image: TASK.image,
      args: ['--x'],
      env: { A: '1' },
      binds: ['/var/lib/pipeline/shared:/tmp/worker'],
      accessToken: 'token',
    });
    expect(recorded.uploads[0]).toBe('hello\n');
    expect(recorded.uploads.at(-1)).toBe('hello\nbye\n');
    expect(recorded.published).toHaveLength(1);
    expect(recorded.published[0]).toMatchObject({
      topic: 'completions',
      attributes: { jobId: JOB, attempt: '2', exitCode: '0' },
    });
    expect(recorded.deleted).toBe(1);
  });

  it('reports the end before the task container is removed, and deletes the VM after the removal', async () => {
    // A removal deletes the container's file system, which takes seconds on a busy disk; a preempted
    // VM has 30 s from the notice to stop the task and report.
    let removedAt = -1;
    let removeNow!: () => void;
    const events: string[] = [];
    const { ports: p, recorded } = ports({
      run: async () => ({
        exitCode: 0,
        removed: new Promise<void>((resolve) => (removeNow = resolve)).then(() => {
          removedAt = events.length;
        }),
      }),
    });
    const published = p.publish;
    p.publish = async (...args) => {
      await published(...args);
      events.push('published');
      setTimeout(removeNow, 20); // a removal that takes a while
    };
    const deleteInstance = p.deleteInstance;
    p.deleteInstance = async (identity) => {
      events.push('deleting');
      await deleteInstance(identity);
    };
    await runAgentOnVm(p);
    expect(events).toEqual(['published', 'deleting']);
    expect(removedAt).toBe(1); // after the completion, before the VM's deletion
    expect(recorded.deleted).toBe(1);
  });

  it.each([1, 137])('reports exit %i with the tail of the output as the reason', async (exitCode) => {
    const { ports: p, recorded } = ports({
      run: async (_spec, output) => {
        output(Buffer.from('Traceback: boom\n'));
        return { exitCode };
      },
    });
    const completion = await runAgentOnVm(p);
    expect(completion).toMatchObject({ exitCode, error: 'Traceback: boom' });
    expect(recorded.published).toHaveLength(1);
    expect(recorded.deleted).toBe(1);
  });

  it.each([
    ['not JSON', '{', 'bad task: pipeline-task is not JSON'],
    [
      'a wrong field',
      JSON.stringify({ ...TASK, args: 'rm -rf /' }),
      'bad task: pipeline-task.args must be a list of strings',
    ],
  ])('reports bad task JSON (%s) as FAILED, for the job the metadata names', async (_name, task, error) => {
    const { ports: p, recorded } = ports({ task });
    const completion = await runAgentOnVm(p);
    expect(completion).toMatchObject({ jobId: JOB, attempt: 2, exitCode: AGENT_FAILURE_EXIT_CODE, error });
    expect(recorded.specs).toHaveLength(0);
    expect(recorded.published).toHaveLength(1);
    expect(recorded.deleted).toBe(1);
  });

  it('reports an image it may not pull as FAILED with the daemon’s reason', async () => {
    const { ports: p, recorded } = ports({
      run: async () => {
        throw new Error(
          'pull access denied for us-docker.pkg.dev/p/r/worker, repository does not exist or may require authorization',
        );
      },
    });
    const completion = await runAgentOnVm(p);
    expect(completion.exitCode).toBe(AGENT_FAILURE_EXIT_CODE);
    expect(completion.error).toContain('pull access denied');
    expect(recorded.uploads.at(-1)).toContain('pipeline-agent: pull access denied');
    expect(recorded.published).toHaveLength(1);
    expect(recorded.deleted).toBe(1);
  });

  it('stops the container on preemption and reports it as preempted', async () => {
    const { ports: p, recorded } = ports({
      preemptAfterMs: 30,
      run: (_spec, _output, signal) =>
        new Promise((resolve) =>
          signal.addEventListener('abort', () => resolve({ exitCode: 137 }), { once: true }),
        ),
    });
    const completion = await runAgentOnVm(p);
    expect(completion).toMatchObject({ exitCode: 137, preempted: true, error: 'the VM was preempted' });
    expect(recorded.published).toHaveLength(1);
    expect(recorded.deleted).toBe(1);
  });

  it.each([
    [true, { preempted: true, error: 'the VM was preempted' }],
    [false, { preempted: false, error: 'the VM is shutting down' }],
  ])(
    'stops the task on SIGTERM to the agent, and asks the metadata server whether it is a preemption (%s)',
    async (preemptedOnStop, expected) => {
      const { ports: p, recorded } = ports({
        preemptedOnStop,
        run: (_spec, _output, signal) =>
          new Promise((resolve) =>
            signal.addEventListener('abort', () => resolve({ exitCode: 143 }), { once: true }),
          ),
      });
      const sigterm = new AbortController();
      setTimeout(() => sigterm.abort(new Error('the VM is shutting down')), 20);
      const completion = await runAgentOnVm(p, sigterm.signal);
      expect(completion).toMatchObject({ exitCode: 143, ...expected });
      expect(recorded.published).toHaveLength(1);
      expect(recorded.deleted).toBe(1);
    },
  );

  it('stops a task that runs past its timeout', async () => {
    const { ports: p } = ports({
      task: JSON.stringify({ ...TASK, timeoutSeconds: 0.05 }),
      run: (_spec, _output, signal) =>
        new Promise((resolve) =>
          signal.addEventListener('abort', () => resolve({ exitCode: 137 }), { once: true }),
        ),
    });
    const completion = await runAgentOnVm(p);
    expect(completion).toMatchObject({
      exitCode: 137,
      preempted: false,
      error: 'the task ran past its timeout of 0.05 s',
    });
  });

  it('still publishes and deletes when the log upload keeps failing', async () => {
    const { ports: p, recorded } = ports({
      failUploads: 100,
      run: async (_s, output) => (output(Buffer.from('x')), { exitCode: 0 }),
    });
    const completion = await runAgentOnVm(p);
    expect(completion.exitCode).toBe(0);
    expect(recorded.published).toHaveLength(1);
    expect(recorded.deleted).toBe(1);
  });
});
