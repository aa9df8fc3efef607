import {
  type AccountActor,
  type Emitted,
  isFrozen,
  makeAccountMachine,
  persistAccount,
  startAccount,
} from '../core/account-machine.ts';
import { type CodeKeys, sealCode, unsealCode } from '../core/codes.ts';
import type { CardView, Command, Idem, Outcome, WalletView } from '../core/commands.ts';
import {
  type AuthId,
  type ConsumerId,
  type GiftId,
  ID_PREFIX,
  type MerchantId,
  mintId,
  type RefundId,
  SLOT_COUNT,
  slotOfId,
} from '../core/ids.ts';
import { assertBalanced } from '../core/ledger.ts';
import type { Limits } from '../core/limits.ts';
import { TRANSIENT_STATUSES } from '../core/statuses.ts';
import {
  type Auth,
  availableCents,
  type Card,
  type Effect,
  type Reply,
  totalsAt,
  type WalletEvent,
} from '../core/wallet.ts';
import {
  type HistoryEntry,
  type IdempotencyRecord,
  type JournalEntry,
  META,
  type OutboxMessage,
  readMeta,
  type Store,
} from '../persistence/store.ts';
import {
  type Batch,
  GroupCommit,
  Overlay,
  type PendingBatch,
  type ReplicatedLog,
  SweepIfOlder,
} from './group-commit.ts';
import { type CodeTimer, ShardCodes, type TimerItem } from './shard-codes.ts';
import { TimerWheel } from './timer-wheel.ts';

/**
 * A shard owns the accounts of its slots outright and applies their commands one at a time, so no
 * account needs a lock. The shell around the pure machine: it prefetches what an event needs (code
 * index, auth records), sends the event to the account actor, turns the emitted effects into LMDB
 * writes, and commits a whole batch in one transaction (group-commit.ts). Answers are released only once
 * that commit is flushed to disk. Live actors are a bounded LRU cache; the rest live in LMDB only.
 *
 * @module
 */

export interface ShardOptions {
  store: Store;
  keys: CodeKeys;
  shardIndex: number;
  shardCount: number;
  codeTtlMs: number;
  limits: Limits;
  nowMs: number;
  /**
   * Called at once when LMDB fails a commit, before the answers of earlier batches are released: after a
   * refused commit lmdb-js may never report the flush they wait for (see shard-worker.ts).
   */
  onCommitFailed?: (error: unknown) => void;
  /** In a cluster, the shard's replicated log, where each batch is stored before it is answered. */
  log?: ReplicatedLog;
}

interface Live {
  consumerId: ConsumerId;
  actor: AccountActor;
  /** The last batch that changed this account; it may be evicted once that batch is durable. */
  dirtyBatch: number;
}

/** A batch of this shard: its writes and answers, and the accounts it changed. */
interface ShardBatch extends Batch {
  dirty: Set<Live>;
}

export class Shard {
  private readonly actors = new Map<ConsumerId, Live>();
  private readonly machine: ReturnType<typeof makeAccountMachine>;
  private readonly group: GroupCommit;
  private readonly codes: ShardCodes;
  private readonly auths = new Overlay<Auth>();
  private readonly wheel: TimerWheel<TimerItem>;
  /** The length of the code being issued, while its ISSUE_CODE event runs (see issueCode). */
  private issuingCodeDigits: number | null = null;
  private emitted: Effect[] = [];
  private readonly collect = (event: Emitted) => this.emitted.push(...event.effects);
  /** Consumers someone listens to (a wallet socket); only their changes become notices. */
  private readonly watched = new Set<ConsumerId>();
  private journalSeq: number;
  /** The last idempotency key swept; the next stretch starts there. Undefined starts from the first. */
  private sweepFrom: [string, string] | undefined;
  /** When the next pass of the sweep may start (it rests after each full pass). */
  private sweepRestsUntilMs = 0;

