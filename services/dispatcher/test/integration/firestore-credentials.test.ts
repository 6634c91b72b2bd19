// The cloud ledger without credentials (off Google Cloud, no ADC): the Firestore client is not made
// until credentials can be found, since one made without them fails every call until a restart and
// leaves rejections that nobody awaits. Each use of the ledger fails with a CredentialsError, which
// the HTTP layer answers with 500 (Pub/Sub delivers again), and the next use looks again.
import { Writable } from 'node:stream';
import { afterEach, beforeEach, expect, it } from 'vitest';
import { parseConfig } from '../../src/config.ts';
import { CredentialsError } from '../../src/gcp/clients.ts';
import { buildCloudDispatcher } from '../../src/gcp/wiring.ts';
import { createLogger } from '../../src/logger.ts';
import { testCloudEnv } from './test-launchers.ts';

const saved = { ...process.env };
const stray: unknown[] = [];
const onStray = (reason: unknown) => stray.push(reason);

beforeEach(() => {
  // No credentials anywhere: a key file that is not there, and the metadata server not looked for.
  process.env.GOOGLE_APPLICATION_CREDENTIALS = '/nonexistent/pipeline-test-key.json';
  process.env.METADATA_SERVER_DETECTION = 'none';
  delete process.env.FIRESTORE_EMULATOR_HOST;
  process.on('unhandledRejection', onStray);
});
afterEach(() => {
  process.off('unhandledRejection', onStray);
  process.env = { ...saved };
});

it('fails each ledger call with a CredentialsError, makes no Firestore client, and leaves no stray rejection', async () => {
  const config = parseConfig(testCloudEnv());
  const logger = createLogger(new Writable({ write: (_chunk, _encoding, done) => done() }));
  const cloud = buildCloudDispatcher(config, logger);
  try {
    for (let call = 0; call < 2; call++) {
      const err = await cloud.ledger.get('ab'.repeat(16)).catch((e: unknown) => e);
      expect(err).toBeInstanceOf(CredentialsError);
      expect((err as Error).message).toMatch(/^the Firestore client has no credentials: /);
    }
    // Whatever a library left unawaited would surface by now.
    await new Promise((resolve) => setImmediate(resolve));
    expect(stray).toEqual([]);
  } finally {
    await cloud.close();
  }
});
