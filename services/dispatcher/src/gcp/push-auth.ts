// Who may call the dispatcher on Google Cloud. Pub/Sub push requests, and POST /jobs from people and
// schedulers, carry a Google-signed OIDC token: its signature is checked against Google's published
// certificates (google-auth-library), then its audience (the service URL), issuer and expiry, and
// finally that its email is verified and on the route's list. Anything else is refused with 401
// (no valid token) or 403 (a valid token of someone not allowed), and logged without the token.
import type { NextFunction, Request, RequestHandler, Response } from 'express';
import type { OAuth2Client } from 'google-auth-library';
import type { Logger } from 'pino';

const ISSUERS = ['https://accounts.google.com', 'accounts.google.com'];

/**
 * The audience of a person's `gcloud auth print-identity-token`: gcloud's own OAuth client. gcloud
 * cannot mint a user token for another audience (`--audiences` is for service accounts). The jobs
 * API takes these, for the people on its list, only with JOBS_ACCEPT_GCLOUD_TOKENS=true: the audience
 * is not this service, so a token the person handed to any other service that accepts gcloud's
 * audience would pass here too. Without it, people impersonate a listed service account.
 */
export const GCLOUD_CLIENT_AUDIENCE = '32555940559.apps.googleusercontent.com';

/** kid -> PEM certificate or public key. */
export type CertificateSource = () => Promise<Record<string, string>>;

let client: Promise<OAuth2Client> | undefined;
function oauthClient(): Promise<OAuth2Client> {
  client ??= import('google-auth-library').then(({ OAuth2Client }) => new OAuth2Client());
  return client;
}

/** Google's OIDC signing certificates, fetched on first use and cached by the library as Google's headers say. */
export function googleCertificates(): CertificateSource {
  return async () =>
    (await (await oauthClient()).getFederatedSignonCertsAsync()).certs as Record<string, string>;
}

export interface IdentityRule {
  /** For the logs: which door this is ("push", "jobs API"). */
  name: string;
  /** The token's `aud` must be one of these. */
  audience: string | string[];
  allowedEmails: readonly string[];
  certificates: CertificateSource;
}

export function requireGoogleIdentity(rule: IdentityRule, logger: Logger): RequestHandler {
  const allowed = new Set(rule.allowedEmails.map((email) => email.toLowerCase()));
  return async (req: Request, res: Response, next: NextFunction) => {
    const refuse = (status: 401 | 403, reason: string, email?: string) => {
      logger.warn(
        { door: rule.name, path: req.path, reason, email, ip: req.ip },
        `${rule.name} request refused`,
      );
      if (status === 401) res.set('WWW-Authenticate', 'Bearer');
      res
        .status(status)
        .json({ error: status === 401 ? `unauthenticated: ${reason}` : `forbidden: ${reason}` });
    };
    const match = /^Bearer ([A-Za-z0-9_.=-]+)$/.exec(req.get('authorization') ?? '');
    if (match === null) return refuse(401, 'no bearer token');
    let payload;
    try {
      const ticket = await (
        await oauthClient()
      ).verifySignedJwtWithCertsAsync(match[1], await rule.certificates(), rule.audience, ISSUERS);
      payload = ticket.getPayload();
    } catch (err) {
      // The library's messages can quote the token or its payload: keep only their first clause.
      return refuse(401, (err as Error).message.split(/[:,]/)[0].trim());
    }
    const email = payload?.email?.toLowerCase();
    if (email === undefined) return refuse(403, 'the token has no email');
    if (payload?.email_verified !== true) return refuse(403, 'the email is not verified', email);
    if (!allowed.has(email)) return refuse(403, 'this caller is not allowed', email);
    res.locals.caller = email;
    next();
  };
}
