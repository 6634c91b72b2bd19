// The agent's reading of the gs:// URIs of its task (the log object, the shared prefix).
import { describe, expect, it } from 'vitest';
import { gsLocation, saveLog } from '../src/gcs.ts';

describe('gsLocation', () => {
  it.each([
    ['gs://out/data.csv/logs/attempt-1.log', { bucket: 'out', name: 'data.csv/logs/attempt-1.log' }],
    ['gs://shared-bucket/certs/', { bucket: 'shared-bucket', name: 'certs/' }],
    ['gs://shared.example.com', { bucket: 'shared.example.com', name: '' }],
    ['gs://b_1/a name with\nnewline', { bucket: 'b_1', name: 'a name with\nnewline' }],
  ])('%j', (uri, location) => {
    expect(gsLocation(uri, 'sharedUri')).toEqual(location);
  });

  it.each(['', 'out/data.csv', 's3://out/x', 'gs://', 'gs://Upper/x', 'gs://a/x', 'gs://-bad-/x'])(
    'refuses %j',
    (uri) => {
      expect(() => gsLocation(uri, 'sharedUri')).toThrow(
        `sharedUri ${uri} is not a gs:// URI of a valid bucket`,
      );
    },
  );

  it('a log URI must name an object, not a bucket', async () => {
    await expect(saveLog('gs://out', Buffer.from('x'))).rejects.toThrow(
      'log URI gs://out is not a gs:// object',
    );
    await expect(saveLog('gs://out/', Buffer.from('x'))).rejects.toThrow(
      'log URI gs://out/ is not a gs:// object',
    );
  });
});
