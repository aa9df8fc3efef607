import { createCipheriv, createDecipheriv, createHmac, randomBytes, randomInt } from 'node:crypto';
import { SLOT_COUNT } from './ids.ts';

/**
 * Payment codes: 6 digits, drawn from a CSPRNG. A code's value modulo SLOT_COUNT is the slot of the
 * consumer who holds it, which routes a redemption to its shard with no lookup. The code is stored only
 * as a keyed hash (for lookup) and sealed with AES-256-GCM (so the consumer's wallet can show it again);
 * neither key is in the database.
 */
export const CODE_SPACE = 1_000_000;
const CODES_PER_SLOT = CODE_SPACE / SLOT_COUNT;

export function isCodeString(value: unknown): value is string {
  return typeof value === 'string' && /^[0-9]{6}$/.test(value);
}

export function slotOfCode(code: string): number {
  return Number(code) % SLOT_COUNT;
}

export function drawCode(slot: number): string {
  return String(slot + SLOT_COUNT * randomInt(CODES_PER_SLOT)).padStart(6, '0');
}

export interface CodeKeys {
  /** HMAC key for code hashes and idempotency input hashes. */
  hashKey: Buffer;
  /** AES-256-GCM key sealing live codes for the wallet. */
  sealKey: Buffer;
}

export function hashCode(keys: CodeKeys, merchantId: string, code: string): string {
  return createHmac('sha256', keys.hashKey)
    .update(`code|${merchantId}|${code}`)
    .digest('base64url')
    .slice(0, 27);
}

export function sealCode(keys: CodeKeys, code: string): string {
  const iv = randomBytes(12);
  const cipher = createCipheriv('aes-256-gcm', keys.sealKey, iv);
  const sealed = Buffer.concat([iv, cipher.update(code, 'utf8'), cipher.final(), cipher.getAuthTag()]);
  return sealed.toString('base64url');
}

export function unsealCode(keys: CodeKeys, sealed: string): string {
  const bytes = Buffer.from(sealed, 'base64url');
  const decipher = createDecipheriv('aes-256-gcm', keys.sealKey, bytes.subarray(0, 12));
  decipher.setAuthTag(bytes.subarray(bytes.length - 16));
  return Buffer.concat([decipher.update(bytes.subarray(12, bytes.length - 16)), decipher.final()]).toString(
    'utf8',
  );
}

/** A keyed hash of a request's canonical fields: the idempotency fingerprint, safe to store. */
export function hashInputs(keys: CodeKeys, canonical: string): string {
  return createHmac('sha256', keys.hashKey).update(`inputs|${canonical}`).digest('base64url').slice(0, 22);
}
