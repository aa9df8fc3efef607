import { legsSum } from '../engine/ledger.ts';
import type { Store } from './store.ts';

/**
 * The ledger and code audit, run at start-up and by the tests. It recomputes every ledger balance from
 * the journal and checks them against the accounts, independently of how the shards keep them:
 * - every journal entry sums to zero, so all balances together sum to zero;
 * - each card's balance equals the sum of its ledger account, holds stay within the balance and only
 *   the live code holds value; reward lots add up to the reward balance;
 * - each live code is in the code index under its holder, and each live index entry is some wallet's
 *   live code (so no code can be redeemed twice);
 * - a gift in transit is backed by a pending saga, and a finished gift left nothing in transit.
 */
export interface AuditReport {
  ok: boolean;
  problems: string[];
  journalEntries: number;
  accounts: number;
  liveCodes: number;
  ledgerSumCents: number;
  durationMs: number;
}

const PROBLEMS_MAX = 50;

export function auditStore(store: Store, nowMs: number): AuditReport {
  const started = performance.now();
  const problems: string[] = [];
  const problem = (text: string) => {
    if (problems.length < PROBLEMS_MAX) problems.push(text);
  };
  store.root.resetReadTxn();

  // Wallets first: each card's balance is what the journal must add up to for its account. One map
  // entry per card, then a single pass over the journal, keeps start-up time linear and small.
  const unmatched = new Map<string, number>();
  const liveCodeOf = new Map<string, { merchantId: string; codeHash: string }>();
  let accounts = 0;
  let liveCodes = 0;
  for (const { key: consumerId, value } of store.accounts.getRange()) {
    accounts++;
    const wallet = value.context;
    const code = wallet.code;
    let heldCents = 0;
    for (const card of wallet.cards) {
      const account = `card:${card.cardId}`;
      if (unmatched.has(account)) problem(`${account} is in more than one wallet`);
      unmatched.set(account, card.balanceCents);
      if (card.heldCents < 0 || card.heldCents > card.balanceCents)
        problem(`${account} holds ${card.heldCents} of ${card.balanceCents}`);
      if (card.heldCents > 0 && code?.merchantId !== card.merchantId)
        problem(`${account} has a hold without a live code`);
      heldCents += card.heldCents;
      if (card.kind === 'reward') {
        const lots = card.lots.reduce((sum, lot) => sum + lot.cents, 0);
        if (lots !== card.balanceCents)
          problem(`${account} reward lots sum to ${lots}, balance ${card.balanceCents}`);
      }
    }
    if (code) {
      liveCodes++;
      liveCodeOf.set(consumerId, code);
      if (heldCents > code.capCents)
        problem(`${consumerId} holds ${heldCents} for a code capped at ${code.capCents}`);
      const entry = store.codes.get([code.merchantId, code.codeHash]);
      if (entry?.consumerId !== consumerId)
        problem(`${consumerId} has a live code missing from the code index`);
    }
  }

  // The journal: every entry sums to zero, and each card leg is taken off what its card holds.
  const others = new Map<string, number>();
  let journalEntries = 0;
  let ledgerSumCents = 0;
  for (const { key, value } of store.journal.getRange()) {
    journalEntries++;
    const sum = legsSum(value.legs);
    if (sum !== 0) problem(`journal entry ${JSON.stringify(key)} sums to ${sum}`);
    for (const leg of value.legs) {
      ledgerSumCents += leg.cents;
      const left = unmatched.get(leg.account);
      if (left !== undefined) unmatched.set(leg.account, left - leg.cents);
      else others.set(leg.account, (others.get(leg.account) ?? 0) + leg.cents);
    }
  }
  if (ledgerSumCents !== 0) problem(`the ledger sums to ${ledgerSumCents}, not 0`);
  for (const [account, left] of unmatched) {
    if (left !== 0) problem(`${account} holds ${left} more than its ledger says`);
  }
  for (const account of others.keys()) {
    if (account.startsWith('card:')) problem(`${account} is in the journal but in no wallet`);
  }

  for (const { key, value } of store.codes.getRange()) {
    if (value.expiresAtMs <= nowMs) continue;
    const holder = liveCodeOf.get(value.consumerId);
    if (holder?.codeHash !== key[1] || holder.merchantId !== key[0])
      problem(`a live code index entry of ${value.consumerId} is not its live code`);
  }

  const pendingGifts = new Set<string>();
  for (const { key } of store.sagas.getRange()) pendingGifts.add(`transit:${key}`);
  for (const [account, cents] of others) {
    if (account.startsWith('transit:') && cents !== 0 && !pendingGifts.has(account)) {
      problem(`${account} holds ${cents} with no pending gift`);
    }
  }

  return {
    ok: problems.length === 0,
    problems,
    journalEntries,
    accounts,
    liveCodes,
    ledgerSumCents,
    durationMs: performance.now() - started,
  };
}
