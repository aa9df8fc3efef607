import { canonical } from '../../sdk/pos-messages.ts';

/**
 * The POS MACs with WebCrypto: HMAC-SHA256 over the canonical form of a message (docs/pos-guide.md). Keys are
 * imported as non-extractable CryptoKeys, so once imported their bytes cannot be read back by any script,
 * this page included; answers are checked with `crypto.subtle.verify`, which compares in constant time.
 */
const HMAC = { name: 'HMAC', hash: 'SHA-256' } as const;
const KEY_BYTES = 32;
const encoder = new TextEncoder();

function toBase64url(bytes: Uint8Array): string {
  let binary = '';
  for (const byte of bytes) binary += String.fromCharCode(byte);
  return btoa(binary).replace(/\+/g, '-').replace(/\//g, '_').replace(/=+$/, '');
}

/** The bytes of a base64url string (no padding); null when it is not one. */
export function fromBase64url(text: string): Uint8Array<ArrayBuffer> | null {
  if (!/^[A-Za-z0-9_-]*$/.test(text) || text.length % 4 === 1) return null;
  const binary = atob(text.replace(/-/g, '+').replace(/_/g, '/') + '='.repeat((4 - (text.length % 4)) % 4));
  return Uint8Array.from(binary, (char) => char.charCodeAt(0));
}

export function randomBase64url(byteCount: number): string {
  return toBase64url(crypto.getRandomValues(new Uint8Array(byteCount)));
}

/**
 * Imports 32 raw key bytes as a non-extractable HMAC key and wipes the array, so the only copy the page
 * keeps is the opaque CryptoKey. Null when the bytes are not a 32-byte key.
 */
export async function importHmacKey(bytes: Uint8Array<ArrayBuffer> | null): Promise<CryptoKey | null> {
  if (!bytes || bytes.length !== KEY_BYTES) return null;
  try {
    return await crypto.subtle.importKey('raw', bytes, HMAC, false, ['sign', 'verify']);
  } finally {
    bytes.fill(0);
  }
}

/** HMAC-SHA256 of a string. */
export async function hmac(key: CryptoKey, text: string): Promise<Uint8Array<ArrayBuffer>> {
  return new Uint8Array(await crypto.subtle.sign('HMAC', key, encoder.encode(text)));
}

/** The base64url MAC of a message given as its canonical fields. */
export async function messageMac(key: CryptoKey, fields: readonly unknown[]): Promise<string> {
  const text = canonical(fields);
  if (text === null) throw new TypeError('a POS message field is an object');
  return toBase64url(await hmac(key, text));
}

/** Whether `mac` is the MAC of these canonical fields under `key`. */
export async function macValid(key: CryptoKey, fields: readonly unknown[], mac: unknown): Promise<boolean> {
  const text = canonical(fields);
  const bytes = typeof mac === 'string' ? fromBase64url(mac) : null;
  if (text === null || !bytes || bytes.length !== KEY_BYTES) return false;
  return crypto.subtle.verify('HMAC', key, bytes, encoder.encode(text));
}