  constructor(private readonly opts: ShardOptions) {
    const { store, shardIndex, limits, nowMs } = opts;
    this.group = new GroupCommit(
      store,
      shardIndex,
      (batchNo) => {
        this.codes.release(batchNo);
        this.auths.release(batchNo);
      },
      opts.onCommitFailed,
      opts.log,
    );
    this.machine = makeAccountMachine(limits);
    this.journalSeq = readMeta(store, META.journalSeq(shardIndex)) ?? 0;
    this.wheel = new TimerWheel<TimerItem>(limits.timerTickMs, limits.timerWheelSlots, nowMs);
    for (let slot = shardIndex; slot < SLOT_COUNT; slot += opts.shardCount) {
      for (const { key, value } of store.timers.getRange({ start: [slot], end: [slot + 1] })) {
        const [, atMs, kind, consumerId] = key;
        this.wheel.add(atMs, { slot, atMs, kind, consumerId, ...value });
      }
    }
    // Code expiry timers are not stored: the code index holds every live or recently expired code.
    this.codes = new ShardCodes({ ...opts, owns: (slot) => this.owns(slot) }, this.wheel);
  }

  /** What the shard keeps in memory, counted (for the capacity benchmark's `stats` message). */
  resident(): {
    liveActors: number;
    codeTimers: number;
    wheelTimers: number;
    watched: number;
    liveCodesByLength: number[];
  } {
    return {
      liveActors: this.actors.size,
      wheelTimers: this.wheel.size,
      watched: this.watched.size,
      ...this.codes.resident(),
    };
  }

  /** Stops the live actors; used when the shard is rebuilt from LMDB after a failed commit. */
  dispose(): void {
    for (const live of this.actors.values()) live.actor.stop();
    this.actors.clear();
  }

  watch(consumerId: ConsumerId, on: boolean): void {
    if (on) this.watched.add(consumerId);
    else this.watched.delete(consumerId);
  }

  owns(slot: number): boolean {
    return slot >= 0 && slot % this.opts.shardCount === this.opts.shardIndex;
  }

  /** Applies the commands in order, in memory; the batch's answers are released once it is durable. */
  run(commands: readonly Command[]): PendingBatch {
    const batch = this.beginBatch();
    for (const command of commands) {
      if (!this.owns(command.slot))
        throw new Error(`command for slot ${command.slot} reached shard ${this.opts.shardIndex}`);
      batch.report.outcomes.push({ id: command.id, ...this.apply(batch, command) });
    }
    return this.commit(batch);
  }

  /** Fires due timers as one batch; null when none is due. */
  tick(nowMs: number): PendingBatch | null {
    const batch = this.beginBatch();
    this.timePasses(batch, nowMs);
    // An expiry may change only the account (written at commit) and what watchers hear.
    const idle = batch.writes.length === 0 && batch.dirty.size === 0 && batch.report.notices.length === 0;
    return idle ? null : this.commit(batch);
  }

  /** Fires due timers and sweeps a stretch of old idempotency records. */
  private timePasses(batch: ShardBatch, nowMs: number): void {
    const { limits } = this.opts;
    for (const timer of this.wheel.due(nowMs, limits.timerFiresPerTickMax)) this.fire(batch, timer, nowMs);
    if (this.opts.shardIndex === 0) this.sweepIdempotency(batch, nowMs);
  }

  /**
   * Shard 0 walks the idempotency records a stretch per tick and removes those older than the
   * retention. The removal is conditional, checked inside the commit, because another shard may have
   * stored a new record under the same key meanwhile.
   */
  private sweepIdempotency(batch: ShardBatch, nowMs: number): void {
    const { store, limits } = this.opts;
    if (this.sweepFrom === undefined && nowMs < this.sweepRestsUntilMs) return;
    const olderThanMs = nowMs - limits.idempotencyRetentionMs;
    const from = this.sweepFrom;
    let seen = 0;
    for (const { key, value } of store.idempotency.getRange({
      start: from,
      limit: limits.idempotencySweepPerTickMax,
    })) {
      seen++;
      if (from && key[0] === from[0] && key[1] === from[1]) continue; // swept last time
      this.sweepFrom = key;
      if (value.atMs < olderThanMs)
        batch.writes.push([store.idempotency, key, new SweepIfOlder(olderThanMs)]);
    }
    if (seen < limits.idempotencySweepPerTickMax) {
      // The end of the table: the next pass starts from the first record after a rest.
      this.sweepFrom = undefined;
      this.sweepRestsUntilMs = nowMs + limits.idempotencySweepRestMs;
    }
  }

  // -------------------------------------------------------------------------------------------------
  // Commands.

