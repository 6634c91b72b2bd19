import net from 'node:net';
import { expect, it } from 'vitest';
import { isLoopbackHost } from '../../../test/support/loopback-only.ts';

it('the test setup refuses connections beyond loopback, the metadata server first of all', () => {
  expect(() => net.connect({ host: '169.254.169.254', port: 80 })).toThrow(
    /refused a connection to 169.254.169.254:80/,
  );
  expect(() => net.connect(443, 'storage.googleapis.com')).toThrow(/tests talk only to loopback/);
  expect(process.env.METADATA_SERVER_DETECTION).toBe('none');
});

it.each([
  ['127.0.0.1', true],
  ['127.8.9.10', true],
  ['localhost', true],
  ['::1', true],
  ['10.0.0.1', false],
  ['169.254.169.254', false],
  ['metadata.google.internal', false],
])('%s is loopback: %s', (host, expected) => {
  expect(isLoopbackHost(host)).toBe(expected);
});
