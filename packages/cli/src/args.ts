// Command-line parsing shared by the commands. Each command declares its options once (commands.ts):
// name, value placeholder, description, how its value is read and its default. From that one
// declaration `parse` builds node's parseArgs in strict mode (an unknown option is a usage error, not
// ignored), and usage.ts writes the usage, so the parser and the help cannot say different things.
import { parseArgs, type ParseArgsOptionsConfig } from 'node:util';
import {
  isVariableName,
  MAX_PARAM_VALUE_BYTES,
  RESERVED_ENV_KEYS,
  RESERVED_ENV_PREFIX,
  unsafeParamReason,
} from '@pipeline/core';
import { HelpRequested, UsageError } from './errors.ts';

/** Reads an option's text into its value; throws a UsageError of `command` when it cannot. */
export type Reader<T> = (text: string, option: string, command: string) => T;

export interface OptionSpec {
  /** The value's placeholder in the usage ("N", "FILE"); none: a flag, which takes no value. */
  readonly value?: string;
  /** What it does, as the usage says it. */
  readonly description: string;
  /** It may be given more than once; every value is kept, in order. */
  readonly repeats?: boolean;
  /** A one-letter alias ("f": -f for --follow). */
  readonly short?: string;
  /** Reads and checks the value; without it, the value is the text as given. */
  readonly read?: Reader<unknown>;
  /** The value when the option is not given; the usage says it. */
  readonly default?: string | number;
  /** Shared by every command that talks to the API: the usage lists it, but not in each synopsis. */
  readonly shared?: boolean;
}

export type OptionSpecs = Readonly<Record<string, OptionSpec>>;

export interface CommandSpec<O extends OptionSpecs = OptionSpecs> {
  readonly name: string;
  /** What the command does, for its usage (wrapped there). */
  readonly summary: string;
  /** Its plain arguments: their name in the usage, what one is, and whether several may be given. */
  readonly args?: {
    readonly name: string;
    readonly what: string;
    readonly description: string;
    readonly repeats?: boolean;
    /** It may be left out (`[ID]` in the synopsis). */
    readonly optional?: boolean;
  };
  readonly options: O;
  /** Options of which at most one may be given (`required`: exactly one), shown as alternatives. */
  readonly oneOf?: readonly OneOf[];
}

export interface OneOf {
  readonly options: readonly string[];
  readonly required?: boolean;
}

/** A command's declaration, its option names and value types kept for `parse`. */
export function command<const O extends OptionSpecs>(
  spec: CommandSpec<O> & { oneOf?: readonly (OneOf & { options: readonly (keyof O & string)[] })[] },
): CommandSpec<O> {
  return spec;
}

type ValueOf<O extends OptionSpec> = O extends { read: Reader<infer T> }
  ? O extends { repeats: true }
    ? T[]
    : T
  : O extends { value: string }
    ? O extends { repeats: true }
      ? string[]
      : string
    : boolean;

/** The values of options: those with a default always there, the others when given. */
export type Values<O extends OptionSpecs> = {
  -readonly [K in keyof O as O[K] extends { default: unknown } ? K : never]: ValueOf<O[K]>;
} & {
  -readonly [K in keyof O as O[K] extends { default: unknown } ? never : K]?: ValueOf<O[K]>;
};

/** The options of every command that talks to the pipeline's HTTP API. */
export const API_OPTIONS = {
  url: {
    value: 'URL',
    description: "the pipeline's HTTP API (default $PIPELINE_URL, else http://127.0.0.1:8080)",
    shared: true,
  },
  json: { description: "print the API's own JSON", shared: true },
} as const satisfies OptionSpecs;

/** What every command takes besides its own options. */
export const HELP_OPTION = { help: { short: 'h', description: 'this usage' } } as const satisfies OptionSpecs;

function parseArgsConfig(options: OptionSpecs): ParseArgsOptionsConfig {
  const all: OptionSpecs = { ...options, ...HELP_OPTION };
  return Object.fromEntries(
    Object.entries(all).map(([name, o]) => [
      name,
      {
        type: o.value === undefined ? 'boolean' : 'string',
        ...(o.repeats === true && { multiple: true }),
        ...(o.short !== undefined && { short: o.short }),
      },
    ]),
  );
}

/**
 * Parses `args` as `spec` declares them: `values` read and checked (defaults in), `given` the texts
 * as typed (for a command line printed back), and the plain arguments, their count checked.
 */
export function parse<const O extends OptionSpecs>(spec: CommandSpec<O>, args: string[]) {
  const { name: command } = spec;
  let parsed;
  try {
    parsed = parseArgs({
      args,
      options: parseArgsConfig(spec.options),
      allowPositionals: true,
      strict: true,
    });
  } catch (err) {
    throw new UsageError((err as Error).message, command);
  }
  const given = parsed.values as Record<string, string | string[] | boolean | undefined>;
  if (given.help === true) throw new HelpRequested(command);
  checkCount(spec, parsed.positionals);
  for (const group of spec.oneOf ?? []) checkOneOf(command, group, given);
  const values: Record<string, unknown> = {};
  for (const [name, option] of Object.entries(spec.options)) {
    const text = given[name];
    const read = option.read;
    if (text === undefined) values[name] = option.default;
    else if (read === undefined || typeof text === 'boolean') values[name] = text;
    else
      values[name] = Array.isArray(text)
        ? text.map((t) => read(t, name, command))
        : read(text, name, command);
  }
  return { values: values as Values<O>, given, positionals: parsed.positionals };
}

