// FirestoreBackfillStore on the Firestore emulator: the same contract as the sqlite store's.
import type { Firestore } from '@google-cloud/firestore';
import { afterAll, beforeAll, it } from 'vitest';
import { FirestoreBackfillStore } from '../../src/gcp/firestore-backfill-store.ts';
import { describeWithEmulators, startEmulator, type Emulator } from '../../../../test/support/emulators.ts';
import { checkBackfillStore } from '../../../../test/support/backfill-store-contract.ts';
import { emulatorFirestore } from '../../../../test/support/firestore-client.ts';

describeWithEmulators(['firestore'], 'FirestoreBackfillStore on the Firestore emulator', () => {
  let emulator: Emulator | undefined;
  let firestore: Firestore | undefined;

  beforeAll(async () => {
    emulator = await startEmulator('firestore');
    // As firestore-ledger.test.ts: the variable would win over `host`; no credentials are looked for.
    delete process.env.FIRESTORE_EMULATOR_HOST;
    firestore = emulatorFirestore(emulator.host);
  }, 90_000);

  afterAll(async () => {
    await firestore?.terminate();
    await emulator?.stop();
  });

  it('keeps backfill records with compare-and-set, newest first, RUNNING oldest first', () =>
    checkBackfillStore(new FirestoreBackfillStore({ firestore: firestore!, collection: 'jobs-backfills' })));
});
