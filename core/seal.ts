import { createCipheriv, createDecipheriv, randomBytes } from 'node:crypto';

/**
 * AES-256-GCM sealing of short secrets (codes, terminal keys, bank details, phone numbers, SMS texts).
 * Opening fails loudly if the text was altered or the key is wrong.
 *
 * A value sealed for a record says so: `2.<base64url(record)>.<base64url(iv | ciphertext | tag)>`, the
 * record (`SEALED_FOR`: which merchant's bank details, which terminal's key, ...) authenticated as GCM's
 * additional data. Opened for another record, it fails: bank details copied from one merchant's record
 * into another's do not open, so nobody who can write the database but not read the keys can move one
 * merchant's payouts to another's account. Values sealed before records were bound
 * (`base64url(iv | ciphertext | tag)`, no dot) still open for any record; the next master key rotation
 * binds them (docs/key-rotation.md).
 *
 * @module
 */

const IV_BYTES = 12;
const TAG_BYTES = 16;
const BOUND = '2.';

/** The record each kind of sealed value belongs to: its one home, for sealing and opening alike. */
export const SEALED_FOR = {
  bank: (merchantId: string) => `bank|${merchantId}`,
  terminalKey: (terminalId: string) => `terminal-key|${terminalId}`,
  phone: (consumerId: string) => `phone|${consumerId}`,
  /** A queued text: to whom it goes. */
  text: (consumerId: string) => `text|${consumerId}`,
  ach: (businessDate: string) => `ach|${businessDate}`,
  /** A live payment code in its holder's wallet (under the code key, not the master key). */
  code: (consumerId: string) => `code|${consumerId}`,
} as const;

/** Seals `text`; with `record`, bound to it (see above). */
export function seal(key: Buffer, text: string, record?: string): string {
  const iv = randomBytes(IV_BYTES);
  const cipher = createCipheriv('aes-256-gcm', key, iv, { authTagLength: TAG_BYTES });
  if (record !== undefined) cipher.setAAD(Buffer.from(record, 'utf8'));
  const body = Buffer.concat([iv, cipher.update(text, 'utf8'), cipher.final(), cipher.getAuthTag()]).toString(
    'base64url',
  );
  return record === undefined ? body : `${BOUND}${Buffer.from(record, 'utf8').toString('base64url')}.${body}`;
}

/**
 * Opens a sealed value. With `record`, a value bound to another record is refused; without, a bound
 * value opens for the record it names (what an audit of every sealed value does).
 */
export function unseal(key: Buffer, sealed: string, record?: string): string {
  let boundTo: string | undefined;
  let body = sealed;
  if (sealed.startsWith(BOUND)) {
    const dot = sealed.indexOf('.', BOUND.length);
    if (dot < 0) throw new Error('a sealed value is malformed');
    boundTo = Buffer.from(sealed.slice(BOUND.length, dot), 'base64url').toString('utf8');
    if (record !== undefined && boundTo !== record)
      throw new Error('a sealed value belongs to another record');
    body = sealed.slice(dot + 1);
  }
  const bytes = Buffer.from(body, 'base64url');
  // A full 16-byte tag or nothing: GCM would also check a tag cut to 4 bytes, which a forger can hit.
  if (bytes.length < IV_BYTES + TAG_BYTES) throw new Error('a sealed value is too short');
  const decipher = createDecipheriv('aes-256-gcm', key, bytes.subarray(0, IV_BYTES), {
    authTagLength: TAG_BYTES,
  });
  if (boundTo !== undefined) decipher.setAAD(Buffer.from(boundTo, 'utf8'));
  decipher.setAuthTag(bytes.subarray(bytes.length - TAG_BYTES));
  const ciphertext = bytes.subarray(IV_BYTES, bytes.length - TAG_BYTES);
  return Buffer.concat([decipher.update(ciphertext), decipher.final()]).toString('utf8');
}

/** Whether a value is bound to a record (sealed since records were bound). */
export function isBound(sealed: string): boolean {
  return sealed.startsWith(BOUND);
}

/**
 * Opens a value sealed under any of `keys`, tried in order: GCM authentication fails for every key but
 * the one that sealed it, so the index says which key that was. Null when none fits, the value was
 * altered, or it is bound to another record than `record`: callers decide whether that is an error or
 * something to report.
 */
export function unsealWithAny(
  keys: readonly Buffer[],
  sealed: string,
  record?: string,
): { text: string; keyIndex: number } | null {
  for (const [keyIndex, key] of keys.entries()) {
    try {
      return { text: unseal(key, sealed, record), keyIndex };
    } catch {
      // Not this key: try the next one.
    }
  }
  return null;
}
