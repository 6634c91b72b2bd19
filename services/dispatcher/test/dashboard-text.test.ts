// The dashboard's text.js, which touches no DOM, run in node: what the list leaves out of reasons,
// a failure's gist, log lines read as entries, progress reports, and model.json's words. What they
// look like drawn is dashboard.browser.test.ts's part.
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import { describe, expect, it } from 'vitest';

interface Entry {
  kind: 'entry' | 'text';
  text?: string;
  time?: string | number;
  severity?: string;
  message?: string;
  fields?: [string, unknown][];
}
interface Progress {
  bytesRead: number;
  totalBytes?: number;
  rows?: number;
  done: boolean;
}
interface TextModule {
  sharedParts(texts: (string | undefined)[]): { prefix: string; suffix: string };
  withoutShared(text: string | undefined, parts: { prefix: string; suffix: string }): string | undefined;
  errorGist(error: string | undefined): string;
  parseLogLine(line: string): Entry;
  severityLook(severity: string): string;
  progressOf(entry: Entry): Progress | undefined;
  progressText(progress: Progress): string;
  targetChoiceText(chosenBy: unknown): string | undefined;
  delimiterText(delimiter: unknown, chosenBy?: unknown): string | undefined;
}

// A browser module without types of its own: loaded by URL, and held to the interface above.
const text = (await import(
  pathToFileURL(path.resolve(import.meta.dirname, '../src/dashboard/text.js')).href
)) as TextModule;

describe('the reasons the list shows', () => {
  const BIG = [
    'rule "big" matched (size 2.0 MiB ≥ 1 MiB): vm e2-standard-8',
    'rule "big" matched (size 35.0 MiB ≥ 1 MiB): vm e2-standard-8',
  ];

  it('leaves out what every reason starts and ends with, on word boundaries', () => {
    const parts = text.sharedParts([...BIG, undefined, BIG[0]]);
    expect(parts).toEqual({ prefix: 'rule "big" matched (size ', suffix: ' MiB ≥ 1 MiB): vm e2-standard-8' });
    expect(BIG.map((reason) => text.withoutShared(reason, parts))).toEqual(['… 2.0 …', '… 35.0 …']);
    expect(text.withoutShared(undefined, parts)).toBeUndefined();
  });

  it('keeps reasons whole when they share little, or are all the same', () => {
    const different = [
      'rule "csv" matched (path matches "**.csv"): cloud-run-job',
      'rule "big" matched (size 2.0 MiB ≥ 1 MiB): vm e2-standard-8',
    ];
    expect(text.sharedParts(different)).toEqual({ prefix: '', suffix: '' }); // "rule " is not worth an ellipsis
    expect(text.sharedParts([BIG[0], BIG[0], undefined])).toEqual({ prefix: '', suffix: '' });
    expect(text.sharedParts([BIG[0]])).toEqual({ prefix: '', suffix: '' });
    expect(text.withoutShared(different[0], { prefix: '', suffix: '' })).toBe(different[0]);
  });

  it('leaves every reason something of its own', () => {
    const nested = ['waiting for capacity: vCPU quota', 'waiting for capacity: vCPU quota in us-central1'];
    const parts = text.sharedParts(nested);
    expect(parts).toEqual({ prefix: 'waiting for capacity: vCPU ', suffix: '' });
    expect(nested.map((reason) => text.withoutShared(reason, parts))).toEqual([
      '… quota',
      '… quota in us-central1',
    ]);
  });
});

describe('the gist of an error', () => {
  it('is its first line, or the message of a JSON log line, cut to what the list can show', () => {
    expect(
      text.errorGist('pipeline-worker: the target "label" has one class only ("x")\n    at fit (x.ts:1)'),
    ).toBe('pipeline-worker: the target "label" has one class only ("x")');
    expect(text.errorGist('\n{"severity":"ERROR","message":"cannot read gs://b/x.csv","code":403}\n')).toBe(
      'cannot read gs://b/x.csv',
    );
    const long = text.errorGist(`error ${'word '.repeat(100)}`);
    expect(long).toHaveLength(160);
    expect(long.endsWith('…')).toBe(true);
    expect(text.errorGist(undefined)).toBe('');
  });
});