  private apply(batch: ShardBatch, command: Command): Omit<Outcome, 'id'> {
    const { nowMs } = command;
    switch (command.op) {
      case 'load':
        return this.idempotent(batch, command, () =>
          command.expiresAtMs !== null && command.expiresAtMs <= nowMs
            ? { status: 'bad_request' }
            : this.send(batch, command.consumerId, {
                type: 'LOAD',
                nowMs,
                merchantId: command.merchantId,
                kind: command.kind,
                funding: command.funding,
                amountCents: command.amountCents,
                expiresAtMs: command.expiresAtMs,
                newCardId: mintId(ID_PREFIX.card, command.slot),
                ref: `${command.idem.scope}/${command.idem.key}`,
              }),
        );
      case 'issueCode':
        return this.issueCode(batch, command);
      case 'cancelCode':
        return { reply: this.send(batch, command.consumerId, { type: 'CANCEL_CODE', nowMs }) };
      case 'freeze':
      case 'unfreeze':
        return {
          reply: this.send(batch, command.consumerId, {
            type: command.op === 'freeze' ? 'FREEZE' : 'UNFREEZE',
            nowMs,
          }),
        };
      case 'setAlert':
        return {
          reply: this.send(batch, command.consumerId, {
            type: 'SET_ALERT',
            nowMs,
            cardId: command.cardId,
            belowCents: command.belowCents,
          }),
        };
      case 'wallet':
        return { reply: { status: 'approved' }, wallet: this.view(command.consumerId) };
      case 'history':
        return { reply: { status: 'approved' }, history: this.history(command.consumerId, command.limit) };
      case 'redeem':
        // The key's record is gone (swept): the caller, who skipped its checks for a replay, must make
        // this a new, checked attempt.
        if (command.replayOnly && !this.opts.store.idempotency.get([command.idem.scope, command.idem.key]))
          return { reply: { status: 'not_found' } };
        return this.idempotent(batch, command, () => {
          const { codeHash } = command;
          const entry = this.codes.entry(command.merchantId, codeHash);
          if (!entry || !this.owns(slotOfId(entry.consumerId))) return { status: 'invalid_code' };
          return this.send(batch, entry.consumerId, {
            type: 'REDEEM',
            nowMs,
            merchantId: command.merchantId,
            codeHash,
            amountCents: command.amountCents,
            partial: command.partial,
            // The holder's slot, so a void or refund reaches the holder's shard whatever the shard count.
            authId: mintId<AuthId>(ID_PREFIX.auth, slotOfId(entry.consumerId)),
            terminalId: command.terminalId,
          });
        });
      case 'inquire': {
        const { codeHash } = command;
        const entry = this.codes.entry(command.merchantId, codeHash);
        if (!entry || !this.owns(slotOfId(entry.consumerId))) return { reply: { status: 'invalid_code' } };
        return {
          reply: this.send(batch, entry.consumerId, {
            type: 'INQUIRE',
            nowMs,
            merchantId: command.merchantId,
            codeHash,
          }),
        };
      }
      case 'void':
        return this.idempotent(batch, command, () => {
          const auth = this.auth(command.authId, command.merchantId);
          if (!auth) return { status: 'not_found' };
          const settledUpToMs = readMeta(this.opts.store, META.settledUpToMs) ?? 0;
          return this.send(batch, auth.consumerId, { type: 'VOID', nowMs, auth, settledUpToMs });
        });
      case 'refund':
        return this.idempotent(batch, command, () => {
          const auth = this.auth(command.authId, command.merchantId);
          if (!auth) return { status: 'not_found' };
          const refundId = mintId<RefundId>(ID_PREFIX.refund, command.slot);
          return this.send(batch, auth.consumerId, {
            type: 'REFUND',
            nowMs,
            auth,
            amountCents: command.amountCents,
            refundId,
          });
        });
      case 'reverse': {
        const auth = this.auth(command.authId, command.merchantId);
        if (!auth) return { reply: { status: 'nothing_to_reverse' } };
        return { reply: this.send(batch, auth.consumerId, { type: 'REVERSE', nowMs, auth }) };
      }
      case 'closeKey':
        return this.idempotent(batch, command, () => command.reply);
      case 'giftSend':
        return this.idempotent(batch, command, () =>
          this.send(batch, command.consumerId, {
            type: 'GIFT_SEND',
            nowMs,
            giftId: mintId<GiftId>(ID_PREFIX.gift, command.slot),
            merchantId: command.merchantId,
            amountCents: command.amountCents,
            toConsumerId: command.toConsumerId,
          }),
        );
      case 'giftReceive': {
        const idem = { scope: 'gift', key: command.giftId, inputHash: 'receive' };
        return this.idempotent(batch, { ...command, idem }, () =>
          this.send(batch, command.consumerId, {
            type: 'GIFT_RECEIVE',
            nowMs,
            giftId: command.giftId,
            merchantId: command.merchantId,
            amountCents: command.amountCents,
            ...(command.boughtCents ? { boughtCents: command.boughtCents } : {}),
            newCardId: mintId(ID_PREFIX.card, command.slot),
          }),
        );
      }
      case 'tick':
        this.timePasses(batch, nowMs);
        return { reply: { status: 'approved' } };
      case 'giftDone':
        batch.writes.push([this.opts.store.sagas, command.giftId, undefined]);
        return { reply: { status: 'approved' } };
    }
  }

