// The identity token for a deployed dispatcher. On Google Cloud every route but /healthz wants a
// Google-signed OIDC token (gcp/push-auth.ts); people get one from the Google Cloud CLI. gcloud runs
// once per invocation, through execFile with an argument array (no shell), and only when a request
// needs it. $PIPELINE_GCLOUD names another gcloud (tests point it at a stub script).
import { execFile } from 'node:child_process';
import { Failure, UsageError } from './errors.ts';

const GCLOUD_TIMEOUT_MS = 60_000;
/** What a JWT may hold, and what the dispatcher accepts after "Bearer ". Nothing else reaches a header. */
const TOKEN = /^[A-Za-z0-9_.=-]+$/;

/** Loopback hosts, where the local pipeline listens: no token goes there unless asked for. */
export function isLoopback(url: URL): boolean {
  const host = url.hostname.toLowerCase();
  return (
    host === 'localhost' ||
    host.endsWith('.localhost') ||
    host === '[::1]' ||
    /^127\.\d{1,3}\.\d{1,3}\.\d{1,3}$/.test(host)
  );
}

/**
 * Whether requests to `url` carry a token. $PIPELINE_AUTH: `auto` (the default) sends one to an https
 * URL that is not loopback, never over plain http, where anyone on the way could read and reuse it;
 * `on` always (a dispatcher behind a loopback tunnel, tests); `off` never.
 */
export function wantsToken(url: URL, env: NodeJS.ProcessEnv): boolean {
  const mode = env.PIPELINE_AUTH ?? 'auto';
  if (mode === 'on') return true;
  if (mode === 'off') return false;
  if (mode !== 'auto')
    throw new UsageError(`$PIPELINE_AUTH must be auto, on or off, got ${JSON.stringify(mode)}`);
  return url.protocol === 'https:' && !isLoopback(url);
}

/**
 * $PIPELINE_TOKEN if set, else `gcloud auth print-identity-token`. The dispatcher checks the token's
 * audience against its URL, which a person's own gcloud token does not carry; with
 * $PIPELINE_IMPERSONATE_SERVICE_ACCOUNT the token is that service account's, for `audience`.
 */
export async function identityToken(env: NodeJS.ProcessEnv, audience: string): Promise<string> {
  if (env.PIPELINE_TOKEN !== undefined) {
    const token = env.PIPELINE_TOKEN.trim();
    if (!TOKEN.test(token))
      throw new Failure('$PIPELINE_TOKEN is not an identity token (a JWT: letters, digits, -, _, . and =)');
    return token;
  }
  const gcloud = env.PIPELINE_GCLOUD ?? 'gcloud';
  const args = ['auth', 'print-identity-token'];
  const account = env.PIPELINE_IMPERSONATE_SERVICE_ACCOUNT;
  if (account !== undefined && account !== '')
    args.push(`--impersonate-service-account=${account}`, `--audiences=${audience}`, '--include-email');
  const command = `${gcloud} ${args.join(' ')}`;
  const stdout = await new Promise<string>((resolve, reject) => {
    execFile(
      gcloud,
      args,
      { env, timeout: GCLOUD_TIMEOUT_MS, maxBuffer: 1024 * 1024, windowsHide: true },
      (err, out, errOut) => {
        if (err === null) return resolve(out);
        const { code, killed } = err as NodeJS.ErrnoException & { killed?: boolean };
        if (code === 'ENOENT')
          return reject(
            new Failure(
              `cannot run ${gcloud} for an identity token: not found; install the Google Cloud CLI, or set $PIPELINE_TOKEN`,
            ),
          );
        if (killed)
          return reject(new Failure(`${command} did not finish within ${GCLOUD_TIMEOUT_MS / 1000} s`));
        const said = String(errOut).trim().split('\n').slice(-3).join(' ').trim();
        reject(
          new Failure(
            `${command} failed (exit ${code ?? 'by signal'})${said === '' ? '' : `: ${said}`}; log in with gcloud auth login, or set $PIPELINE_TOKEN`,
          ),
        );
      },
    );
  });
  const token = stdout.trim();
  if (!TOKEN.test(token)) throw new Failure(`${command} printed no token`);
  return token;
}
