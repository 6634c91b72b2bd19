// Pub/Sub push envelopes carrying Cloud Storage notifications (JSON_API_V1), parsed into a typed
// StorageEvent. Pure: no I/O, no Google client. See ../../shared/fixtures for the shapes.

export type StorageEventType =
  'OBJECT_FINALIZE' | 'OBJECT_METADATA_UPDATE' | 'OBJECT_DELETE' | 'OBJECT_ARCHIVE';
export const STORAGE_EVENT_TYPES: readonly StorageEventType[] = [
  'OBJECT_FINALIZE',
  'OBJECT_METADATA_UPDATE',
  'OBJECT_DELETE',
  'OBJECT_ARCHIVE',
];

/** One version of one object, as a notification describes it. */
export interface StorageObject {
  bucket: string;
  name: string;
  /** Object generation, kept as the decimal string it arrives as (it can exceed 2^53). */
  generation: string;
  size: number;
  contentType?: string;
  /** Custom metadata (x-goog-meta-*), e.g. `pipeline-runtime`. */
  metadata: Record<string, string>;
  md5Hash?: string;
  crc32c?: string;
  timeCreated?: string;
}

export interface StorageEvent {
  eventType: StorageEventType;
  object: StorageObject;
  messageId?: string;
  publishTime?: string;
  /** The generation this one replaced (FINALIZE of an overwrite). */
  overwroteGeneration?: string;
}

/** The HTTP body of a Pub/Sub push delivery. */
export interface PushEnvelope {
  message: {
    data?: string;
    attributes?: Record<string, string>;
    messageId?: string;
    message_id?: string;
    publishTime?: string;
    publish_time?: string;
  };
  subscription?: string;
}

export function isPushEnvelope(body: unknown): body is PushEnvelope {
  if (!isRecord(body) || !isRecord(body.message)) return false;
  const { data, attributes } = body.message;
  if (data !== undefined && typeof data !== 'string') return false;
  if (
    attributes !== undefined &&
    (!isRecord(attributes) || !Object.values(attributes).every((v) => typeof v === 'string'))
  ) {
    return false;
  }
  return true;
}

/**
 * What a push delivery means for the pipeline:
 * - `event`: a storage notification (of any type: the caller starts work only for OBJECT_FINALIZE);
 * - `not-storage`: a well-formed message that is not a storage notification (acknowledge, ignore);
 * - `malformed`: not a push envelope, or a storage notification whose payload can't be read.
 */
export type PushParse =
  | { kind: 'event'; event: StorageEvent }
  | { kind: 'not-storage'; reason: string; messageId?: string }
  | { kind: 'malformed'; reason: string; messageId?: string };

export function parsePush(body: unknown): PushParse {
  if (!isPushEnvelope(body)) return { kind: 'malformed', reason: 'the body is not a Pub/Sub push envelope' };
  const message = body.message;
  const messageId = message.messageId ?? message.message_id;
  const attributes = message.attributes ?? {};
  const eventType = attributes.eventType;
  if (eventType === undefined || attributes.bucketId === undefined || attributes.objectId === undefined) {
    return { kind: 'not-storage', reason: 'no eventType, bucketId and objectId attributes', messageId };
  }
  if (!(STORAGE_EVENT_TYPES as readonly string[]).includes(eventType)) {
    return {
      kind: 'malformed',
      reason: `unknown storage event type ${JSON.stringify(eventType)}`,
      messageId,
    };
  }
  if (attributes.payloadFormat !== undefined && attributes.payloadFormat !== 'JSON_API_V1') {
    return {
      kind: 'malformed',
      reason: `payload format ${attributes.payloadFormat} (the notification must use JSON_API_V1)`,
      messageId,
    };
  }
  let resource: unknown;
  try {
    resource = JSON.parse(Buffer.from(message.data ?? '', 'base64').toString('utf8'));
  } catch {
    return { kind: 'malformed', reason: 'message.data is not base64 of a JSON object resource', messageId };
  }
  const object = parseObjectResource(resource);
  if (typeof object === 'string') return { kind: 'malformed', reason: object, messageId };
  if (object.bucket !== attributes.bucketId || object.name !== attributes.objectId) {
    return {
      kind: 'malformed',
      reason: 'the object resource does not match the bucketId/objectId attributes',
      messageId,
    };
  }
  if (attributes.objectGeneration !== undefined && attributes.objectGeneration !== object.generation) {
    return {
      kind: 'malformed',
      reason: 'the object resource does not match the objectGeneration attribute',
      messageId,
    };
  }
  return {
    kind: 'event',
    event: {
      eventType: eventType as StorageEventType,
      object,
      messageId,
      publishTime: message.publishTime ?? message.publish_time,
      overwroteGeneration: attributes.overwroteGeneration,
    },
  };
}

/** Reads a JSON_API_V1 object resource; a string is the reason it can't be read. */
export function parseObjectResource(resource: unknown): StorageObject | string {
  if (!isRecord(resource)) return 'the object resource is not a JSON object';
  const { bucket, name, generation, size, contentType, metadata, md5Hash, crc32c, timeCreated } = resource;
  if (typeof bucket !== 'string' || bucket === '') return 'the object resource has no bucket';
  if (typeof name !== 'string' || name === '') return 'the object resource has no name';
  const generationText = typeof generation === 'number' ? String(generation) : generation;
  if (typeof generationText !== 'string' || !/^\d{1,20}$/.test(generationText)) {
    return 'the object resource has no valid generation';
  }
  const sizeNumber = typeof size === 'string' && /^\d+$/.test(size) ? Number(size) : size;
  if (typeof sizeNumber !== 'number' || !Number.isSafeInteger(sizeNumber) || sizeNumber < 0) {
    return 'the object resource has no valid size';
  }
  if (
    metadata !== undefined &&
    (!isRecord(metadata) || !Object.values(metadata).every((v) => typeof v === 'string'))
  ) {
    return 'the object resource metadata is not a map of strings';
  }
  return {
    bucket,
    name,
    generation: generationText,
    size: sizeNumber,
    contentType: typeof contentType === 'string' ? contentType : undefined,
    metadata: (metadata as Record<string, string> | undefined) ?? {},
    md5Hash: typeof md5Hash === 'string' ? md5Hash : undefined,
    crc32c: typeof crc32c === 'string' ? crc32c : undefined,
    timeCreated: typeof timeCreated === 'string' ? timeCreated : undefined,
  };
}

function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}
