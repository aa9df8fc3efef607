// Proves that one account actor (core/account-machine.ts over the rules of core/wallet.ts) agrees, event
// by event, with an independent reference model of a two-merchant wallet under random command sequences and a
// fake clock: every command gets exactly one reply with the status and figures the model predicts, the postings
// conserve money and match the card balances, holds never outlive their code, and a code pays at most once.
// The examples below walk every status of every event and every state and transition of the two regions.

import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { type AccountActor, isFrozen, type PersistedAccount, startAccount } from '../core/account-machine.ts';
import type { AuthId, CardId, ConsumerId, GiftId, MerchantId, RefundId, TerminalId } from '../core/ids.ts';
import { ledgerAccount, legsSum } from '../core/ledger.ts';
import { LIMITS } from '../core/limits.ts';
import { isStatus } from '../core/statuses.ts';
import {
  type Auth,
  assertWallet,
  type CardKind,
  type Effect,
  type Funding,
  type Lot,
  type Reply,
  refundedBoughtCents,
  type Wallet,
  type WalletEvent,
  walletProblems,
} from '../core/wallet.ts';

// ---------------------------------------------------------------------------------------------------
// The driver: one actor, a fake clock, and what the shard keeps (ledger totals, the latest auth records).

type DistributiveOmit<T, K extends PropertyKey> = T extends unknown ? Omit<T, K> : never;
/** An event without its time: the driver stamps it. */
type Input = DistributiveOmit<WalletEvent, 'nowMs'>;
type RegionValue = { code: string; access: string };

const T0 = 1_700_000_000_000;
const CONSUMER = 'cu_7_wallet-model' as ConsumerId;
const M1 = 'm1' as MerchantId;
const M2 = 'm2' as MerchantId;
const MERCHANTS = [M1, M2] as const;
const TERMINAL = 'tm-1' as TerminalId;
const SEALED = 'sealed-code';
const BOGUS_HASH = 'code-hash-never-issued';
const MINUTE = 60_000;
const HOUR = 60 * MINUTE;

class Account {
  readonly actor: AccountActor = startAccount(CONSUMER);
  nowMs = T0;
  /** Running total per ledger account of every posting leg emitted so far. */
  readonly ledger = new Map<string, number>();
  /** The latest auth record per authId, as the shard stores it. */
  readonly auths = new Map<string, Auth>();
  private seen: Effect[] = [];
  private counter = 0;

  constructor(private readonly visited?: Set<string>) {
    this.actor.on('*', (event) => {
      this.seen.push(...event.effects);
    });
  }

  id(prefix: string): string {
    this.counter += 1;
    return `${prefix}-${this.counter}`;
  }

  get wallet() {
    return this.actor.getSnapshot().context;
  }

  get value(): RegionValue {
    return this.actor.getSnapshot().value as RegionValue;
  }

  /** Advances the clock by `dtMs` (at least 1), sends the event at the new time, returns what it emitted. */
  send(input: Input, dtMs = 1): Effect[] {
    expect(Number.isSafeInteger(dtMs) && dtMs >= 1).toBe(true);
    this.nowMs += dtMs;
    const before = this.value;
    const earlier = this.wallet;
    const earlierCopy = structuredClone(earlier);
    this.seen = [];
    this.actor.send({ ...input, nowMs: this.nowMs } as WalletEvent);
    // Rules copy what they change: the previous snapshot (which the shard may still be persisting) is intact.
    expect(earlier).toEqual(earlierCopy);
    const effects = this.seen;
    for (const effect of effects) {
      if (effect.type === 'posting') {
        for (const leg of effect.legs)
          this.ledger.set(leg.account, (this.ledger.get(leg.account) ?? 0) + leg.cents);
      } else if (effect.type === 'auth') {
        this.auths.set(effect.auth.authId, effect.auth);
      }
    }
    if (this.visited) record(this.visited, input.type, before, this.value, effects);
    return effects;
  }

  // Shorthands for the examples.
  load(merchantId: MerchantId, kind: CardKind, amountCents: number, more: Partial<Input> = {}, dtMs = 1) {
    return this.send(
      {
        type: 'LOAD',
        merchantId,
        kind,
        funding: 'merchant',
        amountCents,
        expiresAtMs: null,
        newCardId: this.id('cd') as CardId,
        ref: this.id('ref'),
        ...more,
      } as Input,
      dtMs,
    );
  }

  issue(merchantId: MerchantId, capCents: number | null, ttlMs = LIMITS.codeTtlMs, dtMs = 1) {
    const codeHash = this.id('code');
    const effects = this.send(
      {
        type: 'ISSUE_CODE',
        merchantId,
        capCents,
        codeHash,
        sealed: SEALED,
        expiresAtMs: this.nowMs + dtMs + ttlMs,
      },
      dtMs,
    );
    return { codeHash, effects };
  }

  redeem(merchantId: MerchantId, codeHash: string, amountCents: number, partial = false, dtMs = 1) {
    const authId = this.id('au') as AuthId;
    const effects = this.send(
      { type: 'REDEEM', merchantId, codeHash, amountCents, partial, authId, terminalId: TERMINAL },
      dtMs,
    );
    return { authId, effects };
  }

  auth(authId: string): Auth {
    const auth = this.auths.get(authId);
    if (!auth) throw new Error(`no auth record ${authId}`);
    return auth;
  }
}

function repliesOf(effects: Effect[]): Reply[] {
  return effects.flatMap((effect) => (effect.type === 'reply' ? [effect.reply] : []));
}

/** The one reply of a command; fails unless there is exactly one. */
function replyOf(effects: Effect[]): Reply {
  const replies = repliesOf(effects);
  expect(replies).toHaveLength(1);
  const [reply] = replies;
  if (!reply) throw new Error('no reply');
  return reply;
}

const statusOf = (effects: Effect[]) => replyOf(effects).status;
const count = (effects: Effect[], type: Effect['type']) => effects.filter((e) => e.type === type).length;
const codeStatesOf = (effects: Effect[]) =>
  effects.flatMap((effect) => (effect.type === 'code' ? [effect.state] : []));

/** Records (event, status) pairs and the transitions of each region, for the coverage check. */
function record(
  visited: Set<string>,
  type: string,
  before: RegionValue,
  after: RegionValue,
  effects: Effect[],
) {
  const replies = repliesOf(effects);
  visited.add(`${type}:${replies[0]?.status ?? 'no reply'}`);
  // Events that moved bought gift value.
  if (effects.some((e) => (e.type === 'posting' || e.type === 'giftDebited') && (e.boughtCents ?? 0) !== 0))
    visited.add(`${type}:bought`);
  for (const region of ['code', 'access'] as const) {
    visited.add(`${region}:${after[region]}`);
    if (before[region] !== after[region]) {
      visited.add(`${region}:${before[region]}->${after[region]}`);
      visited.add(`${type} ${region}:${before[region]}->${after[region]}`);
    }
  }
  if (before.code === 'codeIssued' && after.code === 'codeIssued' && codeStatesOf(effects).includes('issued'))
    visited.add('code:codeIssued->codeIssued');
}

// ---------------------------------------------------------------------------------------------------
// The reference model: plain objects and arithmetic, written from the rules' documentation.

type Fate = 'redeemed' | 'expired' | 'cancelled';
type CodeRegion = 'none' | 'codeIssued' | Fate;

interface MCard {
  cardId: string;
  merchantId: string;
  kind: CardKind;
  balanceCents: number;
  heldCents: number;
  lots: Lot[];
  alertBelowCents?: number;
  /** Gift cards: the part of the balance consumers bought; a payment or a gift spends it last. */
  boughtCents: number;
}

interface MAuth {
  authId: string;
  merchantId: string;
  atMs: number;
  capturedCents: number;
  giftCents: number;
  /** Of the gift value captured: what was bought, and how much of that was refunded. */
  giftBoughtCents: number;
  refundedGiftBoughtCents: number;
  /** Reward lots captured and not refunded yet, soonest-expiring first. */
  rewardLots: Lot[];
  refundedCents: number;
  refundedGiftCents: number;
  state: Auth['state'];
}

interface Expected {
  reply: Reply | null;
  /** The code lifecycle notices the event should emit, in order. */
  codeStates: string[];
}

const expiryKey = (lot: Lot) => lot.expiresAtMs ?? Number.POSITIVE_INFINITY;
const sumLots = (lots: readonly Lot[]) => lots.reduce((sum, lot) => sum + lot.cents, 0);

/** Lots by expiry, soonest first, never-expiring last, one lot per expiry. */
function addLot(lots: readonly Lot[], lot: Lot): Lot[] {
  const out = lots.map((l) => ({ ...l }));
  const same = out.find((l) => l.expiresAtMs === lot.expiresAtMs);
  if (same) same.cents += lot.cents;
  else out.push({ ...lot });
  return out.sort((a, b) => (a.expiresAtMs === b.expiresAtMs ? 0 : expiryKey(a) < expiryKey(b) ? -1 : 1));
}

/** Takes `cents` from the soonest (or latest) lots: what is taken, and what is kept. */
function takeLots(
  lots: readonly Lot[],
  cents: number,
  from: 'soonest' | 'latest',
): { taken: Lot[]; kept: Lot[] } {
  const kept = lots.map((l) => ({ ...l }));
  const taken: Lot[] = [];
  let left = cents;
  while (left > 0) {
    const lot = from === 'soonest' ? kept[0] : kept[kept.length - 1];
    if (!lot) throw new Error('model: lots do not cover the amount');
    const take = Math.min(left, lot.cents);
    taken.push({ cents: take, expiresAtMs: lot.expiresAtMs });
    lot.cents -= take;
    left -= take;
    if (lot.cents === 0) {
      if (from === 'soonest') kept.shift();
      else kept.pop();
    }
  }
  return { taken, kept };
}

