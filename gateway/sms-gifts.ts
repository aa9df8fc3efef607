import { randomBytes, randomInt } from 'node:crypto';
import type { ConsumerId, MerchantId } from '../core/ids.ts';
import type { Limits } from '../core/limits.ts';

/**
 * Gifts asked for by text (`GIFT <store> <phone> <amount>`) wait here for the giver to confirm them with
 * the code texted back (`YES <code>`), so a text from a spoofed sender or a typo in the phone number moves
 * nothing by itself. One pending gift per phone (a new `GIFT` replaces it), valid `smsGiftConfirmTtlMs`,
 * dropped after `smsGiftConfirmAttemptsMax` wrong codes. Pending gifts live in memory: after a restart the
 * giver sends `GIFT` again, and nothing has moved.
 *
 * @module
 */

export interface PendingGift {
  merchantId: MerchantId;
  toPhone: string;
  amountCents: number;
  /** The engine's idempotency key: a confirmation delivered twice gives once. */
  idempotencyKey: string;
}

interface Waiting extends PendingGift {
  code: string;
  expiresAtMs: number;
  wrongCodes: number;
}

export type Confirmation =
  | { status: 'confirmed'; gift: PendingGift }
  | { status: 'none' }
  | { status: 'wrong'; attemptsLeft: number };

export class SmsGifts {
  private readonly waiting = new Map<ConsumerId, Waiting>();

  constructor(private readonly limits: Pick<Limits, 'smsGiftConfirmTtlMs' | 'smsGiftConfirmAttemptsMax'>) {}

  /** How long a pending gift waits for its code. */
  get ttlMs(): number {
    return this.limits.smsGiftConfirmTtlMs;
  }

  /** Holds a gift until it is confirmed; returns the code to confirm it with. */
  ask(consumerId: ConsumerId, gift: Omit<PendingGift, 'idempotencyKey'>, nowMs: number): string {
    this.sweep(nowMs);
    const code = String(randomInt(0, 1_000_000)).padStart(6, '0');
    // Taken out first, so the map stays in the order the gifts expire (see sweep).
    this.waiting.delete(consumerId);
    this.waiting.set(consumerId, {
      ...gift,
      idempotencyKey: `sms-gift-${randomBytes(12).toString('base64url')}`,
      code,
      expiresAtMs: nowMs + this.limits.smsGiftConfirmTtlMs,
      wrongCodes: 0,
    });
    return code;
  }

  /** The pending gift the code confirms, taken out so it is given once. */
  confirm(consumerId: ConsumerId, code: string, nowMs: number): Confirmation {
    this.sweep(nowMs);
    const waiting = this.waiting.get(consumerId);
    if (!waiting) return { status: 'none' };
    if (waiting.code !== code) {
      waiting.wrongCodes++;
      const attemptsLeft = this.limits.smsGiftConfirmAttemptsMax - waiting.wrongCodes;
      if (attemptsLeft <= 0) this.waiting.delete(consumerId);
      return { status: 'wrong', attemptsLeft: Math.max(0, attemptsLeft) };
    }
    this.waiting.delete(consumerId);
    const { merchantId, toPhone, amountCents, idempotencyKey } = waiting;
    return { status: 'confirmed', gift: { merchantId, toPhone, amountCents, idempotencyKey } };
  }

  /** Drops the expired gifts: the oldest first, up to the first one still valid. */
  private sweep(nowMs: number): void {
    for (const [consumerId, waiting] of this.waiting) {
      if (waiting.expiresAtMs > nowMs) return;
      this.waiting.delete(consumerId);
    }
  }
}
