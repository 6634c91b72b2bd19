import express from 'express';
import request from 'supertest';
import { Writable } from 'node:stream';
import { describe, expect, it } from 'vitest';
import { GCLOUD_CLIENT_AUDIENCE, requireGoogleIdentity } from '../../src/gcp/push-auth.ts';
import { createLogger } from '../../src/logger.ts';
import { signToken, testCertificates } from '../../../../test/support/oidc.ts';

const AUDIENCE = 'https://dispatcher-abc-uc.a.run.app';
const PUSHER = 'push@acme-prod.iam.gserviceaccount.com';

function app() {
  const lines: string[] = [];
  const logger = createLogger(
    new Writable({ write: (chunk, _e, done) => (lines.push(String(chunk)), done()) }),
  );
  const a = express();
  a.post(
    '/pubsub/push',
    requireGoogleIdentity(
      { name: 'push', audience: AUDIENCE, allowedEmails: [PUSHER], certificates: testCertificates },
      logger,
    ),
    (_req, res) => {
      res.json({ caller: res.locals.caller });
    },
  );
  return { app: a, lines };
}

const now = () => Math.floor(Date.now() / 1000);

describe('requireGoogleIdentity', () => {
  it('lets a valid token of the push service account through', async () => {
    const { app: a } = app();
    const token = signToken({ aud: AUDIENCE, email: PUSHER, email_verified: true });
    const res = await request(a).post('/pubsub/push').set('Authorization', `Bearer ${token}`).expect(200);
    expect(res.body).toEqual({ caller: PUSHER });
  });

  it.each([
    { name: 'no token', header: undefined, status: 401, reason: 'no bearer token' },
    { name: 'not a bearer token', header: 'Basic dXNlcjpwYXNz', status: 401, reason: 'no bearer token' },
    { name: 'garbage', header: 'Bearer not.a.jwt', status: 401, reason: /^unauthenticated: / },
    {
      name: 'expired',
      header: () =>
        signToken({
          aud: AUDIENCE,
          email: PUSHER,
          email_verified: true,
          iat: now() - 7200,
          exp: now() - 3600,
        }),
      status: 401,
      reason: /too late/,
    },
    {
      name: 'wrong audience',
      header: () => signToken({ aud: 'https://evil.example', email: PUSHER, email_verified: true }),
      status: 401,
      reason: /Wrong recipient/,
    },
    {
      name: 'wrong issuer',
      header: () =>
        signToken({ aud: AUDIENCE, email: PUSHER, email_verified: true, iss: 'https://evil.example' }),
      status: 401,
      reason: /issuer/i,
    },
    {
      name: 'bad signature',
      header: () => signToken({ aud: AUDIENCE, email: PUSHER, email_verified: true }, { signWith: 'other' }),
      status: 401,
      reason: /signature/i,
    },
    {
      name: 'unknown key id',
      header: () => signToken({ aud: AUDIENCE, email: PUSHER, email_verified: true }, { kid: 'nope' }),
      status: 401,
      reason: /pem/i,
    },
    {
      name: 'wrong email',
      header: () => signToken({ aud: AUDIENCE, email: 'mallory@evil.example', email_verified: true }),
      status: 403,
      reason: 'forbidden: this caller is not allowed',
    },
    {
      name: 'unverified email',
      header: () => signToken({ aud: AUDIENCE, email: PUSHER, email_verified: false }),
      status: 403,
      reason: 'forbidden: the email is not verified',
    },
    {
      name: 'no email',
      header: () => signToken({ aud: AUDIENCE }),
      status: 403,
      reason: 'forbidden: the token has no email',
    },
  ])('refuses $name with $status, and logs it without the token', async ({ header, status, reason }) => {
    const { app: a, lines } = app();
    const value = typeof header === 'function' ? `Bearer ${header()}` : header;
    const req = request(a).post('/pubsub/push');
    if (value !== undefined) req.set('Authorization', value);
    const res = await req.expect(status);
    if (typeof reason === 'string') expect(res.body.error).toContain(reason);
    else expect(res.body.error).toMatch(reason);
    expect(lines).toHaveLength(1);
    const token = value?.split(' ')[1];
    if (token !== undefined && token.length > 20) {
      for (const part of token.split('.')) expect(lines[0]).not.toContain(part);
    }
    expect(JSON.parse(lines[0])).toMatchObject({ severity: 'WARNING', door: 'push', path: '/pubsub/push' });
  });
});

describe('the jobs API door', () => {
  const PERSON = 'ada@acme.example';
  const api = () => {
    const a = express();
    a.get(
      '/jobs',
      requireGoogleIdentity(
        {
          name: 'jobs API',
          audience: [AUDIENCE, GCLOUD_CLIENT_AUDIENCE],
          allowedEmails: [PERSON],
          certificates: testCertificates,
        },
        createLogger(new Writable({ write: (_c, _e, done) => done() })),
      ),
      (_req, res) => {
        res.json({ caller: res.locals.caller });
      },
    );
    return a;
  };

  it("takes a person's own gcloud identity token (gcloud's audience) or one for the service URL", async () => {
    for (const aud of [GCLOUD_CLIENT_AUDIENCE, AUDIENCE]) {
      const token = signToken({ aud, email: PERSON, email_verified: true });
      const res = await request(api()).get('/jobs').set('Authorization', `Bearer ${token}`).expect(200);
      expect(res.body).toEqual({ caller: PERSON });
    }
    const other = signToken({ aud: 'https://evil.example', email: PERSON, email_verified: true });
    await request(api()).get('/jobs').set('Authorization', `Bearer ${other}`).expect(401);
  });

  it("does not let gcloud's audience through the push door", async () => {
    const token = signToken({ aud: GCLOUD_CLIENT_AUDIENCE, email: PUSHER, email_verified: true });
    await request(app().app).post('/pubsub/push').set('Authorization', `Bearer ${token}`).expect(401);
  });
});
