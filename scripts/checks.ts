// `npm run checks`, the first half of `npm test`: eslint, prettier --check and the type check at
// once. Each is one process that mostly runs on one core, so on this 2-core machine the three take
// about as long as the type check alone (the three one after another took twice that). Each one's
// output is printed whole when it failed, in a fixed order, after all have ended; the exit code is 1 if any failed.
import { spawn } from 'node:child_process';
import path from 'node:path';

const ROOT = path.resolve(import.meta.dirname, '..');
const BIN = path.join(ROOT, 'node_modules', '.bin');

const CHECKS: { name: string; command: string; args: string[] }[] = [
  { name: 'eslint', command: 'eslint', args: ['.'] },
  { name: 'prettier', command: 'prettier', args: ['--check', '.'] },
  { name: 'typecheck', command: 'tsc', args: ['-p', 'tsconfig.json'] },
];

interface Outcome {
  name: string;
  code: number | null;
  output: string;
  seconds: number;
}

function run(check: (typeof CHECKS)[number]): Promise<Outcome> {
  const started = Date.now();
  return new Promise((resolve) => {
    const chunks: Buffer[] = [];
    const child = spawn(path.join(BIN, check.command), check.args, {
      cwd: ROOT,
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    child.stdout.on('data', (chunk: Buffer) => chunks.push(chunk));
    child.stderr.on('data', (chunk: Buffer) => chunks.push(chunk));
    const done = (code: number | null, extra = '') =>
      resolve({
        name: check.name,
        code,
        output: Buffer.concat(chunks).toString() + extra,
        seconds: (Date.now() - started) / 1000,
      });
    child.on('error', (error) => done(null, `${check.command} did not start: ${error.message}\n`));
    child.on('close', (code) => done(code));
  });
}

const outcomes = await Promise.all(CHECKS.map(run));
for (const { name, code, output, seconds } of outcomes) {
  process.stdout.write(`${name}: ${code === 0 ? 'passed' : 'FAILED'} (${seconds.toFixed(1)} s)\n`);
  if (code !== 0) process.stdout.write(output.replace(/^/gm, `  ${name} | `) + '\n');
}
process.exitCode = outcomes.every((outcome) => outcome.code === 0) ? 0 : 1;
