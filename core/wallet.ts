import type { AuthId, CardId, ConsumerId, GiftId, MerchantId, RefundId, TerminalId } from './ids.ts';
import { type Leg, ledgerAccount, type PostingKind } from './ledger.ts';
import { DAY_MS } from './limits.ts';
import type { Status } from './statuses.ts';

/**
 * The pure rules of one consumer wallet. Every function takes the wallet and an event (which carries
 * the time and any randomness) and returns the next wallet plus its effects as data; nothing here does
 * I/O. The account machine (account-machine.ts) decides which rule runs in which state; the shard
 * performs the effects.
 */

export type CardKind = 'gift' | 'reward';
export type Funding = 'merchant' | 'consumer';

/** Reward value, split by expiry. `expiresAtMs` null means it never expires. */
export interface Lot {
  cents: number;
  expiresAtMs: number | null;
}

export interface Card {
  cardId: CardId;
  merchantId: MerchantId;
  kind: CardKind;
  balanceCents: number;
  /** The part of the balance held by the live code. */
  heldCents: number;
  /** Reward cards only: the balance by expiry, soonest first, never-expiring last. Empty for gift cards. */
  lots: Lot[];
  /**
   * The consumer's low-balance alert: a redemption that takes the balance from at least this to below it
   * says so in its confirmation text (once per crossing). Absent: no alert (the default).
   */
  alertBelowCents?: number;
  /**
   * Gift cards only: the part of the balance consumers bought (a purchase, or a gift of bought value); the
   * rest the merchant issued. A payment or a gift spends issued value first and bought value last. Absent:
   * none (value loaded before the funding was kept counts as issued).
   */
  boughtCents?: number;
}

export interface LiveCode {
  codeHash: string;
  /** The code sealed under a key outside the database, so the wallet can show it again. */
  sealed: string;
  merchantId: MerchantId;
  capCents: number;
  issuedAtMs: number;
  expiresAtMs: number;
}

export type CodeFate = 'redeemed' | 'expired' | 'cancelled';

export interface Wallet {
  consumerId: ConsumerId;
  cards: Card[];
  code: LiveCode | null;
  /** The previous code, so a late redemption of an expired code says `expired_code`. */
  lastCode: { codeHash: string; merchantId: MerchantId; fate: CodeFate; expiresAtMs: number } | null;
  /** What the consumer paid on the UTC day `day` (days since the epoch); absent before the first payment. */
  spent?: { day: number; cents: number };
}

/** One redemption and what has been undone of it since. */
export interface Auth {
  authId: AuthId;
  consumerId: ConsumerId;
  merchantId: MerchantId;
  terminalId: TerminalId;
  atMs: number;
  capturedCents: number;
  /** Captured from the gift card, and the reward lots captured (what a void or refund restores). */
  giftCents: number;
  /**
   * The part of `giftCents` that was bought value (absent: none). A refund gives bought value back first, so
   * what was refunded of it is `refundedBoughtCents(auth)`.
   */
  giftBoughtCents?: number;
  rewardLots: Lot[];
  refundedCents: number;
  refundedGiftCents: number;
  state: 'approved' | 'voided' | 'reversed';
}

export interface Reply {
  status: Status;
  authId?: string;
  approvedCents?: number;
  balanceCents?: number;
  availableCents?: number;
  cardId?: string;
  refundId?: string;
  giftId?: string;
  capCents?: number;
  expiresAtMs?: number;
}

export type BalanceCause =
  | 'load'
  | 'hold'
  | 'release'
  | 'redeem'
  | 'void'
  | 'reverse'
  | 'refund'
  | 'expire'
  | 'gift'
  | 'adjust';

/** What the confirmation text of a movement says happened. */
export type ReceiptEvent = 'redeem' | 'void' | 'reverse' | 'refund' | 'giftSent' | 'giftReceived';

/** A card's balance that went below the consumer's alert. */
export interface LowBalance {
  kind: CardKind;
  belowCents: number;
  balanceCents: number;
}

/**
 * The alert a debit of `card` crossed, if any: its balance went from at least the alert to below it. A
 * later debit starts below and crosses nothing, so each crossing is told once.
 */
function crossedAlert(card: Card, debitedCents: number, alerts: LowBalance[]): void {
  const belowCents = card.alertBelowCents;
  if (belowCents === undefined) return;
  if (card.balanceCents + debitedCents >= belowCents && card.balanceCents < belowCents)
    alerts.push({ kind: card.kind, belowCents, balanceCents: card.balanceCents });
}