class Model {
  cards: MCard[] = [];
  /** The bought part of each gift sent. */
  giftsBought = new Map<string, number>();
  /** The bought change of every posting the actor made (its `boughtCents`), summed. */
  boughtPosted = 0;
  code: {
    codeHash: string;
    sealed: string;
    merchantId: string;
    capCents: number;
    issuedAtMs: number;
    expiresAtMs: number;
  } | null = null;
  lastCode: { codeHash: string; merchantId: string; fate: Fate; expiresAtMs: number } | null = null;
  region: CodeRegion = 'none';
  frozen = false;
  /** Approved redemptions per UTC day (days since the epoch), for the per-day spending limit. */
  readonly paidPerDay = new Map<number, number>();
  readonly auths = new Map<string, MAuth>();
  /** Expected balance of every ledger account. */
  readonly ledger = new Map<string, number>();
  /** Every code hash issued so far, oldest first (so the driver can pick a stale one). */
  readonly issued: { codeHash: string; merchantId: string }[] = [];
  private codeStates: string[] = [];

  card(merchantId: string, kind: CardKind): MCard | undefined {
    return this.cards.find((c) => c.merchantId === merchantId && c.kind === kind);
  }

  private mustCard(merchantId: string, kind: CardKind): MCard {
    const card = this.card(merchantId, kind);
    if (!card) throw new Error(`model: no ${kind} card at ${merchantId}`);
    return card;
  }

  balanceAt(merchantId: string): number {
    return this.cards.filter((c) => c.merchantId === merchantId).reduce((s, c) => s + c.balanceCents, 0);
  }

  heldAt(merchantId: string): number {
    return this.cards.filter((c) => c.merchantId === merchantId).reduce((s, c) => s + c.heldCents, 0);
  }

  /** What the live code can still pay. */
  spendable(): number {
    return this.code ? Math.min(this.code.capCents, this.heldAt(this.code.merchantId)) : 0;
  }

  refundable(auth: MAuth): number {
    return auth.state === 'approved' ? auth.capturedCents - auth.refundedCents : 0;
  }

  private post(account: string, cents: number): void {
    this.ledger.set(account, (this.ledger.get(account) ?? 0) + cents);
  }

  private credit(card: MCard, cents: number): void {
    card.balanceCents += cents;
    this.post(ledgerAccount.card(card.cardId), cents);
  }

  /** The live code ends: its holds are released and its fate remembered. */
  private endCode(fate: Fate): void {
    const code = this.code;
    if (!code) return;
    for (const card of this.cards) if (card.merchantId === code.merchantId) card.heldCents = 0;
    this.lastCode = {
      codeHash: code.codeHash,
      merchantId: code.merchantId,
      fate,
      expiresAtMs: code.expiresAtMs,
    };
    this.code = null;
    this.region = fate;
    this.codeStates.push(fate);
  }

  private isLive(merchantId: string, codeHash: string): boolean {
    return this.code !== null && this.code.merchantId === merchantId && this.code.codeHash === codeHash;
  }

  private deadCode(merchantId: string, codeHash: string): Reply {
    const last = this.lastCode;
    const expired =
      last !== null &&
      last.fate === 'expired' &&
      last.merchantId === merchantId &&
      last.codeHash === codeHash;
    return { status: expired ? 'expired_code' : 'invalid_code' };
  }

  /** Value a void, reversal or refund gives back to the cards the redemption debited. */
  /** Takes gift value off a card, issued value before bought value; returns the bought part taken. */
  private debitGift(card: MCard, cents: number): number {
    const issued = card.balanceCents - card.boughtCents;
    const bought = cents > issued ? cents - issued : 0;
    card.boughtCents -= bought;
    this.credit(card, -cents);
    return bought;
  }

  private restore(auth: MAuth, giftCents: number, boughtCents: number, lots: Lot[]): void {
    if (giftCents > 0) {
      const gift = this.mustCard(auth.merchantId, 'gift');
      this.credit(gift, giftCents);
      gift.boughtCents += boughtCents;
    }
    const rewardCents = sumLots(lots);
    if (rewardCents > 0) {
      const reward = this.mustCard(auth.merchantId, 'reward');
      this.credit(reward, rewardCents);
      for (const lot of lots) reward.lots = addLot(reward.lots, lot);
    }
    this.post(ledgerAccount.merchantPayable(auth.merchantId), -(giftCents + rewardCents));
  }

  /** Reward lots past their expiry leave their cards, whether the timer or a use notices first. */
  private expireDueLots(nowMs: number): void {
    for (const card of this.cards) {
      const due = card.lots.filter((l) => l.expiresAtMs !== null && l.expiresAtMs <= nowMs);
      const expired = sumLots(due);
      if (expired === 0) continue;
      card.lots = card.lots.filter((l) => !due.includes(l));
      this.credit(card, -expired);
      this.post(ledgerAccount.merchantExpired(card.merchantId), expired);
      card.heldCents = Math.min(card.heldCents, card.balanceCents);
    }
  }

  apply(ev: WalletEvent): Expected {
    this.codeStates = [];
    const reply = this.dispatch(ev);
    return { reply, codeStates: this.codeStates };
  }

  private dispatch(ev: WalletEvent): Reply | null {
    switch (ev.type) {
      case 'LOAD': {
        const card = this.card(ev.merchantId, ev.kind);
        const balance = card?.balanceCents ?? 0;
        const lots = card?.lots ?? [];
        const newLot = ev.kind === 'reward' && !lots.some((l) => l.expiresAtMs === ev.expiresAtMs);
        if (
          balance + ev.amountCents > LIMITS.cardBalanceMaxCents ||
          (newLot && lots.length >= LIMITS.rewardLotsMax)
        )
          return { status: 'limit_exceeded' };
        const target = card ?? {
          cardId: ev.newCardId,
          merchantId: ev.merchantId,
          kind: ev.kind,
          balanceCents: 0,
          heldCents: 0,
          lots: [],
          boughtCents: 0,
        };
        if (!card) this.cards.push(target);
        this.credit(target, ev.amountCents);
        if (ev.kind === 'gift' && ev.funding === 'consumer') target.boughtCents += ev.amountCents;
        if (ev.kind === 'reward')
          target.lots = addLot(target.lots, { cents: ev.amountCents, expiresAtMs: ev.expiresAtMs });
        this.post(
          ev.funding === 'merchant'
            ? ledgerAccount.merchantIssued(ev.merchantId)
            : ledgerAccount.platformFunding,
          -ev.amountCents,
        );
        return { status: 'approved', cardId: target.cardId, balanceCents: target.balanceCents };
      }
      case 'ISSUE_CODE': {
        this.expireDueLots(ev.nowMs);
        if (this.frozen) return { status: 'account_frozen' };
        // What would be available here once the live code (wherever it is) let go of its holds.
        const releasedHere = this.code?.merchantId === ev.merchantId ? this.heldAt(ev.merchantId) : 0;
        const available = this.balanceAt(ev.merchantId) - this.heldAt(ev.merchantId) + releasedHere;
        if (available === 0) return { status: 'insufficient_funds' };
        this.endCode('cancelled');
        const capCents = Math.min(ev.capCents ?? Number.POSITIVE_INFINITY, available);
        let left = capCents;
        for (const kind of ['reward', 'gift'] as const) {
          const card = this.card(ev.merchantId, kind);
          if (!card) continue;
          const hold = Math.min(left, card.balanceCents - card.heldCents);
          card.heldCents += hold;
          left -= hold;
        }
        this.code = {
          codeHash: ev.codeHash,
          sealed: ev.sealed,
          merchantId: ev.merchantId,
          capCents,
          issuedAtMs: ev.nowMs,
          expiresAtMs: ev.expiresAtMs,
        };
        this.issued.push({ codeHash: ev.codeHash, merchantId: ev.merchantId });
        this.region = 'codeIssued';
        this.codeStates.push('issued');
        return { status: 'approved', capCents, expiresAtMs: ev.expiresAtMs };
      }
      case 'CANCEL_CODE': {
        if (!this.code) return { status: 'not_found' };
        this.endCode('cancelled');
        return { status: 'approved' };
      }
      case 'REDEEM': {
        // With a live code, due reward lots expire before anything is captured.
        if (this.code) this.expireDueLots(ev.nowMs);
        if (this.frozen) return { status: 'account_frozen' };
        if (!this.isLive(ev.merchantId, ev.codeHash) || !this.code)
          return this.deadCode(ev.merchantId, ev.codeHash);
        if (ev.nowMs >= this.code.expiresAtMs) {
          this.endCode('expired');
          return { status: 'expired_code' };
        }
        if (!ev.partial && ev.amountCents > this.code.capCents) return { status: 'over_cap' };
        const spendable = this.spendable();
        if (spendable === 0 || (!ev.partial && ev.amountCents > spendable))
          return { status: 'insufficient_funds' };
        const day = Math.floor(ev.nowMs / 86_400_000);
        const leftToday = LIMITS.consumerSpendPerDayMaxCents - (this.paidPerDay.get(day) ?? 0);
        if (leftToday <= 0 || (!ev.partial && ev.amountCents > leftToday))
          return { status: 'limit_exceeded' };
        const approvedCents = ev.partial ? Math.min(ev.amountCents, spendable, leftToday) : ev.amountCents;
        this.paidPerDay.set(day, (this.paidPerDay.get(day) ?? 0) + approvedCents);
        const reward = this.card(ev.merchantId, 'reward');
        const rewardCents = Math.min(approvedCents, reward?.heldCents ?? 0);
        const giftCents = approvedCents - rewardCents;
        let rewardLots: Lot[] = [];
        if (reward && rewardCents > 0) {
          const { taken, kept } = takeLots(reward.lots, rewardCents, 'soonest');
          rewardLots = taken;
          reward.lots = kept;
          this.credit(reward, -rewardCents);
        }
        const giftBoughtCents =
          giftCents > 0 ? this.debitGift(this.mustCard(ev.merchantId, 'gift'), giftCents) : 0;
        this.post(ledgerAccount.merchantPayable(ev.merchantId), approvedCents);
        this.endCode('redeemed');
        this.auths.set(ev.authId, {
          authId: ev.authId,
          merchantId: ev.merchantId,
          atMs: ev.nowMs,
          capturedCents: approvedCents,
          giftCents,
          giftBoughtCents,
          refundedGiftBoughtCents: 0,
          rewardLots,
          refundedCents: 0,
          refundedGiftCents: 0,
          state: 'approved',
        });
        return {
          status: 'approved',
          authId: ev.authId,
          approvedCents,
          balanceCents: this.balanceAt(ev.merchantId),
        };
      }
      case 'INQUIRE': {
        if (this.frozen) return { status: 'account_frozen' };
        if (!this.isLive(ev.merchantId, ev.codeHash) || !this.code)
          return this.deadCode(ev.merchantId, ev.codeHash);
        if (ev.nowMs >= this.code.expiresAtMs) return { status: 'expired_code' };
        const day = Math.floor(ev.nowMs / 86_400_000);
        const leftToday = Math.max(0, LIMITS.consumerSpendPerDayMaxCents - (this.paidPerDay.get(day) ?? 0));
        return { status: 'approved', availableCents: Math.min(this.spendable(), leftToday) };
      }
      case 'VOID':
      case 'REVERSE': {
        const auth = this.auths.get(ev.auth.authId);
        if (!auth) throw new Error('model: unknown auth');
        if (ev.type === 'VOID') {
          if (auth.state !== 'approved') return { status: 'already_voided' };
          if (ev.nowMs > auth.atMs + LIMITS.voidWindowMs || auth.atMs < ev.settledUpToMs)
            return { status: 'void_window_closed' };
          if (this.refundable(auth) === 0) return { status: 'nothing_to_void' };
        } else {
          if (auth.state === 'reversed') return { status: 'reversed' };
          if (auth.state === 'voided') return { status: 'nothing_to_reverse' };
        }
        this.restore(
          auth,
          auth.giftCents - auth.refundedGiftCents,
          auth.giftBoughtCents - auth.refundedGiftBoughtCents,
          auth.rewardLots,
        );
        auth.rewardLots = [];
        auth.state = ev.type === 'VOID' ? 'voided' : 'reversed';
        const day = Math.floor(auth.atMs / 86_400_000);
        const paid = (this.paidPerDay.get(day) ?? 0) - (auth.capturedCents - auth.refundedCents);
        this.paidPerDay.set(day, Math.max(0, paid));
        if (ev.type === 'REVERSE') return { status: 'reversed' };
        return { status: 'approved', authId: auth.authId, balanceCents: this.balanceAt(auth.merchantId) };
      }
      case 'REFUND': {
        const auth = this.auths.get(ev.auth.authId);
        if (!auth) throw new Error('model: unknown auth');
        if (ev.amountCents > this.refundable(auth)) return { status: 'refund_exceeds' };
        // Gift value first (bought before issued), then reward lots, latest-expiring first.
        const giftCents = Math.min(ev.amountCents, auth.giftCents - auth.refundedGiftCents);
        const boughtCents = Math.min(giftCents, auth.giftBoughtCents - auth.refundedGiftBoughtCents);
        const { taken, kept } = takeLots(auth.rewardLots, ev.amountCents - giftCents, 'latest');
        this.restore(auth, giftCents, boughtCents, taken);
        auth.refundedGiftBoughtCents += boughtCents;
        auth.rewardLots = kept;
        auth.refundedCents += ev.amountCents;
        auth.refundedGiftCents += giftCents;
        return { status: 'approved', refundId: ev.refundId, balanceCents: this.balanceAt(auth.merchantId) };
      }
      case 'EXPIRE_CODE': {
        if (this.code && ev.nowMs >= this.code.expiresAtMs) this.endCode('expired');
        return null;
      }
      case 'EXPIRE_LOTS': {
        this.expireDueLots(ev.nowMs);
        return null;
      }
      case 'FREEZE': {
        this.endCode('cancelled');
        this.frozen = true;
        return { status: 'approved' };
      }
      case 'UNFREEZE': {
        this.frozen = false;
        return { status: 'approved' };
      }
      case 'GIFT_SEND': {
        if (this.frozen) return { status: 'account_frozen' };
        const card = this.card(ev.merchantId, 'gift');
        if (!card || card.balanceCents - card.heldCents < ev.amountCents)
          return { status: 'insufficient_funds' };
        // What is given counts against the day's spending, like a payment.
        const day = Math.floor(ev.nowMs / 86_400_000);
        const paid = this.paidPerDay.get(day) ?? 0;
        if (ev.amountCents > LIMITS.consumerSpendPerDayMaxCents - paid) return { status: 'limit_exceeded' };
        this.paidPerDay.set(day, paid + ev.amountCents);
        this.giftsBought.set(ev.giftId, this.debitGift(card, ev.amountCents));
        this.post(ledgerAccount.transit(ev.giftId), ev.amountCents);
        return {
          status: 'approved',
          giftId: ev.giftId,
          cardId: card.cardId,
          balanceCents: card.balanceCents,
        };
      }
      case 'SET_ALERT': {
        const card = this.cards.find((held) => held.cardId === ev.cardId);
        if (!card) return { status: 'not_found' };
        if (ev.belowCents === null) delete card.alertBelowCents;
        else card.alertBelowCents = ev.belowCents;
        return { status: 'approved', cardId: card.cardId, balanceCents: card.balanceCents };
      }
      case 'GIFT_RECEIVE': {
        let card = this.card(ev.merchantId, 'gift');
        if (!card) {
          card = {
            cardId: ev.newCardId,
            merchantId: ev.merchantId,
            kind: 'gift',
            balanceCents: 0,
            heldCents: 0,
            lots: [],
            boughtCents: 0,
          };
          this.cards.push(card);
        }
        this.credit(card, ev.amountCents);
        card.boughtCents += ev.boughtCents ?? 0;
        this.post(ledgerAccount.transit(ev.giftId), -ev.amountCents);
        return { status: 'approved', cardId: card.cardId, balanceCents: card.balanceCents };
      }
    }
  }
}

