import { CODE_DIGITS_MAX, CODE_DIGITS_MIN, CODE_LENGTHS, liveCodesOfLengthMax } from '../core/codes.ts';

/**
 * One shard's count of live codes per merchant and length, and the length a new code takes: the
 * shortest, from the merchant's minimum, that has room in this shard's share. The shards hold the
 * codes of different consumers, so each holds a share of every length (that length's maximum divided
 * by the shard count, rounded down) and of the operator's cap on all lengths together
 * (`merchantLiveCodesMax`); their shares together never exceed either. A code counts from its issue
 * until it is redeemed or cancelled, or its expiry timer has fired.
 *
 * After a restart with another shard count, the slots are grouped anew, and another shard may hold more
 * of a length than its new share (codes it did not issue). Until those codes have expired, this shard
 * keeps that excess out of its own share (`holdBack`), so the shards together still stay within the
 * length's maximum.
 *
 * @module
 */

export class LiveCodeCounts {
  /** Per merchant: live codes of each length (index: digits − 6), then of all lengths together. */
  private readonly counts = new Map<string, number[]>();
  /** Per merchant and length: room kept back for other shards' excess, and until when. */
  private readonly heldBack = new Map<string, { count: number; untilMs: number }>();

  constructor(private readonly share: LiveCodeShare) {}

  /**
   * Keeps `count` codes of this length out of this shard's share until `untilMs`: another shard holds
   * that many more than its share, in codes that expire by then.
   */
  holdBack(merchantId: string, digits: number, count: number, untilMs: number): void {
    const key = `${merchantId}|${digits}`;
    const held = this.heldBack.get(key);
    this.heldBack.set(key, {
      count: (held?.count ?? 0) + count,
      untilMs: Math.max(held?.untilMs ?? 0, untilMs),
    });
  }

  /**
   * The length of a new code at this merchant, or null when every length from `digitsMin` is full.
   * `replacing` is the length of the consumer's own live code at this merchant, which the new code
   * ends and whose room it may take.
   */
  lengthFor(merchantId: string, digitsMin: number, replacing: number | null, nowMs: number): number | null {
    const counts = this.counts.get(merchantId) ?? NONE;
    const total = (counts[CODE_LENGTHS.length] ?? 0) - (replacing === null ? 0 : 1);
    if (total >= this.share.total) return null;
    for (let digits = Math.max(digitsMin, CODE_DIGITS_MIN); digits <= CODE_DIGITS_MAX; digits++) {
      const live = (counts[digits - CODE_DIGITS_MIN] ?? 0) - (replacing === digits ? 1 : 0);
      if (
        live + this.heldBackAt(merchantId, digits, nowMs) <
        (this.share.byLength[digits - CODE_DIGITS_MIN] ?? 0)
      )
        return digits;
    }
    return null;
  }

  private heldBackAt(merchantId: string, digits: number, nowMs: number): number {
    if (this.heldBack.size === 0) return 0;
    const key = `${merchantId}|${digits}`;
    const held = this.heldBack.get(key);
    if (!held) return 0;
    if (held.untilMs > nowMs) return held.count;
    this.heldBack.delete(key);
    return 0;
  }

  add(merchantId: string, digits: number): void {
    let counts = this.counts.get(merchantId);
    if (!counts) {
      counts = new Array<number>(CODE_LENGTHS.length + 1).fill(0);
      this.counts.set(merchantId, counts);
    }
    counts[digits - CODE_DIGITS_MIN] = (counts[digits - CODE_DIGITS_MIN] ?? 0) + 1;
    counts[CODE_LENGTHS.length] = (counts[CODE_LENGTHS.length] ?? 0) + 1;
  }

  remove(merchantId: string, digits: number): void {
    const counts = this.counts.get(merchantId);
    const live = counts?.[digits - CODE_DIGITS_MIN] ?? 0;
    if (!counts || live === 0) throw new Error(`no live ${digits}-digit code of ${merchantId} to remove`);
    counts[digits - CODE_DIGITS_MIN] = live - 1;
    const total = (counts[CODE_LENGTHS.length] ?? 1) - 1;
    if (total === 0) this.counts.delete(merchantId);
    else counts[CODE_LENGTHS.length] = total;
  }

  /** Live codes of each length, all merchants together (index: digits − 6); for measurement and tests. */
  byLength(): number[] {
    const sums = CODE_LENGTHS.map(() => 0);
    for (const counts of this.counts.values())
      for (let i = 0; i < sums.length; i++) sums[i] = (sums[i] ?? 0) + (counts[i] ?? 0);
    return sums;
  }
}

const NONE: readonly number[] = new Array<number>(CODE_LENGTHS.length + 1).fill(0);

export interface LiveCodeShare {
  /** Live codes of each length one shard may hold for one merchant (index: digits − 6). */
  byLength: readonly number[];
  /** Live codes of all lengths one shard may hold for one merchant. */
  total: number;
}

/** One shard's share, given the operator's cap on a merchant's live codes of all lengths. */
export function liveCodeShare(merchantLiveCodesMax: number, shardCount: number): LiveCodeShare {
  return {
    byLength: CODE_LENGTHS.map((digits) => Math.floor(liveCodesOfLengthMax(digits) / shardCount)),
    total: Math.floor(merchantLiveCodesMax / shardCount),
  };
}
