// Per-job parameters: what an upload (object metadata `pipeline-param-NAME`) or a request (POST /jobs
// "params") may set for one job. Each reaches the task as an environment variable, over the rule's
// job.env. A rule names the parameters it lets callers set (`"params": ["TARGET_COLUMN"]`); anything
// else is refused with the reason, so an uploader can never set LD_PRELOAD or move credentials.
// Pure: the router's placement calls these.
import { quote } from '../units.ts';
import { RESERVED_ENV_KEYS, RESERVED_ENV_PREFIX } from './types.ts';

/** Object metadata `pipeline-param-TARGET_COLUMN: label` sets the parameter TARGET_COLUMN. */
export const PARAM_METADATA_PREFIX = 'pipeline-param-';
/** Long enough for a column list, short enough that a parameter is never a payload. */
export const MAX_PARAM_VALUE_BYTES = 4096;

/** An environment variable's name, as a rule's env, a request's env and a parameter must be. */
export function isVariableName(name: string): boolean {
  return /^[A-Za-z_][A-Za-z0-9_]*$/.test(name);
}
/**
 * Variables no rule may open to callers: they change what a program loads or runs (LD_PRELOAD,
 * NODE_OPTIONS, BASH_ENV), where it looks for programs, or which credentials and endpoints Google's
 * libraries use.
 */
const NEVER_PARAMS = new Set([
  'PATH',
  'HOME',
  'SHELL',
  'ENV',
  'BASH_ENV',
  'IFS',
  'PS4',
  'SHELLOPTS',
  'NODE_OPTIONS',
  'NODE_PATH',
  'PYTHONPATH',
  'PYTHONSTARTUP',
  'PYTHONHOME',
  'PERL5LIB',
  'PERL5OPT',
  'RUBYOPT',
  'JAVA_TOOL_OPTIONS',
  'GOOGLE_APPLICATION_CREDENTIALS',
  'GCE_METADATA_HOST',
  'GCE_METADATA_IP',
  'METADATA_SERVER_DETECTION',
  'STORAGE_EMULATOR_HOST',
  'PUBSUB_EMULATOR_HOST',
  'FIRESTORE_EMULATOR_HOST',
  'HTTP_PROXY',
  'HTTPS_PROXY',
  'NO_PROXY',
]);
const NEVER_PREFIXES = ['LD_', 'DYLD_', 'GOOGLE_', 'CLOUDSDK_'];

/** Why `name` cannot be a parameter a rule opens to callers; undefined if it can. */
export function unsafeParamReason(name: string): string | undefined {
  if (!isVariableName(name)) return 'is not a variable name like "TARGET_COLUMN"';
  const upper = name.toUpperCase();
  if (RESERVED_ENV_KEYS.includes(upper) || upper.startsWith(RESERVED_ENV_PREFIX))
    return 'is set by the pipeline itself';
  if (NEVER_PARAMS.has(upper) || NEVER_PREFIXES.some((p) => upper.startsWith(p)))
    return 'changes how programs load, run or authenticate: no caller may set it';
  return undefined;
}

/** The parameters an object's metadata sets (`pipeline-param-NAME`; the prefix in any case). */
export function paramsFromMetadata(metadata: Record<string, string>): Record<string, string> {
  const params: Record<string, string> = {};
  for (const [key, value] of Object.entries(metadata)) {
    if (key.toLowerCase().startsWith(PARAM_METADATA_PREFIX))
      params[key.slice(PARAM_METADATA_PREFIX.length)] = value;
  }
  return params;
}

export type ParamsCheck = { params: Record<string, string> } | { error: string };

/**
 * The parameters `given` as `rule` allows them, named as the rule spells them (names match in any
 * case: metadata keys may arrive lower-cased), or why they are refused. `from` says where they came
 * from, for the reason: "object metadata" or "the request".
 */
export function allowedParams(
  rule: { name: string; params?: readonly string[] },
  given: Record<string, string>,
  from: string,
): ParamsCheck {
  const allowed = rule.params ?? [];
  const params: Record<string, string> = {};
  for (const [name, value] of Object.entries(given)) {
    const spelled = allowed.find((a) => a.toUpperCase() === name.toUpperCase());
    if (spelled === undefined) {
      const which = allowed.length === 0 ? 'allows none' : `allows ${allowed.join(', ')}`;
      return {
        error: `parameter ${quote(name)} (${from}) is not one rule ${quote(rule.name)} lets a job set (it ${which}; a rule lists them in "params")`,
      };
    }
    if (value.includes('\0')) return { error: `parameter ${spelled} (${from}) holds a NUL character` };
    if (Buffer.byteLength(value, 'utf8') > MAX_PARAM_VALUE_BYTES)
      return {
        error: `parameter ${spelled} (${from}) is longer than ${MAX_PARAM_VALUE_BYTES} bytes`,
      };
    params[spelled] = value;
  }
  return { params };
}
