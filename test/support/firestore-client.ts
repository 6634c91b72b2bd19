// The Firestore client the integration suites give the ledger, pointed at a Firestore emulator.
import { Firestore } from '@google-cloud/firestore';

/**
 * A client of the emulator at `host`. `ssl: false` makes it use insecure channel credentials and
 * `Bearer owner`, as the emulator wants. Naming the universe domain keeps google-gax from asking
 * google-auth-library for one, which would look for credentials and then for the metadata server.
 * FIRESTORE_EMULATOR_HOST, if set, would win over `host`: the suites that start their own emulator
 * unset it.
 */
export function emulatorFirestore(host: string, projectId = 'test-project'): Firestore {
  return new Firestore({ projectId, host, ssl: false, universeDomain: 'googleapis.com' });
}
