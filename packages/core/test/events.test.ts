import fs from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { parsePush, type PushEnvelope } from '../src/events.ts';

// Copies of shared/fixtures: real message shapes, from the documentation and the Pub/Sub emulator.
const FIXTURES = path.resolve(import.meta.dirname, 'fixtures');
const fixture = JSON.parse(
  fs.readFileSync(path.join(FIXTURES, 'gcs-object-finalize.push.json'), 'utf8'),
) as PushEnvelope;
const resource = JSON.parse(fs.readFileSync(path.join(FIXTURES, 'gcs-object-finalize.object.json'), 'utf8'));

/** The fixture with some changes to its message, data re-encoded from `object`. */
function envelope(
  changes: {
    attributes?: Record<string, string | undefined>;
    object?: unknown;
    data?: string;
    message?: object;
  } = {},
) {
  const attributes = Object.fromEntries(
    Object.entries({ ...fixture.message.attributes, ...changes.attributes }).filter(
      ([, v]) => v !== undefined,
    ),
  );
  const data = changes.data ?? Buffer.from(JSON.stringify(changes.object ?? resource)).toString('base64');
  return { ...fixture, message: { ...fixture.message, attributes, data, ...changes.message } };
}

describe('parsePush', () => {
  it('reads the real OBJECT_FINALIZE push body', () => {
    expect(parsePush(fixture)).toEqual({
      kind: 'event',
      event: {
        eventType: 'OBJECT_FINALIZE',
        messageId: '13109736486413285',
        publishTime: '2026-11-22T01:47:14.901Z',
        overwroteGeneration: undefined,
        object: {
          bucket: 'acme-pipeline-input',
          name: 'statements/2026/q3/financial_statements.csv',
          generation: '1763771234567890',
          size: 1048576,
          contentType: 'text/csv',
          metadata: { 'pipeline-runtime': 'auto' },
          md5Hash: '1B2M2Y8AsgTpgAmY7PhCfg==',
          crc32c: 'AAAAAA==',
          timeCreated: '2026-11-22T01:47:14.612Z',
        },
      },
    });
  });

  it('takes message_id and publish_time when the camel-case forms are missing', () => {
    const body = envelope({ message: { messageId: undefined, publishTime: undefined } });
    const parsed = parsePush(body);
    expect(parsed.kind === 'event' && [parsed.event.messageId, parsed.event.publishTime]).toEqual([
      '13109736486413285',
      '2026-11-22T01:47:14.901Z',
    ]);
  });

  it('keeps generations beyond 2^53 exact', () => {
    const big = '9007199254740993123';
    const parsed = parsePush(
      envelope({ attributes: { objectGeneration: big }, object: { ...resource, generation: big } }),
    );
    expect(parsed.kind === 'event' && parsed.event.object.generation).toBe(big);
  });

  it.each(['OBJECT_METADATA_UPDATE', 'OBJECT_DELETE', 'OBJECT_ARCHIVE'])(
    'recognises %s as a storage event',
    (eventType) => {
      const parsed = parsePush(envelope({ attributes: { eventType } }));
      expect(parsed.kind === 'event' && parsed.event.eventType).toBe(eventType);
    },
  );

  it('carries overwroteGeneration of an overwrite', () => {
    const parsed = parsePush(envelope({ attributes: { overwroteGeneration: '17' } }));
    expect(parsed.kind === 'event' && parsed.event.overwroteGeneration).toBe('17');
  });

  it.each([
    { name: 'a string', body: 'hello', reason: 'the body is not a Pub/Sub push envelope' },
    { name: 'null', body: null, reason: 'the body is not a Pub/Sub push envelope' },
    { name: 'no message', body: { subscription: 'x' }, reason: 'the body is not a Pub/Sub push envelope' },
    {
      name: 'data not a string',
      body: { message: { data: 5 } },
      reason: 'the body is not a Pub/Sub push envelope',
    },
    {
      name: 'attributes not strings',
      body: { message: { attributes: { eventType: 1 } } },
      reason: 'the body is not a Pub/Sub push envelope',
    },
    {
      name: 'an unknown event type',
      body: envelope({ attributes: { eventType: 'OBJECT_EXPLODE' } }),
      reason: 'unknown storage event type "OBJECT_EXPLODE"',
    },
    {
      name: 'payload format NONE',
      body: envelope({ attributes: { payloadFormat: 'NONE' } }),
      reason: 'payload format NONE (the notification must use JSON_API_V1)',
    },
    {
      name: 'data not base64 JSON',
      body: envelope({ data: '!!!' }),
      reason: 'message.data is not base64 of a JSON object resource',
    },
    {
      name: 'data a JSON array',
      body: envelope({ object: [1] }),
      reason: 'the object resource is not a JSON object',
    },
    {
      name: 'no name',
      body: envelope({ object: { ...resource, name: '' } }),
      reason: 'the object resource has no name',
    },
    {
      name: 'a bad generation',
      body: envelope({ object: { ...resource, generation: '12a' } }),
      reason: 'the object resource has no valid generation',
    },
    {
      name: 'a bad size',
      body: envelope({ object: { ...resource, size: '-1' } }),
      reason: 'the object resource has no valid size',
    },
    {
      name: 'metadata not strings',
      body: envelope({ object: { ...resource, metadata: { a: 1 } } }),
      reason: 'the object resource metadata is not a map of strings',
    },
    {
      name: 'attributes that disagree',
      body: envelope({ attributes: { objectId: 'other.csv' } }),
      reason: 'the object resource does not match the bucketId/objectId attributes',
    },
    {
      name: 'a generation that disagrees',
      body: envelope({ attributes: { objectGeneration: '1' } }),
      reason: 'the object resource does not match the objectGeneration attribute',
    },
  ])('calls $name malformed', ({ body, reason }) => {
    expect(parsePush(body)).toMatchObject({ kind: 'malformed', reason });
  });

  it('calls a message without storage attributes not-storage', () => {
    expect(
      parsePush({ message: { data: Buffer.from('{"hello":1}').toString('base64'), messageId: '7' } }),
    ).toEqual({
      kind: 'not-storage',
      reason: 'no eventType, bucketId and objectId attributes',
      messageId: '7',
    });
  });
});
