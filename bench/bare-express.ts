// The cold-start baseline: an express app with only GET /healthz, started the way the dispatcher is.
import express from 'express';

const app = express();
app.get('/healthz', (_req, res) => {
  res.json({ status: 'ok' });
});
const server = app.listen(Number(process.env.PORT ?? 8080), '127.0.0.1');
// Stop as the dispatcher does on SIGTERM: close, then exit (which also writes NODE_COMPILE_CACHE).
process.once('SIGTERM', () => {
  server.close();
  server.closeIdleConnections();
});
