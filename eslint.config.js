// @ts-check
import js from '@eslint/js';
import tseslint from 'typescript-eslint';

// packages/core is the domain: pure decisions that the adapters (services/, jobs/) run. It reaches no
// cloud, serves no HTTP, touches no disk, starts no process and reads no environment; the adapters do
// that and hand core the results. These rules hold core to it (test/infra/core-imports.test.ts checks
// that they do).
const CORE_FORBIDDEN = {
  paths: [
    { name: 'express', message: 'core serves no HTTP: express belongs to services/dispatcher.' },
    {
      name: 'node:process',
      importNames: ['env'],
      message: 'core reads no environment: an adapter passes the values in.',
    },
    {
      name: 'process',
      importNames: ['env'],
      message: 'core reads no environment: an adapter passes the values in.',
    },
  ],
  patterns: [
    {
      group: [
        '@google-cloud/*',
        'google-auth-library',
        'google-auth-library/*',
        'googleapis',
        'googleapis/*',
        'gcp-metadata',
        'gcp-metadata/*',
      ],
      message:
        'core uses no Google client: the adapters (services/dispatcher/src/gcp, jobs/) implement its ports.',
    },
    { group: ['express/*'], message: 'core serves no HTTP: express belongs to services/dispatcher.' },
    {
      group: ['fs', 'fs/*', 'node:fs', 'node:fs/*'],
      message: 'core touches no disk: an adapter reads the file and passes its contents in.',
    },
    {
      group: ['child_process', 'node:child_process'],
      message: 'core starts no process: that is a launcher, an adapter.',
    },
  ],
};
// The same modules through import() or require(), and process.env however it is reached.
const CORE_FORBIDDEN_SYNTAX = [
  {
    selector:
      'ImportExpression[source.value=/^(node:)?(fs|child_process)(\\/|$)|^@google-cloud\\/|^(google-auth-library|googleapis|gcp-metadata|express)(\\/|$)/]',
    message: 'core imports no Google client, express, node:fs or node:child_process, not even with import().',
  },
  {
    selector: "CallExpression[callee.name='require']",
    message: 'core is ES modules: require() would get round its import rules.',
  },
  {
    selector: "MemberExpression[object.property.name='process'][property.name='env']",
    message: 'core reads no environment: an adapter passes the values in.',
  },
];
const CORE_FORBIDDEN_PROPERTIES = [
  {
    object: 'process',
    property: 'env',
    message: 'core reads no environment: an adapter passes the values in.',
  },
];
// Imports between routing/ and cost/ flow one way: routing prices its choices with cost/, so cost/
// imports nothing of routing (packages/core/test/layering.test.ts checks the run-time graph too).
const COST_FORBIDDEN = {
  paths: CORE_FORBIDDEN.paths,
  patterns: [
    ...CORE_FORBIDDEN.patterns,
    {
      group: ['../routing', '../routing/*', '../routing.ts', '**/routing/*', '**/routing.ts'],
      message:
        'cost/ imports nothing of routing (routing uses cost/); what both need is in template.ts, platforms.ts, readers.ts.',
    },
  ],
};

export default tseslint.config(
  { ignores: ['node_modules/', '**/node_modules/', 'local/', 'coverage/', '**/*.d.ts'] },
  js.configs.recommended,
  ...tseslint.configs.recommended,
  {
    languageOptions: {
      globals: { process: 'readonly', console: 'readonly', Buffer: 'readonly', URL: 'readonly' },
    },
    rules: {
      '@typescript-eslint/no-unused-vars': ['error', { argsIgnorePattern: '^_', varsIgnorePattern: '^_' }],
      'no-constant-condition': ['error', { checkLoops: false }],
    },
  },
  {
    files: ['packages/core/**/*.{ts,js}'],
    rules: {
      'no-restricted-imports': ['error', CORE_FORBIDDEN],
      'no-restricted-syntax': ['error', ...CORE_FORBIDDEN_SYNTAX],
      'no-restricted-properties': ['error', ...CORE_FORBIDDEN_PROPERTIES],
    },
  },
  {
    files: ['packages/core/src/cost/**/*.{ts,js}'],
    rules: { 'no-restricted-imports': ['error', COST_FORBIDDEN] },
  },
  {
    // Core's tests read their fixtures and the files whose layering they check (node:fs), and one
    // runs the workload generator (node:child_process): a test is an adapter of a kind. Google's
    // clients, express and process.env stay out of them as well.
    files: ['packages/core/test/**/*.{ts,js}'],
    rules: {
      'no-restricted-imports': [
        'error',
        {
          paths: CORE_FORBIDDEN.paths,
          patterns: CORE_FORBIDDEN.patterns.filter(
            ({ group }) => !group.includes('fs') && !group.includes('child_process'),
          ),
        },
      ],
      'no-restricted-syntax': [
        'error',
        ...CORE_FORBIDDEN_SYNTAX.filter(({ selector }) => !selector.startsWith('ImportExpression')),
      ],
    },
  },
);
