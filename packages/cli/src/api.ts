// The pipeline's HTTP API as the commands use it: the base URL (--url, $PIPELINE_URL, or the local
// pipeline's default), the identity token when the URL needs one, and failures turned into messages
// a person can act on (not reachable, no answer, the API's own { error }).
import { Failure, UsageError } from './errors.ts';
import { identityToken, isLoopback, wantsToken } from './token.ts';

export const DEFAULT_URL = 'http://127.0.0.1:8080';
/** The API's largest page (GET /jobs, GET /capacity). */
export const MAX_PAGE = 200;
/** The API reads at most 1 MiB of a log at once. */
export const MAX_LOG_READ = 1024 * 1024;
const REQUEST_TIMEOUT_MS = 60_000;

/** The URL a command talks to: the flag, else $PIPELINE_URL, else the local default. */
export function pipelineUrl(flag: string | undefined, env: NodeJS.ProcessEnv, command?: string): URL {
  const text = flag ?? env.PIPELINE_URL ?? DEFAULT_URL;
  let url: URL | undefined;
  try {
    url = new URL(text);
  } catch {
    url = undefined;
  }
  if (url === undefined || (url.protocol !== 'http:' && url.protocol !== 'https:'))
    throw new UsageError(`--url must be an http:// or https:// URL, got ${JSON.stringify(text)}`, command);
  return url;
}

export interface LogRead {
  data: Buffer;
  attempt: number;
  size: number;
  nextOffset: number;
  state: string;
}

export class Api {
  readonly url: URL;
  private readonly env: NodeJS.ProcessEnv;
  private readonly sendsToken: boolean;
  private token: Promise<string> | undefined;

  constructor(flag: string | undefined, env: NodeJS.ProcessEnv, command?: string) {
    this.url = pipelineUrl(flag, env, command);
    this.env = env;
    this.sendsToken = wantsToken(this.url, env);
  }

  /** A JSON request; the parsed answer of a 2xx, else a Failure with the API's { error }. */
  async json<T>(method: 'GET' | 'POST', route: string, body?: unknown): Promise<T> {
    const response = await this.send(method, route, body);
    const text = await response.text();
    try {
      return JSON.parse(text) as T;
    } catch {
      throw new Failure(
        `${this.shown()} answered ${response.status} with something that is not JSON; is it the pipeline's URL?`,
      );
    }
  }

  /** GET /jobs/:id/logs: the bytes and the headers a follower needs. */
  async log(id: string, query: Record<string, number | undefined>): Promise<LogRead> {
    const params = new URLSearchParams();
    for (const [key, value] of Object.entries(query)) if (value !== undefined) params.set(key, String(value));
    const response = await this.send('GET', `/jobs/${encodeURIComponent(id)}/logs?${params}`);
    const header = (name: string) => {
      const value = Number(response.headers.get(name));
      if (!Number.isSafeInteger(value) || value < 0)
        throw new Failure(
          `${this.shown()} answered a log without a valid ${name} header; is it the pipeline's URL?`,
        );
      return value;
    };
    return {
      data: Buffer.from(await response.arrayBuffer()),
      attempt: header('X-Attempt'),
      size: header('X-Log-Size'),
      nextOffset: header('X-Next-Offset'),
      state: response.headers.get('X-Job-State') ?? '',
    };
  }

  private async send(method: 'GET' | 'POST', route: string, body?: unknown): Promise<Response> {
    const headers: Record<string, string> = { accept: 'application/json' };
    if (this.sendsToken) {
      // Once per invocation: `logs --follow` asks many times with the same token.
      this.token ??= identityToken(this.env, this.url.origin);
      headers.authorization = `Bearer ${await this.token}`;
    }
    if (body !== undefined) headers['content-type'] = 'application/json';
    // The route goes under the URL's path, so a dispatcher behind a path prefix works too.
    const target = new URL(this.url.pathname.replace(/\/$/, '') + route, this.url);
    let response: Response;
    try {
      response = await fetch(target, {
        method,
        headers,
        body: body === undefined ? undefined : JSON.stringify(body),
        signal: AbortSignal.timeout(REQUEST_TIMEOUT_MS),
      });
    } catch (err) {
      if ((err as Error).name === 'TimeoutError')
        throw new Failure(
          `no answer from the pipeline at ${this.shown()} within ${REQUEST_TIMEOUT_MS / 1000} s`,
        );
      const hint = isLoopback(this.url) ? 'is it running? (npm start)' : 'check --url or $PIPELINE_URL';
      throw new Failure(`cannot reach the pipeline at ${this.shown()}: ${networkError(err)}; ${hint}`, {
        cause: err,
      });
    }
    if (!response.ok) {
      const { status } = response;
      throw new Failure(`${status}: ${await errorOf(response)}${this.authHint(status)}`, { status });
    }
    return response;
  }

  private shown(): string {
    return this.url.href.replace(/\/$/, '');
  }

  private authHint(status: number): string {
    if (status === 401 && !this.sendsToken)
      return ' (no identity token was sent: use the https URL of the dispatcher, or set PIPELINE_AUTH=on)';
    if (status === 401)
      return (
        " (the dispatcher checks that the token is for its URL; a person's own gcloud token is not:" +
        ' set $PIPELINE_IMPERSONATE_SERVICE_ACCOUNT to a service account you may impersonate, or $PIPELINE_TOKEN)'
      );
    if (status === 403) return ' (the account is not among the jobs_callers of the deployment)';
    return '';
  }
}

/** The cause of a failed fetch, as the network said it: "connect ECONNREFUSED 127.0.0.1:9". */
function networkError(err: unknown): string {
  const cause = (err as Error).cause as { code?: string; message?: string; errors?: Error[] } | undefined;
  if (cause === undefined) return (err as Error).message;
  const message = cause.message || cause.errors?.map((e) => e.message).join(', ') || '';
  return cause.code !== undefined && !message.includes(cause.code)
    ? `${cause.code} ${message}`.trim()
    : message;
}

/** The { error } of an API answer; else (a proxy's or Cloud Run's own page) its status text. */
async function errorOf(response: Response): Promise<string> {
  const text = await response.text().catch(() => '');
  try {
    const { error } = JSON.parse(text) as { error?: unknown };
    if (typeof error === 'string') return error;
  } catch {
    // not JSON
  }
  const plain = text.trim();
  if (plain === '' || plain.startsWith('<')) return response.statusText || 'no reason given';
  return plain.slice(0, 200);
}