// ---------------------------------------------------------------------------------------------------
// Checks after every event.

const nonZero = (map: Map<string, number>) => new Map([...map].filter(([, cents]) => cents !== 0));
const byCard = (a: { merchantId: string; kind: string }, b: { merchantId: string; kind: string }) =>
  `${a.merchantId}/${a.kind}`.localeCompare(`${b.merchantId}/${b.kind}`);

/** Invariants of the actor alone, whatever the model says. */
function checkInvariants(acc: Account): void {
  const w = acc.wallet;
  for (const card of w.cards) {
    expect(Number.isSafeInteger(card.balanceCents) && Number.isSafeInteger(card.heldCents)).toBe(true);
    expect(card.balanceCents).toBeGreaterThanOrEqual(0);
    expect(card.heldCents).toBeGreaterThanOrEqual(0);
    expect(card.heldCents).toBeLessThanOrEqual(card.balanceCents);
    if (card.kind === 'gift') expect(card.lots).toEqual([]);
    else {
      expect(sumLots(card.lots)).toBe(card.balanceCents);
      for (const lot of card.lots) expect(lot.cents).toBeGreaterThan(0);
      for (let i = 1; i < card.lots.length; i++) {
        const [prev, next] = [card.lots[i - 1], card.lots[i]];
        if (prev && next) expect(expiryKey(prev)).toBeLessThan(expiryKey(next));
      }
    }
  }
  // Holds exist only for the live code, only at its merchant, and never beyond its cap.
  const code = w.code;
  if (code === null) for (const card of w.cards) expect(card.heldCents).toBe(0);
  else {
    for (const card of w.cards) if (card.merchantId !== code.merchantId) expect(card.heldCents).toBe(0);
    const held = w.cards.filter((c) => c.merchantId === code.merchantId).reduce((s, c) => s + c.heldCents, 0);
    expect(held).toBeLessThanOrEqual(code.capCents);
  }
  expect(acc.value.code === 'codeIssued').toBe(code !== null);
  // Money is conserved: all ledger accounts sum to zero and each card account is its card's balance.
  expect([...acc.ledger.values()].reduce((s, c) => s + c, 0)).toBe(0);
  const cardAccounts = new Map(w.cards.map((c) => [ledgerAccount.card(c.cardId), c.balanceCents]));
  for (const account of acc.ledger.keys())
    if (account.startsWith('card:')) expect(cardAccounts.has(account)).toBe(true);
  for (const [account, balance] of cardAccounts) expect(acc.ledger.get(account) ?? 0).toBe(balance);
}

/** The actor's state equals the model's. */
function checkAgainstModel(acc: Account, model: Model): void {
  const w = acc.wallet;
  const actual = w.cards
    .map(({ cardId, merchantId, kind, balanceCents, heldCents, lots, alertBelowCents, boughtCents }) => ({
      cardId,
      merchantId,
      kind,
      balanceCents,
      heldCents,
      lots,
      ...(alertBelowCents !== undefined && { alertBelowCents }),
      boughtCents: boughtCents ?? 0,
    }))
    .sort(byCard);
  expect(actual).toEqual([...model.cards].sort(byCard));
  expect(w.code).toEqual(model.code);
  expect(w.lastCode).toEqual(model.lastCode);
  expect(acc.value).toEqual({ code: model.region, access: model.frozen ? 'frozen' : 'active' });
  expect(nonZero(acc.ledger)).toEqual(nonZero(model.ledger));
  for (const m of model.auths.values()) {
    const a = acc.auth(m.authId);
    expect({
      state: a.state,
      capturedCents: a.capturedCents,
      refundedCents: a.refundedCents,
      giftCents: a.giftCents,
      refundedGiftCents: a.refundedGiftCents,
      giftBoughtCents: a.giftBoughtCents ?? 0,
      refundedGiftBoughtCents: refundedBoughtCents(a),
    }).toEqual({
      state: m.state,
      capturedCents: m.capturedCents,
      refundedCents: m.refundedCents,
      giftCents: m.giftCents,
      refundedGiftCents: m.refundedGiftCents,
      giftBoughtCents: m.giftBoughtCents,
      refundedGiftBoughtCents: m.refundedGiftBoughtCents,
    });
    if (m.state === 'approved') expect(a.rewardLots).toEqual(m.rewardLots);
  }
}

