import { createHmac, timingSafeEqual } from 'node:crypto';
import { canonical } from './pos-messages.ts';

export * from './pos-messages.ts';

/** `base64url(HMAC-SHA256(key, canonical))`; throws for fields no message can carry. */
export function posMac(key: Buffer, fields: readonly unknown[]): string {
  const text = canonical(fields);
  if (text === null) throw new TypeError('a MACed field must be a string, a number, a boolean or absent');
  return createHmac('sha256', key).update(text).digest('base64url');
}

/** Constant-time check of a MAC over `fields`; false for malformed fields. */
export function macMatches(key: Buffer, fields: readonly unknown[], given: unknown): boolean {
  const text = canonical(fields);
  if (text === null || typeof given !== 'string') return false;
  const expected = Buffer.from(createHmac('sha256', key).update(text).digest('base64url'));
  const actual = Buffer.from(given);
  return expected.length === actual.length && timingSafeEqual(expected, actual);
}