  /**
   * Issues a code of the shortest length with room in this shard's share (shard-codes.ts), drawn from the
   * consumer's slot's part of that length's space, so no other shard can draw the same digits.
   */
  private issueCode(batch: ShardBatch, command: Extract<Command, { op: 'issueCode' }>): Omit<Outcome, 'id'> {
    const { keys, codeTtlMs } = this.opts;
    const { merchantId, nowMs } = command;
    const current = this.live(command.consumerId).actor.getSnapshot().context.code;
    const drawn = this.codes.draw(merchantId, command.slot, command.codeDigitsMin, current, nowMs);
    if (typeof drawn === 'string') return { reply: { status: drawn } };
    const { code, codeHash, digits } = drawn;
    this.issuingCodeDigits = digits;
    try {
      const reply = this.send(batch, command.consumerId, {
        type: 'ISSUE_CODE',
        nowMs,
        merchantId,
        capCents: command.capCents,
        codeHash,
        sealed: sealCode(keys, code, command.consumerId),
        expiresAtMs: nowMs + codeTtlMs,
      });
      return { reply: reply.status === 'approved' ? { ...reply, code } : reply };
    } finally {
      this.issuingCodeDigits = null;
    }
  }

  /** Returns the stored answer for a used key, or runs the command and stores its answer with it. */
  private idempotent(
    batch: ShardBatch,
    command: Command & { idem: Idem },
    run: () => Reply,
  ): Omit<Outcome, 'id'> {
    const { idempotency } = this.opts.store;
    const { idem, op, nowMs } = command;
    const stored = idempotency.get([idem.scope, idem.key]);
    if (stored) {
      return {
        reply: stored.inputHash === idem.inputHash ? stored.reply : { status: 'idempotency_mismatch' },
      };
    }
    const reply = run();
    // A malformed request is not a use of the key: the corrected request may still use it.
    if (!TRANSIENT_STATUSES.has(reply.status) && reply.status !== 'bad_request') {
      const record: IdempotencyRecord = { op, inputHash: idem.inputHash, reply, atMs: nowMs };
      batch.writes.push([idempotency, [idem.scope, idem.key], record]);
    }
    return { reply };
  }

  // -------------------------------------------------------------------------------------------------
  // Actors and effects.

  private live(consumerId: ConsumerId): Live {
    const cached = this.actors.get(consumerId);
    if (cached) {
      // Re-insert so the Map's order is least recently used first.
      this.actors.delete(consumerId);
      this.actors.set(consumerId, cached);
      return cached;
    }
    this.evict();
    const actor = startAccount(consumerId, this.opts.store.accounts.get(consumerId), this.machine);
    actor.on('*', this.collect);
    const live: Live = { consumerId, actor, dirtyBatch: 0 };
    this.actors.set(consumerId, live);
    return live;
  }

  /** Makes room for one more actor: passivates the least recently used ones whose state is durable. */
  private evict(): void {
    let excess = this.actors.size + 1 - this.opts.limits.liveActorsPerShardMax;
    if (excess <= 0) return;
    for (const [consumerId, live] of this.actors) {
      if (excess <= 0) break;
      if (live.dirtyBatch > this.group.durableBatchNo) continue;
      live.actor.stop();
      this.actors.delete(consumerId);
      excess--;
    }
  }

