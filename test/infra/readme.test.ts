// The README against what ships: its routing sample is the shipped pipeline.config.json, so the two
// cannot drift; and passages that went stale once do not come back.
import fs from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { parseRoutingConfig } from '@pipeline/core';

const ROOT = path.resolve(import.meta.dirname, '../..');
const README = fs.readFileSync(path.join(ROOT, 'README.md'), 'utf8');

/** The first ```json block after `heading`. */
function jsonBlockAfter(heading: string): unknown {
  const at = README.indexOf(`\n${heading}\n`);
  expect(at, `README has no ${heading}`).toBeGreaterThan(0);
  const block = /```json\n([\s\S]*?)```/.exec(README.slice(at));
  expect(block, `no json block after ${heading}`).not.toBeNull();
  return JSON.parse(block![1]);
}

describe('the README', () => {
  it('shows the shipped routing rules as its routing sample, and they parse', () => {
    const shipped = JSON.parse(fs.readFileSync(path.join(ROOT, 'pipeline.config.json'), 'utf8'));
    const sample = jsonBlockAfter('## Routing');
    expect(sample).toEqual(shipped);
    expect(() => parseRoutingConfig(sample)).not.toThrow();
  });

  it('says nothing that was true only before POST /reconcile or per-job outputs existed', () => {
    expect(README).not.toContain('Until `/reconcile` exists');
    expect(README).not.toContain('local/output/<object>/logs');
    expect(README).not.toContain('pipeline run --task logreg --env TARGET_COLUMN');
  });
});
