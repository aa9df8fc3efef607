import { idempotencyScope } from '../core/commands.ts';
import type { ConsumerId } from '../core/ids.ts';
import { DAY_MS } from '../core/limits.ts';
import type { Reply } from '../core/wallet.ts';
import type { Engine } from '../engine/engine.ts';
import { KeyedWindow } from '../notify/keyed-window.ts';
import type { Registry } from './registry.ts';

/**
 * Giving gift card value to another phone, for the wallet API and the SMS channel alike. Each gift texts
 * a phone that may never have used paycode, so besides the engine's own rules (gift value only, the day's
 * spending) a giver makes at most `giftsPerDayMax` gifts in 24 hours (counted in memory: a restart starts
 * the count again), and what the engine would refuse (a frozen
 * wallet, too little gift value) is refused before the receiver's number is stored.
 *
 * @module
 */

export interface GiftRequest {
  consumerId: ConsumerId;
  merchantId: string;
  toPhone: string;
  amountCents: number;
  idempotencyKey: string;
}

export class Gifts {
  private readonly perDay: KeyedWindow;
  /** Gifts being given, by giver and key: a second request under the key waits for the first. */
  private readonly giving = new Map<string, Promise<Reply>>();

  constructor(
    private readonly engine: Engine,
    private readonly registry: Registry,
    /** The gifts a giver makes in 24 hours at most. */
    readonly perDayMax: number,
    private readonly now: () => number,
  ) {
    this.perDay = new KeyedWindow(DAY_MS, perDayMax);
  }

  /**
   * Gives once per key: a request under a key still being given (a retry racing the first try) waits for
   * it and is then answered from its stored result, so one gift takes one room of the day.
   */
  async give(request: GiftRequest): Promise<Reply> {
    const key = `${request.consumerId}|${request.idempotencyKey}`;
    for (let running = this.giving.get(key); running; running = this.giving.get(key))
      await running.catch(() => {});
    const giving = this.giveOnce(request);
    this.giving.set(key, giving);
    try {
      return await giving;
    } finally {
      if (this.giving.get(key) === giving) this.giving.delete(key);
    }
  }

  private async giveOnce(request: GiftRequest): Promise<Reply> {
    const { engine } = this;
    // A replay answers from its stored result, whatever the budget and the wallet say now.
    if (engine.hasStoredAnswer(idempotencyScope.consumer(request.consumerId), request.idempotencyKey))
      return engine.gift(request);
    // The day's room is taken before anything waits, so gifts sent at once cannot all pass the check;
    // it is given back when the gift is not made.
    const atMs = this.now();
    if (!this.perDay.take(request.consumerId, atMs)) return { status: 'rate_limited' };
    const reply = await this.giveChecked(request).catch((error: unknown) => {
      this.perDay.release(request.consumerId, atMs);
      throw error;
    });
    if (reply.status !== 'approved') this.perDay.release(request.consumerId, atMs);
    return reply;
  }

  /** What the engine would refuse is refused before the receiver's number is stored. */
  private async giveChecked(request: GiftRequest): Promise<Reply> {
    const { engine, registry } = this;
    const { consumerId, merchantId, toPhone, amountCents } = request;
    const wallet = await engine.wallet(consumerId);
    if (wallet?.frozen) return { status: 'account_frozen' };
    const card = wallet?.cards.find((held) => held.merchantId === merchantId && held.kind === 'gift');
    if ((card?.availableCents ?? 0) < amountCents) return { status: 'insufficient_funds' };
    // The receiver's text is queued with the value's arrival, so its number must be known first.
    await registry.phones.remember(engine.consumerIdFor(toPhone), toPhone);
    return engine.gift(request);
  }
}
