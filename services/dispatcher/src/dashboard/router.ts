// The dashboard: one HTML page, its ES modules and one stylesheet from this folder, served as they are
// (no build step), and /dashboard/core.js: what the page shares with @pipeline/core, so it has no
// copies of its own. The page reads the same /jobs API as everyone else, so it needs the same caller
// identity (`api`); it is a client of the API, never a second way into the ledger.
import fs from 'node:fs';
import { stripTypeScriptTypes } from 'node:module';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { Router, type RequestHandler } from 'express';
import { ACTIVE_STATES, FINAL_STATES, JOB_STATES, RETRYABLE_STATES } from '@pipeline/core';

const FILES = {
  '/': { file: 'index.html', type: 'text/html; charset=utf-8' },
  '/dashboard/app.js': { file: 'app.js', type: 'text/javascript; charset=utf-8' },
  '/dashboard/ui.js': { file: 'ui.js', type: 'text/javascript; charset=utf-8' },
  '/dashboard/queue.js': { file: 'queue.js', type: 'text/javascript; charset=utf-8' },
  '/dashboard/backfills.js': { file: 'backfills.js', type: 'text/javascript; charset=utf-8' },
  '/dashboard/log-view.js': { file: 'log-view.js', type: 'text/javascript; charset=utf-8' },
  '/dashboard/job-results.js': { file: 'job-results.js', type: 'text/javascript; charset=utf-8' },
  '/dashboard/text.js': { file: 'text.js', type: 'text/javascript; charset=utf-8' },
  // '/dashboard/core.js' is built from @pipeline/core: dashboardCoreModule below.
  '/dashboard/styles.css': { file: 'styles.css', type: 'text/css; charset=utf-8' },
  '/dashboard/favicon.svg': { file: 'favicon.svg', type: 'image/svg+xml' },
} as const;

// Job names, errors and logs are data written by whoever uploads a file: the page inserts them only as
// text, and this policy is the second wall should that ever slip: no inline script or style, nothing
// loaded from elsewhere, no framing, no form posting away.
export const DASHBOARD_CSP = [
  "default-src 'self'",
  "script-src 'self'",
  "style-src 'self'",
  "img-src 'self'",
  "connect-src 'self'",
  "object-src 'none'",
  "base-uri 'none'",
  "form-action 'none'",
  "frame-ancestors 'none'",
].join('; ');

const HEADERS = {
  'Content-Security-Policy': DASHBOARD_CSP,
  'X-Content-Type-Options': 'nosniff',
  'Referrer-Policy': 'no-referrer',
  // Small files read once at start: revalidating costs a request, and a new deploy shows at once.
  'Cache-Control': 'no-cache',
};

/** The state lists of core that the page reads (job.ts): its filter chips, its buttons, its refreshes. */
export const CORE_STATE_LISTS = { JOB_STATES, FINAL_STATES, ACTIVE_STATES, RETRYABLE_STATES } as const;

/**
 * /dashboard/core.js: core's formatters (packages/core/src/format.ts, erasable TypeScript with no
 * imports, its types stripped by Node) and its state lists, as one ES module, so the page shows sizes,
 * durations and dollars as the `pipeline` command and the router's reasons do.
 */
export function dashboardCoreModule(): string {
  const formatTs = fileURLToPath(new URL('./format.ts', import.meta.resolve('@pipeline/core')));
  const lists = Object.entries(CORE_STATE_LISTS).map(
    ([name, states]) => `export const ${name} = Object.freeze(${JSON.stringify(states)});`,
  );
  return [
    '// Built by dashboard/router.ts from @pipeline/core: src/format.ts and the state lists of src/job.ts.',
    quietly(() => stripTypeScriptTypes(fs.readFileSync(formatTs, 'utf8'))),
    ...lists,
    '',
  ].join('\n');
}

/**
 * `fn` without the one ExperimentalWarning Node prints on the first call of stripTypeScriptTypes:
 * it would be a line on every start's stderr that no one can act on (the test of the served module
 * is what says that the stripping still does its job). Every other warning passes through.
 */
function quietly<T>(fn: () => T): T {
  const emitWarning = process.emitWarning;
  process.emitWarning = function (warning: string | Error, ...rest: unknown[]) {
    if (String(warning).includes('stripTypeScriptTypes')) return;
    return (emitWarning as (...args: unknown[]) => void).call(process, warning, ...rest);
  } as typeof process.emitWarning;
  try {
    return fn();
  } finally {
    process.emitWarning = emitWarning;
  }
}

/**
 * `events`: this dispatcher serves GET /events (local mode). The page is told so on its <html>
 * element (data-events="on"), so that it opens the stream only where there is one: elsewhere an
 * EventSource would meet a 404 and the browser would log an error on every load.
 */
export function dashboardRouter(
  api: RequestHandler,
  dir = import.meta.dirname,
  options: { events?: boolean } = {},
): Router {
  const router = Router();
  const serve = (route: string, type: string, body: Buffer | string) =>
    router.get(route, api, (_req, res) => {
      res
        .status(200)
        .set({ ...HEADERS, 'Content-Type': type })
        .send(body);
    });
  // Read and built when the router is made, so a missing file fails then rather than a visitor later.
  for (const [route, { file, type }] of Object.entries(FILES)) {
    const body = fs.readFileSync(path.join(dir, file));
    serve(route, type, route === '/' && options.events ? withEventsOn(body) : body);
  }
  serve('/dashboard/core.js', 'text/javascript; charset=utf-8', dashboardCoreModule());
  return router;
}

/** The page with `data-events="on"` on its <html> element (see dashboardRouter). */
function withEventsOn(page: Buffer): string {
  const html = page.toString('utf8');
  if (!html.includes('<html lang="en">')) throw new Error('index.html: no <html lang="en"> to mark');
  return html.replace('<html lang="en">', '<html lang="en" data-events="on">');
}
