// The Cloud Run and Compute Engine launchers as the integration tests build them: the real clients
// (REST) pointed at a loopback double, project acme in europe-west1, with the caller's credentials.
import type { AuthClient } from 'google-auth-library';
import {
  executionsClient,
  instancesClient,
  jobsClient,
  tasksClient,
  zoneOperationsClient,
} from '../../src/gcp/clients.ts';
import { CloudRunJobLauncher } from '../../src/gcp/run-launcher.ts';
import type { ComputeEngineLauncherSettings } from '../../src/gcp/compute-launcher.ts';

export function testRunLauncher(endpoint: string, authClient: AuthClient): CloudRunJobLauncher {
  const clients = { endpoint, authClient };
  return new CloudRunJobLauncher({
    project: 'acme',
    region: 'europe-west1',
    job: 'pipeline-worker',
    client: () => jobsClient(clients),
    executions: () => executionsClient(clients),
    tasks: () => tasksClient(clients),
  });
}

/** Settings of a Compute launcher in europe-west1-b; `changes` override any of them. */
export function testComputeSettings(
  endpoint: string,
  authClient: AuthClient,
  changes: Partial<ComputeEngineLauncherSettings> = {},
): ComputeEngineLauncherSettings {
  const clients = { endpoint, authClient };
  return {
    project: 'acme',
    zone: 'europe-west1-b',
    image: 'europe-west1-docker.pkg.dev/acme/pipeline/worker:1',
    serviceAccount: 'vm-worker@acme.iam.gserviceaccount.com',
    defaultMachineType: 'e2-standard-4',
    startupScript: '#!/bin/sh\n',
    instances: () => instancesClient(clients),
    operations: () => zoneOperationsClient(clients),
    ...changes,
  };
}
