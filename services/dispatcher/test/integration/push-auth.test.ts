import express from 'express';
import request from 'supertest';
import { Writable } from 'node:stream';
import { describe, expect, it } from 'vitest';
import { parseConfig } from '../../src/config.ts';
import { GCLOUD_CLIENT_AUDIENCE, requireGoogleIdentity } from '../../src/gcp/push-auth.ts';
import { buildCloudDispatcher } from '../../src/gcp/wiring.ts';
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

describe('the jobs API door, as wired from the config', () => {
  const PERSON = 'ada@acme.example';
  const STRANGER = 'mallory@acme.example';
  /** The cloud dispatcher's app with auth on; the ledger is never reached (the bodies are refused). */
  const dispatcherApp = (env: Record<string, string> = {}) =>
    buildCloudDispatcher(
      parseConfig({
        GOOGLE_CLOUD_PROJECT: 'acme-prod',
        REGION: 'us-central1',
        ZONE: 'us-central1-a',
        OUTPUT_BUCKET: 'acme-pipeline-output',
        WORKER_JOB: 'pipeline-worker',
        WORKER_IMAGE: 'us-central1-docker.pkg.dev/acme-prod/pipeline/worker:1',
        AGENT_IMAGE: 'us-central1-docker.pkg.dev/acme-prod/pipeline/agent:1',
        WORKER_SERVICE_ACCOUNT: 'worker@acme-prod.iam.gserviceaccount.com',
        COMPLETIONS_TOPIC: 'pipeline-completions',
        PUSH_AUDIENCE: AUDIENCE,
        PUSH_SERVICE_ACCOUNT: PUSHER,
        JOBS_CALLERS: PERSON,
        ...env,
      }),
      createLogger(new Writable({ write: (_c, _e, done) => done() })),
      { certificates: testCertificates },
    ).app;
  /** POST /jobs with an empty body: 400 once past the door, which says 401 or 403 before it. */
  const submit = (app: express.Express, claims: { aud: string; email: string }) =>
    request(app)
      .post('/jobs')
      .set('Authorization', `Bearer ${signToken({ ...claims, email_verified: true })}`)
      .send({});

  it("refuses a person's own gcloud token (gcloud's audience) by default, and takes one for the service URL", async () => {
    const app = dispatcherApp();
    const refused = await submit(app, { aud: GCLOUD_CLIENT_AUDIENCE, email: PERSON }).expect(401);
    expect(refused.body.error).toMatch(/^unauthenticated: Wrong recipient/);
    const passed = await submit(app, { aud: AUDIENCE, email: PERSON }).expect(400);
    expect(passed.body.error).toBe('give inputUri, or exactly one of image and task');
  });

  it('takes gcloud tokens with JOBS_ACCEPT_GCLOUD_TOKENS=true, for the people on the list only', async () => {
    const app = dispatcherApp({ JOBS_ACCEPT_GCLOUD_TOKENS: 'true' });
    await submit(app, { aud: GCLOUD_CLIENT_AUDIENCE, email: PERSON }).expect(400);
    const stranger = await submit(app, { aud: GCLOUD_CLIENT_AUDIENCE, email: STRANGER }).expect(403);
    expect(stranger.body.error).toBe('forbidden: this caller is not allowed');
    await submit(app, { aud: AUDIENCE, email: PERSON }).expect(400);
    await submit(app, { aud: 'https://evil.example', email: PERSON }).expect(401);
  });

  it("never lets gcloud's audience through the push door", async () => {
    for (const env of [{}, { JOBS_ACCEPT_GCLOUD_TOKENS: 'true' }] as Record<string, string>[]) {
      const token = signToken({ aud: GCLOUD_CLIENT_AUDIENCE, email: PUSHER, email_verified: true });
      await request(dispatcherApp(env))
        .post('/pubsub/push')
        .set('Authorization', `Bearer ${token}`)
        .send({})
        .expect(401);
    }
  });
});