/** Sends one event to both the actor and the model and checks everything that must hold after it. */
function step(acc: Account, model: Model, input: Input, dtMs: number): Reply | null {
  const event = { ...input, nowMs: acc.nowMs + dtMs } as WalletEvent;
  const expected = model.apply(event);
  const effects = acc.send(input, dtMs);
  const replies = repliesOf(effects);
  if (input.type === 'EXPIRE_CODE' || input.type === 'EXPIRE_LOTS') {
    // Timer events are internal: nobody waits for an answer.
    expect(replies).toEqual([]);
  } else {
    expect(replies).toHaveLength(1);
    expect(isStatus(replies[0]?.status)).toBe(true);
  }
  expect(replies[0] ?? null).toEqual(expected.reply);
  expect(codeStatesOf(effects)).toEqual(expected.codeStates);
  for (const effect of effects) {
    if (effect.type === 'posting') {
      expect(legsSum(effect.legs)).toBe(0);
      model.boughtPosted += effect.boughtCents ?? 0;
    }
    if (effect.type === 'giftDebited') expect(effect.boughtCents).toBe(model.giftsBought.get(effect.giftId));
  }
  // The postings' bought changes add up to the bought value on the cards.
  expect(model.boughtPosted).toBe(model.cards.reduce((sum, card) => sum + card.boughtCents, 0));
  const status = replies[0]?.status;
  if (status !== undefined && status !== 'approved' && status !== 'reversed') {
    // A refusal moves no money and touches no auth; only reward value that was due to expire goes.
    const moved = effects.filter((e) => (e.type === 'posting' && e.kind !== 'expire') || e.type === 'auth');
    expect(moved).toEqual([]);
  }
  if (input.type === 'REDEEM' && status === 'approved') {
    expect(effects.filter((e) => e.type === 'posting' && e.kind === 'redeem')).toHaveLength(1);
    expect(count(effects, 'auth')).toBe(1);
  }
  checkInvariants(acc);
  checkAgainstModel(acc, model);
  return replies[0] ?? null;
}

// ---------------------------------------------------------------------------------------------------
// Random command sequences.

/**
 * Clock steps: mostly seconds, sometimes past a code's lifetime, rarely past the void window, and sometimes
 * exactly onto a boundary (the live code's expiry, the soonest lot expiry, the end of the last void window).
 */
type Dt = number | 'codeExpiry' | 'lotExpiry' | 'voidWindowEnd';
const dtArb: fc.Arbitrary<Dt> = fc.oneof(
  { weight: 12, arbitrary: fc.integer({ min: 1, max: 5_000 }) },
  { weight: 3, arbitrary: fc.integer({ min: 1, max: 25 * MINUTE }) },
  { weight: 1, arbitrary: fc.integer({ min: 1, max: 26 * HOUR }) },
  { weight: 2, arbitrary: fc.constantFrom<Dt>('codeExpiry', 'lotExpiry', 'voidWindowEnd') },
);

function resolveDt(dt: Dt, acc: Account, model: Model): number {
  if (typeof dt === 'number') return dt;
  const lastAuth = [...model.auths.values()].pop();
  const lotExpiries = model.cards.flatMap((c) =>
    c.lots.flatMap((l) => (l.expiresAtMs === null ? [] : [l.expiresAtMs])),
  );
  const target =
    dt === 'codeExpiry'
      ? model.code?.expiresAtMs
      : dt === 'lotExpiry'
        ? lotExpiries.sort((a, b) => a - b).find((atMs) => atMs > acc.nowMs)
        : lastAuth && lastAuth.atMs + LIMITS.voidWindowMs;
  return target !== undefined && target > acc.nowMs ? target - acc.nowMs : 1;
}

const centsArb = fc.oneof(
  { weight: 9, arbitrary: fc.integer({ min: 1, max: 5_000 }) },
  { weight: 1, arbitrary: fc.integer({ min: 1, max: LIMITS.loadMaxCents }) },
);
const merchantArb = fc.constantFrom(0, 1);
/** Where a redemption or inquiry happens: usually at the merchant of the latest code. */
const atArb = fc.constantFrom('code', 'code', 'code', 'code', 'm1', 'm2');
/** Which code it names: usually the latest issued, sometimes an older one, sometimes one never issued. */
const whichArb = fc.constantFrom('latest', 'latest', 'latest', 'latest', 'older', 'bogus');

const opArb = fc.oneof(
  {
    weight: 5,
    arbitrary: fc.record({
      t: fc.constant('LOAD' as const),
      dt: dtArb,
      m: merchantArb,
      kind: fc.constantFrom<CardKind>('gift', 'reward'),
      funding: fc.constantFrom<Funding>('merchant', 'consumer'),
      amount: centsArb,
      // Some lots expire within a code's lifetime, so lot expiry can shrink a live code's holds.
      expiresInMs: fc.option(
        fc.oneof(fc.integer({ min: 1, max: 20 * MINUTE }), fc.integer({ min: 1, max: 3 * HOUR })),
        { nil: null },
      ),
    }),
  },
  {
    weight: 6,
    arbitrary: fc.record({
      t: fc.constant('ISSUE_CODE' as const),
      dt: dtArb,
      m: merchantArb,
      cap: fc.option(fc.integer({ min: 1, max: 8_000 }), { nil: null }),
      ttl: fc.integer({ min: 1_000, max: LIMITS.codeTtlMs }),
    }),
  },
  {
    weight: 8,
    arbitrary: fc.record({
      t: fc.constant('REDEEM' as const),
      dt: dtArb,
      at: atArb,
      which: whichArb,
      amountMode: fc.constantFrom('cap', 'below', 'random', 'random'),
      amount: centsArb,
      partial: fc.boolean(),
    }),
  },
  {
    weight: 2,
    arbitrary: fc.record({ t: fc.constant('INQUIRE' as const), dt: dtArb, at: atArb, which: whichArb }),
  },
  {
    weight: 2,
    arbitrary: fc.record({
      t: fc.constant('VOID' as const),
      dt: dtArb,
      pick: fc.nat(),
      settled: fc.constantFrom(false, false, false, true),
    }),
  },
  { weight: 2, arbitrary: fc.record({ t: fc.constant('REVERSE' as const), dt: dtArb, pick: fc.nat() }) },
  {
    weight: 3,
    arbitrary: fc.record({
      t: fc.constant('REFUND' as const),
      dt: dtArb,
      pick: fc.nat(),
      mode: fc.constantFrom('all', 'part', 'over', 'random'),
      amount: centsArb,
    }),
  },
  { weight: 2, arbitrary: fc.record({ t: fc.constant('EXPIRE_CODE' as const), dt: dtArb }) },
  { weight: 2, arbitrary: fc.record({ t: fc.constant('EXPIRE_LOTS' as const), dt: dtArb }) },
  { weight: 1, arbitrary: fc.record({ t: fc.constant('CANCEL_CODE' as const), dt: dtArb }) },
  // Unfreezing is likelier than freezing, so an account is not frozen most of the time.
  {
    weight: 2,
    arbitrary: fc.record({
      t: fc.constantFrom('FREEZE' as const, 'UNFREEZE' as const, 'UNFREEZE' as const),
      dt: dtArb,
    }),
  },
  {
    weight: 1,
    arbitrary: fc.record({
      t: fc.constantFrom('GIFT_SEND' as const, 'GIFT_RECEIVE' as const, 'SET_ALERT' as const),
      dt: dtArb,
      m: merchantArb,
      amount: fc.integer({ min: 1, max: 3_000 }),
    }),
  },
);
type Op = typeof opArb extends fc.Arbitrary<infer T> ? T : never;

/** Turns an abstract op into an event, using what the model knows (live code, auths); null to skip it. */
function toInput(op: Op, dtMs: number, acc: Account, model: Model): Input | null {
  const latest = model.issued[model.issued.length - 1];
  const codeFor = (at: string, which: string, pick: number) => {
    const merchantId = (at === 'code' ? (latest?.merchantId ?? M1) : at) as MerchantId;
    const older = model.issued[pick % Math.max(1, model.issued.length)];
    const codeHash = which === 'latest' ? latest?.codeHash : which === 'older' ? older?.codeHash : BOGUS_HASH;
    return { merchantId, codeHash: codeHash ?? BOGUS_HASH };
  };
  const authIds = [...model.auths.keys()];
  const pickAuth = (pick: number) => {
    const authId = authIds[pick % Math.max(1, authIds.length)];
    return authId === undefined ? undefined : acc.auth(authId);
  };
  switch (op.t) {
    case 'LOAD': {
      // Reward expiries are whole minutes, so loads close in time share a lot.
      const expiresAtMs =
        op.kind === 'reward' && op.expiresInMs !== null
          ? Math.ceil((acc.nowMs + dtMs + op.expiresInMs) / MINUTE) * MINUTE
          : null;
      return {
        type: 'LOAD',
        merchantId: MERCHANTS[op.m] ?? M1,
        kind: op.kind,
        funding: op.kind === 'gift' ? op.funding : 'merchant',
        amountCents: op.amount,
        expiresAtMs,
        newCardId: acc.id('cd') as CardId,
        ref: acc.id('ref'),
      };
    }
    case 'ISSUE_CODE':
      return {
        type: 'ISSUE_CODE',
        merchantId: MERCHANTS[op.m] ?? M1,
        capCents: op.cap,
        codeHash: acc.id('code'),
        sealed: SEALED,
        expiresAtMs: acc.nowMs + dtMs + op.ttl,
      };
    case 'REDEEM': {
      const cap = model.code?.capCents ?? 0;
      const amountCents =
        op.amountMode === 'cap' && cap > 0
          ? cap
          : op.amountMode === 'below' && cap > 1
            ? 1 + (op.amount % (cap - 1))
            : op.amount;
      return {
        type: 'REDEEM',
        ...codeFor(op.at, op.which, op.amount),
        amountCents,
        partial: op.partial,
        authId: acc.id('au') as AuthId,
        terminalId: TERMINAL,
      };
    }
    case 'INQUIRE':
      return { type: 'INQUIRE', ...codeFor(op.at, op.which, dtMs) };
    case 'VOID': {
      const auth = pickAuth(op.pick);
      if (!auth) return null;
      return { type: 'VOID', auth, settledUpToMs: op.settled ? acc.nowMs + dtMs : 0 };
    }
    case 'REVERSE': {
      const auth = pickAuth(op.pick);
      return auth ? { type: 'REVERSE', auth } : null;
    }
    case 'REFUND': {
      const auth = pickAuth(op.pick);
      if (!auth) return null;
      const m = model.auths.get(auth.authId);
      const refundable = m ? model.refundable(m) : 0;
      const amountCents =
        refundable === 0
          ? op.amount
          : op.mode === 'all'
            ? refundable
            : op.mode === 'part'
              ? 1 + (op.amount % refundable)
              : op.mode === 'over'
                ? refundable + 1
                : op.amount;
      return { type: 'REFUND', auth, amountCents, refundId: acc.id('rf') as RefundId };
    }
    case 'GIFT_SEND':
      return {
        type: 'GIFT_SEND',
        giftId: acc.id('gf') as GiftId,
        merchantId: MERCHANTS[op.m] ?? M1,
        amountCents: op.amount,
        toConsumerId: 'cu_9_friend' as ConsumerId,
      };
    case 'GIFT_RECEIVE':
      return {
        type: 'GIFT_RECEIVE',
        giftId: acc.id('gf') as GiftId,
        merchantId: MERCHANTS[op.m] ?? M1,
        amountCents: op.amount,
        // All, half or none of it bought value on the giver's card.
        boughtCents: [op.amount, Math.floor(op.amount / 2), 0][op.amount % 3],
        newCardId: acc.id('cd') as CardId,
      };
    case 'SET_ALERT': {
      // A card of the account when it has one (an unknown card now and then), and sometimes no alert.
      const cards = model.cards;
      const card = cards.length === 0 || op.amount % 7 === 0 ? undefined : cards[op.amount % cards.length];
      return {
        type: 'SET_ALERT',
        cardId: (card?.cardId ?? 'cd_9_none') as CardId,
        belowCents: op.amount % 5 === 0 ? null : op.amount,
      };
    }
    default:
      return { type: op.t };
  }
}