export interface HistoryLine {
  cardId: CardId;
  amountCents: number;
  balanceCents: number;
}

export type Effect =
  | { type: 'reply'; reply: Reply }
  | {
      type: 'posting';
      kind: PostingKind;
      merchantId: MerchantId;
      ref: string;
      legs: Leg[];
      /** The confirmation text the consumer gets for it, if any, and the low-balance alerts it crossed. */
      receipt?: { event: ReceiptEvent; alerts: LowBalance[] };
      history: HistoryLine[];
      /**
       * How much the posting changed the bought value on the consumer's gift card (a gift's half moves it
       * between the card and transit); absent when it changed none.
       */
      boughtCents?: number;
    }
  | { type: 'balance'; card: Card; cause: BalanceCause }
  | {
      type: 'code';
      state: 'issued' | CodeFate;
      codeHash: string;
      sealed: string;
      merchantId: MerchantId;
      capCents: number;
      expiresAtMs: number;
    }
  | { type: 'timer'; atMs: number; kind: 'lots' }
  | { type: 'auth'; auth: Auth }
  | {
      type: 'giftDebited';
      giftId: GiftId;
      toConsumerId: ConsumerId;
      merchantId: MerchantId;
      amountCents: number;
      /** The part of the gift that was bought value; it arrives as bought value. */
      boughtCents: number;
    };

export interface Step {
  wallet: Wallet;
  effects: Effect[];
}

export type WalletEvent =
  | {
      type: 'LOAD';
      nowMs: number;
      merchantId: MerchantId;
      kind: CardKind;
      funding: Funding;
      amountCents: number;
      expiresAtMs: number | null;
      newCardId: CardId;
      ref: string;
    }
  | {
      type: 'ISSUE_CODE';
      nowMs: number;
      merchantId: MerchantId;
      capCents: number | null;
      codeHash: string;
      sealed: string;
      expiresAtMs: number;
    }
  | { type: 'CANCEL_CODE'; nowMs: number }
  | {
      type: 'REDEEM';
      nowMs: number;
      merchantId: MerchantId;
      codeHash: string;
      amountCents: number;
      partial: boolean;
      authId: AuthId;
      terminalId: TerminalId;
    }
  | { type: 'INQUIRE'; nowMs: number; merchantId: MerchantId; codeHash: string }
  | { type: 'VOID'; nowMs: number; auth: Auth; settledUpToMs: number }
  | { type: 'REVERSE'; nowMs: number; auth: Auth }
  | { type: 'REFUND'; nowMs: number; auth: Auth; amountCents: number; refundId: RefundId }
  | { type: 'EXPIRE_CODE'; nowMs: number }
  | { type: 'EXPIRE_LOTS'; nowMs: number }
  | { type: 'FREEZE'; nowMs: number }
  | { type: 'UNFREEZE'; nowMs: number }
  | { type: 'SET_ALERT'; nowMs: number; cardId: CardId; belowCents: number | null }
  | {
      type: 'GIFT_SEND';
      nowMs: number;
      giftId: GiftId;
      merchantId: MerchantId;
      amountCents: number;
      toConsumerId: ConsumerId;
    }
  | {
      type: 'GIFT_RECEIVE';
      nowMs: number;
      giftId: GiftId;
      merchantId: MerchantId;
      amountCents: number;
      /** The part that was bought value on the giver's card (absent: none). */
      boughtCents?: number;
      newCardId: CardId;
    };

export type EventOf<T extends WalletEvent['type']> = Extract<WalletEvent, { type: T }>;

export function emptyWallet(consumerId: ConsumerId): Wallet {
  return { consumerId, cards: [], code: null, lastCode: null };
}

// ---------------------------------------------------------------------------------------------------
// Reading a wallet.

export function availableCents(card: Card): number {
  return card.balanceCents - card.heldCents;
}

export function findCard(wallet: Wallet, merchantId: MerchantId, kind: CardKind): Card | undefined {
  return wallet.cards.find((card) => card.merchantId === merchantId && card.kind === kind);
}

