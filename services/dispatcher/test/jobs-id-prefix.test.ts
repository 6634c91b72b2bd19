// GET /jobs?idPrefix=: the jobs a short id could name (the dashboard's, one typed into the CLI), by id.
import request from 'supertest';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { newJob, type Job } from '@pipeline/core';
import { testApp } from './support.ts';

const source = { kind: 'request' as const, task: 'logreg', args: [], env: {} };
const id = (start: string) => start + '0'.repeat(32 - start.length);

let t: ReturnType<typeof testApp>;
beforeEach(async () => {
  t = testApp();
  for (const start of ['3f2a1b9', '3f2a1b1', '3f2a1c', '9e0000'])
    await t.ledger.claim(newJob(id(start), source, '2026-12-01T09:00:00.000Z'), 60_000);
});
afterEach(() => t.cleanup());

describe('GET /jobs?idPrefix=', () => {
  it('answers the jobs whose id starts so, by id, at most limit', async () => {
    const both = await request(t.app).get('/jobs?idPrefix=3f2a1b').expect(200);
    expect(both.body.jobs.map((job: Job) => job.id)).toEqual([id('3f2a1b1'), id('3f2a1b9')]);
    expect(both.body.nextPageToken).toBeUndefined();
    const first = await request(t.app).get('/jobs?idPrefix=3f2a1b&limit=1').expect(200);
    expect(first.body.jobs.map((job: Job) => job.id)).toEqual([id('3f2a1b1')]);
    const whole = await request(t.app)
      .get(`/jobs?idPrefix=${id('9e0000')}`)
      .expect(200);
    expect(whole.body.jobs).toMatchObject([{ id: id('9e0000'), state: 'RECEIVED' }]);
    const none = await request(t.app).get('/jobs?idPrefix=000000').expect(200);
    expect(none.body).toEqual({ jobs: [] });
  });

  it.each([
    ['3f2a1', 'idPrefix must be 6 to 32 lowercase hex characters of a job id'],
    ['3F2A1B', 'idPrefix must be 6 to 32 lowercase hex characters of a job id'],
    ['3f2a1g', 'idPrefix must be 6 to 32 lowercase hex characters of a job id'],
    [id('3f2a1b') + '0', 'idPrefix must be 6 to 32 lowercase hex characters of a job id'],
    ['3f2a1b&state=FAILED', 'idPrefix takes no state or pageToken'],
    ['3f2a1b&pageToken=abc', 'idPrefix takes no state or pageToken'],
    ['3f2a1b&limit=0', 'limit must be 1 to 200'],
  ])('refuses idPrefix=%s with 400: %s', async (query, error) => {
    const refused = await request(t.app).get(`/jobs?idPrefix=${query}`).expect(400);
    expect(refused.body).toEqual({ error });
  });
});
