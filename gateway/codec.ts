import { Packr, Unpackr } from 'msgpackr';

/**
 * WebSocket frames: JSON in text frames, the same object as a standard MessagePack map in binary frames
 * (no records or other extensions, so any MessagePack library reads them). Fields whose value is
 * undefined are left out.
 *
 * @module
 */

export type Encoding = 'json' | 'msgpack';

const packr = new Packr({ useRecords: false, variableMapSize: true });
const unpackr = new Unpackr({ useRecords: false, mapsAsObjects: true });

export type Frame = Record<string, unknown>;

/** The frame as an object, or null when it is not a JSON object or a MessagePack map. */
export function decodeFrame(data: ArrayBuffer, isBinary: boolean): Frame | null {
  try {
    const bytes = Buffer.from(data);
    const value: unknown = isBinary ? unpackr.unpack(bytes) : JSON.parse(bytes.toString('utf8'));
    return value !== null && typeof value === 'object' && !Array.isArray(value) && !(value instanceof Map)
      ? (value as Frame)
      : null;
  } catch {
    return null;
  }
}

export function encodeFrame(message: Frame, encoding: Encoding): string | Buffer {
  const defined: Frame = {};
  for (const [name, value] of Object.entries(message)) if (value !== undefined) defined[name] = value;
  return encoding === 'json' ? JSON.stringify(defined) : packr.pack(defined);
}
