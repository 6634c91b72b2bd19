// /dashboard/core.js, the module through which the page shares @pipeline/core's state lists and
// formatters: served with the dashboard's headers, importable as plain JavaScript, and exporting the
// same lists and functions, with the same results, as core itself.
import express from 'express';
import request from 'supertest';
import { describe, expect, it } from 'vitest';
import * as core from '@pipeline/core';
import * as format from '../../../packages/core/src/format.ts';
import { CORE_STATE_LISTS, DASHBOARD_CSP, dashboardRouter } from '../src/dashboard/router.ts';

async function served(): Promise<{ text: string; headers: Record<string, string> }> {
  const app = express().use(dashboardRouter((_req, _res, next) => next()));
  const res = await request(app).get('/dashboard/core.js').expect(200);
  return { text: res.text, headers: res.headers as Record<string, string> };
}

/** The served text as a browser gets it: an ES module of plain JavaScript (a type left in fails here). */
async function importServed(): Promise<Record<string, unknown>> {
  const { text } = await served();
  return (await import(`data:text/javascript;base64,${Buffer.from(text).toString('base64')}`)) as Record<
    string,
    unknown
  >;
}

describe('GET /dashboard/core.js', () => {
  it('is JavaScript with the dashboard headers', async () => {
    const { headers } = await served();
    expect(headers['content-type']).toBe('text/javascript; charset=utf-8');
    expect(headers['content-security-policy']).toBe(DASHBOARD_CSP);
    expect(headers['x-content-type-options']).toBe('nosniff');
  });

  it("exports core's state lists, frozen", async () => {
    const module = await importServed();
    expect(Object.keys(CORE_STATE_LISTS)).toEqual([
      'JOB_STATES',
      'FINAL_STATES',
      'ACTIVE_STATES',
      'RETRYABLE_STATES',
    ]);
    for (const name of Object.keys(CORE_STATE_LISTS)) {
      expect(module[name], name).toEqual(core[name as keyof typeof CORE_STATE_LISTS]);
      expect(Object.isFrozen(module[name]), name).toBe(true);
    }
    expect(module.RETRYABLE_STATES).toEqual(['FAILED', 'CANCELLED']);
  });

  it('exports what format.ts exports, and nothing else', async () => {
    const module = await importServed();
    expect(Object.keys(module).sort()).toEqual(
      [...Object.keys(format), ...Object.keys(CORE_STATE_LISTS)].sort(),
    );
    expect(module.DURATION_UNITS).toEqual(format.DURATION_UNITS);
  });

  it("formats as core's formatters do", async () => {
    const module = await importServed();
    const numbers = [
      0,
      0.04,
      0.4,
      1,
      4.24,
      9.96,
      41.4,
      59.9,
      100,
      119.6,
      185,
      1023,
      1024,
      1536,
      3600,
      5400,
      93_784,
      512 * 1024 ** 2,
      3.2 * 1024 ** 3,
      1024 ** 3 - 1,
      2 * 1024 ** 4,
      1e-9,
      0.00045,
      0.0604,
      0.19,
      12.345,
    ];
    for (const name of ['formatBytes', 'formatDuration', 'formatSeconds', 'formatUsd'] as const) {
      const served = module[name] as (n: number) => string;
      expect(typeof served, name).toBe('function');
      for (const n of numbers) expect(served(n), `${name}(${n})`).toBe(core[name](n));
    }
  });
});
