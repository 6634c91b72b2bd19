// The cold-start baseline: an express app with only GET /healthz, started the way the dispatcher is.
import express from 'express';

const app = express();
app.get('/healthz', (_req, res) => {
  res.json({ status: 'ok' });
});
app.listen(Number(process.env.PORT ?? 8080), '127.0.0.1');