export function totalsAt(
  wallet: Wallet,
  merchantId: MerchantId,
): { balanceCents: number; availableCents: number; heldCents: number } {
  let balanceCents = 0;
  let heldCents = 0;
  for (const card of wallet.cards) {
    if (card.merchantId !== merchantId) continue;
    balanceCents += card.balanceCents;
    heldCents += card.heldCents;
  }
  return { balanceCents, availableCents: balanceCents - heldCents, heldCents };
}

/** The live code named by a request, or null when the code is not this wallet's live one. */
export function liveCodeFor(wallet: Wallet, merchantId: MerchantId, codeHash: string): LiveCode | null {
  const code = wallet.code;
  return code !== null && code.merchantId === merchantId && code.codeHash === codeHash ? code : null;
}

/** Why a code that is not live here was refused: only a code that expired says so. */
export function deadCodeStatus(wallet: Wallet, merchantId: MerchantId, codeHash: string): Status {
  const last = wallet.lastCode;
  const expired =
    last !== null && last.fate === 'expired' && last.merchantId === merchantId && last.codeHash === codeHash;
  return expired ? 'expired_code' : 'invalid_code';
}

/** What the consumer may still pay today (UTC) under the per-day limit; a void or reversal gives back. */
export function leftTodayCents(wallet: Wallet, nowMs: number, dayMaxCents: number): number {
  const spent = wallet.spent?.day === Math.floor(nowMs / DAY_MS) ? wallet.spent.cents : 0;
  return Math.max(0, dayMaxCents - spent);
}

/** What the live code can still pay: its cap, bounded by what is still held for it. */
export function codeSpendableCents(wallet: Wallet): number {
  const code = wallet.code;
  return code === null ? 0 : Math.min(code.capCents, totalsAt(wallet, code.merchantId).heldCents);
}

/**
 * What is wrong with a wallet, as sentences; none when it keeps its invariants: no balance below zero;
 * a card holds between 0 and its balance; only the live code's cards hold value, together at most its
 * cap; a reward card's lots add up to its balance, and a gift card has none. The account machine checks
 * them after every rule (`assertWallet`), and the start-up audit on every stored wallet.
 */
export function walletProblems(wallet: Wallet): string[] {
  const problems: string[] = [];
  const code = wallet.code;
  let heldCents = 0;
  // Runs after every rule: no text is made unless something is wrong.
  for (const card of wallet.cards) {
    const { cardId, balanceCents, heldCents: held } = card;
    if (balanceCents < 0) problems.push(`card:${cardId} has a balance of ${balanceCents}`);
    if (held < 0 || held > balanceCents) problems.push(`card:${cardId} holds ${held} of ${balanceCents}`);
    if (held > 0 && code?.merchantId !== card.merchantId)
      problems.push(`card:${cardId} has a hold without a live code`);
    heldCents += held;
    const bought = card.boughtCents ?? 0;
    if (card.kind === 'gift') {
      if (card.lots.length > 0) problems.push(`card:${cardId} is a gift card with lots`);
      if (bought < 0 || bought > balanceCents)
        problems.push(`card:${cardId} has ${bought} bought of ${balanceCents}`);
      continue;
    }
    if (bought !== 0) problems.push(`card:${cardId} is a reward card with bought value`);
    let lots = 0;
    for (const lot of card.lots) lots += lot.cents;
    if (lots !== balanceCents)
      problems.push(`card:${cardId} reward lots sum to ${lots}, balance ${balanceCents}`);
  }
  if (code && heldCents > code.capCents)
    problems.push(`${wallet.consumerId} holds ${heldCents} for a code capped at ${code.capCents}`);
  return problems;
}

/** Throws when a wallet breaks an invariant (`walletProblems`), so a faulty rule fails at its own event. */
export function assertWallet(wallet: Wallet): void {
  const problems = walletProblems(wallet);
  if (problems.length > 0) throw new Error(`wallet invariant broken: ${problems.join('; ')}`);
}

// ---------------------------------------------------------------------------------------------------
// Changing a wallet. Each rule copies what it changes; the input wallet is never mutated.

/** Copies every object a rule may change (cards and their lots), so earlier snapshots stay as they were. */
function copy(wallet: Wallet): Wallet {
  return {
    ...wallet,
    cards: wallet.cards.map((card) => ({ ...card, lots: card.lots.map((lot) => ({ ...lot })) })),
  };
}

/**
 * Takes `cents` off a gift card, issued value first; returns the part that was bought value.
 */