describe('account machine against a reference model', () => {
  it('agrees with the model on every reply, balance, hold and posting of random command sequences', () => {
    const visited = new Set<string>();
    fc.assert(
      fc.property(fc.array(opArb, { minLength: 1, maxLength: 80, size: 'max' }), (ops) => {
        const acc = new Account(visited);
        const model = new Model();
        checkInvariants(acc);
        checkAgainstModel(acc, model);
        for (const op of ops) {
          const dtMs = resolveDt(op.dt, acc, model);
          const input = toInput(op, dtMs, acc, model);
          if (input === null) continue;
          const reply = step(acc, model, input, dtMs);
          if (input.type === 'REDEEM' && reply?.status === 'approved') {
            // A code is single use: the same code again, right away, is not a code any more.
            const again = step(acc, model, { ...input, authId: acc.id('au') as AuthId }, 1);
            expect(again?.status).toBe('invalid_code');
          }
        }
      }),
      // RUNS=5000 npx vitest run test/wallet-model.test.ts searches longer.
      { numRuns: Number(process.env.RUNS ?? 200) },
    );
    // The generator is not idle: the main outcomes of each command were reached.
    for (const key of [
      'LOAD:approved',
      'ISSUE_CODE:approved',
      'ISSUE_CODE:insufficient_funds',
      'ISSUE_CODE:account_frozen',
      'REDEEM:approved',
      'REDEEM:invalid_code',
      'REDEEM:expired_code',
      'REDEEM:over_cap',
      'REDEEM:account_frozen',
      'INQUIRE:approved',
      'VOID:approved',
      'VOID:already_voided',
      'VOID:void_window_closed',
      'REVERSE:reversed',
      'REFUND:approved',
      'REFUND:refund_exceeds',
      'LOAD:bought',
      'REDEEM:bought',
      'VOID:bought',
      'REFUND:bought',
      'GIFT_SEND:bought',
      'code:codeIssued->expired',
      'code:codeIssued->redeemed',
      'code:codeIssued->cancelled',
    ])
      expect(visited).toContain(key);
  });
});

// ---------------------------------------------------------------------------------------------------
// Examples: every status of every event, every state and transition of the two regions.

function cardOf(acc: Account, merchantId: MerchantId, kind: CardKind) {
  const card = acc.wallet.cards.find((c) => c.merchantId === merchantId && c.kind === kind);
  if (!card) throw new Error(`no ${kind} card at ${merchantId}`);
  return card;
}

const postingsOf = (effects: Effect[]) =>
  effects.flatMap((effect) => (effect.type === 'posting' ? [{ kind: effect.kind, legs: effect.legs }] : []));

