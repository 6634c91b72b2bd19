// Command-line parsing shared by the commands: node's parseArgs in strict mode (an unknown option is
// a usage error, not ignored), plus the checks every command repeats.
import { parseArgs, type ParseArgsOptionsConfig } from 'node:util';
import {
  isVariableName,
  MAX_PARAM_VALUE_BYTES,
  RESERVED_ENV_KEYS,
  RESERVED_ENV_PREFIX,
  unsafeParamReason,
} from '@pipeline/core';
import { HelpRequested, UsageError } from './errors.ts';

/** The options of every command that talks to the pipeline's HTTP API. */
export const API_OPTIONS = {
  url: { type: 'string' },
  json: { type: 'boolean' },
} as const satisfies ParseArgsOptionsConfig;

const HELP = { help: { type: 'boolean', short: 'h' } } as const satisfies ParseArgsOptionsConfig;

/**
 * Parses `args` of `command`. `positionals`: how many plain arguments it takes, and what they are
 * (for the message when the count is wrong).
 */
export function parse<const T extends ParseArgsOptionsConfig>(
  command: string,
  args: string[],
  options: T,
  positionals: { min: number; max: number; what?: string } = { min: 0, max: 0 },
) {
  let parsed;
  try {
    parsed = parseArgs({ args, options: { ...options, ...HELP }, allowPositionals: true, strict: true });
  } catch (err) {
    throw new UsageError((err as Error).message, command);
  }
  if ((parsed.values as { help?: boolean }).help === true) throw new HelpRequested(command);
  const count = parsed.positionals.length;
  const { min, max, what = 'argument' } = positionals;
  if (count < min || count > max) {
    if (max === 0)
      throw new UsageError(
        `${command} takes no arguments, got ${JSON.stringify(parsed.positionals[0])}`,
        command,
      );
    const n = min === 1 ? 'one' : String(min);
    const wanted = min === max ? `${n} ${what}` : `at least ${n} ${what}`;
    throw new UsageError(`${command} takes ${wanted}, got ${count}`, command);
  }
  return { values: parsed.values, positionals: parsed.positionals };
}

/** A whole number within [min, max] from an option's text. */
export function integerOption(
  command: string,
  name: string,
  text: string | undefined,
  min: number,
  max: number,
): number | undefined {
  if (text === undefined) return undefined;
  const n = /^\d{1,15}$/.test(text) ? Number(text) : NaN;
  if (!(n >= min && n <= max))
    throw new UsageError(
      `--${name} must be a whole number from ${min} to ${max}, got ${JSON.stringify(text)}`,
      command,
    );
  return n;
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
