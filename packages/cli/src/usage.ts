// The usage, written from the commands' declarations (commands.ts): `pipeline help` lists every
// command's synopsis and what it does; `pipeline help COMMAND` (or COMMAND --help) adds each argument
// and option with its description and default. The README's reference is `pipeline help`'s text.
import { HELP_OPTION, type CommandSpec, type OptionSpec, type OptionSpecs } from './args.ts';
import { COMMANDS, JOB_ID } from './commands.ts';

/** Lines are wrapped to this many columns. */
const WIDTH = 100;
/** An option's description starts in this column at the latest; a longer name puts it below. */
const MAX_NAME_COLUMN = 26;

/** What the overview says after the commands, a paragraph each. */
const NOTES = [
  "Every command but start, submit and simulate talks to --url URL (default $PIPELINE_URL or http://127.0.0.1:8080) and takes --json for the API's own JSON. An https URL off this machine gets an identity token from gcloud auth print-identity-token ($PIPELINE_TOKEN gives one; $PIPELINE_AUTH=on|off|auto).",
  `A job's ID is ${JOB_ID.description}.`,
  'pipeline help COMMAND (or pipeline COMMAND --help) says what each option does.',
  'Exit codes: 0 done; 1 the work failed; 2 a wrong command line or setting, found before any request.',
];

/** Words as lines of at most WIDTH columns, the first after `first`, the others after `rest`. */
function wrap(words: string[], first: string, rest: string): string {
  const lines: string[] = [];
  let line = first;
  let empty = true;
  for (const word of words) {
    if (!empty && line.length + 1 + word.length > WIDTH) {
      lines.push(line);
      line = rest;
      empty = true;
    }
    line += empty ? word : ` ${word}`;
    empty = false;
  }
  lines.push(line);
  return lines.join('\n');
}

/** `--name VALUE`; `[--name VALUE]...` in a synopsis, where `...` says it may be given again. */
function optionWord(name: string, option: OptionSpec, within: 'synopsis' | 'group' | 'table'): string {
  const word = option.value === undefined ? `--${name}` : `--${name} ${option.value}`;
  const again = option.repeats === true ? '...' : '';
  if (within === 'group') return word;
  return within === 'synopsis' ? `[${word}]${again}` : `${word}${again}`;
}

/** The synopsis's words: the arguments, then each option (alternatives together), not the shared ones. */
function synopsisWords(spec: CommandSpec): string[] {
  const words = [spec.name];
  if (spec.args !== undefined) {
    const word = `${spec.args.name}${spec.args.repeats === true ? '...' : ''}`;
    words.push(spec.args.optional === true ? `[${word}]` : word);
  }
  const grouped = new Set((spec.oneOf ?? []).flatMap((group) => group.options));
  for (const [name, option] of Object.entries(spec.options)) {
    if (option.shared === true) continue;
    const group = spec.oneOf?.find((g) => g.options[0] === name);
    if (group !== undefined) {
      const inner = group.options
        .map((member) => optionWord(member, spec.options[member], 'group'))
        .join(' | ');
      words.push(group.required === true ? `(${inner})` : `[${inner}]`);
    } else if (!grouped.has(name)) {
      words.push(optionWord(name, option, 'synopsis'));
    }
  }
  return words;
}

/** `pipeline help`: each command's synopsis and what it does, then what they share. */
export function overview(): string {
  const commands = Object.values(COMMANDS).map(
    (spec: CommandSpec) =>
      `${wrap(synopsisWords(spec), '  ', '          ')}\n${wrap(spec.summary.split(' '), '      ', '      ')}`,
  );
  const notes = NOTES.map((note) => wrap(note.split(' '), '', ''));
  return ['usage: pipeline <command> [options]', ...commands, ...notes].join('\n');
}

/** One command's usage: its synopsis, what it does, and each argument and option. */
export function commandUsage(spec: CommandSpec): string {
  const rows: [string, string][] = [];
  if (spec.args !== undefined) rows.push([spec.args.name, spec.args.description]);
  const options: OptionSpecs = { ...spec.options, ...HELP_OPTION };
  for (const [name, option] of Object.entries(options)) {
    const alias = option.short === undefined ? '' : `-${option.short}, `;
    const shown = option.default === undefined ? '' : ` (default ${option.default})`;
    rows.push([alias + optionWord(name, option, 'table'), option.description + shown]);
  }
  const column = Math.min(MAX_NAME_COLUMN, Math.max(...rows.map(([name]) => name.length + 4)));
  const described = rows.map(([name, description]) => {
    const words = description.split(' ');
    const indent = ' '.repeat(column);
    if (name.length + 4 > column) return `  ${name}\n${wrap(words, indent, indent)}`;
    return wrap(words, `  ${name}`.padEnd(column), indent);
  });
  return [
    wrap(synopsisWords(spec), 'usage: pipeline ', '    '),
    wrap(spec.summary.split(' '), '', ''),
    ...described,
  ].join('\n');
}

/** The usage to print with an error, or for --help: one command's, or all. */
export function usageFor(command: string | undefined): string {
  if (command === undefined || !Object.hasOwn(COMMANDS, command)) return overview();
  return commandUsage(COMMANDS[command as keyof typeof COMMANDS]);
}