describe('account machine, example by example', () => {
  const tour = new Set<string>();
  const account = () => new Account(tour);

  it('LOAD: approved on a new card and on the same card; limit_exceeded past the balance or lot limit', () => {
    const acc = account();
    expect(acc.value).toEqual({ code: 'none', access: 'active' });
    const first = replyOf(acc.load(M1, 'gift', 1_000));
    const cardId = cardOf(acc, M1, 'gift').cardId;
    expect(first).toEqual({ status: 'approved', cardId, balanceCents: 1_000 });
    expect(replyOf(acc.load(M1, 'gift', 500))).toEqual({ status: 'approved', cardId, balanceCents: 1_500 });

    const over = acc.load(M1, 'gift', LIMITS.cardBalanceMaxCents - 1_500 + 1);
    expect(over).toEqual([{ type: 'reply', reply: { status: 'limit_exceeded' } }]);
    expect(cardOf(acc, M1, 'gift').balanceCents).toBe(1_500);
    expect(statusOf(acc.load(M1, 'gift', LIMITS.cardBalanceMaxCents - 1_500))).toBe('approved');

    // Consumer-bought value is posted against the platform's funding, merchant-issued against the merchant.
    const bought = acc.load(M2, 'gift', 700, { funding: 'consumer' });
    expect(postingsOf(bought)).toEqual([
      {
        kind: 'purchase',
        legs: [
          { account: ledgerAccount.card(cardOf(acc, M2, 'gift').cardId), cents: 700 },
          { account: ledgerAccount.platformFunding, cents: -700 },
        ],
      },
    ]);

    // Reward lots: one per expiry, at most rewardLotsMax of them.
    for (let i = 1; i <= LIMITS.rewardLotsMax; i++)
      expect(statusOf(acc.load(M2, 'reward', 1, { expiresAtMs: T0 + i * HOUR }))).toBe('approved');
    expect(statusOf(acc.load(M2, 'reward', 1, { expiresAtMs: T0 + 100 * HOUR }))).toBe('limit_exceeded');
    expect(statusOf(acc.load(M2, 'reward', 1, { expiresAtMs: null }))).toBe('limit_exceeded');
    expect(statusOf(acc.load(M2, 'reward', 5, { expiresAtMs: T0 + 3 * HOUR }))).toBe('approved');
    const reward = cardOf(acc, M2, 'reward');
    expect(reward.lots).toHaveLength(LIMITS.rewardLotsMax);
    expect(reward.lots[2]).toEqual({ cents: 6, expiresAtMs: T0 + 3 * HOUR });
    checkInvariants(acc);
  });

  it('ISSUE_CODE: approved (holding reward value first, cap clamped), insufficient_funds, account_frozen', () => {
    const acc = account();
    acc.load(M1, 'gift', 1_000);
    acc.load(M1, 'reward', 300);
    expect(statusOf(acc.issue(M2, null).effects)).toBe('insufficient_funds');
    expect(acc.value.code).toBe('none');

    const a = acc.issue(M1, 500);
    expect(replyOf(a.effects)).toEqual({
      status: 'approved',
      capCents: 500,
      expiresAtMs: acc.nowMs + LIMITS.codeTtlMs,
    });
    expect(acc.value.code).toBe('codeIssued');
    expect([cardOf(acc, M1, 'reward').heldCents, cardOf(acc, M1, 'gift').heldCents]).toEqual([300, 200]);

    // A new code replaces the live one (the region re-enters codeIssued) and the old one is dead.
    const b = acc.issue(M1, null);
    expect(codeStatesOf(b.effects)).toEqual(['cancelled', 'issued']);
    expect(replyOf(b.effects).capCents).toBe(1_300);
    expect([cardOf(acc, M1, 'reward').heldCents, cardOf(acc, M1, 'gift').heldCents]).toEqual([300, 1_000]);
    expect(statusOf(acc.redeem(M1, a.codeHash, 10).effects)).toBe('invalid_code');
    expect(replyOf(acc.issue(M1, 5_000).effects).capCents).toBe(1_300);

    // A code at another merchant releases this one's holds.
    acc.load(M2, 'gift', 50);
    expect(replyOf(acc.issue(M2, null).effects).capCents).toBe(50);
    expect(cardOf(acc, M1, 'reward').heldCents + cardOf(acc, M1, 'gift').heldCents).toBe(0);
    expect(cardOf(acc, M2, 'gift').heldCents).toBe(50);

    acc.send({ type: 'FREEZE' });
    expect(statusOf(acc.issue(M1, null).effects)).toBe('account_frozen');
    expect(acc.wallet.code).toBeNull();
    checkInvariants(acc);
  });

  it('CANCEL_CODE: not_found without a live code, approved with one (codeIssued → cancelled)', () => {
    const acc = account();
    expect(statusOf(acc.send({ type: 'CANCEL_CODE' }))).toBe('not_found');
    expect(acc.value.code).toBe('none');
    acc.load(M1, 'gift', 100);
    const a = acc.issue(M1, null);
    const cancelled = acc.send({ type: 'CANCEL_CODE' });
    expect(statusOf(cancelled)).toBe('approved');
    expect(codeStatesOf(cancelled)).toEqual(['cancelled']);
    expect(acc.value.code).toBe('cancelled');
    expect(cardOf(acc, M1, 'gift').heldCents).toBe(0);
    expect(statusOf(acc.send({ type: 'CANCEL_CODE' }))).toBe('not_found');
    expect(statusOf(acc.redeem(M1, a.codeHash, 10).effects)).toBe('invalid_code');
    expect(statusOf(acc.issue(M1, null).effects)).toBe('approved');
    expect(acc.value.code).toBe('codeIssued');
    checkInvariants(acc);
  });

  it('REDEEM: approved in full (reward first) and partially, then invalid_code: a code is single use', () => {
    const acc = account();
    const expiresAtMs = T0 + HOUR;
    acc.load(M1, 'reward', 300, { expiresAtMs });
    acc.load(M1, 'gift', 1_000);
    expect(statusOf(acc.redeem(M1, BOGUS_HASH, 100).effects)).toBe('invalid_code');
    const { codeHash } = acc.issue(M1, 800);
    expect(statusOf(acc.redeem(M2, codeHash, 100).effects)).toBe('invalid_code');
    expect(statusOf(acc.redeem(M1, 'some-other-code', 100).effects)).toBe('invalid_code');
    expect(statusOf(acc.redeem(M1, codeHash, 801).effects)).toBe('over_cap');
    expect(acc.value.code).toBe('codeIssued');

    const ok = acc.redeem(M1, codeHash, 500);
    expect(replyOf(ok.effects)).toEqual({
      status: 'approved',
      authId: ok.authId,
      approvedCents: 500,
      balanceCents: 800,
    });
    const [reward, gift] = [cardOf(acc, M1, 'reward'), cardOf(acc, M1, 'gift')];
    expect(postingsOf(ok.effects)).toEqual([
      {
        kind: 'redeem',
        legs: [
          { account: ledgerAccount.card(reward.cardId), cents: -300 },
          { account: ledgerAccount.card(gift.cardId), cents: -200 },
          { account: ledgerAccount.merchantPayable(M1), cents: 500 },
        ],
      },
    ]);
    expect([reward.balanceCents, reward.heldCents, gift.balanceCents, gift.heldCents]).toEqual([
      0, 0, 800, 0,
    ]);
    expect(acc.auth(ok.authId)).toMatchObject({
      capturedCents: 500,
      giftCents: 200,
      rewardLots: [{ cents: 300, expiresAtMs }],
      state: 'approved',
    });
    expect(acc.value.code).toBe('redeemed');
    expect(statusOf(acc.redeem(M1, codeHash, 1).effects)).toBe('invalid_code');
    expect(acc.value.code).toBe('redeemed');

    // Partial: approves min(amount, cap, held).
    const p = acc.issue(M1, 100);
    const partial = acc.redeem(M1, p.codeHash, 250, true);
    expect(replyOf(partial.effects)).toMatchObject({
      status: 'approved',
      approvedCents: 100,
      balanceCents: 700,
    });

    // Spending everything.
    const all = acc.issue(M1, null);
    expect(statusOf(acc.redeem(M1, all.codeHash, 700).effects)).toBe('approved');
    expect(acc.value).toEqual({ code: 'redeemed', access: 'active' });
    checkInvariants(acc);
  });

  it('REDEEM: limit_exceeded past the spending of the day, partial up to it, voids give back, a new UTC day starts afresh', () => {
    const acc = account();
    const dayMax = LIMITS.consumerSpendPerDayMaxCents;
    acc.load(M1, 'gift', dayMax);
    acc.load(M2, 'gift', dayMax);
    const first = acc.issue(M1, null);
    const firstSale = acc.redeem(M1, first.codeHash, dayMax - 1_000);
    expect(statusOf(firstSale.effects)).toBe('approved');
    // The limit counts every merchant: 1,000 cents are left today.
    const second = acc.issue(M2, null);
    expect(statusOf(acc.redeem(M2, second.codeHash, 1_001).effects)).toBe('limit_exceeded');
    expect(acc.value.code).toBe('codeIssued');
    expect(replyOf(acc.redeem(M2, second.codeHash, 5_000, true).effects)).toMatchObject({
      status: 'approved',
      approvedCents: 1_000,
    });
    const third = acc.issue(M2, null);
    expect(statusOf(acc.redeem(M2, third.codeHash, 1, true).effects)).toBe('limit_exceeded');
    // An inquiry tells what the code can still pay today; a void gives its amount back to the day.
    const inquire = () => replyOf(acc.send({ type: 'INQUIRE', merchantId: M2, codeHash: third.codeHash }));
    expect(inquire()).toMatchObject({ status: 'approved', availableCents: 0 });
    acc.send({ type: 'VOID', auth: acc.auth(firstSale.authId), settledUpToMs: 0 });
    expect(inquire()).toMatchObject({ status: 'approved', availableCents: dayMax - 1_000 });
    expect(statusOf(acc.redeem(M2, third.codeHash, dayMax - 1_000).effects)).toBe('approved');
    // The next UTC day allows a full day again.
    acc.load(M2, 'gift', 5_000);
    const nextDayMs = (Math.floor(acc.nowMs / 86_400_000) + 1) * 86_400_000 - acc.nowMs;
    const fourth = acc.issue(M2, null, LIMITS.codeTtlMs, nextDayMs);
    expect(statusOf(acc.redeem(M2, fourth.codeHash, 2_000).effects)).toBe('approved');
    checkInvariants(acc);
  });

  it('REDEEM: expired_code, over_cap, insufficient_funds once lots expired under the hold, account_frozen', () => {
    const acc = account();
    acc.load(M1, 'gift', 1_000);
    const a = acc.issue(M1, null, MINUTE);
    // At the code's expiry exactly, the code is dead: the redemption expires it (codeIssued → expired).
    const late = acc.redeem(M1, a.codeHash, 10, false, MINUTE);
    expect(statusOf(late.effects)).toBe('expired_code');
    expect(codeStatesOf(late.effects)).toEqual(['expired']);
    expect(acc.value.code).toBe('expired');
    expect(cardOf(acc, M1, 'gift').heldCents).toBe(0);
    expect(statusOf(acc.redeem(M1, a.codeHash, 10).effects)).toBe('expired_code');
    expect(statusOf(acc.redeem(M2, a.codeHash, 10).effects)).toBe('invalid_code');

    // Reward lots that expire while held shrink what the code can pay.
    const lotExpiry = acc.nowMs + 10 * MINUTE;
    acc.load(M2, 'reward', 200, { expiresAtMs: lotExpiry });
    acc.load(M2, 'reward', 100);
    const b = acc.issue(M2, null);
    expect(replyOf(b.effects).capCents).toBe(300);
    expect(
      acc.send({ type: 'EXPIRE_LOTS' }, lotExpiry - acc.nowMs).filter((e) => e.type === 'reply'),
    ).toEqual([]);
    expect(cardOf(acc, M2, 'reward')).toMatchObject({ balanceCents: 100, heldCents: 100 });
    expect(statusOf(acc.redeem(M2, b.codeHash, 301).effects)).toBe('over_cap');
    expect(statusOf(acc.redeem(M2, b.codeHash, 300).effects)).toBe('insufficient_funds');
    expect(replyOf(acc.redeem(M2, b.codeHash, 300, true).effects)).toMatchObject({ approvedCents: 100 });

    // Nothing left under the hold: even a partial redemption is refused.
    const c = new Account(tour);
    c.load(M1, 'reward', 200, { expiresAtMs: c.nowMs + MINUTE });
    const code = c.issue(M1, null);
    c.send({ type: 'EXPIRE_LOTS' }, MINUTE);
    expect(c.value).toEqual({ code: 'codeIssued', access: 'active' });
    expect(statusOf(c.redeem(M1, code.codeHash, 50, true).effects)).toBe('insufficient_funds');

    acc.load(M1, 'gift', 10);
    const d = acc.issue(M1, null);
    acc.send({ type: 'FREEZE' });
    expect(statusOf(acc.redeem(M1, d.codeHash, 10).effects)).toBe('account_frozen');
    checkInvariants(acc);
    checkInvariants(c);
  });

  it('INQUIRE: approved with what the code can pay, invalid_code, expired_code, account_frozen', () => {
    const acc = account();
    acc.load(M1, 'gift', 1_000);
    const inquire = (merchantId: MerchantId, codeHash: string, dtMs = 1) =>
      replyOf(acc.send({ type: 'INQUIRE', merchantId, codeHash }, dtMs));
    expect(inquire(M1, BOGUS_HASH)).toEqual({ status: 'invalid_code' });
    const a = acc.issue(M1, 400, MINUTE);
    expect(inquire(M1, a.codeHash)).toEqual({ status: 'approved', availableCents: 400 });
    expect(inquire(M2, a.codeHash)).toEqual({ status: 'invalid_code' });
    // Past its expiry an inquiry says so but leaves the code to its timer.
    expect(inquire(M1, a.codeHash, MINUTE)).toEqual({ status: 'expired_code' });
    expect(acc.value.code).toBe('codeIssued');
    expect(cardOf(acc, M1, 'gift').heldCents).toBe(400);
    acc.send({ type: 'EXPIRE_CODE' });
    expect(inquire(M1, a.codeHash)).toEqual({ status: 'expired_code' });
    acc.send({ type: 'FREEZE' });
    expect(inquire(M1, a.codeHash)).toEqual({ status: 'account_frozen' });
    checkInvariants(acc);
  });

  it('EXPIRE_CODE: no reply; ignored unless the live code is due, then codeIssued → expired', () => {
    const acc = account();
    expect(acc.send({ type: 'EXPIRE_CODE' })).toEqual([]);
    acc.load(M1, 'gift', 100);
    const a = acc.issue(M1, null, MINUTE);
    expect(acc.send({ type: 'EXPIRE_CODE' })).toEqual([]);
    expect(acc.value.code).toBe('codeIssued');
    const expiresAtMs = replyOf(a.effects).expiresAtMs ?? 0;
    const fired = acc.send({ type: 'EXPIRE_CODE' }, expiresAtMs - acc.nowMs);
    expect(repliesOf(fired)).toEqual([]);
    expect(codeStatesOf(fired)).toEqual(['expired']);
    expect(fired).toContainEqual({ type: 'balance', card: cardOf(acc, M1, 'gift'), cause: 'expire' });
    expect(acc.value.code).toBe('expired');
    expect(cardOf(acc, M1, 'gift').heldCents).toBe(0);
    expect(acc.send({ type: 'EXPIRE_CODE' })).toEqual([]);
    expect(statusOf(acc.issue(M1, null).effects)).toBe('approved');
    expect(acc.value.code).toBe('codeIssued');
    checkInvariants(acc);
  });

  it('EXPIRE_LOTS: no reply; due reward lots go back to their merchant', () => {
    const acc = account();
    const due = acc.nowMs + HOUR;
    acc.load(M1, 'reward', 100, { expiresAtMs: due });
    acc.load(M1, 'reward', 50);
    acc.load(M2, 'reward', 70, { expiresAtMs: due });
    expect(acc.send({ type: 'EXPIRE_LOTS' })).toEqual([]);
    const fired = acc.send({ type: 'EXPIRE_LOTS' }, due - acc.nowMs);
    expect(repliesOf(fired)).toEqual([]);
    expect(postingsOf(fired)).toEqual([
      {
        kind: 'expire',
        legs: [
          { account: ledgerAccount.card(cardOf(acc, M1, 'reward').cardId), cents: -100 },
          { account: ledgerAccount.merchantExpired(M1), cents: 100 },
        ],
      },
      {
        kind: 'expire',
        legs: [
          { account: ledgerAccount.card(cardOf(acc, M2, 'reward').cardId), cents: -70 },
          { account: ledgerAccount.merchantExpired(M2), cents: 70 },
        ],
      },
    ]);
    expect(cardOf(acc, M1, 'reward').lots).toEqual([{ cents: 50, expiresAtMs: null }]);
    const only = account();
    only.load(M1, 'reward', 10, { expiresAtMs: only.nowMs + MINUTE });
    only.send({ type: 'EXPIRE_LOTS' }, MINUTE);
    expect(cardOf(only, M1, 'reward').balanceCents).toBe(0);
    checkInvariants(acc);
    checkInvariants(only);
  });

  it('VOID: approved (the value back on the card), already_voided, void_window_closed by age or settlement', () => {
    const acc = account();
    acc.load(M1, 'gift', 500);
    const spend = (amountCents: number) => acc.redeem(M1, acc.issue(M1, null).codeHash, amountCents).authId;
    const first = spend(500);
    expect(cardOf(acc, M1, 'gift').balanceCents).toBe(0);
    const voided = acc.send({ type: 'VOID', auth: acc.auth(first), settledUpToMs: 0 });
    expect(replyOf(voided)).toEqual({ status: 'approved', authId: first, balanceCents: 500 });
    expect(postingsOf(voided)[0]?.legs).toEqual([
      { account: ledgerAccount.card(cardOf(acc, M1, 'gift').cardId), cents: 500 },
      { account: ledgerAccount.merchantPayable(M1), cents: -500 },
    ]);
    expect(acc.auth(first).state).toBe('voided');
    const again = acc.send({ type: 'VOID', auth: acc.auth(first), settledUpToMs: 0 });
    expect(again).toEqual([{ type: 'reply', reply: { status: 'already_voided' } }]);

    // The window is inclusive of its last millisecond.
    const onTime = spend(100);
    const atEdge = acc.auth(onTime).atMs + LIMITS.voidWindowMs - acc.nowMs;
    expect(statusOf(acc.send({ type: 'VOID', auth: acc.auth(onTime), settledUpToMs: 0 }, atEdge))).toBe(
      'approved',
    );
    const tooLate = spend(100);
    const pastEdge = acc.auth(tooLate).atMs + LIMITS.voidWindowMs + 1 - acc.nowMs;
    const late = acc.send({ type: 'VOID', auth: acc.auth(tooLate), settledUpToMs: 0 }, pastEdge);
    expect(statusOf(late)).toBe('void_window_closed');
    const settled = spend(100);
    const settledUpToMs = acc.auth(settled).atMs + 1;
    expect(statusOf(acc.send({ type: 'VOID', auth: acc.auth(settled), settledUpToMs }))).toBe(
      'void_window_closed',
    );
    acc.send({ type: 'REVERSE', auth: acc.auth(settled) });
    expect(statusOf(acc.send({ type: 'VOID', auth: acc.auth(settled), settledUpToMs: 0 }))).toBe(
      'already_voided',
    );
    // Refunded in full: nothing to void, and nothing happens (no posting, so no text).
    const refunded = spend(100);
    acc.send({
      type: 'REFUND',
      auth: acc.auth(refunded),
      amountCents: 100,
      refundId: acc.id('rf') as RefundId,
    });
    const nothing = acc.send({ type: 'VOID', auth: acc.auth(refunded), settledUpToMs: 0 });
    expect(nothing).toEqual([{ type: 'reply', reply: { status: 'nothing_to_void' } }]);
    expect(acc.auth(refunded).state).toBe('approved');
    checkInvariants(acc);
  });

  it('REVERSE: reversed (also when repeated), nothing_to_reverse after a void', () => {
    const acc = account();
    acc.load(M1, 'gift', 500);
    const { authId } = acc.redeem(M1, acc.issue(M1, null).codeHash, 200);
    const reversed = acc.send({ type: 'REVERSE', auth: acc.auth(authId) });
    expect(replyOf(reversed)).toEqual({ status: 'reversed' });
    expect(postingsOf(reversed)).toHaveLength(1);
    expect(cardOf(acc, M1, 'gift').balanceCents).toBe(500);
    expect(acc.auth(authId).state).toBe('reversed');
    expect(acc.send({ type: 'REVERSE', auth: acc.auth(authId) })).toEqual([
      { type: 'reply', reply: { status: 'reversed' } },
    ]);
    const other = acc.redeem(M1, acc.issue(M1, null).codeHash, 100).authId;
    acc.send({ type: 'VOID', auth: acc.auth(other), settledUpToMs: 0 });
    expect(statusOf(acc.send({ type: 'REVERSE', auth: acc.auth(other) }))).toBe('nothing_to_reverse');
    checkInvariants(acc);
  });

  it('REFUND: approved (gift first, then the latest-expiring reward), refund_exceeds', () => {
    const acc = account();
    const [e1, e2] = [acc.nowMs + HOUR, acc.nowMs + 2 * HOUR];
    acc.load(M1, 'reward', 100, { expiresAtMs: e1 });
    acc.load(M1, 'reward', 100, { expiresAtMs: e2 });
    acc.load(M1, 'gift', 300);
    const { authId } = acc.redeem(M1, acc.issue(M1, null).codeHash, 450);
    expect(acc.auth(authId)).toMatchObject({ giftCents: 250, rewardLots: [{ cents: 100 }, { cents: 100 }] });

    const refundId = acc.id('rf') as RefundId;
    const refunded = acc.send({ type: 'REFUND', auth: acc.auth(authId), amountCents: 300, refundId });
    expect(replyOf(refunded)).toEqual({ status: 'approved', refundId, balanceCents: 350 });
    expect(cardOf(acc, M1, 'gift').balanceCents).toBe(300);
    expect(cardOf(acc, M1, 'reward').lots).toEqual([{ cents: 50, expiresAtMs: e2 }]);
    expect(acc.auth(authId)).toMatchObject({
      refundedCents: 300,
      refundedGiftCents: 250,
      rewardLots: [
        { cents: 100, expiresAtMs: e1 },
        { cents: 50, expiresAtMs: e2 },
      ],
    });
    const refund = (amountCents: number) =>
      statusOf(
        acc.send({ type: 'REFUND', auth: acc.auth(authId), amountCents, refundId: acc.id('rf') as RefundId }),
      );
    expect(refund(151)).toBe('refund_exceeds');
    // A void after a partial refund restores only what is left.
    expect(statusOf(acc.send({ type: 'VOID', auth: acc.auth(authId), settledUpToMs: 0 }))).toBe('approved');
    expect(cardOf(acc, M1, 'reward').lots).toEqual([
      { cents: 100, expiresAtMs: e1 },
      { cents: 100, expiresAtMs: e2 },
    ]);
    expect(refund(1)).toBe('refund_exceeds');

    const whole = acc.redeem(M1, acc.issue(M1, 100).codeHash, 100).authId;
    const full = acc.send({
      type: 'REFUND',
      auth: acc.auth(whole),
      amountCents: 100,
      refundId: acc.id('rf') as RefundId,
    });
    expect(statusOf(full)).toBe('approved');
    const after = acc.send({
      type: 'REFUND',
      auth: acc.auth(whole),
      amountCents: 1,
      refundId: acc.id('rf') as RefundId,
    });
    expect(statusOf(after)).toBe('refund_exceeds');
    checkInvariants(acc);
  });

  it('FREEZE / UNFREEZE: approved either way; freezing cancels the live code and refuses spending', () => {
    const acc = account();
    expect(statusOf(acc.send({ type: 'UNFREEZE' }))).toBe('approved');
    expect(acc.value.access).toBe('active');
    acc.load(M1, 'gift', 100);
    const a = acc.issue(M1, null);
    const frozen = acc.send({ type: 'FREEZE' });
    expect(statusOf(frozen)).toBe('approved');
    expect(codeStatesOf(frozen)).toEqual(['cancelled']);
    expect(acc.value).toEqual({ code: 'cancelled', access: 'frozen' });
    expect(cardOf(acc, M1, 'gift').heldCents).toBe(0);
    expect(statusOf(acc.send({ type: 'FREEZE' }))).toBe('approved');
    expect(acc.value.access).toBe('frozen');
    expect(statusOf(acc.issue(M1, null).effects)).toBe('account_frozen');
    expect(statusOf(acc.redeem(M1, a.codeHash, 10).effects)).toBe('account_frozen');
    expect(statusOf(acc.send({ type: 'INQUIRE', merchantId: M1, codeHash: a.codeHash }))).toBe(
      'account_frozen',
    );
    expect(statusOf(acc.send({ type: 'CANCEL_CODE' }))).toBe('not_found');
    // Value can still arrive while frozen.
    expect(statusOf(acc.load(M1, 'gift', 10))).toBe('approved');
    expect(statusOf(acc.send({ type: 'UNFREEZE' }))).toBe('approved');
    expect(acc.value.access).toBe('active');
    expect(statusOf(acc.redeem(M1, a.codeHash, 10).effects)).toBe('invalid_code');
    checkInvariants(acc);
  });

  it('GIFT_SEND: approved, insufficient_funds (held or missing card), account_frozen; GIFT_RECEIVE: approved', () => {
    const acc = account();
    acc.load(M1, 'gift', 500);
    acc.issue(M1, 300);
    const send = (merchantId: MerchantId, amountCents: number) => {
      const giftId = acc.id('gf') as GiftId;
      const toConsumerId = 'cu_9_friend' as ConsumerId;
      return {
        giftId,
        effects: acc.send({ type: 'GIFT_SEND', giftId, merchantId, amountCents, toConsumerId }),
      };
    };
    expect(statusOf(send(M1, 201).effects)).toBe('insufficient_funds');
    expect(statusOf(send(M2, 10).effects)).toBe('insufficient_funds');
    const sent = send(M1, 200);
    const cardId = cardOf(acc, M1, 'gift').cardId;
    expect(replyOf(sent.effects)).toEqual({
      status: 'approved',
      giftId: sent.giftId,
      cardId,
      balanceCents: 300,
    });
    expect(postingsOf(sent.effects)[0]?.legs).toEqual([
      { account: ledgerAccount.card(cardId), cents: -200 },
      { account: ledgerAccount.transit(sent.giftId), cents: 200 },
    ]);
    const receive = (merchantId: MerchantId, amountCents: number) =>
      replyOf(
        acc.send({
          type: 'GIFT_RECEIVE',
          giftId: acc.id('gf') as GiftId,
          merchantId,
          amountCents,
          newCardId: acc.id('cd') as CardId,
        }),
      );
    expect(receive(M2, 70)).toEqual({
      status: 'approved',
      cardId: cardOf(acc, M2, 'gift').cardId,
      balanceCents: 70,
    });
    acc.send({ type: 'FREEZE' });
    expect(statusOf(send(M1, 1).effects)).toBe('account_frozen');
    expect(receive(M1, 30)).toEqual({ status: 'approved', cardId, balanceCents: 330 });
    checkInvariants(acc);
  });

  it('SET_ALERT: approved on a card of the account, sets and clears its alert; not_found for another card', () => {
    const acc = account();
    acc.load(M1, 'gift', 500);
    const cardId = cardOf(acc, M1, 'gift').cardId;
    const set = (id: string, belowCents: number | null) =>
      replyOf(acc.send({ type: 'SET_ALERT', cardId: id as CardId, belowCents }));
    expect(set(cardId, 1_000)).toEqual({ status: 'approved', cardId, balanceCents: 500 });
    expect(cardOf(acc, M1, 'gift').alertBelowCents).toBe(1_000);
    expect(set(cardId, null)).toEqual({ status: 'approved', cardId, balanceCents: 500 });
    expect(cardOf(acc, M1, 'gift').alertBelowCents).toBeUndefined();
    expect(set('cd_9_other', 100)).toEqual({ status: 'not_found' });
    checkInvariants(acc);
  });

  it('GIFT_SEND: limit_exceeded past the spending of the day, which payments and gifts share', () => {
    const acc = account();
    const dayMax = LIMITS.consumerSpendPerDayMaxCents;
    acc.load(M1, 'gift', dayMax);
    acc.load(M2, 'gift', dayMax);
    const code = acc.issue(M1, dayMax);
    expect(statusOf(acc.redeem(M1, code.codeHash, dayMax - 1_000).effects)).toBe('approved');
    const send = (amountCents: number) =>
      statusOf(
        acc.send({
          type: 'GIFT_SEND',
          giftId: acc.id('gf') as GiftId,
          merchantId: M2,
          amountCents,
          toConsumerId: 'cu_9_friend' as ConsumerId,
        }),
      );
    expect(send(1_001)).toBe('limit_exceeded');
    expect(send(1_000)).toBe('approved');
    expect(send(1)).toBe('limit_exceeded');
    expect(cardOf(acc, M2, 'gift').balanceCents).toBe(dayMax - 1_000);
    checkInvariants(acc);
  });

  it('walked every state and transition of the two regions and every status of every event', () => {
    const expected = [
      ...['none', 'codeIssued', 'redeemed', 'expired', 'cancelled'].map((s) => `code:${s}`),
      'ISSUE_CODE code:none->codeIssued',
      'code:codeIssued->codeIssued',
      'REDEEM code:codeIssued->redeemed',
      'REDEEM code:codeIssued->expired',
      'EXPIRE_CODE code:codeIssued->expired',
      'CANCEL_CODE code:codeIssued->cancelled',
      'FREEZE code:codeIssued->cancelled',
      'ISSUE_CODE code:redeemed->codeIssued',
      'ISSUE_CODE code:expired->codeIssued',
      'ISSUE_CODE code:cancelled->codeIssued',
      'access:active',
      'access:frozen',
      'access:active->frozen',
      'access:frozen->active',
      'LOAD:approved',
      'LOAD:limit_exceeded',
      'ISSUE_CODE:approved',
      'ISSUE_CODE:insufficient_funds',
      'ISSUE_CODE:account_frozen',
      'CANCEL_CODE:approved',
      'CANCEL_CODE:not_found',
      'REDEEM:approved',
      'REDEEM:invalid_code',
      'REDEEM:expired_code',
      'REDEEM:over_cap',
      'REDEEM:insufficient_funds',
      'REDEEM:limit_exceeded',
      'REDEEM:account_frozen',
      'INQUIRE:approved',
      'INQUIRE:invalid_code',
      'INQUIRE:expired_code',
      'INQUIRE:account_frozen',
      'VOID:approved',
      'VOID:already_voided',
      'VOID:void_window_closed',
      'REVERSE:reversed',
      'REVERSE:nothing_to_reverse',
      'REFUND:approved',
      'REFUND:refund_exceeds',
      'EXPIRE_CODE:no reply',
      'EXPIRE_LOTS:no reply',
      'FREEZE:approved',
      'UNFREEZE:approved',
      'GIFT_SEND:approved',
      'GIFT_SEND:insufficient_funds',
      'GIFT_SEND:limit_exceeded',
      'GIFT_SEND:account_frozen',
      'GIFT_RECEIVE:approved',
      'SET_ALERT:approved',
      'SET_ALERT:not_found',
    ];
    expect(expected.filter((key) => !tour.has(key))).toEqual([]);
  });
});

