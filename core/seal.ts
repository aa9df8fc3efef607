import { createCipheriv, createDecipheriv, randomBytes } from 'node:crypto';

/**
 * AES-256-GCM sealing of short secrets (codes, terminal keys, bank details, phone numbers, SMS texts):
 * `base64url(iv | ciphertext | tag)`. Opening fails loudly if the text was altered or the key is wrong.
 *
 * @module
 */

export function seal(key: Buffer, text: string): string {
  const iv = randomBytes(12);
  const cipher = createCipheriv('aes-256-gcm', key, iv);
  return Buffer.concat([iv, cipher.update(text, 'utf8'), cipher.final(), cipher.getAuthTag()]).toString(
    'base64url',
  );
}

export function unseal(key: Buffer, sealed: string): string {
  const bytes = Buffer.from(sealed, 'base64url');
  const decipher = createDecipheriv('aes-256-gcm', key, bytes.subarray(0, 12));
  decipher.setAuthTag(bytes.subarray(bytes.length - 16));
  return Buffer.concat([decipher.update(bytes.subarray(12, bytes.length - 16)), decipher.final()]).toString(
    'utf8',
  );
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