  /** Sends one event to an account and performs what it emitted; returns the account's answer. */
  private send(batch: ShardBatch, consumerId: ConsumerId, event: WalletEvent): Reply {
    const live = this.live(consumerId);
    const before = live.actor.getSnapshot();
    this.emitted = [];
    live.actor.send(event);
    const snapshot = live.actor.getSnapshot();
    // A rule that broke a wallet invariant (core/wallet.ts `assertWallet`) stopped the actor: the thread
    // fails here, at the event, and nothing of the batch is committed.
    if (snapshot.status === 'error') throw snapshot.error;
    // The account is written when its wallet or its state changed (a freeze without a live code changes
    // only the `access` region).
    if (
      snapshot.context !== before.context ||
      snapshot.value.code !== before.value.code ||
      snapshot.value.access !== before.value.access
    ) {
      live.dirtyBatch = batch.no;
      batch.dirty.add(live);
    }
    let reply: Reply | undefined;
    for (const effect of this.emitted) {
      if (effect.type === 'reply') reply = effect.reply;
      else this.perform(batch, live, effect, event.nowMs);
    }
    if (!reply && !event.type.startsWith('EXPIRE_')) throw new Error(`${event.type} produced no answer`);
    return reply ?? { status: 'approved' };
  }

  private perform(
    batch: ShardBatch,
    live: Live,
    effect: Exclude<Effect, { type: 'reply' }>,
    nowMs: number,
  ): void {
    const { store, shardIndex } = this.opts;
    const { consumerId } = live;
    const slot = slotOfId(consumerId);
    switch (effect.type) {
      case 'posting': {
        assertBalanced(effect.legs);
        const { kind, merchantId, ref, legs, boughtCents } = effect;
        const entry: JournalEntry = { atMs: nowMs, kind, consumerId, merchantId, ref, legs };
        if (boughtCents !== undefined) entry.boughtCents = boughtCents;
        batch.writes.push([store.journal, [nowMs, shardIndex, ++this.journalSeq], entry]);
        let amountCents = 0;
        for (const line of effect.history) {
          amountCents += Math.abs(line.amountCents);
          batch.writes.push([
            store.history,
            [consumerId, nowMs, shardIndex, ++this.journalSeq],
            { atMs: nowMs, kind, merchantId, ref, ...line },
          ]);
        }
        // The consumer's confirmation text is queued in the same commit, so it is neither lost nor
        // sent for an event that did not happen.
        if (effect.receipt) {
          const { event, alerts } = effect.receipt;
          const { balanceCents } = totalsAt(live.actor.getSnapshot().context, merchantId);
          const message: OutboxMessage = {
            kind: 'receipt',
            event,
            merchantId,
            amountCents,
            balanceCents,
            ref,
          };
          if (alerts.length > 0) message.alerts = alerts;
          batch.writes.push([
            store.outbox,
            [nowMs, shardIndex, ++this.journalSeq],
            { consumerId, atMs: nowMs, message },
          ]);
        }
        return;
      }
      case 'balance':
        if (!this.watched.has(consumerId)) return;
        batch.report.notices.push({
          type: 'balance',
          consumerId,
          card: cardView(effect.card),
          cause: effect.cause,
          atMs: nowMs,
        });
        return;
      case 'code': {
        const { state, merchantId, codeHash, capCents, expiresAtMs, sealed } = effect;
        if (state === 'issued') {
          const digits = this.issuingCodeDigits;
          if (digits === null) throw new Error('a code was issued outside issueCode');
          this.codes.issued(batch, {
            slot,
            atMs: expiresAtMs,
            kind: 'code',
            consumerId,
            merchantId,
            codeHash,
            codeExpiresAtMs: expiresAtMs,
            codeDigits: digits,
          });
        } else if (
          state !== 'expired' &&
          this.codes.isIndexed(consumerId, merchantId, codeHash, expiresAtMs)
        ) {
          // An expired code's entry stays a while so late attempts hear `expired_code` (see fire()).
          this.codes.ended(batch, merchantId, codeHash);
        }
        if (!this.watched.has(consumerId)) return;
        batch.report.notices.push({
          type: 'code',
          consumerId,
          sealed,
          merchantId,
          capCents,
          state,
          expiresAtMs,
          atMs: nowMs,
        });
        return;
      }
      case 'timer':
        this.store(batch, { slot, atMs: effect.atMs, kind: effect.kind, consumerId });
        return;
      case 'auth':
        this.auths.set(effect.auth.authId, batch.no, effect.auth);
        batch.writes.push([store.auths, effect.auth.authId, effect.auth]);
        return;
      case 'giftDebited': {
        const saga = { ...effect, fromConsumerId: consumerId, atMs: nowMs };
        batch.writes.push([store.sagas, effect.giftId, saga]);
        batch.report.gifts.push(saga);
        return;
      }
    }
  }