describe('immutability', () => {
  // The shard persists the context it captured at commit time while the next batch already runs, so
  // a rule must never change an object an earlier snapshot still holds (reward lots included).
  it('an event never changes an earlier snapshot of the account', () => {
    const acc = new Account();
    acc.load(M1, 'reward', 100);
    const earlier = acc.actor.getSnapshot().context;
    const copy = structuredClone(earlier);
    acc.load(M1, 'reward', 50);
    expect(earlier).toEqual(copy);
  });
});

describe('reward expiry at use', () => {
  it('a code never holds, and a redemption never captures, reward value past its expiry', () => {
    const acc = new Account();
    const expiresAtMs = acc.nowMs + MINUTE;
    acc.load(M1, 'reward', 300, { expiresAtMs });
    acc.load(M1, 'gift', 100);
    // No EXPIRE_LOTS has run: the timer is late, but the value is gone all the same.
    const late = acc.issue(M1, null, LIMITS.codeTtlMs, 2 * MINUTE);
    expect(replyOf(late.effects)).toMatchObject({ status: 'approved', capCents: 100 });
    expect(cardOf(acc, M1, 'reward')).toMatchObject({ balanceCents: 0, lots: [] });

    const other = new Account();
    other.load(M1, 'reward', 300, { expiresAtMs: other.nowMs + MINUTE });
    other.load(M1, 'gift', 100);
    const code = other.issue(M1, null);
    const redeemed = other.redeem(M1, code.codeHash, 400, true, 2 * MINUTE);
    expect(replyOf(redeemed.effects)).toMatchObject({ status: 'approved', approvedCents: 100 });
    expect(
      redeemed.effects.filter((e) => e.type === 'posting').map((e) => (e.type === 'posting' ? e.kind : '')),
    ).toEqual(['expire', 'redeem']);
  });
});

