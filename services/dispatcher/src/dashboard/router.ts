// The dashboard: one HTML page, its ES modules and one stylesheet from this folder, served as they are
// (no build step). The page reads the same /jobs API as everyone else, so it needs the same caller
// identity (`api`); it is a client of the API, never a second way into the ledger.
import fs from 'node:fs';
import path from 'node:path';
import { Router, type RequestHandler } from 'express';

const FILES = {
  '/': { file: 'index.html', type: 'text/html; charset=utf-8' },
  '/dashboard/app.js': { file: 'app.js', type: 'text/javascript; charset=utf-8' },
  '/dashboard/ui.js': { file: 'ui.js', type: 'text/javascript; charset=utf-8' },
  '/dashboard/queue.js': { file: 'queue.js', type: 'text/javascript; charset=utf-8' },
  '/dashboard/log-view.js': { file: 'log-view.js', type: 'text/javascript; charset=utf-8' },
  '/dashboard/job-results.js': { file: 'job-results.js', type: 'text/javascript; charset=utf-8' },
  '/dashboard/text.js': { file: 'text.js', type: 'text/javascript; charset=utf-8' },
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

export function dashboardRouter(api: RequestHandler, dir = import.meta.dirname): Router {
  const router = Router();
  for (const [route, { file, type }] of Object.entries(FILES)) {
    // Read at start, so a missing file fails the start-up rather than the first visitor.
    const body = fs.readFileSync(path.join(dir, file));
    router.get(route, api, (_req, res) => {
      res
        .status(200)
        .set({ ...HEADERS, 'Content-Type': type })
        .send(body);
    });
  }
  return router;
}
