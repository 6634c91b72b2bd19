import { describe, expect, it } from 'vitest';
import { parseWorkerConfig } from '../src/config.ts';
import { UsageError } from '../src/errors.ts';

describe('parseWorkerConfig', () => {
  it('reads flags', () => {
    expect(
      parseWorkerConfig(
        ['--input', 'in.csv', '--output', 'out', '--target', 'y', '--c', '0.5', '--exclude', 'a, b'],
        {},
      ),
    ).toEqual({
      task: 'logreg',
      input: { kind: 'local', path: 'in.csv' },
      inputGeneration: undefined,
      output: { kind: 'local', path: 'out' },
      target: 'y',
      exclude: ['a', 'b'],
      c: 0.5,
      jobId: undefined,
      attempt: 1,
    });
  });

  it('reads the container environment, and a flag wins over its variable', () => {
    const config = parseWorkerConfig(['--c', '2'], {
      INPUT_URI: 'gs://in-bucket/statements/q3 file.csv',
      INPUT_GENERATION: '1763771234567890',
      OUTPUT_URI: 'gs://out-bucket/statements/q3 file.csv/',
      JOB_ID: 'abc',
      ATTEMPT: '3',
      TASK: 'logreg',
      REGULARIZATION_C: '7',
    });
    expect(config).toMatchObject({
      input: { kind: 'gcs', bucket: 'in-bucket', name: 'statements/q3 file.csv' },
      inputGeneration: '1763771234567890',
      output: { kind: 'gcs', bucket: 'out-bucket', name: 'statements/q3 file.csv/' },
      jobId: 'abc',
      attempt: 3,
      c: 2,
    });
  });

  it.each([
    { argv: ['--delimiter', ';'], env: {}, delimiter: ';' },
    { argv: ['--delimiter', 'tab'], env: {}, delimiter: '\t' },
    { argv: [], env: { DELIMITER: '|' }, delimiter: '|' },
    { argv: [], env: { DELIMITER: '\\t' }, delimiter: '\t' },
    { argv: [], env: { DELIMITER: '' }, delimiter: undefined },
    { argv: [], env: {}, delimiter: undefined },
  ])('reads the delimiter from $argv / $env', ({ argv, env, delimiter }) => {
    const config = parseWorkerConfig(['--input', 'a', '--output', 'b', ...argv], env);
    expect(config.delimiter).toBe(delimiter);
  });

  it.each([
    { argv: [], env: {}, message: 'no input: pass --input or set INPUT_URI' },
    {
      argv: ['--input', 'a', '--output', 'b'],
      env: { DELIMITER: 'space' },
      message:
        '--delimiter / DELIMITER must be one of , ; | tab (or \\t for tab), got "space"; leave it unset to detect the delimiter from the header',
    },
    { argv: ['--input', 'a'], env: {}, message: 'no output: pass --output or set OUTPUT_URI' },
    {
      argv: ['--input', 'a', '--output', 'b', '--c=-1'],
      env: {},
      message: '--c / REGULARIZATION_C must be a positive number, got "-1"',
    },
    {
      argv: ['--input', 'a', '--output', 'b', '--c', 'abc'],
      env: {},
      message: '--c / REGULARIZATION_C must be a positive number, got "abc"',
    },
    {
      argv: ['--input', 'a', '--output', 'b'],
      env: { TASK: 'resize' },
      message: 'TASK "resize" is not a task of this worker (known: logreg)',
    },
    {
      argv: ['--input', 'a', '--output', 'b'],
      env: { ATTEMPT: '0' },
      message: 'ATTEMPT must be a whole number >= 1, got "0"',
    },
    {
      argv: ['--input', 'gs://b-1/x', '--output', 'b'],
      env: { INPUT_GENERATION: '12; rm -rf /' },
      message: 'INPUT_GENERATION must be an object generation (digits), got "12; rm -rf /"',
    },
    {
      argv: ['--input', 'gs://Bad_Bucket!/x', '--output', 'b'],
      env: {},
      message: 'input "gs://Bad_Bucket!/x" does not name a valid bucket',
    },
    {
      argv: ['--input', 's3://bucket/x', '--output', 'b'],
      env: {},
      message: 'input "s3://bucket/x" is neither a local path nor a gs:// URI',
    },
    { argv: ['--input', 'a', '--output', 'b', 'extra'], env: {}, message: /Unexpected argument 'extra'/ },
  ])('refuses $message', ({ argv, env, message }) => {
    expect(() => parseWorkerConfig(argv, env)).toThrow(UsageError);
    expect(() => parseWorkerConfig(argv, env)).toThrow(message);
  });
});