describe('wallet invariants', () => {
  const card = (kind: CardKind, balanceCents: number, heldCents: number, lots: Lot[] = []) => ({
    cardId: `cd_7_${kind}` as CardId,
    merchantId: M1,
    kind,
    balanceCents,
    heldCents,
    lots,
  });
  const code = {
    codeHash: 'h',
    sealed: SEALED,
    merchantId: M1,
    capCents: 500,
    issuedAtMs: T0,
    expiresAtMs: T0 + 1,
  };
  const wallet = (cards: ReturnType<typeof card>[], live: typeof code | null): Wallet => ({
    consumerId: CONSUMER,
    cards,
    code: live,
    lastCode: null,
  });

  it('names each broken invariant, and none of a sound wallet', () => {
    expect(walletProblems(wallet([card('gift', 1_000, 400)], code))).toEqual([]);
    const broken: [Wallet, RegExp][] = [
      [wallet([card('gift', -1, 0)], null), /balance of -1/],
      [wallet([card('gift', 100, 101)], code), /holds 101 of 100/],
      [wallet([card('gift', 100, 50)], null), /hold without a live code/],
      [wallet([card('gift', 1_000, 600)], code), /holds 600 for a code capped at 500/],
      [wallet([card('reward', 100, 0, [{ cents: 90, expiresAtMs: null }])], null), /lots sum to 90/],
      [wallet([card('gift', 100, 0, [{ cents: 100, expiresAtMs: null }])], null), /gift card with lots/],
    ];
    for (const [broke, problem] of broken) {
      expect(walletProblems(broke).join('; ')).toMatch(problem);
      expect(() => assertWallet(broke)).toThrow(problem);
    }
  });

  it('stops an account at the event whose rule breaks one, with nothing applied', () => {
    // A stored gift card with reward lots, as a faulty rule could have left it: the next rule's wallet
    // still breaks the invariant, so the account stops there instead of going on from it.
    const actor = startAccount(CONSUMER, {
      value: { code: 'none', access: 'active' },
      context: wallet([card('gift', 100, 0, [{ cents: 100, expiresAtMs: null }])], null),
    });
    actor.subscribe({ error: () => undefined });
    actor.send({
      type: 'LOAD',
      nowMs: T0,
      merchantId: M1,
      kind: 'gift',
      funding: 'merchant',
      amountCents: 100,
      expiresAtMs: null,
      newCardId: 'cd_7_new' as CardId,
      ref: 'load-1',
    });
    const snapshot = actor.getSnapshot();
    expect(snapshot.status).toBe('error');
    expect(String(snapshot.error)).toMatch(/wallet invariant broken: .*gift card with lots/);
    expect(snapshot.context.cards[0]?.balanceCents).toBe(100);
  });
});

describe('accounts stored by an earlier chart', () => {
  it('load with their code and access, the funds region and the frozen flag dropped', () => {
    const stored = {
      value: { code: 'none', funds: 'funded', access: 'frozen' },
      context: { consumerId: CONSUMER, cards: [], code: null, lastCode: null, frozen: true },
    } as unknown as PersistedAccount;
    const actor = startAccount(CONSUMER, stored);
    expect(actor.getSnapshot().value).toEqual({ code: 'none', access: 'frozen' });
    expect(isFrozen(actor)).toBe(true);
    actor.send({ type: 'UNFREEZE', nowMs: T0 });
    expect(isFrozen(actor)).toBe(false);
  });
});
