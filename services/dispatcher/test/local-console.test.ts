// What `npm start` prints is escaped as the CLI's output is: object names are data, and a name with a
// newline or an escape sequence must not reach the terminal raw (it could forge a line, or drive the
// terminal).
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { runLocal } from '../src/local/main.ts';
import type { LocalPipeline } from '../src/local/pipeline.ts';
import { createLogger } from '../src/logger.ts';
import { LOOPBACK_GUARD } from '../../../test/support/run-worker.ts';

// eslint-disable-next-line no-control-regex
const CONTROL = /[\u0000-\u001f\u007f-\u009f]/;
const GOOD = 'good\u001b[2J\u001b]0;title\u0007\nforged: job SUCCEEDED.csv';
const BAD = 'bad\r\u009b31m\nname.csv';

let root: string;
let pipeline: LocalPipeline;
const said: string[] = [];

beforeAll(async () => {
  root = fs.mkdtempSync(path.join(os.tmpdir(), 'local-console-'));
  const config = path.join(root, 'config.json');
  fs.writeFileSync(
    config,
    JSON.stringify({
      rules: [{ name: 'csv', match: { path: '**.csv' }, target: 'cloud-run-job', job: { task: 'logreg' } }],
    }),
  );
  const dir = path.join(root, 'local');
  fs.mkdirSync(path.join(dir, 'input'), { recursive: true }); // not a first start: no sample
  pipeline = await runLocal(
    { dir, port: 0, host: '127.0.0.1', config, capacity: 2 },
    (line) => said.push(line),
    { nodeOptions: ['--import', LOOPBACK_GUARD], logger: createLogger(undefined, 'silent'), quietMs: 100 },
  );
  const rows = Array.from({ length: 60 }, (_, i) => `${i % 7},${(i * 13) % 11},${i % 2}`);
  fs.writeFileSync(path.join(dir, 'input', GOOD), `a,b,label\n${rows.join('\n')}\n`);
  fs.writeFileSync(path.join(dir, 'input', BAD), 'a,label\n1,x\n2,x\n'); // one class: exit code 4
});

afterAll(async () => {
  await pipeline?.stop();
  fs.rmSync(root, { recursive: true, force: true });
});

async function saidOf(what: string, ms = 15_000): Promise<string> {
  const deadline = Date.now() + ms;
  for (;;) {
    const line = said.find((l) => l.includes(what));
    if (line !== undefined) return line;
    if (Date.now() > deadline)
      throw new Error(`nothing said of ${what} within ${ms} ms: ${said.join(' | ')}`);
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
}

describe("npm start's console", () => {
  it('shows the control characters of object names escaped, on the line of their job', async () => {
    const succeeded = await saidOf(JSON.stringify(GOOD).slice(1, -1));
    expect(succeeded).toMatch(/^pipeline: job [0-9a-f]{32} SUCCEEDED; results in /);
    expect(succeeded).toContain('good\\u001b[2J\\u001b]0;title\\u0007\\nforged: job SUCCEEDED.csv');

    const failed = await saidOf('bad\\r\\u009b31m\\nname.csv');
    expect(failed).toMatch(/^pipeline: job [0-9a-f]{32} FAILED \(exit code 4\): .*; logs in /);

    for (const line of said) expect(line).not.toMatch(CONTROL);
  });
});