function takeGift(card: Card, cents: number): number {
  const bought = card.boughtCents ?? 0;
  const boughtTaken = Math.max(0, cents - (card.balanceCents - bought));
  card.balanceCents -= cents;
  if (boughtTaken > 0) setBought(card, bought - boughtTaken);
  return boughtTaken;
}

/** What a redemption's refunds gave back of its bought value: they give bought value back first. */
export function refundedBoughtCents(auth: Auth): number {
  return Math.min(auth.refundedGiftCents, auth.giftBoughtCents ?? 0);
}

/** Counts `cents` as spent on the UTC day of `nowMs` (payments and gifts share the day's limit). */
function addSpent(wallet: Wallet, nowMs: number, cents: number): void {
  const day = Math.floor(nowMs / DAY_MS);
  wallet.spent = { day, cents: (wallet.spent?.day === day ? wallet.spent.cents : 0) + cents };
}

/** Sets a gift card's bought value, leaving the field out while there is none. */
function setBought(card: Card, cents: number): void {
  if (cents > 0) card.boughtCents = cents;
  else delete card.boughtCents;
}

/** A posting's bought change, only when there is one. */
const boughtOf = (cents: number): { boughtCents?: number } => (cents === 0 ? {} : { boughtCents: cents });

function reply(effects: Effect[], body: Reply): void {
  effects.push({ type: 'reply', reply: body });
}

function pushBalance(effects: Effect[], card: Card, cause: BalanceCause): void {
  effects.push({ type: 'balance', card: { ...card, lots: card.lots.slice() }, cause });
}

function codeEffect(code: LiveCode, state: 'issued' | CodeFate): Effect {
  const { codeHash, sealed, merchantId, capCents, expiresAtMs } = code;
  return { type: 'code', state, codeHash, sealed, merchantId, capCents, expiresAtMs };
}

/** Adds reward value as a lot, keeping lots ordered by expiry (never-expiring last). */
function addLot(card: Card, lot: Lot): void {
  const same = card.lots.find((l) => l.expiresAtMs === lot.expiresAtMs);
  if (same) {
    same.cents += lot.cents;
  } else {
    card.lots.push({ ...lot });
    card.lots.sort(
      (a, b) => (a.expiresAtMs ?? Number.POSITIVE_INFINITY) - (b.expiresAtMs ?? Number.POSITIVE_INFINITY),
    );
  }
}

/** Takes `cents` from the soonest-expiring lots; returns the lots taken. */
function takeLots(card: Card, cents: number): Lot[] {
  const taken: Lot[] = [];
  let left = cents;
  while (left > 0) {
    const lot = card.lots[0];
    if (!lot) throw new Error('reward lots do not cover the reward balance');
    const take = Math.min(lot.cents, left);
    taken.push({ cents: take, expiresAtMs: lot.expiresAtMs });
    lot.cents -= take;
    left -= take;
    if (lot.cents === 0) card.lots.shift();
  }
  return taken;
}

function ensureCard(wallet: Wallet, merchantId: MerchantId, kind: CardKind, newCardId: CardId): Card {
  const existing = findCard(wallet, merchantId, kind);
  if (existing) return existing;
  const card: Card = { cardId: newCardId, merchantId, kind, balanceCents: 0, heldCents: 0, lots: [] };
  wallet.cards.push(card);
  return card;
}

/** Releases the live code's holds and records its fate. The caller decides what else the fate means. */
function endCode(wallet: Wallet, effects: Effect[], fate: CodeFate, releaseCause: BalanceCause): void {
  const code = wallet.code;
  if (code === null) return;
  for (const card of wallet.cards) {
    if (card.merchantId !== code.merchantId || card.heldCents === 0) continue;
    card.heldCents = 0;
    if (fate !== 'redeemed') pushBalance(effects, card, releaseCause);
  }
  wallet.code = null;
  wallet.lastCode = {
    codeHash: code.codeHash,
    merchantId: code.merchantId,
    fate,
    expiresAtMs: code.expiresAtMs,
  };
  effects.push(codeEffect(code, fate));
}

