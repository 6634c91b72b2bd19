// The lint rules that keep packages/core pure (eslint.config.js): run through ESLint's own API on
// snippets, as `npm run lint` runs them on the files, so a rule that stopped matching fails here.
import path from 'node:path';
import { ESLint, type Linter } from 'eslint';
import { beforeAll, describe, expect, it } from 'vitest';

const ROOT = path.resolve(import.meta.dirname, '../..');
let eslint: ESLint;

beforeAll(() => {
  eslint = new ESLint({ cwd: ROOT });
});

/** The messages ESLint reports for `text` as if it were the file at `filePath` (from the root). */
async function lint(text: string, filePath: string): Promise<Linter.LintMessage[]> {
  const [result] = await eslint.lintText(text, { filePath });
  return result.messages;
}

const ruleIds = (messages: Linter.LintMessage[]) => messages.map((m) => m.ruleId);

const FORBIDDEN_MODULES = [
  '@google-cloud/storage',
  '@google-cloud/firestore',
  '@google-cloud/run',
  '@google-cloud/compute',
  '@google-cloud/pubsub',
  'google-auth-library',
  'googleapis',
  'gcp-metadata',
  'express',
  'node:fs',
  'fs',
  'node:fs/promises',
  'fs/promises',
  'node:child_process',
  'child_process',
];

describe("core's import rule", () => {
  it.each(FORBIDDEN_MODULES)('refuses %s in packages/core/src', async (module) => {
    const messages = await lint(
      `import x from '${module}';\nexport const y = x;\n`,
      'packages/core/src/x.ts',
    );
    expect(ruleIds(messages)).toEqual(['no-restricted-imports']);
    expect(messages[0].severity).toBe(2);
  });

  it.each(['@google-cloud/storage', 'node:fs', 'child_process', 'express'])(
    'refuses %s as a named, a type-only and a re-export import too',
    async (module) => {
      const text = [
        `import { a } from '${module}';`,
        `import type { B } from '${module}';`,
        `export { c } from '${module}';`,
        'export const d: B = a;',
        '',
      ].join('\n');
      expect(ruleIds(await lint(text, 'packages/core/src/routing/x.ts'))).toEqual([
        'no-restricted-imports',
        'no-restricted-imports',
        'no-restricted-imports',
      ]);
    },
  );

  it.each(['node:fs', 'googleapis', 'child_process'])('refuses import(%j) and require()', async (module) => {
    const text = `export const a = await import('${module}');\nexport const b = require('${module}');\n`;
    const ids = ruleIds(await lint(text, 'packages/core/src/x.ts'));
    expect(ids.filter((id) => id === 'no-restricted-syntax')).toHaveLength(2);
  });

  it.each([
    ['export const a = process.env.PORT;', 'no-restricted-properties'],
    ["export const a = process['env'];", 'no-restricted-properties'],
    ['const { env } = process;\nexport const a = env;', 'no-restricted-properties'],
    ['export const a = globalThis.process.env;', 'no-restricted-syntax'],
    ["import { env } from 'node:process';\nexport const a = env;", 'no-restricted-imports'],
  ])('refuses process.env: %s', async (text, rule) => {
    expect(ruleIds(await lint(`${text}\n`, 'packages/core/src/x.ts'))).toEqual([rule]);
  });

  it('allows what core does import: node:crypto, its own files, its own package', async () => {
    const text = [
      "import { createHash } from 'node:crypto';",
      "import { formatBytes } from './format.ts';",
      "import type { Job } from '@pipeline/core';",
      'export const a = (job: Job) => formatBytes(createHash("sha256").update(job.id).digest().length);',
      'export const b = process.platform;',
      '',
    ].join('\n');
    expect(await lint(text, 'packages/core/src/x.ts')).toEqual([]);
  });

  it('holds only in core: an adapter may import them', async () => {
    const text =
      "import { Storage } from '@google-cloud/storage';\nimport fs from 'node:fs';\nexport const a = [Storage, fs, process.env.PORT];\n";
    expect(await lint(text, 'services/dispatcher/src/x.ts')).toEqual([]);
    expect(ruleIds(await lint(text, 'packages/core/src/x.ts'))).toEqual([
      'no-restricted-imports',
      'no-restricted-imports',
      'no-restricted-properties',
    ]);
  });

  it("lets core's tests read files, and nothing more", async () => {
    const reads =
      "import fs from 'node:fs';\nimport { spawnSync } from 'node:child_process';\nexport const a = [fs, spawnSync];\n";
    expect(await lint(reads, 'packages/core/test/x.test.ts')).toEqual([]);
    const google =
      "import { Storage } from '@google-cloud/storage';\nexport const a = [Storage, process.env.X];\n";
    expect(ruleIds(await lint(google, 'packages/core/test/x.test.ts'))).toEqual([
      'no-restricted-imports',
      'no-restricted-properties',
    ]);
  });
});

describe('the one-way flow between routing/ and cost/', () => {
  it.each(['../routing/types.ts', '../routing/index.ts', '../routing/platforms.ts'])(
    'refuses %s in cost/',
    async (specifier) => {
      const text = `import type { A } from '${specifier}';\nexport type B = A;\n`;
      expect(ruleIds(await lint(text, 'packages/core/src/cost/x.ts'))).toEqual(['no-restricted-imports']);
    },
  );

  it("keeps the rest of core's rule in cost/, and lets routing import cost/", async () => {
    expect(
      ruleIds(await lint("import fs from 'node:fs';\nexport const a = fs;\n", 'packages/core/src/cost/x.ts')),
    ).toEqual(['no-restricted-imports']);
    const routing =
      "import { runCost } from '../cost/prices.ts';\nimport type { Target } from '../template.ts';\nexport const a = (t: Target) => [runCost, t];\n";
    expect(await lint(routing, 'packages/core/src/routing/x.ts')).toEqual([]);
    const cost = "import { MACHINE_TYPES } from '../platforms.ts';\nexport const a = MACHINE_TYPES;\n";
    expect(await lint(cost, 'packages/core/src/cost/x.ts')).toEqual([]);
  });
});
