// The dashboard in a real browser: Debian's chromium, driven by playwright-core, against the whole
// local pipeline (the watcher, the sqlite ledger, worker processes). It checks what a person sees:
// a job appears and changes state without a reload, its page shows attempts, history, the model the
// worker fitted, its outputs (predictions.csv downloads) and its log read line by line, cancel and
// retry work from their buttons, a failed job's error is in the list, hostile object names stay text,
// and an unknown id gets a page of its own; against a dispatcher whose job runs (the test's own), the
// progress it logs; and, against a dispatcher whose jobs wait (queued-jobs.ts), the queue, capacity
// and refusals.
// The browser tests share one page and run in order; each names the jobs it made itself.
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import request from 'supertest';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { chromium, type Browser, type Locator, type Page } from 'playwright-core';
import type { AddressInfo } from 'node:net';
import type { Server } from 'node:http';
import {
  formatBytes,
  formatSeconds,
  formatUsd,
  JOB_STATES,
  outputPrefix,
  parseRoutingConfig,
  RETRYABLE_STATES,
  type Job,
} from '@pipeline/core';
import { startLocalPipeline, type LocalPipeline } from '../src/local/pipeline.ts';
import { createLogger } from '../src/logger.ts';
import { testApp } from './support.ts';
import { LOOPBACK_GUARD } from '../../../test/support/run-worker.ts';
import { CHROMIUM, CHROMIUM_ARGS } from '../../../test/support/chromium.ts';
import { STOCKOUT, startQueuedJobs, WAITING, ZONE_REFUSAL, type QueuedJobs } from './queued-jobs.ts';

const ARTIFACTS = path.resolve(import.meta.dirname, '../../../test-artifacts');
const DASHBOARD_DIR = path.resolve(import.meta.dirname, '../src/dashboard');

const ROUTING = parseRoutingConfig({
  rules: [
    { name: 'csv', match: { path: '**.csv' }, target: 'cloud-run-job', job: { task: 'logreg' } },
    { name: 'not-csv', match: { path: '**' }, target: 'ignore' },
  ],
});

const HOSTILE = '<img src=x onerror=globalThis.pwned=1><b>bold</b>.csv';

// The dispatcher of the running job: a rule that lets a request set TARGET_COLUMN, for its params.
const OUTPUT_BUCKET = 'acme-pipeline-output';
const PARAM_ROUTING = parseRoutingConfig({
  rules: [
    {
      name: 'csv',
      match: { path: '**.csv' },
      target: 'cloud-run-job',
      job: { task: 'logreg' },
      params: ['TARGET_COLUMN'],
    },
  ],
});

/** A log line as the worker writes one. */
const logLine = (message: string, fields: Record<string, unknown> = {}, severity = 'INFO') =>
  `${JSON.stringify({ severity, message, ...fields })}\n`;

/** A progress line, as the worker logs it while it reads a big input (jobs/worker/src/io/progress.ts). */
function progressLine(bytesRead: number, totalBytes: number, rows: number): string {
  const mb = (n: number) => `${(n / 1e6).toFixed(1)} MB`;
  const percent = ((100 * bytesRead) / totalBytes).toFixed(1);
  return logLine(
    `read ${mb(bytesRead)} of ${mb(totalBytes)} (${percent}%), ${rows.toLocaleString('en-US')} rows`,
    {
      progress: { bytesRead, totalBytes, rows },
    },
  );
}

function smallCsv(rows = 60): string {
  const lines = ['x1,x2,label'];
  for (let i = 0; i < rows; i++)
    lines.push(`${(i % 9) - 4},${(i * 7) % 5},${(i % 9) - 4 + ((i * 7) % 5) / 2 > 0 ? 1 : 0}`);
  return `${lines.join('\n')}\n`;
}