export function load(w: Wallet, ev: EventOf<'LOAD'>): Step {
  const wallet = copy(w);
  const effects: Effect[] = [];
  const card = ensureCard(wallet, ev.merchantId, ev.kind, ev.newCardId);
  card.balanceCents += ev.amountCents;
  const boughtCents = card.kind === 'gift' && ev.funding === 'consumer' ? ev.amountCents : 0;
  if (boughtCents > 0) setBought(card, (card.boughtCents ?? 0) + boughtCents);
  if (card.kind === 'reward') {
    addLot(card, { cents: ev.amountCents, expiresAtMs: ev.expiresAtMs });
    if (ev.expiresAtMs !== null) effects.push({ type: 'timer', atMs: ev.expiresAtMs, kind: 'lots' });
  }
  const counter =
    ev.funding === 'merchant' ? ledgerAccount.merchantIssued(ev.merchantId) : ledgerAccount.platformFunding;
  effects.push({
    type: 'posting',
    kind: ev.funding === 'merchant' ? 'load' : 'purchase',
    merchantId: ev.merchantId,
    ref: ev.ref,
    legs: [
      { account: ledgerAccount.card(card.cardId), cents: ev.amountCents },
      { account: counter, cents: -ev.amountCents },
    ],
    history: [{ cardId: card.cardId, amountCents: ev.amountCents, balanceCents: card.balanceCents }],
    ...boughtOf(boughtCents),
  });
  pushBalance(effects, card, 'load');
  reply(effects, { status: 'approved', cardId: card.cardId, balanceCents: card.balanceCents });
  return { wallet, effects };
}

export function loadWouldOverflow(
  w: Wallet,
  ev: EventOf<'LOAD'>,
  cardBalanceMaxCents: number,
  lotsMax: number,
): boolean {
  const card = findCard(w, ev.merchantId, ev.kind);
  if (!card) return ev.amountCents > cardBalanceMaxCents;
  const newLot = card.kind === 'reward' && !card.lots.some((l) => l.expiresAtMs === ev.expiresAtMs);
  return card.balanceCents + ev.amountCents > cardBalanceMaxCents || (newLot && card.lots.length >= lotsMax);
}

/** A new code replaces the live one, then holds min(cap, available here): reward value first. */
export function issueCode(w: Wallet, ev: EventOf<'ISSUE_CODE'>): Step {
  const wallet = copy(w);
  const effects: Effect[] = [];
  endCode(wallet, effects, 'cancelled', 'release');
  const available = totalsAt(wallet, ev.merchantId).availableCents;
  const capCents = ev.capCents === null ? available : Math.min(ev.capCents, available);
  let left = capCents;
  for (const kind of ['reward', 'gift'] as const) {
    const card = findCard(wallet, ev.merchantId, kind);
    if (!card || left === 0) continue;
    const hold = Math.min(left, availableCents(card));
    if (hold === 0) continue;
    card.heldCents += hold;
    left -= hold;
    pushBalance(effects, card, 'hold');
  }
  const code: LiveCode = {
    codeHash: ev.codeHash,
    sealed: ev.sealed,
    merchantId: ev.merchantId,
    capCents,
    issuedAtMs: ev.nowMs,
    expiresAtMs: ev.expiresAtMs,
  };
  wallet.code = code;
  effects.push(codeEffect(code, 'issued'));
  reply(effects, { status: 'approved', capCents, expiresAtMs: code.expiresAtMs });
  return { wallet, effects };
}

export function cancelCode(w: Wallet): Step {
  const wallet = copy(w);
  const effects: Effect[] = [];
  endCode(wallet, effects, 'cancelled', 'release');
  return { wallet, effects };
}

export function expireCode(w: Wallet): Step {
  const wallet = copy(w);
  const effects: Effect[] = [];
  endCode(wallet, effects, 'expired', 'expire');
  return { wallet, effects };
}

