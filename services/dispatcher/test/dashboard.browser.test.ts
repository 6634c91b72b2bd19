// The dashboard in a real browser: Debian's chromium, driven by playwright-core, against the whole
// local pipeline (the watcher, the sqlite ledger, worker processes). It checks what a person sees:
// a job appears and changes state without a reload, its page shows attempts, history and the log the
// worker wrote, cancel and retry work from their buttons, and hostile object names stay text.
// The browser tests share one page and run in order; each names the jobs it made itself.
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import request from 'supertest';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { chromium, type Browser, type Locator, type Page } from 'playwright-core';
import { parseRoutingConfig, type Job } from '@pipeline/core';
import { startLocalPipeline, type LocalPipeline } from '../src/local/pipeline.ts';
import { createLogger } from '../src/logger.ts';
import { testApp } from './support.ts';
import { LOOPBACK_GUARD } from '../../../test/support/run-worker.ts';

const CHROMIUM = '/usr/bin/chromium';
const ARTIFACTS = path.resolve(import.meta.dirname, '../../../test-artifacts');
const DASHBOARD_DIR = path.resolve(import.meta.dirname, '../src/dashboard');

// The machine reaches nothing but loopback, and a test must not try: these switch off chromium's
// own calls home (updates, sync, safe browsing, metrics, DNS prefetch), and the resolver rule fails
// every host but loopback's, so even a stray URL in the page could not leave the machine.
const CHROMIUM_ARGS = [
  '--headless',
  '--no-sandbox', // the tests may run as root, where chromium's sandbox refuses to start
  '--disable-gpu',
  '--disable-dev-shm-usage',
  '--disable-background-networking',
  '--disable-component-update',
  '--disable-sync',
  '--no-first-run',
  '--no-default-browser-check',
  '--disable-default-apps',
  '--disable-domain-reliability',
  '--disable-breakpad',
  '--disable-client-side-phishing-detection',
  '--disable-quic',
  '--no-pings',
  '--metrics-recording-only',
  '--disable-features=OptimizationHints,Translate,MediaRouter,AutofillServerCommunication,CertificateTransparencyComponentUpdater',
  '--host-resolver-rules=MAP * ~NOTFOUND, EXCLUDE localhost, EXCLUDE 127.0.0.1',
];

const ROUTING = parseRoutingConfig({
  rules: [
    { name: 'csv', match: { path: '**.csv' }, target: 'cloud-run-job', job: { task: 'logreg' } },
    { name: 'not-csv', match: { path: '**' }, target: 'ignore' },
  ],
});

const HOSTILE = '<img src=x onerror=globalThis.pwned=1><b>bold</b>.csv';

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

  it('has no inline script, and its script never parses data as markup', () => {
    const html = fs.readFileSync(path.join(DASHBOARD_DIR, 'index.html'), 'utf8');
    const scripts = [...html.matchAll(/<script\b[^>]*>/g)].map((m) => m[0]);
    expect(scripts).toEqual(['<script type="module" src="dashboard/app.js">']);
    expect(html).not.toMatch(/\son[a-z]+=|style=/i);
    const js = fs.readFileSync(path.join(DASHBOARD_DIR, 'app.js'), 'utf8');
    expect(js).not.toMatch(/innerHTML|outerHTML|insertAdjacentHTML|document\.write|\beval\(|new Function/);
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
      if (dir !== undefined) fs.rmSync(dir, { recursive: true, force: true });
    });

    /** A job for an hour from now, of a CSV in the shared bucket (which no watcher starts work for). */
    async function scheduledJob(name: string): Promise<Job> {
      fs.writeFileSync(path.join(dir, 'shared', name), smallCsv());
      const runAt = new Date(Date.now() + 3600_000).toISOString();
      const intake = await pipeline.dispatcher.submitObject('shared', name, undefined, { runAt });
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

      // What the reconciler does when the time comes, now: the page is told nothing, it finds out.
      await pipeline.dispatcher.launchDue(first);
      await page.locator(`tr[data-id="${first.id}"][data-state="SUCCEEDED"]`).waitFor({ timeout: 20_000 });
      expect(await row.locator('.badge').innerText()).toBe('SUCCEEDED');
      expect(await row.locator('td.route').innerText()).toMatch(/Cloud Run job\s+csv/);
      expect(await row.locator('td').nth(5).innerText()).toBe('1'); // attempts
      expect(await row.locator('td').nth(6).innerText()).toMatch(/\d( ms| s)$/); // how long it ran
      expect(await marker()).toBe('the same page');
    }, 60_000);

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
      expect(details).toMatch(/Cost\s+\$[\d.]+\s+attempt 1 cloud-run-job: \d+ s run, \$/);

      const attempt = page.locator('table.attempts tbody tr');
      expect(await attempt.count()).toBe(1);
      expect(await attempt.locator('td').nth(5).innerText()).toBe('0');
      expect(await attempt.locator('td').nth(6).innerText()).toBe('succeeded');

      const moves = await page.locator('.history li .move').allInnerTexts();
      const transitions = moves.map((m) => m.replace(/\s+/g, ' '));
      expect(transitions.slice(0, 3)).toEqual(['SCHEDULED', 'SCHEDULED → RECEIVED', 'RECEIVED → QUEUED']);
      expect(transitions.at(-1)).toMatch(/→ SUCCEEDED$/);

      // The worker's own lines, read through GET /jobs/:id/logs.
      await waitForText(page.locator('pre.log'), '"message":"done"');
      expect(await page.locator('pre.log').innerText()).toContain('"message":"input loaded"');
      await waitForText(page.locator('.log-meta'), 'ended');
      expect(await page.locator('[data-action="cancel"]').isDisabled()).toBe(true);
      expect(await page.locator('[data-action="retry"]').isDisabled()).toBe(true);
      expect(await marker()).toBe('the same page');
      await page.screenshot({ path: path.join(ARTIFACTS, 'dashboard-job.png'), fullPage: true });
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
      await waitForText(page.locator('pre.log'), '"message":"done"');
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

      await row.locator('a').click();
      await waitForText(page.locator('.job-badge'), 'FAILED');
      expect(await page.locator('.job-title').innerText()).toBe(HOSTILE);
      expect(await page.locator('.details').innerText()).toContain('has one class only');
      expect(await page.locator('[data-action="retry"]').isEnabled()).toBe(true);
      expect(await page.locator('main img, main b').count()).toBe(0);
      expect(await page.evaluate(() => (globalThis as Record<string, unknown>).pwned)).toBeUndefined();
    }, 60_000);

    it('filters by state, and keeps the filter in the address for a link', async () => {
      await page.evaluate(() => {
        globalThis.location.hash = '#/jobs';
      });
      await page.locator('tbody tr').nth(2).waitFor();
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

    it('asked nothing of anyone but the dispatcher, and raised no error', () => {
      const origin = new URL(pipeline.url).origin;
      expect(requested.length).toBeGreaterThan(10);
      expect(requested.filter((url) => new URL(url).origin !== origin)).toEqual([]);
      expect(pageErrors).toEqual([]);
    });
  },
);
