// The usage is written from the commands' declarations, as the parser is built from them: the help
// names every option the parser takes and no other, says the defaults the parser applies, and the
// README's reference is `pipeline help`'s text.
import fs from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { parse, type CommandSpec } from '../src/args.ts';
import { COMMANDS } from '../src/commands.ts';
import { UsageError } from '../src/errors.ts';
import { commandUsage, overview } from '../src/usage.ts';

const README = path.resolve(import.meta.dirname, '../../../README.md');
const START = '<!-- cli-usage:start -->';
const END = '<!-- cli-usage:end -->';

/** The README's text between the markers, inside its code fence. */
function readmeReference(): string {
  const text = fs.readFileSync(README, 'utf8');
  const from = text.indexOf(START);
  const to = text.indexOf(END);
  if (from < 0 || to < from) throw new Error(`README.md has no ${START} ... ${END} block`);
  const block = text.slice(from + START.length, to).trim();
  const fenced = /^```text\n([\s\S]*)\n```$/.exec(block);
  if (fenced === null) throw new Error('the README block is not one ```text fence');
  return fenced[1];
}

/** Each `--option` a command's usage names, with a value it takes when it takes one. */
function optionsIn(usage: string): { name: string; value: boolean }[] {
  const rows = usage.split('\n').filter((line) => /^ {2}(-\w, )?--/.test(line));
  return rows.map((line) => {
    const [, name, value] = /--([\w-]+)( \S)?/.exec(line)!;
    return { name, value: value !== undefined };
  });
}

/** A value each command's options take, so that their readers accept it. */
const SAMPLE_VALUES: Record<string, string> = {
  runtime: 'vm',
  state: 'failed',
  limit: '3',
  port: '0',
  attempt: '1',
  tail: '10',
  interval: '0.5',
};

describe('the usage', () => {
  it("is the README's CLI reference, between its markers", () => {
    expect(readmeReference()).toBe(overview());
  });

  it.each(Object.values(COMMANDS).map((spec: CommandSpec) => ({ command: spec.name, spec })))(
    '$command: names each option the parser takes, and the parser takes each one it names',
    ({ spec }) => {
      const named = optionsIn(commandUsage(spec));
      expect(named.map((o) => o.name).sort()).toEqual([...Object.keys(spec.options), 'help'].sort());
      for (const { name, value } of named.filter((o) => o.name !== 'help')) {
        const args = value ? [`--${name}`, SAMPLE_VALUES[name] ?? 'x'] : [`--${name}`];
        const positional = spec.args === undefined ? [] : ['0123456789abcdef0123456789abcdef'];
        const grouped = spec.oneOf?.find((g) => g.required === true && !g.options.includes(name));
        const required = grouped === undefined ? [] : [`--${grouped.options[0]}`, 'x'];
        expect(() => parse(spec, [...positional, ...required, ...args]), `--${name}`).not.toThrow();
      }
      expect(() => parse(spec, ['--no-such-option'])).toThrow(UsageError);
    },
  );

  it('says the defaults the parser applies', () => {
    expect(parse(COMMANDS.jobs, []).values.limit).toBe(50);
    expect(commandUsage(COMMANDS.jobs)).toMatch(/--limit N +jobs on a page, 1 to 200 \(default 50\)/);
    expect(parse(COMMANDS.logs, ['abcdef']).values.interval).toBe(1);
    expect(commandUsage(COMMANDS.logs)).toContain('(default 1)');
    expect(parse(COMMANDS.capacity, ['--limit', '7']).values.limit).toBe(7);
  });

  it('shows alternatives as the parser checks them: one of, or at most one of', () => {
    expect(commandUsage(COMMANDS.run).split('\n')[0]).toMatch(
      /^usage: pipeline run \(--task T \| --image I \| --input gs:\/\/B\/O\) /,
    );
    expect(commandUsage(COMMANDS.run)).toContain('[--at TIME | --cron EXPR]');
    expect(() => parse(COMMANDS.run, ['--at', '+1m'])).toThrow('run takes one of --task, --image or --input');
    expect(() => parse(COMMANDS.run, ['--task', 't', '--image', 'i'])).toThrow('run takes one of');
    expect(() => parse(COMMANDS.run, ['--task', 't', '--at', '+1m', '--cron', '* * * * *'])).toThrow(
      'give --at or --cron, not both',
    );
  });

  it('keeps every line within 100 columns', () => {
    const all = [overview(), ...Object.values(COMMANDS).map((spec) => commandUsage(spec))].join('\n');
    expect(all.split('\n').filter((line) => line.length > 100)).toEqual([]);
  });
});