function checkCount(spec: CommandSpec, positionals: string[]): void {
  const count = positionals.length;
  const { name: command, args } = spec;
  if (args === undefined) {
    if (count > 0)
      throw new UsageError(`${command} takes no arguments, got ${JSON.stringify(positionals[0])}`, command);
    return;
  }
  if (count === 1 || (count > 1 && args.repeats === true) || (count === 0 && args.optional === true)) return;
  const wanted = args.repeats === true ? `at least one ${args.what}` : `one ${args.what}`;
  throw new UsageError(`${command} takes ${wanted}, got ${count}`, command);
}

function checkOneOf(command: string, group: OneOf, given: Record<string, unknown>): void {
  const count = group.options.filter((name) => given[name] !== undefined).length;
  const flags = group.options.map((name) => `--${name}`);
  const listed = `${flags.slice(0, -1).join(', ')} or ${flags.at(-1)}`;
  if (group.required === true && count !== 1)
    throw new UsageError(`${command} takes one of ${listed}`, command);
  if (count > 1)
    throw new UsageError(
      flags.length === 2 ? `give ${flags[0]} or ${flags[1]}, not both` : `give one of ${listed}`,
      command,
    );
}

/** A Reader of whole numbers within [min, max]. */
export function wholeNumber(min: number, max: number): Reader<number> {
  return (text, option, command) => {
    const n = /^\d{1,15}$/.test(text) ? Number(text) : NaN;
    if (!(n >= min && n <= max))
      throw new UsageError(
        `--${option} must be a whole number from ${min} to ${max}, got ${JSON.stringify(text)}`,
        command,
      );
    return n;
  };
}

/** A Reader of numbers of `unit` within [min, max]: "--interval must be 0.05 to 60 seconds". */
export function numberIn(min: number, max: number, unit: string): Reader<number> {
  return (text, option, command) => {
    const n = Number(text);
    if (!(n >= min && n <= max))
      throw new UsageError(
        `--${option} must be ${min} to ${max} ${unit}, got ${JSON.stringify(text)}`,
        command,
      );
    return n;
  };
}

/** A Reader of one of `choices`, as given; `upper`: read in any case, the value in upper case. */
export function choice(choices: readonly string[], upper = false): Reader<string> {
  return (text, option, command) => {
    const value = upper ? text.toUpperCase() : text;
    if (!choices.includes(value)) {
      const listed = upper ? choices.join(', ') : `${choices.slice(0, -1).join(', ')} or ${choices.at(-1)}`;
      throw new UsageError(`--${option} must be ${upper ? 'one of ' : ''}${listed}`, command);
    }
    return value;
  };
}

/** KEY=VALUE pairs of a repeated option (--env, --meta) as an object; the first `=` splits. */
export function keyValues(
  command: string,
  name: string,
  pairs: string[] | undefined,
): Record<string, string> {
  const result: Record<string, string> = {};
  for (const pair of pairs ?? []) {
    const eq = pair.indexOf('=');
    if (eq <= 0) throw new UsageError(`--${name} takes KEY=VALUE, got ${JSON.stringify(pair)}`, command);
    result[pair.slice(0, eq)] = pair.slice(eq + 1);
  }
  return result;
}

/** `parse` of a value the API would refuse (a size, a duration, a cron), as a usage error of `command`. */
export function checked<T>(command: string, check: () => T): T {
  try {
    return check();
  } catch (err) {
    throw new UsageError((err as Error).message, command);
  }
}

/**
 * --param NAME=VALUE pairs: variable names no rule may refuse to consider (routing/params.ts says
 * which ones no rule may open), values within the size the pipeline takes. Whether the job's rule
 * allows them only the pipeline knows.
 */
export function paramsOption(command: string, pairs: string[] | undefined): Record<string, string> {
  const params = variables(command, 'param', pairs);
  for (const [name, value] of Object.entries(params)) {
    const unsafe = unsafeParamReason(name);
    if (unsafe !== undefined) throw new UsageError(`--param ${name}: ${unsafe}`, command);
    if (Buffer.byteLength(value, 'utf8') > MAX_PARAM_VALUE_BYTES)
      throw new UsageError(`--param ${name}: longer than ${MAX_PARAM_VALUE_BYTES} bytes`, command);
  }
  return params;
}

/**
 * NAME=VALUE pairs of a repeated option whose names become a task's environment variables (--env,
 * --param): each name like TARGET_COLUMN, and none the pipeline sets itself.
 */
export function variables(
  command: string,
  name: string,
  pairs: string[] | undefined,
): Record<string, string> {
  const result = keyValues(command, name, pairs);
  for (const variable of Object.keys(result)) {
    if (!isVariableName(variable))
      throw new UsageError(
        `--${name}: ${JSON.stringify(variable)} is not a variable name like TARGET_COLUMN`,
        command,
      );
    if (RESERVED_ENV_KEYS.includes(variable) || variable.startsWith(RESERVED_ENV_PREFIX))
      throw new UsageError(`--${name}: ${variable} is set by the pipeline itself`, command);
  }
  return result;
}