  /** A timer that survives restarts by its own LMDB record (reward lots; codes live in the code index). */
  private store(batch: ShardBatch, timer: TimerItem): void {
    const { slot, atMs, kind, consumerId } = timer;
    batch.writes.push([this.opts.store.timers, [slot, atMs, kind, consumerId], {}]);
    this.wheel.add(atMs, timer);
  }

  private fire(batch: ShardBatch, timer: TimerItem, nowMs: number): void {
    const { store, limits } = this.opts;
    if (timer.kind === 'lots') {
      batch.writes.push([store.timers, [timer.slot, timer.atMs, timer.kind, timer.consumerId], undefined]);
      this.send(batch, timer.consumerId, { type: 'EXPIRE_LOTS', nowMs });
      return;
    }
    const { merchantId, codeHash, codeExpiresAtMs } = timer as CodeTimer;
    // A redeemed or cancelled code left the index, and digits issued again belong to a newer timer:
    // skip both without waking the account.
    if (
      !this.codes.isIndexed(timer.consumerId, merchantId, codeHash, codeExpiresAtMs) ||
      codeExpiresAtMs > nowMs
    )
      return;
    if (timer.kind === 'code') {
      this.codes.expired(merchantId, codeHash);
      this.send(batch, timer.consumerId, { type: 'EXPIRE_CODE', nowMs });
      // Late attempts hear `expired_code` for a while; then the tombstone goes.
      const atMs = codeExpiresAtMs + limits.codeTombstoneMs;
      this.wheel.add(atMs, { ...timer, kind: 'tomb', atMs });
    } else {
      this.codes.unindex(batch, merchantId, codeHash);
    }
  }

  // -------------------------------------------------------------------------------------------------
  // Reads.

  /** The auth record if it exists and belongs to this merchant; another merchant's is not found. */
  private auth(authId: AuthId, merchantId: MerchantId): Auth | undefined {
    const auth = this.auths.get(authId)?.value ?? this.opts.store.auths.get(authId);
    return auth && auth.merchantId === merchantId ? auth : undefined;
  }

  private view(consumerId: ConsumerId): WalletView {
    const { actor } = this.live(consumerId);
    const wallet = actor.getSnapshot().context;
    const code = wallet.code;
    return {
      frozen: isFrozen(actor),
      cards: wallet.cards.map(cardView),
      activeCode: code && {
        code: unsealCode(this.opts.keys, code.sealed, consumerId),
        merchantId: code.merchantId,
        capCents: code.capCents,
        expiresAtMs: code.expiresAtMs,
      },
    };
  }

  private history(consumerId: ConsumerId, limit: number): HistoryEntry[] {
    const range = this.opts.store.history.getRange({
      start: [consumerId, Number.MAX_SAFE_INTEGER],
      end: [consumerId, -1],
      reverse: true,
      limit,
    });
    return Array.from(range, ({ value }) => value);
  }

  // -------------------------------------------------------------------------------------------------
  // Group commit (group-commit.ts).

  /** Test hook (shard-worker.ts `ShardFault`): the next commit throws after its first write. */
  injectFaultInsideNextCommit(): void {
    this.group.injectFaultInsideNextCommit();
  }

  private beginBatch(): ShardBatch {
    return { ...this.group.begin(), dirty: new Set() };
  }

  private commit(batch: ShardBatch): PendingBatch {
    const { store, shardIndex } = this.opts;
    for (const live of batch.dirty)
      batch.writes.push([store.accounts, live.consumerId, persistAccount(live.actor)]);
    if (batch.writes.length > 0)
      batch.writes.push([store.meta, META.journalSeq(shardIndex), this.journalSeq]);
    return this.group.commit(batch);
  }
}

function cardView(card: Card): CardView {
  const { cardId, merchantId, kind, balanceCents, alertBelowCents } = card;
  const view: CardView = { cardId, merchantId, kind, balanceCents, availableCents: availableCents(card) };
  if (alertBelowCents !== undefined) view.alertBelowCents = alertBelowCents;
  return view;
}
