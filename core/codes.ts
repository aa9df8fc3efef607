import { createHmac, randomInt } from 'node:crypto';
import { CodePermutation } from './code-permutation.ts';
import { CODE_DIGITS_MAX, CODE_DIGITS_MIN } from './code-shape.ts';
import { SLOT_COUNT } from './ids.ts';
import { SEALED_FOR, seal, unseal } from './seal.ts';

/**
 * Payment codes: 6 to 10 digits, drawn from a CSPRNG. A merchant's live codes of one length never
 * exceed `LIVE_CODES_PER_MILLION` per million possible codes of that length, so a guess of any length
 * hits a live code with probability at most 1.2e-5; a new code takes the shortest length with room, so
 * a quiet merchant's codes are 6 digits and a busy merchant's get longer only while it is busy.
 *
 * A slot draws its codes from its own part of each length's space (code-permutation.ts), so no two
 * shards can issue the same digits at one merchant; a redemption is routed by the holder the code index
 * names. The code is stored only as its keyed hash (for look-up) and sealed with AES-256-GCM (so the
 * consumer's wallet can show it again); neither key is in the database.
 *
 * @module
 */

export { CODE_DIGITS_MAX, CODE_DIGITS_MIN, isCodeDigits, isCodeString } from './code-shape.ts';

/** Live codes of one length per million possible codes of that length, at one merchant. */
export const LIVE_CODES_PER_MILLION = 12;

/** The code lengths, shortest first. */
export const CODE_LENGTHS: readonly number[] = Array.from(
  { length: CODE_DIGITS_MAX - CODE_DIGITS_MIN + 1 },
  (_, i) => CODE_DIGITS_MIN + i,
);

/** How many codes of `digits` digits there are. */
export function codeSpace(digits: number): number {
  return 10 ** digits;
}

/** How many codes of `digits` digits one merchant may hold live: 12, 120, ... 120,000. */
export function liveCodesOfLengthMax(digits: number): number {
  return (LIVE_CODES_PER_MILLION * codeSpace(digits)) / 1_000_000;
}

/** The most live codes one merchant may hold: every length full (133,332). */
export const MERCHANT_LIVE_CODES_MAX = CODE_LENGTHS.reduce(
  (sum, digits) => sum + liveCodesOfLengthMax(digits),
  0,
);

/** Each shard holds a share of every length, so there may be no more shards than 6-digit codes (12). */
export const SHARDS_MAX_FOR_CODES = liveCodesOfLengthMax(CODE_DIGITS_MIN);

// Each slot's part of a length's space is the same size: 10^6 and longer spaces divide by 64.
if (codeSpace(CODE_DIGITS_MIN) % SLOT_COUNT !== 0) throw new Error('code spaces must divide among the slots');

/** The shortest code a merchant's consumers get: its setting, or 6 for a merchant made before it existed. */
export function codeDigitsMinOf(merchant: { codeDigitsMin?: number }): number {
  return merchant.codeDigitsMin ?? CODE_DIGITS_MIN;
}

export interface CodeKeys {
  /** HMAC key for code hashes and idempotency input hashes; the code permutation's key derives from it. */
  hashKey: Buffer;
  /** AES-256-GCM key sealing live codes for the wallet. */
  sealKey: Buffer;
}

/** Draws and places codes under one set of keys. */
export class CodeSpace {
  private readonly permutation: CodePermutation;

  constructor(readonly keys: CodeKeys) {
    this.permutation = new CodePermutation(keys.hashKey);
  }

  /** Uniform digits of the given length among those of `slot`'s part of the merchant's space. */
  draw(merchantId: string, slot: number, digits: number): string {
    const index = randomInt(codeSpace(digits) / SLOT_COUNT) * SLOT_COUNT + slot;
    return String(this.permutation.encrypt(merchantId, digits, index)).padStart(digits, '0');
  }

  /** The only slot that can have drawn these digits at this merchant. */
  slotOf(merchantId: string, code: string): number {
    return this.permutation.decrypt(merchantId, code.length, Number(code)) % SLOT_COUNT;
  }
}

export function hashCode(keys: CodeKeys, merchantId: string, code: string): string {
  return createHmac('sha256', keys.hashKey)
    .update(`code|${merchantId}|${code}`)
    .digest('base64url')
    .slice(0, 27);
}

/** A code sealed for its holder's wallet: it opens for that consumer only (core/seal.ts). */
export function sealCode(keys: CodeKeys, code: string, consumerId: string): string {
  return seal(keys.sealKey, code, SEALED_FOR.code(consumerId));
}

export function unsealCode(keys: CodeKeys, sealed: string, consumerId: string): string {
  return unseal(keys.sealKey, sealed, SEALED_FOR.code(consumerId));
}

/** A keyed hash of a request's canonical fields: the idempotency fingerprint, safe to store. */
export function hashInputs(keys: CodeKeys, canonical: string): string {
  return createHmac('sha256', keys.hashKey).update(`inputs|${canonical}`).digest('base64url').slice(0, 22);
}