/** Captures the approved amount from the holds, reward value first, and ends the code. */
export function redeem(w: Wallet, ev: EventOf<'REDEEM'>, dayMaxCents: number): Step {
  const wallet = copy(w);
  const effects: Effect[] = [];
  const leftToday = leftTodayCents(wallet, ev.nowMs, dayMaxCents);
  const spendable = codeSpendableCents(wallet);
  const approvedCents = ev.partial ? Math.min(ev.amountCents, spendable, leftToday) : ev.amountCents;
  // What the guards promise (account-machine.ts): never nothing, nor more than asked, than the code can
  // pay or than the day allows.
  if (!(approvedCents > 0 && approvedCents <= Math.min(ev.amountCents, spendable, leftToday)))
    throw new Error(`redeem of ${approvedCents} past its guards`);
  addSpent(wallet, ev.nowMs, approvedCents);
  const reward = findCard(wallet, ev.merchantId, 'reward');
  const gift = findCard(wallet, ev.merchantId, 'gift');
  const rewardCents = Math.min(approvedCents, reward?.heldCents ?? 0);
  const giftCents = approvedCents - rewardCents;
  const rewardLots = reward && rewardCents > 0 ? takeLots(reward, rewardCents) : [];
  const legs: Leg[] = [];
  const history: HistoryLine[] = [];
  const alerts: LowBalance[] = [];
  let giftBoughtCents = 0;
  for (const [card, cents] of [
    [reward, rewardCents],
    [gift, giftCents],
  ] as const) {
    if (!card || cents === 0) continue;
    if (card.kind === 'gift') giftBoughtCents = takeGift(card, cents);
    else card.balanceCents -= cents;
    crossedAlert(card, cents, alerts);
    legs.push({ account: ledgerAccount.card(card.cardId), cents: -cents });
    history.push({ cardId: card.cardId, amountCents: -cents, balanceCents: card.balanceCents });
  }
  legs.push({ account: ledgerAccount.merchantPayable(ev.merchantId), cents: approvedCents });
  endCode(wallet, effects, 'redeemed', 'release');
  for (const card of [reward, gift]) if (card) pushBalance(effects, card, 'redeem');
  const auth: Auth = {
    authId: ev.authId,
    consumerId: wallet.consumerId,
    merchantId: ev.merchantId,
    terminalId: ev.terminalId,
    atMs: ev.nowMs,
    capturedCents: approvedCents,
    giftCents,
    rewardLots,
    refundedCents: 0,
    refundedGiftCents: 0,
    state: 'approved',
  };
  const posting: Effect = {
    type: 'posting',
    kind: 'redeem',
    merchantId: ev.merchantId,
    ref: ev.authId,
    legs,
    history,
    receipt: { event: 'redeem', alerts },
  };
  if (giftBoughtCents > 0) {
    auth.giftBoughtCents = giftBoughtCents;
    posting.boughtCents = -giftBoughtCents;
  }
  effects.push(posting, { type: 'auth', auth });
  reply(effects, {
    status: 'approved',
    authId: ev.authId,
    approvedCents,
    balanceCents: totalsAt(wallet, ev.merchantId).balanceCents,
  });
  return { wallet, effects };
}

/** Puts value back on the cards a redemption debited, and posts it against the merchant. */
function restore(
  wallet: Wallet,
  effects: Effect[],
  auth: Auth,
  giftCents: number,
  giftBoughtCents: number,
  rewardLots: Lot[],
  kind: 'void' | 'reverse' | 'refund',
  ref: string,
): void {
  const rewardCents = rewardLots.reduce((sum, lot) => sum + lot.cents, 0);
  const legs: Leg[] = [];
  const history: HistoryLine[] = [];
  for (const [kind_, cents] of [
    ['gift', giftCents],
    ['reward', rewardCents],
  ] as const) {
    if (cents === 0) continue;
    const card = findCard(wallet, auth.merchantId, kind_);
    if (!card) throw new Error('restoring to a card that was never debited');
    card.balanceCents += cents;
    if (kind_ === 'reward') for (const lot of rewardLots) addLot(card, lot);
    else setBought(card, (card.boughtCents ?? 0) + giftBoughtCents);
    legs.push({ account: ledgerAccount.card(card.cardId), cents });
    history.push({ cardId: card.cardId, amountCents: cents, balanceCents: card.balanceCents });
    pushBalance(effects, card, kind);
  }
  legs.push({ account: ledgerAccount.merchantPayable(auth.merchantId), cents: -(giftCents + rewardCents) });
  effects.push({
    type: 'posting',
    kind,
    merchantId: auth.merchantId,
    ref,
    legs,
    history,
    receipt: { event: kind, alerts: [] },
    ...boughtOf(giftBoughtCents),
  });
  if (rewardLots.some((lot) => lot.expiresAtMs !== null)) {
    const soonest = Math.min(...rewardLots.map((lot) => lot.expiresAtMs ?? Number.POSITIVE_INFINITY));
    effects.push({ type: 'timer', atMs: soonest, kind: 'lots' });
  }
}

