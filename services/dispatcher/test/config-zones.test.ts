// VM_ZONES, the zones a VM is tried in (config.ts); beside config.test.ts, which covers the rest.
import { describe, expect, it } from 'vitest';
import { ConfigError, parseConfig } from '../src/config.ts';

const ENV = {
  GOOGLE_CLOUD_PROJECT: 'acme-prod',
  REGION: 'us-central1',
  ZONE: 'us-central1-a',
  OUTPUT_BUCKET: 'acme-pipeline-output',
  WORKER_JOB: 'pipeline-worker',
  WORKER_IMAGE: 'us-central1-docker.pkg.dev/acme-prod/pipeline/worker:1',
  WORKER_SERVICE_ACCOUNT: 'worker@acme-prod.iam.gserviceaccount.com',
  COMPLETIONS_TOPIC: 'pipeline-completions',
  PUSH_AUTH: 'off',
};

describe('VM_ZONES', () => {
  it.each([
    [undefined, ['us-central1-a']],
    ['', ['us-central1-a']],
    ['us-central1-b', ['us-central1-b']],
    ['us-central1-a, us-central1-b,us-central1-f', ['us-central1-a', 'us-central1-b', 'us-central1-f']],
  ])('%j is tried as %j', (value, zones) => {
    const env = value === undefined ? ENV : { ...ENV, VM_ZONES: value };
    expect(parseConfig(env).vm.zones).toEqual(zones);
  });

  it.each([
    ['europe-west1-b', 'VM_ZONES: europe-west1-b is not in REGION us-central1'],
    ['us-central1', 'VM_ZONES: "us-central1" is not a zone like us-central1-a'],
    ['us-central1-a,,us-central1-b', 'VM_ZONES: "" is not a zone like us-central1-a'],
    ['us-central1-a,us-central1-a', 'VM_ZONES: us-central1-a,us-central1-a names a zone twice'],
  ])('refuses %j', (value, message) => {
    expect(() => parseConfig({ ...ENV, VM_ZONES: value })).toThrow(ConfigError);
    expect(() => parseConfig({ ...ENV, VM_ZONES: value })).toThrow(message);
  });
});
