import { availableParallelism } from 'node:os';
import { Worker } from 'node:worker_threads';
import { legsSum } from '../core/ledger.ts';
import { walletProblems } from '../core/wallet.ts';
import type { Store } from './store.ts';

/**
 * The ledger and code audit, run at start-up and by the tests. It recomputes every ledger balance from
 * the journal and checks them against the accounts, independently of how the shards keep them:
 * - every journal entry sums to zero, so all balances together sum to zero;
 * - each card's balance equals the sum of its ledger account, holds stay within the balance and only
 *   the live code holds value; reward lots add up to the reward balance;
 * - the bought value on each consumer's gift cards equals what the consumer's postings say they moved
 *   of it (`boughtCents`);
 * - each live code is in the code index under its holder, and each live index entry is some wallet's
 *   live code (so no code can be redeemed twice);
 * - a gift in transit is backed by a pending saga, and a finished gift left nothing in transit.
 *
 * @module
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

/**
 * A part of the audit: the consumers whose ids are in [start, end) (unbounded when absent), with their
 * wallets, cards, codes and the journal entries they made (an account actor posts only to its own
 * cards). Each part reads its own stretch of wallets but the whole journal; part 0 also checks what
 * spans consumers: entries summing to zero, the ledger's total, gifts in transit.
 */
export interface AuditPart {
  index: number;
  start?: string;
  end?: string;
}

const inPart = (consumerId: string, part: AuditPart) =>
  (part.start === undefined || consumerId >= part.start) && (part.end === undefined || consumerId < part.end);

export function auditStore(store: Store, nowMs: number, part: AuditPart = { index: 0 }): AuditReport {
  const started = performance.now();
  const firstPart = part.index === 0;
  const problems: string[] = [];
  const problem = (text: string) => {
    if (problems.length < PROBLEMS_MAX) problems.push(text);
  };
  store.root.resetReadTxn();

  // Wallets first: each card's balance is what the journal must add up to for its account. One map
  // entry per card, then a single pass over the journal, keeps start-up time linear and small.
  const unmatched = new Map<string, number>();
  /** Per consumer: the bought value on its gift cards, less what its postings moved (0 when they agree). */
  const boughtLeft = new Map<string, number>();
  const liveCodeOf = new Map<string, { merchantId: string; codeHash: string }>();
  let accounts = 0;
  let liveCodes = 0;
  // (An explicit `start: undefined` would also list the store's record structures: leave it out.)
  const range = {
    ...(part.start === undefined ? {} : { start: part.start }),
    ...(part.end === undefined ? {} : { end: part.end }),
  };
  for (const { key: consumerId, value } of store.accounts.getRange(range)) {
    accounts++;
    const wallet = value.context;
    const code = wallet.code;
    for (const found of walletProblems(wallet)) problem(found);
    let bought = 0;
    for (const card of wallet.cards) {
      const account = `card:${card.cardId}`;
      if (unmatched.has(account)) problem(`${account} is in more than one wallet`);
      unmatched.set(account, card.balanceCents);
      bought += card.boughtCents ?? 0;
    }
    boughtLeft.set(consumerId, bought);
    if (code) {
      liveCodes++;
      liveCodeOf.set(consumerId, code);
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
    if (firstPart) {
      const sum = legsSum(value.legs);
      if (sum !== 0) problem(`journal entry ${JSON.stringify(key)} sums to ${sum}`);
    }
    const mine = inPart(value.consumerId, part);
    if (mine && value.boughtCents !== undefined)
      boughtLeft.set(value.consumerId, (boughtLeft.get(value.consumerId) ?? 0) - value.boughtCents);
    for (const leg of value.legs) {
      ledgerSumCents += leg.cents;
      const left = mine ? unmatched.get(leg.account) : undefined;
      if (left !== undefined) unmatched.set(leg.account, left - leg.cents);
      else if (leg.account.startsWith('card:') ? mine : firstPart)
        others.set(leg.account, (others.get(leg.account) ?? 0) + leg.cents);
    }
  }
  if (firstPart && ledgerSumCents !== 0) problem(`the ledger sums to ${ledgerSumCents}, not 0`);
  for (const [account, left] of unmatched) {
    if (left !== 0) problem(`${account} differs from its ledger by ${left}`);
  }
  for (const [consumerId, left] of boughtLeft) {
    if (left !== 0) problem(`${consumerId}'s bought gift value differs from its postings by ${left}`);
  }
  for (const account of others.keys()) {
    if (account.startsWith('card:')) problem(`${account} is in the journal but in no wallet`);
  }

  for (const { key, value } of store.codes.getRange()) {
    if (value.expiresAtMs <= nowMs || !inPart(value.consumerId, part)) continue;
    const holder = liveCodeOf.get(value.consumerId);
    if (holder?.codeHash !== key[1] || holder.merchantId !== key[0])
      problem(`a live code index entry of ${value.consumerId} is not its live code`);
  }

  const pendingGifts = new Set<string>();
  if (firstPart) for (const { key } of store.sagas.getRange()) pendingGifts.add(`transit:${key}`);
  for (const [account, cents] of others) {
    if (firstPart && account.startsWith('transit:') && cents !== 0 && !pendingGifts.has(account)) {
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

/** The reports of all the parts of one audit as one. */
export function mergeAudits(parts: readonly AuditReport[]): AuditReport {
  const problems = parts.flatMap((report) => report.problems).slice(0, PROBLEMS_MAX);
  const first = parts[0] as AuditReport;
  return {
    ok: problems.length === 0,
    problems,
    journalEntries: first.journalEntries,
    accounts: parts.reduce((sum, report) => sum + report.accounts, 0),
    liveCodes: parts.reduce((sum, report) => sum + report.liveCodes, 0),
    ledgerSumCents: first.ledgerSumCents,
    durationMs: Math.max(...parts.map((report) => report.durationMs)),
  };
}

/**
 * The audit in one part per core (at most 4): part 0 on this thread, the others in worker threads that
 * open the same store, so a restart of a large store waits for the slowest part, not for all of them.
 */
export async function auditInParallel(store: Store, dataDir: string, nowMs: number): Promise<AuditReport> {
  const parts = splitConsumers(store, Math.max(1, Math.min(4, availableParallelism())));
  const workers: Worker[] = [];
  const others = parts.slice(1).map(
    (part) =>
      new Promise<AuditReport>((resolve, reject) => {
        const worker = new Worker(new URL('./audit-worker-boot.mjs', import.meta.url), {
          workerData: { dataDir, nowMs, part },
        });
        workers.push(worker);
        worker.once('message', resolve);
        worker.once('error', reject);
        worker.once('exit', (code) => reject(new Error(`an audit worker exited with code ${code}`)));
      }),
  );
  try {
    const local = auditStore(store, nowMs, parts[0]);
    return mergeAudits([local, ...(await Promise.all(others))]);
  } catch (error) {
    // One part failed to run: stop the others and let nothing reject unobserved.
    for (const other of others) other.catch(() => {});
    await Promise.all(workers.map((worker) => worker.terminate()));
    throw error;
  }
}

/** `count` stretches of consumer ids holding about as many wallets each. */
export function splitConsumers(store: Store, count: number): AuditPart[] {
  const wallets = store.accounts.getCount();
  const bounds: (string | undefined)[] = [undefined];
  for (let k = 1; k < count; k++) {
    const [key] = store.accounts.getKeys({ offset: Math.floor((wallets * k) / count), limit: 1 });
    if (key !== undefined && key !== bounds.at(-1)) bounds.push(key);
  }
  return bounds.map((start, index) => ({ index, start, end: bounds[index + 1] }));
}