/** Void or reverse: restore everything not yet refunded, exactly as it was debited. */
export function undoRedemption(w: Wallet, ev: EventOf<'VOID'> | EventOf<'REVERSE'>): Step {
  const wallet = copy(w);
  const effects: Effect[] = [];
  const auth: Auth = { ...ev.auth, state: ev.type === 'VOID' ? 'voided' : 'reversed' };
  const giftCents = ev.auth.giftCents - ev.auth.refundedGiftCents;
  restore(
    wallet,
    effects,
    auth,
    giftCents,
    (ev.auth.giftBoughtCents ?? 0) - refundedBoughtCents(ev.auth),
    ev.auth.rewardLots,
    ev.type === 'VOID' ? 'void' : 'reverse',
    auth.authId,
  );
  effects.push({ type: 'auth', auth: { ...auth, rewardLots: [] } });
  // What comes back is no longer spent on the redemption's day (a refund gives no allowance back).
  if (wallet.spent && wallet.spent.day === Math.floor(auth.atMs / DAY_MS)) {
    const cents = Math.max(0, wallet.spent.cents - (auth.capturedCents - auth.refundedCents));
    wallet.spent = { ...wallet.spent, cents };
  }
  const balanceCents = totalsAt(wallet, auth.merchantId).balanceCents;
  reply(
    effects,
    ev.type === 'VOID' ? { status: 'approved', authId: auth.authId, balanceCents } : { status: 'reversed' },
  );
  return { wallet, effects };
}

export function refundableCents(auth: Auth): number {
  return auth.state === 'approved' ? auth.capturedCents - auth.refundedCents : 0;
}

/**
 * A refund credits the cards the redemption debited: gift value first (bought value before issued, the
 * reverse of how it was spent), then reward lots, latest-expiring first.
 */
export function refund(w: Wallet, ev: EventOf<'REFUND'>): Step {
  const wallet = copy(w);
  const effects: Effect[] = [];
  const giftCents = Math.min(ev.amountCents, ev.auth.giftCents - ev.auth.refundedGiftCents);
  let rewardLeft = ev.amountCents - giftCents;
  const lotsKept = ev.auth.rewardLots.map((lot) => ({ ...lot }));
  const lotsBack: Lot[] = [];
  while (rewardLeft > 0) {
    const lot = lotsKept[lotsKept.length - 1];
    if (!lot) throw new Error('refund exceeds the reward captured');
    const take = Math.min(lot.cents, rewardLeft);
    lotsBack.push({ cents: take, expiresAtMs: lot.expiresAtMs });
    lot.cents -= take;
    rewardLeft -= take;
    if (lot.cents === 0) lotsKept.pop();
  }
  const boughtBack = Math.min(giftCents, (ev.auth.giftBoughtCents ?? 0) - refundedBoughtCents(ev.auth));
  restore(wallet, effects, ev.auth, giftCents, boughtBack, lotsBack, 'refund', ev.refundId);
  const auth: Auth = {
    ...ev.auth,
    rewardLots: lotsKept,
    refundedCents: ev.auth.refundedCents + ev.amountCents,
    refundedGiftCents: ev.auth.refundedGiftCents + giftCents,
  };
  effects.push({ type: 'auth', auth });
  reply(effects, {
    status: 'approved',
    refundId: ev.refundId,
    balanceCents: totalsAt(wallet, auth.merchantId).balanceCents,
  });
  return { wallet, effects };
}

/**
 * Reward value past its expiry at `nowMs` leaves the card and goes back to the merchant who funded it
 * (on its timer, and before any event that would use it).
 */
export function expireLots(w: Wallet, nowMs: number): Step {
  const wallet = copy(w);
  const effects: Effect[] = [];
  for (const card of wallet.cards) {
    if (card.kind !== 'reward') continue;
    let expiredCents = 0;
    while (card.lots[0] && card.lots[0].expiresAtMs !== null && card.lots[0].expiresAtMs <= nowMs) {
      expiredCents += card.lots[0].cents;
      card.lots.shift();
    }
    if (expiredCents === 0) continue;
    card.balanceCents -= expiredCents;
    card.heldCents = Math.min(card.heldCents, card.balanceCents);
    effects.push({
      type: 'posting',
      kind: 'expire',
      merchantId: card.merchantId,
      ref: card.cardId,
      legs: [
        { account: ledgerAccount.card(card.cardId), cents: -expiredCents },
        { account: ledgerAccount.merchantExpired(card.merchantId), cents: expiredCents },
      ],
      history: [{ cardId: card.cardId, amountCents: -expiredCents, balanceCents: card.balanceCents }],
    });
    pushBalance(effects, card, 'expire');
  }
  return { wallet, effects };
}

