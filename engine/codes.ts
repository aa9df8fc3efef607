import { createHmac, randomInt } from 'node:crypto';
import { SLOT_COUNT } from './ids.ts';
import { seal, unseal } from './seal.ts';

/**
 * Payment codes: 6 digits, drawn from a CSPRNG. The first 6 bits of a code's keyed hash are the slot of
 * the consumer who holds it, which routes a redemption to its shard with no lookup; because the hash is
 * keyed, the digits of a consumer's codes share nothing a merchant who sees them could learn (digits
 * modulo the slot count would give away which 1/64 of the space a regular customer's next code is in).
 * The code is stored only as that keyed hash (for lookup) and sealed with AES-256-GCM (so the
 * consumer's wallet can show it again); neither key is in the database.
 */
export const CODE_SPACE = 1_000_000;
const BASE64URL = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_';
// One base64url character of the hash carries exactly the 6 bits of a slot.
if (SLOT_COUNT !== BASE64URL.length) throw new Error('codes route by 6 bits of their hash: 64 slots');
/** Draws per code before giving up (each keeps 1 in 64; failing all has probability about e^-64). */
const DRAWS_PER_CODE_MAX = 4_096;

export function isCodeString(value: unknown): value is string {
  return typeof value === 'string' && /^[0-9]{6}$/.test(value);
}

/** The slot a code routes to, from its keyed hash. */
export function slotOfCodeHash(codeHash: string): number {
  return BASE64URL.indexOf(codeHash[0] ?? '');
}

/** Uniform digits among those of the merchant whose keyed hash routes to `slot`; null if none was found. */
export function drawCode(
  keys: CodeKeys,
  merchantId: string,
  slot: number,
): { code: string; codeHash: string } | null {
  for (let draw = 0; draw < DRAWS_PER_CODE_MAX; draw++) {
    const code = String(randomInt(CODE_SPACE)).padStart(6, '0');
    const codeHash = hashCode(keys, merchantId, code);
    if (slotOfCodeHash(codeHash) === slot) return { code, codeHash };
  }
  return null;
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
