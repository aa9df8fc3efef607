import { randomBytes, randomInt } from 'node:crypto';
import type { ConsumerId, MerchantId } from '../core/ids.ts';
import { DAY_MS, type Limits } from '../core/limits.ts';
import { KeyedWindow } from '../notify/keyed-window.ts';

/**
 * Gifts asked for by text (`GIFT <store> <phone> <amount>`) wait here for the giver to confirm them with
 * the code texted back (`YES <code>`), so a text from a spoofed sender or a typo in the phone number moves
 * nothing by itself. One pending gift per phone (a new `GIFT` replaces it), valid `smsGiftConfirmTtlMs`.
 * Wrong codes count per phone per day: after `smsGiftWrongCodesPerDayMax` of them the pending gift is
 * dropped and `GIFT` by text is refused until the count falls, so a spoofer guesses at most that many
 * codes of 10^6 a day (5 × 10^-6 per phone-day with the default 5). Pending gifts and the count live in
 * memory: after a restart the giver sends `GIFT` again, and nothing has moved (a restart also starts the
 * count again, which a spoofer cannot cause).
 *
 * @module
 */

export interface PendingGift {
  merchantId: MerchantId;
  toPhone: string;
  amountCents: number;
  /** The engine's idempotency key: a confirmation tried again gives once. */
  idempotencyKey: string;
}

interface Waiting extends PendingGift {
  code: string;
  expiresAtMs: number;
}

export type Confirmation =
  | { status: 'confirmed'; gift: PendingGift; code: string }
  | { status: 'none' }
  | { status: 'wrong' }
  /** Too many wrong codes today: the pending gift is dropped, and `GIFT` waits for tomorrow. */
  | { status: 'locked' };

export class SmsGifts {
  private readonly waiting = new Map<ConsumerId, Waiting>();
  private readonly wrongCodes: KeyedWindow;

  constructor(private readonly limits: Pick<Limits, 'smsGiftConfirmTtlMs' | 'smsGiftWrongCodesPerDayMax'>) {
    this.wrongCodes = new KeyedWindow(DAY_MS, limits.smsGiftWrongCodesPerDayMax);
  }

  /** How long a pending gift waits for its code. */
  get ttlMs(): number {
    return this.limits.smsGiftConfirmTtlMs;
  }

  /** Holds a gift until it is confirmed; returns the code to confirm it with, or null while locked. */
  ask(consumerId: ConsumerId, gift: Omit<PendingGift, 'idempotencyKey'>, nowMs: number): string | null {
    this.sweep(nowMs);
    if (!this.wrongCodes.hasRoom(consumerId, nowMs)) return null;
    const code = String(randomInt(0, 1_000_000)).padStart(6, '0');
    const idempotencyKey = `sms-gift-${randomBytes(12).toString('base64url')}`;
    this.hold(consumerId, {
      ...gift,
      idempotencyKey,
      code,
      expiresAtMs: nowMs + this.limits.smsGiftConfirmTtlMs,
    });
    return code;
  }

  /** The pending gift the code confirms, taken out so it is given once. */
  confirm(consumerId: ConsumerId, code: string, nowMs: number): Confirmation {
    this.sweep(nowMs);
    const waiting = this.waiting.get(consumerId);
    if (!waiting) return { status: 'none' };
    if (waiting.code !== code) {
      if (this.wrongCodes.take(consumerId, nowMs) && this.wrongCodes.hasRoom(consumerId, nowMs))
        return { status: 'wrong' };
      this.waiting.delete(consumerId);
      return { status: 'locked' };
    }
    this.waiting.delete(consumerId);
    const { merchantId, toPhone, amountCents, idempotencyKey } = waiting;
    return { status: 'confirmed', gift: { merchantId, toPhone, amountCents, idempotencyKey }, code };
  }

  /**
   * Puts a confirmed gift back, under its key and code, when the engine's answer left its fate open (a
   * transient status): the giver's `YES` again then gives it at most once.
   */
  putBack(consumerId: ConsumerId, confirmed: { gift: PendingGift; code: string }, nowMs: number): void {
    const { gift, code } = confirmed;
    this.hold(consumerId, { ...gift, code, expiresAtMs: nowMs + this.limits.smsGiftConfirmTtlMs });
  }

  private hold(consumerId: ConsumerId, waiting: Waiting): void {
    // Taken out first, so the map stays in the order the gifts expire (see sweep).
    this.waiting.delete(consumerId);
    this.waiting.set(consumerId, waiting);
  }

  /** Drops the expired gifts: the oldest first, up to the first one still valid. */
  private sweep(nowMs: number): void {
    for (const [consumerId, waiting] of this.waiting) {
      if (waiting.expiresAtMs > nowMs) return;
      this.waiting.delete(consumerId);
    }
  }
}
