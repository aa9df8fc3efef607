import { CODE_DIGITS_MIN, type CodeKeys, CodeSpace, hashCode } from '../core/codes.ts';
import { type ConsumerId, type MerchantId, shardOfSlot, slotOfId } from '../core/ids.ts';
import type { Limits } from '../core/limits.ts';
import type { CodeIndexEntry, Store } from '../persistence/store.ts';
import { type Batch, Overlay } from './group-commit.ts';
import { LiveCodeCounts, liveCodeShare } from './live-codes.ts';
import type { Timer, TimerWheel } from './timer-wheel.ts';

/**
 * A shard's payment codes: the code index as the shard sees it (LMDB plus what its pending batches
 * wrote), each live code's expiry timer, the tombstone an expired code leaves for an hour, and the
 * count of live codes per merchant and length that bounds their density (live-codes.ts). New digits
 * are drawn here from the holder's slot's part of the space (core/codes.ts). Code timers are not
 * stored: they are rebuilt from the index at start.
 *
 * @module
 */

/** A timer of the shard's wheel: a code's expiry, its tombstone's end, or a reward lot's expiry. */
export interface TimerItem {
  slot: number;
  atMs: number;
  kind: 'code' | 'lots' | 'tomb';
  consumerId: ConsumerId;
  /** Code and tombstone timers: the code index key, the expiry and the length of the code they were set for. */
  merchantId?: MerchantId;
  codeHash?: string;
  codeExpiresAtMs?: number;
  codeDigits?: number;
}

/** A code timer, with what it names. */
export type CodeTimer = Required<TimerItem>;

export interface ShardCodesOptions {
  store: Store;
  keys: CodeKeys;
  shardIndex: number;
  shardCount: number;
  limits: Limits;
  nowMs: number;
  /** Whether this shard owns a slot. */
  owns: (slot: number) => boolean;
}

export class ShardCodes {
  private readonly pending = new Overlay<CodeIndexEntry>();
  /** The expiry timer of each code in the index, so a redeemed or cancelled code's timer goes at once. */
  private readonly timers = new Map<string, Timer<TimerItem>>();
  /** Codes with an expiry timer (live, or expired a moment ago) per merchant and length. */
  private readonly live: LiveCodeCounts;
  private readonly space: CodeSpace;

  constructor(
    private readonly opts: ShardCodesOptions,
    private readonly wheel: TimerWheel<TimerItem>,
  ) {
    const { store, limits, nowMs } = opts;
    this.space = new CodeSpace(opts.keys);
    const share = liveCodeShare(limits.merchantLiveCodesMax, opts.shardCount);
    this.live = new LiveCodeCounts(share);
    /** Other shards' live codes per shard, merchant and length, with the latest expiry among them. */
    const others = new Map<
      string,
      { merchantId: MerchantId; digits: number; count: number; untilMs: number }
    >();
    for (const { key, value } of store.codes.getRange()) {
      const slot = slotOfId(value.consumerId);
      const [merchantId, codeHash] = key;
      const digits = value.digits ?? CODE_DIGITS_MIN;
      if (!opts.owns(slot)) {
        if (value.expiresAtMs <= nowMs) continue;
        const tallyKey = `${shardOfSlot(slot, opts.shardCount)}|${merchantId}|${digits}`;
        const tally = others.get(tallyKey) ?? { merchantId, digits, count: 0, untilMs: 0 };
        tally.count++;
        tally.untilMs = Math.max(tally.untilMs, value.expiresAtMs);
        others.set(tallyKey, tally);
        continue;
      }
      this.addTimer({
        slot,
        atMs: value.expiresAtMs,
        kind: 'code',
        consumerId: value.consumerId,
        merchantId,
        codeHash,
        codeExpiresAtMs: value.expiresAtMs,
        codeDigits: digits,
      });
    }
    // With the shard count changed since these codes were issued, another shard may hold more than its
    // share of a length; that excess stays out of this shard's share until it has expired.
    for (const { merchantId, digits, count, untilMs } of others.values()) {
      const excess = count - (share.byLength[digits - CODE_DIGITS_MIN] ?? 0);
      if (excess > 0) this.live.holdBack(merchantId, digits, excess, untilMs);
    }
  }

  /** The code index entry under these digits, as this shard's pending batches left it. */
  entry(merchantId: MerchantId, codeHash: string): CodeIndexEntry | undefined {
    const pending = this.pending.get(codeKey({ merchantId, codeHash }));
    if (pending) return pending.value ?? undefined;
    return this.opts.store.codes.get([merchantId, codeHash]);
  }

