// What stands in for identity checks where there are none: the local pipeline (loopback only), and a
// cloud dispatcher run with PUSH_AUTH=off against the emulators. A web page the user visits can still
// make the browser send requests to such a server; these guards refuse what a browser sends from
// another site, or through another host name.
import type { RequestHandler } from 'express';

/**
 * Any web page the user visits could make the browser POST here (cancel, retry, submit). Browsers
 * say where a request comes from: a request that changes something is refused when it comes from
 * another site. Tools (curl, the CLI) send neither header and pass.
 */
export const sameOriginWrites: RequestHandler = (req, res, next) => {
  if (req.method === 'GET' || req.method === 'HEAD') return next();
  const site = req.headers['sec-fetch-site'];
  const origin = req.headers.origin;
  const crossSite =
    (typeof site === 'string' && site !== 'same-origin' && site !== 'none') ||
    (typeof origin === 'string' && !sameHost(origin, req.headers.host));
  if (crossSite) {
    res.status(403).json({ error: 'requests from another site may not change anything here' });
    return;
  }
  next();
};

/**
 * A page on another site could still reach this server through a name it controls that resolves to
 * 127.0.0.1 (DNS rebinding): then Origin and Host agree. So the Host must name this machine:
 * localhost, 127.0.0.1, ::1, or one of `extra` (the address the server listens on).
 */
export function onlyLocalHosts(extra: string[]): RequestHandler {
  const allowed = new Set([
    'localhost',
    '127.0.0.1',
    '[::1]',
    ...extra.map((h) => (h.includes(':') ? `[${h}]` : h)),
  ]);
  return (req, res, next) => {
    const host = (req.headers.host ?? '').toLowerCase().replace(/:\d+$/, '');
    if (allowed.has(host)) return next();
    res.status(403).json({ error: `this local pipeline answers only to ${[...allowed].join(', ')}` });
  };
}

function sameHost(origin: string, host: string | undefined): boolean {
  try {
    return new URL(origin).host === host;
  } catch {
    return false;
  }
}