export function lotsDue(w: Wallet, nowMs: number): boolean {
  return w.cards.some((card) => card.lots[0]?.expiresAtMs != null && card.lots[0].expiresAtMs <= nowMs);
}

/** Sets or (null) clears a card's low-balance alert. */
export function setAlert(w: Wallet, ev: EventOf<'SET_ALERT'>): Step {
  const wallet = copy(w);
  const card = wallet.cards.find((held) => held.cardId === ev.cardId);
  if (!card) throw new Error('an alert on a missing card');
  if (ev.belowCents === null) delete card.alertBelowCents;
  else card.alertBelowCents = ev.belowCents;
  const effects: Effect[] = [];
  reply(effects, { status: 'approved', cardId: card.cardId, balanceCents: card.balanceCents });
  return { wallet, effects };
}

/**
 * First step of a gift saga: gift-card value leaves the sender into a transit account. What is given
 * counts against the day's spending like a payment (a stolen phone is worth no more given away).
 */
export function giftSend(w: Wallet, ev: EventOf<'GIFT_SEND'>, dayMaxCents: number): Step {
  const wallet = copy(w);
  const effects: Effect[] = [];
  const card = findCard(wallet, ev.merchantId, 'gift');
  if (!card) throw new Error('gift from a missing card');
  const leftToday = leftTodayCents(wallet, ev.nowMs, dayMaxCents);
  if (ev.amountCents > leftToday) throw new Error("gift past the day's limit");
  addSpent(wallet, ev.nowMs, ev.amountCents);
  const boughtCents = takeGift(card, ev.amountCents);
  const alerts: LowBalance[] = [];
  crossedAlert(card, ev.amountCents, alerts);
  effects.push({
    type: 'posting',
    kind: 'gift',
    merchantId: ev.merchantId,
    ref: ev.giftId,
    legs: [
      { account: ledgerAccount.card(card.cardId), cents: -ev.amountCents },
      { account: ledgerAccount.transit(ev.giftId), cents: ev.amountCents },
    ],
    history: [{ cardId: card.cardId, amountCents: -ev.amountCents, balanceCents: card.balanceCents }],
    receipt: { event: 'giftSent', alerts },
    ...boughtOf(-boughtCents),
  });
  pushBalance(effects, card, 'gift');
  effects.push({
    type: 'giftDebited',
    giftId: ev.giftId,
    toConsumerId: ev.toConsumerId,
    merchantId: ev.merchantId,
    amountCents: ev.amountCents,
    boughtCents,
  });
  reply(effects, {
    status: 'approved',
    giftId: ev.giftId,
    cardId: card.cardId,
    balanceCents: card.balanceCents,
  });
  return { wallet, effects };
}

/** Second step of a gift saga: the value arrives on the receiver's gift card at that merchant. */
export function giftReceive(w: Wallet, ev: EventOf<'GIFT_RECEIVE'>): Step {
  const wallet = copy(w);
  const effects: Effect[] = [];
  const card = ensureCard(wallet, ev.merchantId, 'gift', ev.newCardId);
  card.balanceCents += ev.amountCents;
  const boughtCents = Math.min(Math.max(ev.boughtCents ?? 0, 0), ev.amountCents);
  setBought(card, (card.boughtCents ?? 0) + boughtCents);
  effects.push({
    type: 'posting',
    kind: 'gift',
    merchantId: ev.merchantId,
    ref: ev.giftId,
    legs: [
      { account: ledgerAccount.card(card.cardId), cents: ev.amountCents },
      { account: ledgerAccount.transit(ev.giftId), cents: -ev.amountCents },
    ],
    history: [{ cardId: card.cardId, amountCents: ev.amountCents, balanceCents: card.balanceCents }],
    receipt: { event: 'giftReceived', alerts: [] },
    ...boughtOf(boughtCents),
  });
  pushBalance(effects, card, 'gift');
  reply(effects, { status: 'approved', cardId: card.cardId, balanceCents: card.balanceCents });
  return { wallet, effects };
}