  /** Whether the code index entry under these digits is still the one of this consumer's code. */
  isIndexed(consumerId: ConsumerId, merchantId: MerchantId, codeHash: string, expiresAtMs: number): boolean {
    const entry = this.entry(merchantId, codeHash);
    return entry?.consumerId === consumerId && entry.expiresAtMs === expiresAtMs;
  }

  /**
   * Digits for a new code of this merchant, held in `slot`: the shortest length with room (from
   * `codeDigitsMin`; the consumer's code being replaced frees its own), then digits no live code or
   * unexpired tombstone of this merchant has: `rate_limited` when every length is full, `overloaded`
   * when no free digits were found in `codeDrawAttemptsMax` draws.
   */
  draw(
    merchantId: MerchantId,
    slot: number,
    codeDigitsMin: number,
    replacing: { merchantId: MerchantId; codeHash: string } | null,
    nowMs: number,
  ): { digits: number; code: string; codeHash: string } | 'rate_limited' | 'overloaded' {
    const replaced = replacing?.merchantId === merchantId ? this.timers.get(codeKey(replacing)) : undefined;
    const digits = this.live.lengthFor(merchantId, codeDigitsMin, replaced?.item.codeDigits ?? null, nowMs);
    if (digits === null) return 'rate_limited';
    for (let attempt = 0; attempt < this.opts.limits.codeDrawAttemptsMax; attempt++) {
      const code = this.space.draw(merchantId, slot, digits);
      const codeHash = hashCode(this.opts.keys, merchantId, code);
      const taken = this.entry(merchantId, codeHash);
      // Digits are free again only once their holder has processed the expiry (its timer fired), which
      // only the holder's shard knows (a code issued before codes were drawn by slot may be another's).
      if (
        taken &&
        (taken.expiresAtMs > nowMs ||
          !this.opts.owns(slotOfId(taken.consumerId)) ||
          this.timers.has(codeKey({ merchantId, codeHash })))
      )
        continue;
      return { digits, code, codeHash };
    }
    return 'overloaded';
  }

  /** A code was issued: it enters the index in this batch, with its expiry timer. */
  issued(batch: Batch, timer: CodeTimer): void {
    const { consumerId, merchantId, codeHash, codeExpiresAtMs: expiresAtMs, codeDigits: digits } = timer;
    const entry: CodeIndexEntry = { consumerId, expiresAtMs, digits };
    this.pending.set(codeKey(timer), batch.no, entry);
    batch.writes.push([this.opts.store.codes, [merchantId, codeHash], entry]);
    this.addTimer(timer);
  }

  /** A code was redeemed or cancelled: it leaves the index in this batch, and its timer goes. */
  ended(batch: Batch, merchantId: MerchantId, codeHash: string): void {
    const timer = this.timers.get(codeKey({ merchantId, codeHash }));
    if (timer) this.wheel.cancel(timer);
    this.dropTimer(merchantId, codeHash);
    this.unindex(batch, merchantId, codeHash);
  }

  /** A code's expiry timer fired: it no longer counts as live; its index entry stays as a tombstone. */
  expired(merchantId: MerchantId, codeHash: string): void {
    this.dropTimer(merchantId, codeHash);
  }

  /** A tombstone's hour is over: the entry leaves the index in this batch. */
  unindex(batch: Batch, merchantId: MerchantId, codeHash: string): void {
    this.pending.set(codeKey({ merchantId, codeHash }), batch.no, null);
    batch.writes.push([this.opts.store.codes, [merchantId, codeHash], undefined]);
  }

  /** A batch is on disk: what it wrote is read from LMDB from now on. */
  release(batchNo: number): void {
    this.pending.release(batchNo);
  }

  /** What is kept in memory, counted (for the capacity benchmark). */
  resident(): { codeTimers: number; liveCodesByLength: number[] } {
    return { codeTimers: this.timers.size, liveCodesByLength: this.live.byLength() };
  }

  private addTimer(timer: CodeTimer): void {
    const key = codeKey(timer);
    const replaced = this.timers.get(key);
    if (replaced) this.live.remove(timer.merchantId, replaced.item.codeDigits ?? CODE_DIGITS_MIN);
    this.live.add(timer.merchantId, timer.codeDigits);
    this.timers.set(key, this.wheel.add(timer.atMs, timer));
  }

  private dropTimer(merchantId: MerchantId, codeHash: string): void {
    const key = codeKey({ merchantId, codeHash });
    const timer = this.timers.get(key);
    if (!timer) return;
    this.timers.delete(key);
    this.live.remove(merchantId, timer.item.codeDigits ?? CODE_DIGITS_MIN);
  }
}

/** A code's key in the in-memory maps: its merchant and keyed hash, as in the code index. */
function codeKey(code: { merchantId: MerchantId; codeHash: string }): string {
  return `${code.merchantId}|${code.codeHash}`;
}