describe("the dashboard's responses", () => {
  it('sends the page, its script and styles with a strict Content-Security-Policy', async () => {
    const t = testApp();
    try {
      for (const [route, type] of [
        ['/', 'text/html'],
        ['/dashboard/app.js', 'text/javascript'],
        ['/dashboard/ui.js', 'text/javascript'],
        ['/dashboard/queue.js', 'text/javascript'],
        ['/dashboard/log-view.js', 'text/javascript'],
        ['/dashboard/job-results.js', 'text/javascript'],
        ['/dashboard/text.js', 'text/javascript'],
        ['/dashboard/styles.css', 'text/css'],
      ]) {
        const res = await request(t.app).get(route);
        expect(res.status, route).toBe(200);
        expect(res.headers['content-type'], route).toContain(type);
        expect(res.headers['x-content-type-options'], route).toBe('nosniff');
        const csp = res.headers['content-security-policy'];
        expect(csp, route).toContain("default-src 'self'");
        expect(csp, route).toContain("script-src 'self'");
        expect(csp, route).not.toContain('unsafe');
      }
      expect((await request(t.app).get('/dashboard/nothing.js')).status).toBe(404);
    } finally {
      t.cleanup();
    }
  });

  it('has no inline script, and its scripts never parse data as markup', () => {
    const html = fs.readFileSync(path.join(DASHBOARD_DIR, 'index.html'), 'utf8');
    const scripts = [...html.matchAll(/<script\b[^>]*>/g)].map((m) => m[0]);
    expect(scripts).toEqual(['<script type="module" src="dashboard/app.js">']);
    expect(html).not.toMatch(/\son[a-z]+=|style=/i);
    const files = fs.readdirSync(DASHBOARD_DIR).filter((file) => file.endsWith('.js'));
    expect(files.sort()).toEqual([
      'app.js',
      'backfills.js',
      'job-results.js',
      'log-view.js',
      'queue.js',
      'text.js',
      'ui.js',
    ]);
    for (const file of files) {
      const js = fs.readFileSync(path.join(DASHBOARD_DIR, file), 'utf8');
      expect(js, file).not.toMatch(
        /innerHTML|outerHTML|insertAdjacentHTML|document\.write|\beval\(|new Function/,
      );
    }
  });
});

const installed = fs.existsSync(CHROMIUM);
const missing = `Debian's chromium is not at ${CHROMIUM} (apt-get install chromium)`;
if (!installed && process.env.CI === 'true') throw new Error(`CI needs chromium: ${missing}`);
if (!installed) process.stderr.write(`SKIPPED the dashboard's browser tests: ${missing}\n`);

describe.skipIf(!installed)(
  installed
    ? 'the dashboard in headless chromium'
    : `the dashboard in headless chromium (skipped: ${missing})`,
  () => {
    let dir: string;
    let pipeline: LocalPipeline;
    let queued: QueuedJobs;
    let runningUrl: string | undefined;
    let stopRunning: (() => Promise<void>) | undefined;
    let browser: Browser;
    let page: Page;
    const pageErrors: string[] = [];
    const requested: string[] = [];

    beforeAll(async () => {
      dir = fs.mkdtempSync(path.join(os.tmpdir(), 'dashboard-'));
      pipeline = await startLocalPipeline({
        root: dir,
        routing: ROUTING,
        port: 0,
        logger: createLogger(undefined, 'silent'),
        nodeOptions: ['--import', LOOPBACK_GUARD],
        scanIntervalMs: 50,
        quietMs: 150,
      });
      browser = await chromium.launch({ executablePath: CHROMIUM, args: CHROMIUM_ARGS });
      page = await browser.newPage({ viewport: { width: 1360, height: 900 } });
      await page.emulateMedia({ reducedMotion: 'reduce' }); // no row flashing in the screenshots
      page.on('pageerror', (err) => pageErrors.push(err.message));
      page.on('console', (message) => {
        if (message.type() === 'error') pageErrors.push(message.text()); // CSP refusals land here
      });
      page.on('request', (req) => requested.push(req.url()));
      page.on('dialog', (dialog) => void dialog.accept()); // "Cancel this job?"
      fs.mkdirSync(ARTIFACTS, { recursive: true });
    }, 60_000);

    afterAll(async () => {
      await browser?.close();
      await pipeline?.stop();
      await queued?.stop();
      await stopRunning?.();
      if (dir !== undefined) fs.rmSync(dir, { recursive: true, force: true });
    });

    /** A job for an hour from now, of a CSV in the shared bucket (which no watcher starts work for). */
    async function scheduledJob(name: string): Promise<Job> {
      fs.writeFileSync(path.join(dir, 'shared', name), smallCsv());
      const runAt = new Date(Date.now() + 3600_000).toISOString();
      const intake = await pipeline.dispatcher.submitObject({ bucket: 'shared', name }, { runAt });
      expect(intake.outcome).toBe('created');
      if (intake.outcome === 'skipped') throw new Error(intake.reason);
      expect(intake.job.state).toBe('SCHEDULED');
      return intake.job;
    }

    /** Waits until `locator` (one element or more) has an element whose text contains `text`. */
    async function waitForText(locator: Locator, text: string, timeout = 15_000): Promise<void> {
      await locator.filter({ hasText: text }).first().waitFor({ timeout });
    }

    const marker = () => page.evaluate(() => (globalThis as Record<string, unknown>).dashboardMarker);

    let first: Job;

    it('lists a new job, and shows it SUCCEEDED once it has run, without reloading', async () => {
      await page.goto(`${pipeline.url}/`);
      await waitForText(page.locator('.live-text'), 'Live');
      await page.evaluate(() => {
        (globalThis as Record<string, unknown>).dashboardMarker = 'the same page';
      });

      first = await scheduledJob('dashboard.csv');
      const row = page.locator(`tr[data-id="${first.id}"]`);
      await waitForText(row.locator('.badge'), 'SCHEDULED');
      expect(await row.locator('td.source .primary').innerText()).toBe('dashboard.csv');
      expect(await row.locator('td').nth(1).innerText()).toBe(first.id.slice(0, 10));

      // What the reconciler does when the time comes, now: the page hears of it from GET /events.
      await pipeline.dispatcher.launchDue(first);
      await page.locator(`tr[data-id="${first.id}"][data-state="SUCCEEDED"]`).waitFor({ timeout: 20_000 });
      expect(await row.locator('.badge').innerText()).toBe('SUCCEEDED');
      expect(await row.locator('td.route').innerText()).toMatch(/Cloud Run job\s+csv/);
      expect(await row.locator('td').nth(5).innerText()).toBe('1'); // attempts
      expect(await row.locator('td').nth(6).innerText()).toMatch(/\d s$/); // how long it ran
      expect(await marker()).toBe('the same page');
    }, 60_000);

    it('takes its states and formatters from core, through /dashboard/core.js, not from copies', async () => {
      expect(requested).toContain(`${pipeline.url}/dashboard/core.js`);
      // The filter chips are core's states, in core's order.
      const chips = await page.locator('.chips .chip').allInnerTexts();
      expect(chips).toEqual(['All', ...JOB_STATES]);
      // What the browser imported is core's: its lists, and its formatters' results.
      // A string, so that vitest does not rewrite the browser's import() as its own.
      const fromPage = await page.evaluate(`import('/dashboard/core.js').then((m) => ({
        states: m.JOB_STATES,
        retryable: m.RETRYABLE_STATES,
        texts: [m.formatBytes(1536), m.formatSeconds(185), m.formatUsd(0.0604), m.formatDuration(93784)],
      }))`);
      expect(fromPage).toEqual({
        states: JOB_STATES,
        retryable: RETRYABLE_STATES,
        texts: ['1.5 KiB', '3m 5s', '$0.060', '1d 2h 3m 4s'],
      });
      // The list shows the object's size as `pipeline` does.
      const job = (await pipeline.ledger.get(first.id))!;
      if (job.source.kind !== 'object') throw new Error('an upload has an object');
      expect(await page.locator(`tr[data-id="${first.id}"] td.source .secondary`).innerText()).toBe(
        `shared · ${formatBytes(job.source.object.size)}`,
      );
    });

    it("opens the job's page with its details, attempts, history and the tail of its log", async () => {
      await page.locator(`tr[data-id="${first.id}"] a`).click();
      await waitForText(page.locator('.job-title'), 'dashboard.csv');
      expect(await page.evaluate(() => globalThis.location.hash)).toBe(`#/jobs/${first.id}`);
      expect(await page.locator('.job-badge').innerText()).toBe('SUCCEEDED');
      expect(await page.locator('.job-id').innerText()).toBe(first.id);

      const details = await page.locator('.details').innerText();
      expect(details).toContain('gs://shared/dashboard.csv');
      expect(details).toMatch(/Rule\s+csv/);
      expect(details).toMatch(/Exit code\s+0/);
      // What routing expected, and what the attempt cost from its measured run.
      expect(details).toMatch(
        /Estimated cost\s+\$[\d.]+ on Cloud Run job, [\d.]+ s expected \(prior: no history yet/,
      );
      // In core's words: formatUsd and formatSeconds, as `pipeline job` prints them.
      const ran = (await pipeline.ledger.get(first.id))!;
      expect(details).toContain(
        `${formatUsd(ran.estimate!.usd)} on Cloud Run job, ${formatSeconds(ran.estimate!.seconds)} expected`,
      );
      expect(details).toMatch(new RegExp(`Cost\\s+${formatUsd(ran.cost!.usd).replace('$', '\\$')}\\s`));
      expect(details).toMatch(/Cost\s+\$[\d.]+\s+attempt 1 cloud-run-job: \d+ s run, \$/);

      const attempt = page.locator('table.attempts tbody tr');
      expect(await attempt.count()).toBe(1);
      expect(await attempt.locator('td').nth(5).innerText()).toBe('0');
      expect(await attempt.locator('td').nth(6).innerText()).toBe('succeeded');

      const moves = await page.locator('.history li .move').allInnerTexts();
      const transitions = moves.map((m) => m.replace(/\s+/g, ' '));
      expect(transitions.slice(0, 3)).toEqual(['SCHEDULED', 'SCHEDULED → RECEIVED', 'RECEIVED → QUEUED']);
      expect(transitions.at(-1)).toMatch(/→ SUCCEEDED$/);

      // The worker's own lines, read through GET /jobs/:id/logs: each JSON line as its severity,
      // message and fields, and the raw text a click away.
      const line = (message: string) =>
        page.locator('.log-lines .log-line', { has: page.locator('.log-msg', { hasText: message }) });
      await line('done').waitFor();
      expect(await line('done').locator('.log-sev').innerText()).toBe('INFO');
      expect(await line('done').locator('.log-field .key').allInnerTexts()).toEqual(
        expect.arrayContaining(['rows', 'accuracy']),
      );
      expect(await line('input loaded').count()).toBe(1);
      expect(await page.locator('pre.log').isHidden()).toBe(true);
      await page.locator('.log-toggle').click();
      expect(await page.locator('.log-toggle').getAttribute('aria-pressed')).toBe('true');
      expect(await page.locator('.log-lines').isHidden()).toBe(true);
      expect(await page.locator('pre.log').innerText()).toContain('"message":"input loaded"');
      await page.locator('.log-toggle').click();
      await line('done').waitFor();
      await waitForText(page.locator('.log-meta'), 'ended');
      expect(await page.locator('[data-action="cancel"]').isDisabled()).toBe(true);
      expect(await page.locator('[data-action="retry"]').isDisabled()).toBe(true);
      expect(await marker()).toBe('the same page');
      await page.screenshot({ path: path.join(ARTIFACTS, 'dashboard-job.png'), fullPage: true });
    }, 60_000);

    it('summarizes the model from its model.json and downloads predictions.csv from its outputs', async () => {
      const job = (await pipeline.ledger.get(first.id))!;
      const prefix = outputPrefix(job);
      expect(job.outputUri).toBe(pipeline.blobs.uri('output', prefix)); // where the worker wrote
      const written = (name: string) => fs.readFileSync(pipeline.blobs.uri('output', prefix + name), 'utf8');
      const model = JSON.parse(written('model.json'));

      const field = (name: string) => page.locator(`.model-card dd[data-field="${name}"]`);
      await field('accuracy').waitFor();
      expect(await field('accuracy').innerText()).toBe(
        `${(100 * model.metrics.accuracy).toFixed(1)}% on training rows`,
      );
      expect(await field('target').innerText()).toMatch(/^label\b/);
      expect(await field('classes').innerText()).toMatch(/^2: 0\b.*, 1\b/);
      expect(await field('log loss').innerText()).toBe(model.metrics.logLoss.toFixed(4));
      expect(await field('auc').innerText()).toBe(model.metrics.auc.toFixed(4));
      expect(await field('rows').innerText()).toContain(`${model.rows.trained} trained`);

      const names = await page
        .locator('.outputs-card li')
        .evaluateAll((items) => items.map((li) => li.getAttribute('data-name')));
      expect(names.slice(0, 2)).toEqual(['predictions.csv', 'model.json']);
      expect(names).toEqual(expect.arrayContaining(['_SUCCESS', 'logs/attempt-1.log']));

      const [download] = await Promise.all([
        page.waitForEvent('download'),
        page.locator('.outputs-card li[data-name="predictions.csv"] a').click(),
      ]);
      expect(download.suggestedFilename()).toBe('predictions.csv');
      expect(fs.readFileSync((await download.path())!, 'utf8')).toBe(written('predictions.csv'));
      expect(await marker()).toBe('the same page'); // a download, not a navigation
      await page.screenshot({ path: path.join(ARTIFACTS, 'dashboard-results.png'), fullPage: true });
    }, 60_000);

    it('cancels a waiting job from its page, then retries it and follows the new attempt to its end', async () => {
      const later = await scheduledJob('later.csv');
      await page.evaluate((id) => {
        globalThis.location.hash = `#/jobs/${id}`;
      }, later.id);
      await waitForText(page.locator('.job-title'), 'later.csv');
      await waitForText(page.locator('.job-badge'), 'SCHEDULED');
      expect(await page.locator('.details').innerText()).toMatch(/Due\s+\S/);
      expect(await page.locator('[data-action="retry"]').isDisabled()).toBe(true);

      await page.locator('[data-action="cancel"]').click();
      await waitForText(page.locator('.job-badge'), 'CANCELLED');
      expect(await page.locator('.notice').innerText()).toBe('Cancelled.');
      expect((await pipeline.ledger.get(later.id))?.state).toBe('CANCELLED');

      await page.locator('[data-action="retry"]:not([disabled])').click();
      await waitForText(page.locator('.job-badge'), 'SUCCEEDED', 20_000);
      const attempts = page.locator('table.attempts tbody tr');
      expect(await attempts.count()).toBe(1);
      expect(await attempts.locator('td').first().innerText()).toBe('2'); // the retry is attempt 2
      await page.locator('.log-lines .log-msg', { hasText: 'done' }).waitFor();
      expect(await page.locator('.log-meta').innerText()).toContain('attempt 2');
      expect(await marker()).toBe('the same page');
    }, 60_000);

    it('shows a failed job whose name is markup as plain text, with its error', async () => {
      const file = path.join(dir, 'input', HOSTILE); // its `/` makes a folder of the part before it
      fs.mkdirSync(path.dirname(file), { recursive: true });
      fs.writeFileSync(file, 'a,label\n1,x\n2,x\n'); // one class only: the worker exits 4
      let failed: Job | undefined;
      const deadline = Date.now() + 15_000;
      while (failed === undefined && Date.now() < deadline) {
        const { jobs } = await pipeline.ledger.list({ state: 'FAILED', limit: 10 });
        failed = jobs.find((j) => j.source.kind === 'object' && j.source.object.name === HOSTILE);
        if (failed === undefined) await new Promise((resolve) => setTimeout(resolve, 100));
      }
      if (failed === undefined) throw new Error('the hostile file did not end FAILED within 15 s');

      await page.evaluate(() => {
        globalThis.location.hash = '#/jobs';
      });
      const row = page.locator(`tr[data-id="${failed.id}"]`);
      await waitForText(row.locator('.badge'), 'FAILED');
      expect(await row.locator('td.source .primary').innerText()).toBe(HOSTILE);
      // Its error, in a column of its own: the gist in the cell, the whole on hover.
      expect(await page.locator('th.error-col').isVisible()).toBe(true);
      expect(await row.locator('td.error-cell').innerText()).toContain('has one class only');
      expect(await row.locator('td.error-cell').getAttribute('title')).toBe(failed.error);
      expect(await page.locator(`tr[data-id="${first.id}"] td.error-cell`).innerText()).toBe('');

      await row.locator('a').click();
      await waitForText(page.locator('.job-badge'), 'FAILED');
      expect(await page.locator('.job-title').innerText()).toBe(HOSTILE);
      expect(await page.locator('.details').innerText()).toContain('has one class only');
      expect(await page.locator('[data-action="retry"]').isEnabled()).toBe(true);
      await page.locator('.outputs-card li[data-name="logs/attempt-1.log"]').waitFor();
      expect(await page.locator('.model-card').isHidden()).toBe(true); // it wrote no model
      expect(await page.locator('main img, main b').count()).toBe(0);
      expect(await page.evaluate(() => (globalThis as Record<string, unknown>).pwned)).toBeUndefined();
    }, 60_000);

    it('shows a page of its own for an id that names no job, with the way back', async () => {
      const errorsBefore = pageErrors.length;
      const unknown = 'f'.repeat(32);
      await page.evaluate((id) => {
        globalThis.location.hash = `#/jobs/${id}`;
      }, unknown);
      await waitForText(page.locator('.not-found h1'), `No job ${unknown}`);
      expect(await page.locator('.not-found-why').innerText()).toContain('has no job with this id');
      // Nothing of a job's page: no panels, no buttons.
      expect(await page.locator('main .card, main [data-action], main .job-grid').count()).toBe(0);
      expect(await page.title()).toBe('No such job · Pipeline');
      await page.locator('.not-found a.button').click();
      await page.waitForFunction(() => globalThis.location.hash === '#/jobs');
      await page.locator('table.jobs tbody tr').first().waitFor();

      // Not an id at all, and markup: said as it is, as text.
      await page.evaluate(() => {
        globalThis.location.hash = `#/jobs/${encodeURIComponent('<b>x</b>')}`;
      });
      await waitForText(page.locator('.not-found h1'), 'No job <b>x</b>');
      expect(await page.locator('.not-found-why').innerText()).toContain('not a job id');
      expect(await page.locator('main b').count()).toBe(0);
      expect(await marker()).toBe('the same page');
      // Chromium reports each refused fetch of GET /jobs/:id on the console: those two, and nothing else.
      expect(pageErrors.splice(errorsBefore)).toEqual(
        Array(2).fill('Failed to load resource: the server responded with a status of 404 (Not Found)'),
      );
    }, 60_000);

    it('filters by state, and keeps the filter in the address for a link', async () => {
      await page.evaluate(() => {
        globalThis.location.hash = '#/jobs';
      });
      await page.locator('tbody tr').nth(2).waitFor();
      // Every job here was routed by the same rule for the same reason: said once, whole, above them.
      expect(await page.locator('.reason-note').innerText()).toBe(
        'Every job shown has the reason: rule "csv" matched (path matches "**.csv"): cloud-run-job',
      );
      const reasons = page.locator('tbody td.reason');
      expect(await reasons.allInnerTexts()).toEqual(['same', 'same', 'same']);
      expect(await reasons.first().getAttribute('title')).toBe(
        'rule "csv" matched (path matches "**.csv"): cloud-run-job',
      );
      await page.screenshot({ path: path.join(ARTIFACTS, 'dashboard.png'), fullPage: true });
      await page.locator('.chips a', { hasText: 'SUCCEEDED' }).click();
      await page.waitForFunction(() => globalThis.location.hash === '#/jobs?state=SUCCEEDED');
      await page.locator('tbody tr[data-state="SUCCEEDED"]').nth(1).waitFor();
      const states = await page
        .locator('tbody tr')
        .evaluateAll((rows) => rows.map((row) => row.getAttribute('data-state')));
      expect(states).toEqual(['SUCCEEDED', 'SUCCEEDED']);
      expect(await marker()).toBe('the same page');

      // A link to a filter, opened afresh.
      await page.goto(`${pipeline.url}/#/jobs?state=CANCELLED`);
      await waitForText(page.locator('.empty'), 'No CANCELLED jobs.');
      expect(await page.locator('.chips a[aria-current="page"]').innerText()).toBe('CANCELLED');
      expect(await page.locator('tbody tr').count()).toBe(0);
    }, 60_000);

    it("says whether an upload's results are its object's newest, following the _LATEST pointer", async () => {
      const name = 'latest.csv';
      const succeeded = async (generationOf: (job: Job) => boolean) => {
        for (const deadline = Date.now() + 20_000; Date.now() < deadline;) {
          const { jobs } = await pipeline.ledger.list({ limit: 100 });
          const job = jobs.find(
            (j) => j.source.kind === 'object' && j.source.object.name === name && generationOf(j),
          );
          if (job?.state === 'SUCCEEDED') return job;
          await new Promise((resolve) => setTimeout(resolve, 50));
        }
        throw new Error(`no SUCCEEDED job of ${name}`);
      };
      fs.writeFileSync(path.join(dir, 'input', name), smallCsv());
      const older = await succeeded(() => true);
      await page.goto(`${pipeline.url}/#/jobs/${older.id}`);
      await waitForText(page.locator('.latest-note'), `These are the newest results of ${name}`);

      fs.writeFileSync(path.join(dir, 'input', name), `${smallCsv()}1,2,1\n`);
      const newer = await succeeded((j) => j.id !== older.id);
      await page.reload();
      await waitForText(page.locator('.latest-note'), `Newer results of ${name}: generation`);
      await page.locator('.latest-note a').click();
      await page.waitForFunction((id) => globalThis.location.hash === `#/jobs/${id}`, newer.id);
      await waitForText(page.locator('.latest-note'), `These are the newest results of ${name}`);
      // The tests after this one check that the page was never reloaded: from here it is not.
      await page.evaluate(() => {
        (globalThis as Record<string, unknown>).dashboardMarker = 'the same page';
      });
    }, 60_000);

    it('shows backfills on the queue view, their source as text', async () => {
      const prefix = '<img src=x onerror=globalThis.pwned=3>/';
      const res = await request(pipeline.url).post('/backfill').send({ bucket: 'input', prefix }).expect(202);
      expect(res.body.state).toBe('DONE'); // an empty folder: one page
      // By its hash: the page is not reloaded (the tests after this check it).
      await page.evaluate(() => {
        globalThis.location.hash = '#/queue';
      });
      const row = page.locator(`table.backfills tbody tr`, { hasText: res.body.id });
      await row.waitFor();
      const cells = await row.locator('td').allInnerTexts();
      expect(cells.map((c) => c.trim()).slice(0, 4)).toEqual([
        'DONE',
        res.body.id,
        `gs://input/${prefix}`,
        '1 page, 0 listed, 0 matched, 0 new jobs, 0 skipped',
      ]);
      expect(await row.locator('.badge').getAttribute('class')).toContain('state-succeeded');
      expect(await page.locator('main img').count()).toBe(0);
      expect(await page.evaluate(() => (globalThis as Record<string, unknown>).pwned)).toBeUndefined();
      expect(await marker()).toBe('the same page');
    }, 60_000);

    describe('a job that runs', () => {
      let running: ReturnType<typeof testApp>;
      let server: Server;
      let job: Job;
      let logFile: string;
      const LONG_WORD = 'x'.repeat(400);

      // A dispatcher of the test's own, whose launcher only records: its job stays RUNNING for as long
      // as the test says, with the log the test writes where the job's prefix says it goes.
      beforeAll(async () => {
        running = testApp(OUTPUT_BUCKET, { routing: PARAM_ROUTING });
        fs.mkdirSync(path.join(running.dir, 'in'), { recursive: true });
        fs.writeFileSync(path.join(running.dir, 'in', 'big.csv'), smallCsv());
        const res = await request(running.app)
          .post('/jobs')
          .send({ inputUri: 'gs://acme-pipeline-input/big.csv', params: { TARGET_COLUMN: 'label' } })
          .expect(201);
        await running.dispatcher.onStarted(res.body.id, 1, new Date().toISOString());
        job = (await running.ledger.get(res.body.id))!;
        expect(job.state).toBe('RUNNING');
        logFile = running.blobs.uri(OUTPUT_BUCKET, `${outputPrefix(job)}logs/attempt-1.log`);
        expect(job.attempts[0].logsUri).toBe(logFile);
        fs.mkdirSync(path.dirname(logFile), { recursive: true });
        fs.writeFileSync(
          logFile,
          logLine('reading input', { input: '/in/big.csv', bytes: 354_000_000 }) +
            'a line that is not JSON, from a library\n' +
            logLine(
              `a warning whose long word ${LONG_WORD} scrolls rather than breaks`,
              { column: 'x9' },
              'WARNING',
            ) +
            progressLine(120_000_000, 354_000_000, 1_200_000),
        );
        server = await new Promise<Server>((resolve) => {
          const listening = running.app.listen(0, '127.0.0.1', () => resolve(listening));
        });
        runningUrl = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
        // Stopped after the browser: a page still on it would find it gone.
        stopRunning = async () => {
          await new Promise((resolve) => server.close(resolve));
          running.cleanup();
        };
      });

      it('shows how far the worker has read, from the newest progress line of its log, as it grows', async () => {
        await page.goto(`${runningUrl}/#/jobs/${job.id}`);
        await waitForText(page.locator('.job-badge'), 'RUNNING');
        const progress = page.locator('.progress-card .progress-text');
        await waitForText(progress, '120.0 MB of 354.0 MB (33.9%) · 1,200,000 rows');
        const bar = page.locator('.progress-card progress');
        expect([await bar.getAttribute('value'), await bar.getAttribute('max')]).toEqual([
          '120000000',
          '354000000',
        ]);
        expect(await page.locator('.details').innerText()).toMatch(/Parameters\s+TARGET_COLUMN=label/);

        // The page follows the log: a newer report replaces the older one, without a reload.
        fs.appendFileSync(logFile, progressLine(240_000_000, 354_000_000, 2_400_000));
        await waitForText(progress, '240.0 MB of 354.0 MB (67.8%) · 2,400,000 rows');
        expect(await page.locator('.log-lines .log-msg', { hasText: 'read 240.0 MB' }).count()).toBe(1);

        // Lines that are not JSON are text; a JSON line's fields follow its message, which wraps only
        // between words.
        expect(await page.locator('.log-line.text').innerText()).toBe(
          'a line that is not JSON, from a library',
        );
        const warning = page.locator('.log-line.sev-warning');
        expect(await warning.locator('.log-sev').innerText()).toBe('WARNING');
        expect(await warning.locator('.log-field').innerText()).toBe('column=x9');
        const style = await warning.locator('.log-msg').evaluate((msg) => {
          const s = globalThis.getComputedStyle(msg);
          return [s.whiteSpace, s.overflowWrap, s.wordBreak];
        });
        expect(style).toEqual(['pre-wrap', 'normal', 'normal']);
        expect(await page.locator('.log-line').count()).toBe(5);
        expect(await marker()).toBeUndefined(); // another dispatcher, another page load
        await page.screenshot({ path: path.join(ARTIFACTS, 'dashboard-running.png'), fullPage: true });

        // It ends, having written what a newer worker might: a multiclass AUC, no log loss, skipped
        // rows with their reasons. The summary says what is there and leaves out what is not.
        const prefix = outputPrefix(job);
        const output = (name: string) => running.blobs.uri(OUTPUT_BUCKET, prefix + name);
        const model = {
          target: 'species',
          targetChosenBy: 'last column',
          delimiter: ';',
          delimiterChosenBy: 'detected',
          classes: ['<b>setosa</b>', 'versicolor', 'virginica'],
          metrics: { accuracy: 0.9567, auc: { macro: 0.98765 }, on: 'training rows' },
          rows: { read: 150, trained: 147, predicted: 147, skipped: 3 },
          skippedRows: [
            { line: 12, reason: 'x1 is not a number: "n/a"' },
            { line: 40, reason: 'wrong number of fields: 3, the header has 5' },
          ],
        };
        fs.writeFileSync(output('model.json'), JSON.stringify(model));
        fs.writeFileSync(output('predictions.csv'), 'x1,species,p\n1,setosa,0.9\n');
        await running.dispatcher.onCompletion({
          jobId: job.id,
          attempt: 1,
          exitCode: 0,
          finishedAt: new Date().toISOString(),
        });
        await waitForText(page.locator('.job-badge'), 'SUCCEEDED');
        await page.locator('.progress-card').waitFor({ state: 'hidden' });
        await page.locator('.outputs-card li[data-name="logs/attempt-1.log"]').waitFor();
        const field = (name: string) => page.locator(`.model-card dd[data-field="${name}"]`);
        await field('accuracy').waitFor();
        const summary = await page
          .locator('.model-card dt')
          .evaluateAll((dts) =>
            dts.map((dt) => [dt.textContent, (dt.nextElementSibling as HTMLElement).innerText]),
          );
        expect(summary).toEqual([
          ['Target', 'species · the last column (TARGET_COLUMN not set)'],
          ['Classes', '3: <b>setosa</b>, versicolor, virginica'],
          ['Accuracy', '95.7% on training rows'],
          ['AUC', 'macro 0.9877'],
          ['Rows', '147 trained · 150 read · 147 predicted'],
          [
            'Skipped',
            '3 rows (the first 2 below)\nline 12: x1 is not a number: "n/a"\nline 40: wrong number of fields: 3, the header has 5',
          ],
          ['Delimiter', 'semicolon ; · detected from the header'],
        ]);
        expect(await page.locator('main b').count()).toBe(0);
      }, 60_000);
    });

    describe('the queue', () => {
      // Made now rather than with the pipeline: the ceiling its refusal taught holds for a minute.
      beforeAll(async () => {
        queued = await startQueuedJobs();
      });

      const WAITED = /^(\d+ ms|\d+(\.\d)? s|\d+m \d\ds)$/;
      const nameOf = (id: string) => Object.keys(queued.jobs).find((name) => queued.jobs[name].id === id);
      const rowTexts = (rows: Locator) =>
        rows.evaluateAll((trs) =>
          trs.map((tr) => [...tr.querySelectorAll('td')].map((td) => td.innerText.trim())),
        );

      it('shows what waits in launch order and why, capacity in use against its limits, and the ceilings learned', async () => {
        await page.goto(`${queued.url}/#/queue`);
        const rows = page.locator('table.queue tbody tr');
        await rows.nth(3).waitFor();
        const cells = await rowTexts(rows);
        expect(cells.map((c) => [c[0], c[1].split('\n')[0], c[2], c[3], c[6]])).toEqual([
          ['1', 'gpu/a.csv', 'gpu', 'VM', '1'],
          ['2', 'one/b.csv', 'one-at-a-time', 'Cloud Run job', '0'],
          ['3', 'big/b.csv', 'big', 'VM', '0'],
          ['4', 'one/c.csv', 'one-at-a-time', 'Cloud Run job', '0'],
        ]);
        expect(cells.map((c) => c[4])).toEqual([
          expect.stringContaining(`launch on vm refused for now: ${STOCKOUT}; tried again after `),
          "waiting for rule one-at-a-time's maxConcurrent: 1 of 1 launched or running",
          'waiting for capacity: vCPU quota in us-central1: 8 of 12 in use, this job needs 8',
          "waiting for rule one-at-a-time's maxConcurrent: 1 of 1 launched or running",
        ]);
        for (const c of cells) expect(c[5]).toMatch(WAITED); // how long it has waited
        expect(await rows.evaluateAll((trs) => trs.map((tr) => tr.getAttribute('data-id')))).toEqual(
          WAITING.map((name) => queued.jobs[name].id),
        );

        const figure = (pool: string) => page.locator(`.pool[data-pool="${pool}"] .pool-figure`).innerText();
        expect(await page.locator('.card h2 .region').innerText()).toBe('· us-central1');
        expect(await figure('run')).toBe('1 of 10');
        expect(await figure('rate')).toBe('1 of 60');
        expect(await figure('vm-cpus')).toBe('8 of 12 · quota 24');
        expect(await figure('gpus:nvidia-l4')).toMatch(
          /^0 of 2 · quota 4 · 1 for now, learned \(until in \d+s\)$/,
        );
        expect(await figure('total')).toBe('2 of 4');
        const meter = page.locator('.pool[data-pool="vm-cpus"] meter');
        expect([await meter.getAttribute('value'), await meter.getAttribute('max')]).toEqual(['8', '12']);
        // The learned ceiling, not the configured 2, is what the GPUs' meter measures against.
        expect(await page.locator('.pool[data-pool="gpus:nvidia-l4"] meter').getAttribute('max')).toBe('1');
        expect(await page.locator('.rule-caps').innerText()).toBe(
          'Rule caps (launched or running at once): one-at-a-time 1',
        );

        const ceilings = await rowTexts(page.locator('table.ceilings tbody tr'));
        expect(ceilings).toEqual([
          ['nvidia-l4 GPUs (VM)', '1', expect.stringMatching(/^in \d+s$/), STOCKOUT],
        ]);
        expect(await page.locator('.no-ceilings').isHidden()).toBe(true);
        expect(await page.locator('.views a[aria-current="page"]').innerText()).toBe('Queue');
        // The refusal's markup is text: nothing of it became an element.
        expect(await page.locator('main img, main b').count()).toBe(0);
        expect(await page.evaluate(() => (globalThis as Record<string, unknown>).pwned)).toBeUndefined();
        await page.screenshot({ path: path.join(ARTIFACTS, 'dashboard-queue.png'), fullPage: true });
      }, 60_000);

      it('lists QUEUED jobs in launch order with their place, under a QUEUED badge', async () => {
        await page.locator('.views a', { hasText: 'Jobs' }).click();
        await page.locator('.chips a', { hasText: 'QUEUED' }).click();
        await page.waitForFunction(() => globalThis.location.hash === '#/jobs?state=QUEUED');
        const rows = page.locator('tbody tr[data-state="QUEUED"]');
        await rows.nth(3).waitFor();
        const ids = await rows.evaluateAll((trs) => trs.map((tr) => tr.getAttribute('data-id')));
        expect(ids.map((id) => nameOf(id!))).toEqual(WAITING);
        expect(await rows.nth(0).locator('.badge').innerText()).toBe('QUEUED');
        expect(await rows.nth(0).locator('.badge').getAttribute('class')).toContain('state-queued');
        expect(await rows.nth(1).locator('td.reason').innerText()).toBe(
          "#2 in line: waiting for rule one-at-a-time's maxConcurrent: 1 of 1 launched or running",
        );
      }, 60_000);

      it("shows a queued job's entry and live place, and a launched job's zone refusals", async () => {
        await page.locator('tbody tr[data-state="QUEUED"] a').first().click();
        await waitForText(page.locator('.job-title'), 'gpu/a.csv');
        expect(await page.locator('.job-badge').innerText()).toBe('QUEUED');
        await waitForText(page.locator('.details'), '#1 in line');
        const details = await page.locator('.details').innerText();
        expect(details).toMatch(/Queued\s+.+ · waiting \d[\dms. ]*\n/);
        expect(details).toContain(
          `#1 in line: launch on vm refused for now: ${STOCKOUT}; tried again after `,
        );
        expect(details).toMatch(/Gives up\s+.+ · in 23h\n/);
        expect(details).toMatch(/Refusals\s+1\n/);
        expect(await page.locator('table.attempts tbody tr').count()).toBe(0);
        expect(await page.locator('[data-action="cancel"]').isEnabled()).toBe(true);
        expect(await page.locator('main img, main b').count()).toBe(0);

        await page.evaluate((id) => {
          globalThis.location.hash = `#/jobs/${id}`;
        }, queued.jobs['big/a.csv'].id);
        await waitForText(page.locator('.job-title'), 'big/a.csv');
        await waitForText(page.locator('.details'), 'launched after');
        expect(await page.locator('.details').innerText()).not.toMatch(/Waits|Refusals|Gives up/);
        const refusals = page.locator('table.attempts tr.zone-refusals');
        expect(await refusals.innerText()).toBe(`Attempt 1 was refused by zones first:\n${ZONE_REFUSAL}`);
      }, 60_000);

      it('cancels a queued job from its page: it leaves the queue', async () => {
        const last = queued.jobs['one/c.csv'];
        await page.evaluate((id) => {
          globalThis.location.hash = `#/jobs/${id}`;
        }, last.id);
        await waitForText(page.locator('.job-badge'), 'QUEUED');
        await page.locator('[data-action="cancel"]:not([disabled])').click();
        await waitForText(page.locator('.job-badge'), 'CANCELLED');
        expect((await queued.ledger.get(last.id))?.state).toBe('CANCELLED');
        await page.locator('.views a', { hasText: 'Queue' }).click();
        await page.locator(`table.queue tbody tr[data-id="${queued.jobs['one/b.csv'].id}"]`).waitFor();
        expect(await page.locator('table.queue tbody tr').count()).toBe(3);
      }, 60_000);
    });

    it('shows a new job by its events alone, with the fallback poll made an hour long', async () => {
      // A page of its own, so that the page the other tests share stays as it was.
      const streamed = await browser.newPage();
      const errors: string[] = [];
      streamed.on('pageerror', (err) => errors.push(err.message));
      streamed.on('console', (message) => {
        if (message.type() === 'error') errors.push(message.text());
      });
      try {
        await streamed.goto(`${pipeline.url}/?slowPoll=3600000#/jobs`);
        await streamed.locator('html[data-events="on"][data-stream="open"]').waitFor({ timeout: 15_000 });
        await streamed.locator('.live-text').filter({ hasText: 'Live' }).first().waitFor();
        fs.writeFileSync(path.join(dir, 'input', 'streamed.csv'), smallCsv());
        const row = streamed.locator('tr[data-state="SUCCEEDED"]').filter({ hasText: 'streamed.csv' });
        await row.waitFor({ timeout: 20_000 });
        expect(errors).toEqual([]);
      } finally {
        await streamed.close();
      }
    }, 60_000);

    it('asked nothing of anyone but the dispatchers, and raised no error', () => {
      const origins = new Set([pipeline.url, queued.url, runningUrl!].map((url) => new URL(url).origin));
      expect(requested.length).toBeGreaterThan(10);
      expect(requested.filter((url) => !origins.has(new URL(url).origin))).toEqual([]);
      expect(pageErrors).toEqual([]);
    });
  },
);
