// `pipeline-agent`'s command line, in-process: what it takes before it asks the metadata server.
import { afterEach, describe, expect, it, vi } from 'vitest';
import { main, USAGE } from '../src/cli.ts';

function capture() {
  const out: string[] = [];
  const err: string[] = [];
  vi.spyOn(process.stdout, 'write').mockImplementation((chunk) => (out.push(String(chunk)), true));
  vi.spyOn(process.stderr, 'write').mockImplementation((chunk) => (err.push(String(chunk)), true));
  return { out, err };
}

afterEach(() => vi.restoreAllMocks());

describe('pipeline-agent', () => {
  it.each([['--help'], ['-h']])('%s prints the usage and exits 0', async (flag) => {
    const { out, err } = capture();
    expect(await main([flag], {})).toBe(0);
    expect(out.join('')).toBe(`${USAGE}\n`);
    expect(USAGE).toMatch(/^usage: pipeline-agent\n/);
    expect(err).toEqual([]);
  });

  it('takes no arguments: `agent` (the worker image used to need it) is a wrong command line', async () => {
    const { out, err } = capture();
    expect(await main(['agent'], {})).toBe(2);
    expect(err.join('')).toBe(`pipeline-agent: takes no arguments, got "agent"\n${USAGE}\n`);
    expect(out).toEqual([]);
  });

  it("refuses local mode's PIPELINE_TASK: a VM's task is in its metadata", async () => {
    const { err } = capture();
    expect(await main([], { PIPELINE_TASK: '{}' })).toBe(2);
    expect(err.join('')).toMatch(
      /^pipeline-agent: PIPELINE_TASK is for local mode \(`pipeline-worker agent`\)/,
    );
  });

  it.each(['soon', '-1', '1.5'])('refuses AGENT_STOP_GRACE_SECONDS=%s before it starts', async (grace) => {
    const { err } = capture();
    expect(await main([], { AGENT_STOP_GRACE_SECONDS: grace })).toBe(2);
    expect(err.join('')).toBe(
      `pipeline-agent: AGENT_STOP_GRACE_SECONDS must be a whole number of seconds, got ${JSON.stringify(grace)}\n`,
    );
  });
});
