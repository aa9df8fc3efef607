import { createHmac, randomInt } from 'node:crypto';
import { SLOT_COUNT } from './ids.ts';
import { seal, unseal } from './seal.ts';

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
  return seal(keys.sealKey, code);
}

export function unsealCode(keys: CodeKeys, sealed: string): string {
  return unseal(keys.sealKey, sealed);
}

/** A keyed hash of a request's canonical fields: the idempotency fingerprint, safe to store. */
export function hashInputs(keys: CodeKeys, canonical: string): string {
  return createHmac('sha256', keys.hashKey).update(`inputs|${canonical}`).digest('base64url').slice(0, 22);
}