describe('log lines', () => {
  it('reads a JSON line as its time, severity, message and the other fields in order', () => {
    const entry = text.parseLogLine(
      '{"severity":"WARNING","message":"many classes","classes":31,"jobId":"abc","time":"2026-12-01T10:00:00Z"}',
    );
    expect(entry).toMatchObject({
      kind: 'entry',
      time: '2026-12-01T10:00:00Z',
      severity: 'WARNING',
      message: 'many classes',
      fields: [
        ['classes', 31],
        ['jobId', 'abc'],
      ],
    });
    expect(text.severityLook(entry.severity!)).toBe('warning');
  });

  it("reads pino's lines too, and anything that is not a JSON object as text", () => {
    expect(
      text.parseLogLine('{"level":50,"time":1764583200000,"msg":"request failed","path":"/x"}'),
    ).toMatchObject({
      kind: 'entry',
      severity: 'ERROR',
      time: 1764583200000,
      message: 'request failed',
      fields: [['path', '/x']],
    });
    for (const line of [
      'pipeline-worker: bad input',
      '{"severity": "INFO", "message": "cut sho',
      '[1,2]',
      '{',
    ])
      expect(text.parseLogLine(line)).toEqual({ kind: 'text', text: line });
    expect(text.parseLogLine('{"message":"no severity"}\r')).toMatchObject({
      severity: 'DEFAULT',
      fields: [],
    });
  });

  it("finds the worker's progress reports, and says them as its own lines do", () => {
    const line =
      '{"severity":"INFO","message":"read 120.0 MB of 354.0 MB (33.9%), 1,200,000 rows","progress":{"bytesRead":120000000,"totalBytes":354000000,"rows":1200000}}';
    const progress = text.progressOf(text.parseLogLine(line));
    expect(progress).toEqual({
      bytesRead: 120_000_000,
      totalBytes: 354_000_000,
      rows: 1_200_000,
      done: false,
    });
    expect(text.progressText(progress!)).toBe('120.0 MB of 354.0 MB (33.9%) · 1,200,000 rows');
    expect(text.progressText({ bytesRead: 5_000_000, done: false })).toBe('5.0 MB read');
    expect(text.progressText({ bytesRead: 354_000_000, totalBytes: 354_000_000, rows: 10, done: true })).toBe(
      '354.0 MB of 354.0 MB (100.0%) · 10 rows · input read, fitting',
    );
    expect(
      text.progressOf(text.parseLogLine('{"severity":"INFO","message":"input loaded","rows":3}')),
    ).toBeUndefined();
    expect(text.progressOf(text.parseLogLine('{"progress":{"bytesRead":"many"}}'))).toBeUndefined();
    expect(text.progressOf(text.parseLogLine('read 1 MB'))).toBeUndefined();
  });
});

describe("model.json's words", () => {
  it('says how the target and the delimiter were chosen, and shows a choice it does not know as it is', () => {
    expect(text.targetChoiceText('label column')).toBe('the column named "label" (TARGET_COLUMN not set)');
    expect(text.targetChoiceText('TARGET_COLUMN')).toBe('named by TARGET_COLUMN');
    expect(text.targetChoiceText('a newer way')).toBe('a newer way');
    expect(text.targetChoiceText(undefined)).toBeUndefined();
    expect(text.delimiterText('\t', 'DELIMITER')).toBe('tab · named by DELIMITER');
    expect(text.delimiterText(';', 'detected')).toBe('semicolon ; · detected from the header');
    expect(text.delimiterText('#')).toBe('"#"');
    expect(text.delimiterText(undefined)).toBeUndefined();
  });
});
