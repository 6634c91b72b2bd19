// Local mode never reaches Google. A task given a gs:// URI (in an argument, say `--arg gs://...`, or
// an environment value) would read or write the real Cloud Storage, off this machine, and hang
// without credentials. So before a local task starts, each gs://BUCKET/NAME it is given becomes the
// file or folder of that object when BUCKET is a local bucket (input, output, shared), and the task
// is refused, naming the URI, when it is not.
//
// A URI is recognised as the worker reads one: the whole value, or the value of a `--flag=` or
// `NAME=` argument. "gs://" anywhere else in a value cannot be told apart from its surroundings
// (where would the name end?), so such a task is refused too rather than guessed at.
import { objectPath } from './folder-blob-store.ts';

const SCHEME = 'gs://';
/** What may stand before a URI in one argument: `--input=`, `-o=`, `INPUT_URI=`. */
const ASSIGNMENT = /^(?:--?[A-Za-z0-9][\w.-]*|[A-Za-z_][\w.-]*)=$/;

/** A task's gs:// URI that has no local file: the task must not start. */
export class NotLocalError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'NotLocalError';
  }
}

/**
 * The task's arguments and environment with every gs:// URI of a local bucket made its local path.
 * `buckets`: each local bucket's name and folder. Throws NotLocalError for any other gs:// URI.
 */
export function localizeTask(
  task: { args: readonly string[]; env: Readonly<Record<string, string>> },
  buckets: Readonly<Record<string, string>>,
): { args: string[]; env: Record<string, string> } {
  return {
    args: task.args.map((value, i) => localizeValue(value, buckets, `argument ${i + 1}`)),
    env: Object.fromEntries(
      Object.entries(task.env).map(([key, value]) => [key, localizeValue(value, buckets, `variable ${key}`)]),
    ),
  };
}

/** One value, with its gs:// URI (if any) made a local path; `where` names it in a refusal. */
export function localizeValue(
  value: string,
  buckets: Readonly<Record<string, string>>,
  where: string,
): string {
  const at = value.indexOf(SCHEME);
  if (at < 0) return value;
  const prefix = value.slice(0, at);
  if (prefix !== '' && !ASSIGNMENT.test(prefix)) {
    throw new NotLocalError(
      `${where} holds a gs:// URI inside a longer value (${JSON.stringify(value)}); local mode maps a URI that is a whole value, or follows --flag= or NAME=, to its local bucket folder`,
    );
  }
  if (value.indexOf(SCHEME, at + SCHEME.length) >= 0) {
    throw new NotLocalError(
      `${where} holds more than one gs:// URI (${JSON.stringify(value)}); local mode maps one URI a value, as a whole value or after --flag= or NAME=`,
    );
  }
  return prefix + localPath(value.slice(at), buckets, where);
}

/** The file (or folder, for a prefix ending in "/") of a gs:// URI in a local bucket. */
function localPath(uri: string, buckets: Readonly<Record<string, string>>, where: string): string {
  const rest = uri.slice(SCHEME.length);
  const slash = rest.indexOf('/');
  const bucket = slash < 0 ? rest : rest.slice(0, slash);
  const name = slash < 0 ? '' : rest.slice(slash + 1);
  const folder = Object.hasOwn(buckets, bucket) ? buckets[bucket] : undefined;
  if (folder === undefined) {
    throw new NotLocalError(
      `${where} names ${uri}, and ${JSON.stringify(bucket)} is not a local bucket (local buckets: ${Object.keys(buckets).join(', ') || 'none'}); local mode never reaches Cloud Storage`,
    );
  }
  if (name === '') return slash < 0 ? folder : `${folder}/`;
  try {
    return objectPath(folder, name) + (name.endsWith('/') ? '/' : '');
  } catch (err) {
    throw new NotLocalError(`${where} names ${uri}: ${(err as Error).message}`);
  }
}
