import { createCipheriv, createDecipheriv, randomBytes } from 'node:crypto';

/**
 * AES-256-GCM sealing of short secrets (codes, terminal keys, bank details, phone numbers, SMS texts):
 * `base64url(iv | ciphertext | tag)`. Opening fails loudly if the text was altered or the key is wrong.
 *
 * @module
 */

const IV_BYTES = 12;
const TAG_BYTES = 16;

export function seal(key: Buffer, text: string): string {
  const iv = randomBytes(IV_BYTES);
  const cipher = createCipheriv('aes-256-gcm', key, iv, { authTagLength: TAG_BYTES });
  return Buffer.concat([iv, cipher.update(text, 'utf8'), cipher.final(), cipher.getAuthTag()]).toString(
    'base64url',
  );
}

export function unseal(key: Buffer, sealed: string): string {
  const bytes = Buffer.from(sealed, 'base64url');
  // A full 16-byte tag or nothing: GCM would also check a tag cut to 4 bytes, which a forger can hit.
  if (bytes.length < IV_BYTES + TAG_BYTES) throw new Error('a sealed value is too short');
  const decipher = createDecipheriv('aes-256-gcm', key, bytes.subarray(0, IV_BYTES), {
    authTagLength: TAG_BYTES,
  });
  decipher.setAuthTag(bytes.subarray(bytes.length - TAG_BYTES));
  const ciphertext = bytes.subarray(IV_BYTES, bytes.length - TAG_BYTES);
  return Buffer.concat([decipher.update(ciphertext), decipher.final()]).toString('utf8');
}

/**
 * Opens a value sealed under any of `keys`, tried in order: GCM authentication fails for every key but
 * the one that sealed it, so the index says which key that was. Null when none fits (or the value was
 * altered): callers decide whether that is an error or something to report.
 */
export function unsealWithAny(
  keys: readonly Buffer[],
  sealed: string,
): { text: string; keyIndex: number } | null {
  for (const [keyIndex, key] of keys.entries()) {
    try {
      return { text: unseal(key, sealed), keyIndex };
    } catch {
      // Not this key: try the next one.
    }
  }
  return null;
}
