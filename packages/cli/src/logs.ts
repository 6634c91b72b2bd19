// `logs ID`: the log of a job's attempt. Without --follow, its tail. With --follow, what follows too,
// read from X-Next-Offset until the job is final; when the job moves on to a new attempt (a retry),
// the old attempt's log is read to its end and the new one's from its start. The exit code
// of --follow is the job's end: 0 when it SUCCEEDED, 1 when it ended otherwise, so that
// `pipeline logs ID --follow && next-step` waits for the job and stops on a failure.
import { FINAL_STATES, type Job } from '@pipeline/core';
import { Api, type LogRead } from './api.ts';
import { parse } from './args.ts';
import { COMMANDS } from './commands.ts';
import type { Io } from './errors.ts';
import { jobIdArgument, resolveJobId } from './job-ids.ts';

export async function logsCommand(args: string[], env: NodeJS.ProcessEnv, io: Io): Promise<number> {
  const { values, positionals } = parse(COMMANDS.logs, args);
  const { attempt, tail, interval } = values;
  const given = jobIdArgument('logs', positionals[0]);
  const api = new Api(values.url, env, 'logs');
  const id = await resolveJobId(api, given);
  const reader = new LogPrinter(api, id, io, values.json === true);

  // A follower starts at the last attempt that launched: a retry waiting for its time has no log yet.
  const start = values.follow && attempt === undefined ? await reader.lastLaunched() : attempt;
  const first = await reader.read({ attempt: start, tail }, !values.follow);
  if (!values.follow) {
    const from = first.nextOffset - first.data.length;
    if (from > 0 && !values.json)
      io.stderr.write(
        `(the last ${first.data.length} of ${first.size} bytes of attempt ${first.attempt}; --tail BYTES shows more, up to 1 MiB)\n`,
      );
    return 0;
  }
  const state = await reader.follow(first, interval * 1000);
  io.stderr.write(`(job ${id} ${state})\n`);
  return state === 'SUCCEEDED' ? 0 : 1;
}

class LogPrinter {
  private readonly api: Api;
  private readonly id: string;
  private readonly io: Io;
  private readonly json: boolean;
  /** For --json, one per attempt: a read can end inside a UTF-8 character, the next one finishes it. */
  private readonly decoders = new Map<number, TextDecoder>();

  constructor(api: Api, id: string, io: Io, json: boolean) {
    this.api = api;
    this.id = id;
    this.io = io;
    this.json = json;
  }

  /** Reads once and prints what came: raw bytes for people, a JSON line for scripts (`always`: even if empty). */
  async read(query: { attempt?: number; offset?: number; tail?: number }, always: boolean): Promise<LogRead> {
    const read = await this.api.log(this.id, query);
    this.print(read, always);
    return read;
  }

  /** The last attempt that launched, or the job's attempt if none has. */
  async lastLaunched(): Promise<number> {
    const job = await this.job();
    return (job.attempts ?? []).at(-1)?.attempt ?? job.attempt;
  }

  private job(): Promise<Job> {
    return this.api.json<Job>('GET', `/jobs/${encodeURIComponent(this.id)}`);
  }

  /**
   * Follows from `first` until the job is final; its final state. Reads the attempt being shown
   * until a read brings nothing; then asks for the job: a later attempt that has launched means this
   * one ended (it is read to its end, and the next is shown from its start); a final job means the
   * end. A retry waiting for its time has no log yet, so it is not switched to before it launches.
   */
  async follow(first: LogRead, intervalMs: number): Promise<string> {
    let { attempt, nextOffset: offset } = first;
    let fresh = first.data.length > 0;
    for (;;) {
      if (!fresh) {
        const job = await this.job();
        const next = (job.attempts ?? [])
          .map((a) => a.attempt)
          .filter((n) => n > attempt)
          .sort((a, b) => a - b)[0];
        if (next !== undefined) {
          await this.drain(attempt, offset);
          this.io.stderr.write(`(attempt ${next})\n`);
          [attempt, offset] = [next, 0];
        } else if (FINAL_STATES.includes(job.state)) {
          await this.drain(attempt, offset);
          return job.state;
        } else {
          await new Promise((resolve) => setTimeout(resolve, intervalMs));
        }
      }
      const read = await this.api.log(this.id, { attempt, offset });
      this.print(read);
      offset = read.nextOffset;
      fresh = read.data.length > 0;
    }
  }

  /** Reads an attempt's log from `offset` to its end. */
  private async drain(attempt: number, offset: number): Promise<void> {
    for (;;) {
      const read = await this.api.log(this.id, { attempt, offset });
      this.print(read);
      if (read.data.length === 0) return;
      offset = read.nextOffset;
    }
  }

  private print(read: LogRead, always = false): void {
    if (!this.json) {
      if (read.data.length > 0) this.io.stdout.write(read.data);
      return;
    }
    if (read.data.length === 0 && !always) return;
    let decoder = this.decoders.get(read.attempt);
    if (decoder === undefined) this.decoders.set(read.attempt, (decoder = new TextDecoder()));
    const { attempt, size, nextOffset, state } = read;
    const offset = nextOffset - read.data.length;
    const text = decoder.decode(read.data, { stream: true });
    this.io.stdout.write(`${JSON.stringify({ attempt, offset, nextOffset, size, state, text })}\n`);
  }
}
