// Imports inside core flow one way between routing and cost: the router prices its choices with
// cost/ (routing/cost.ts, routing/config.ts), and cost/ never imports routing, not even a type. What
// both need (the targets and templates, the platforms' limits and machine types, the config readers)
// lives beside them: template.ts, platforms.ts, readers.ts.
import fs from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';

const SRC = path.resolve(import.meta.dirname, '../src');

interface Import {
  specifier: string;
  /** `import type` / `export type`, or every name marked `type`: gone once the types are stripped. */
  typeOnly: boolean;
}

/** The import and re-export statements of a TypeScript source, with whether each is types only. */
function importsOf(source: string): Import[] {
  const statements = /^\s*(?:import|export)\s+(type\s+)?([^;'"]*?)\s*from\s*'([^']+)'/gm;
  const sideEffects = /^\s*import\s+'([^']+)'/gm;
  const found: Import[] = [];
  for (const [, typeKeyword, names, specifier] of source.matchAll(statements)) {
    const braced = /^\{([\s\S]*)\}$/.exec(names.trim());
    const allTypes =
      braced !== null &&
      braced[1]
        .split(',')
        .map((name) => name.trim())
        .filter((name) => name !== '')
        .every((name) => name.startsWith('type '));
    found.push({ specifier, typeOnly: typeKeyword !== undefined || allTypes });
  }
  for (const [, specifier] of source.matchAll(sideEffects)) found.push({ specifier, typeOnly: false });
  return found;
}

/** Relative to src/, with forward slashes: "cost/prices.ts". */
const rel = (file: string) => path.relative(SRC, file).split(path.sep).join('/');
const isRouting = (file: string) => rel(file) === 'routing.ts' || rel(file).startsWith('routing/');
const costFiles = fs
  .readdirSync(path.join(SRC, 'cost'))
  .filter((name) => name.endsWith('.ts'))
  .map((name) => path.join(SRC, 'cost', name));

describe('routing and cost', () => {
  it('reads the import statements it checks', () => {
    const source = [
      "import { a, type B } from './a.ts';",
      "import type { C } from '../routing/c.ts';",
      'import {',
      '  type D,',
      '  type E,',
      "} from '../routing.ts';",
      "export * from './f.ts';",
      "export type { G } from './g.ts';",
      "import './h.ts';",
    ].join('\n');
    expect(importsOf(source)).toEqual([
      { specifier: './a.ts', typeOnly: false },
      { specifier: '../routing/c.ts', typeOnly: true },
      { specifier: '../routing.ts', typeOnly: true },
      { specifier: './f.ts', typeOnly: false },
      { specifier: './g.ts', typeOnly: true },
      { specifier: './h.ts', typeOnly: false },
    ]);
  });

  it('cost/ imports nothing from routing, not even a type', () => {
    expect(costFiles.length).toBeGreaterThan(5);
    const offending = costFiles.flatMap((file) =>
      importsOf(fs.readFileSync(file, 'utf8'))
        .filter(({ specifier }) => specifier.startsWith('.'))
        .filter(({ specifier }) => isRouting(path.resolve(path.dirname(file), specifier)))
        .map(({ specifier }) => `${rel(file)} imports ${specifier}`),
    );
    expect(offending).toEqual([]);
  });

  it('no run-time import path leads from cost/ to routing', () => {
    const paths: string[] = [];
    const seen = new Set<string>();
    const visit = (file: string, trail: string[]) => {
      if (isRouting(file)) return paths.push([...trail, rel(file)].join(' -> '));
      if (seen.has(file)) return;
      seen.add(file);
      for (const { specifier, typeOnly } of importsOf(fs.readFileSync(file, 'utf8'))) {
        if (typeOnly || !specifier.startsWith('.')) continue;
        visit(path.resolve(path.dirname(file), specifier), [...trail, rel(file)]);
      }
    };
    for (const file of costFiles) visit(file, []);
    expect(seen.size).toBeGreaterThan(costFiles.length); // it did follow imports out of cost/
    expect(paths).toEqual([]);
  });

  it('routing does use cost/: the flow has a direction, not a wall', () => {
    const routingFiles = fs
      .readdirSync(path.join(SRC, 'routing'))
      .map((name) => path.join(SRC, 'routing', name));
    const intoCost = routingFiles.filter((file) =>
      importsOf(fs.readFileSync(file, 'utf8')).some(
        ({ specifier, typeOnly }) =>
          !typeOnly && rel(path.resolve(path.dirname(file), specifier)).startsWith('cost/'),
      ),
    );
    expect(intoCost.map(rel)).toEqual(expect.arrayContaining(['routing/config.ts', 'routing/cost.ts']));
  });
});
