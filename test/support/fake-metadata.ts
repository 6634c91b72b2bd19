// A loopback stand-in for the Compute Engine metadata server, for gcp-metadata and google-auth-library
// (GCE_METADATA_HOST=127.0.0.1:PORT). It answers only requests with `Metadata-Flavor: Google`, like
// the real one, serves values set by the test, a service account token, and `instance/preempted`
// with `wait_for_change=true` (answered when the value changes or after `timeout_sec`). A directory
// (`instance/`, `instance/attributes/`) answers the list of its entries, subdirectories with a
// trailing slash (https://cloud.google.com/compute/docs/metadata/querying-metadata); asked for
// without its slash, it redirects there (301), as the real one does. gcp-metadata asks for
// `instance` to tell whether a metadata server is there at all. `failNext` makes it answer 503 for a
// while, as the real one does now and then.
import http from 'node:http';
import { once } from 'node:events';
import type { AddressInfo } from 'node:net';

export interface FakeMetadata {
  /** host:port for GCE_METADATA_HOST. */
  host: string;
  /** Paths under /computeMetadata/v1/, e.g. 'instance/attributes/pipeline-task'. */
  values: Map<string, string>;
  requests: string[];
  preempt(): void;
  /** The next `times` requests (for `key` only, or for any key with '*') get 503. */
  failNext(key: string, times: number): void;
  close(): Promise<void>;
}

export async function startFakeMetadata(
  values: Record<string, string>,
  options: { token?: string } = {},
): Promise<FakeMetadata> {
  const token = options.token ?? 'metadata-token';
  const store = new Map(Object.entries({ 'instance/preempted': 'FALSE', ...values }));
  const requests: string[] = [];
  const waiting = new Set<() => void>();
  const failures = new Map<string, number>();
  const failing = (key: string) => {
    for (const name of [key, '*']) {
      const left = failures.get(name) ?? 0;
      if (left > 0) {
        failures.set(name, left - 1);
        return true;
      }
    }
    return false;
  };
  const server = http.createServer((req, res) => {
    const url = new URL(req.url ?? '/', 'http://metadata');
    requests.push(url.pathname + url.search);
    res.setHeader('Metadata-Flavor', 'Google');
    if (url.pathname === '/' || url.pathname === '/computeMetadata/v1/') {
      res.end('ok');
      return;
    }
    if (req.headers['metadata-flavor'] !== 'Google') {
      res.writeHead(403).end('Missing Metadata-Flavor: Google header');
      return;
    }
    const key = url.pathname.replace(/^\/computeMetadata\/v1\//, '').replace(/\/$/, '');
    if (failing(key)) {
      res.writeHead(503).end('Service Unavailable');
      return;
    }
    if (key === 'instance/service-accounts/default/token') {
      res.setHeader('content-type', 'application/json');
      res.end(JSON.stringify({ access_token: token, expires_in: 3599, token_type: 'Bearer' }));
      return;
    }
    const answer = () => {
      const value = store.get(key);
      const entries = value === undefined ? directory(key) : undefined;
      if (entries !== undefined && !url.pathname.endsWith('/')) {
        // A directory asked for without its slash is redirected to it, as the real server does.
        res.writeHead(301, { Location: `${url.pathname}/${url.search}` }).end();
      } else if (entries !== undefined) {
        res.setHeader('content-type', 'application/text').end(entries.join('\n'));
      } else if (value === undefined) res.writeHead(404).end('not found');
      else res.setHeader('content-type', 'application/text').end(value);
    };
    /** The entries of a directory of the stored keys (and the token's), or undefined if it is none. */
    function directory(path: string): string[] | undefined {
      const prefix = path === '' ? '' : `${path}/`;
      const keys = [...store.keys(), 'instance/service-accounts/default/token'];
      const entries = new Set<string>();
      for (const stored of keys) {
        if (!stored.startsWith(prefix)) continue;
        const rest = stored.slice(prefix.length);
        const cut = rest.indexOf('/');
        entries.add(cut < 0 ? rest : rest.slice(0, cut + 1));
      }
      return entries.size === 0 ? undefined : [...entries].sort();
    }
    if (url.searchParams.get('wait_for_change') === 'true') {
      const before = store.get(key);
      const timeout = setTimeout(done, Number(url.searchParams.get('timeout_sec') ?? 60) * 1000);
      function done() {
        clearTimeout(timeout);
        waiting.delete(check);
        answer();
      }
      function check() {
        if (store.get(key) !== before) done();
      }
      waiting.add(check);
      req.on('close', () => {
        clearTimeout(timeout);
        waiting.delete(check);
      });
      return;
    }
    answer();
  });
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  return {
    host: `127.0.0.1:${(server.address() as AddressInfo).port}`,
    values: store,
    requests,
    failNext(key, times) {
      failures.set(key, times);
    },
    preempt() {
      store.set('instance/preempted', 'TRUE');
      for (const check of [...waiting]) check();
    },
    async close() {
      server.closeAllConnections();
      server.close();
      await once(server, 'close');
    },
  };
}
