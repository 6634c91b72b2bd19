// What a command ends with when it cannot do its work. The command file prints the message and exits:
// 2 for a mistake in the command line (with the usage of the command) or in a setting (one line),
// 1 for everything else (the pipeline cannot be reached, it refused, a file could not be read or
// uploaded).

/** A wrong command line: exit 2 with the usage. `command` narrows the usage shown to one command. */
export class UsageError extends Error {
  readonly command: string | undefined;
  constructor(message: string, command?: string) {
    super(message);
    this.name = 'UsageError';
    this.command = command;
  }
}

/**
 * A setting the command reads is wrong (the routing config, an environment variable like PORT):
 * `pipeline: <message>` on one line and exit 2, without the usage, which would not say what to fix.
 */
export class SettingsError extends Error {
  constructor(message: string, options?: ErrorOptions) {
    super(message, options);
    this.name = 'SettingsError';
  }
}

/** `--help` (or `-h`) on a command: its usage on stdout, exit 0. */
export class HelpRequested extends Error {
  readonly command: string | undefined;
  constructor(command?: string) {
    super('help');
    this.name = 'HelpRequested';
    this.command = command;
  }
}

/** The command line was fine, the work was not: exit 1, no usage. */
export class Failure extends Error {
  /** The HTTP status, when the pipeline's API answered with an error. */
  readonly status: number | undefined;
  constructor(message: string, options?: ErrorOptions & { status?: number }) {
    super(message, options);
    this.name = 'Failure';
    this.status = options?.status;
  }
}

/** Where a command writes: stdout for results (tables, JSON, logs), stderr for notes and progress. */
export interface Io {
  stdout: { write(chunk: string | Uint8Array): unknown };
  stderr: { write(chunk: string): unknown; isTTY?: boolean };
}

/** Writes one line of results. */
export function say(io: Io, text: string): void {
  io.stdout.write(`${text}\n`);
}
