import type { MessagePort } from 'node:worker_threads';
import { SEALED_FOR, seal } from '../core/seal.ts';
import {
  META,
  type MerchantNet,
  type MetaKey,
  openStore,
  readMeta,
  type SettledMerchant,
  type SettlementRecord,
  type SettlementSummary,
  type Store,
  whenDurable,
  writeMeta,
} from '../persistence/store.ts';
import { achReference } from './ach-reference.ts';
import { isRoutingNumber } from './bank.ts';
import {
  ACH_ENTRY_MAX_CENTS,
  type AchEntry,
  type BankAccount,
  type Originator,
  readAchEntries,
  writeAchFile,
} from './nacha.ts';
import { addPosting, applyFees, emptyNet, type MerchantTerms } from './net.ts';

/**
 * One settlement run, off the hot threads (a piscina worker). It reads every journal posting of the
 * window that no other settlement paid, nets them per merchant, writes the ACH file and reconciles it
 * with the journal, then stores everything: the marks on the postings and the statements in short
 * transactions (so shard commits are never held up for long), and last, in one small transaction, the
 * settlement record with the sealed file and the new settled-up-to time. A crash before that last
 * transaction leaves marks carrying this run's settlement id, which a new run of the same day takes as
 * its own: nothing is lost or paid twice, and the record appears exactly once.
 *
 * @module
 */

export interface SettleTask {
  dataDir: string;
  /** Seals the stored ACH file (it holds bank accounts). */
  masterKey: Uint8Array;
  businessDate: string;
  settlementId: string;
  achFileId: string;
  /** The run pays postings in `[scanFromMs, endMs)` that no other settlement marked. */
  scanFromMs: number;
  startMs: number;
  endMs: number;
  createdAtMs: number;
  createdDate: string;
  createdTime: string;
  fileIdModifier: string;
  /** Meta keys updated with the record: the settled-up-to time and the day's file count. */
  settledUpToMs: number;
  filesCounterKey: MetaKey<'achFilesCreated'>;
  effectiveDate: string;
  originator: Originator;
  balanced: boolean;
  /** `bank` is null when the merchant's sealed bank details do not open (altered, or another's). */
  merchants: (MerchantTerms & { name: string; bank: BankAccount | null })[];
  progress?: MessagePort;
  /** Whether the answer lists the postings paid (a cluster shares them: settlements.ts). */
  returnPostingKeys?: boolean;
}

const PROGRESS_EVERY = 50_000;
const WRITES_PER_TRANSACTION = 10_000;
const MERCHANT_ACCOUNT = /^merchant:[^:]+:(payable|issued|expired)$/;

/** A settled day, and the journal keys of the postings it paid (marked in `settled`). */
export interface Settled {
  record: SettlementRecord;
  postingKeys: [number, number, number][];
}

export async function computeSettlement(task: SettleTask): Promise<Settled> {
  const store = openStore(task.dataDir);
  try {
    const existing = store.settlements.get(task.businessDate);
    if (existing) return { record: existing, postingKeys: [] };
    const nets = new Map<string, MerchantNet>();
    const postingKeys: [number, number, number][] = [];
    let journalLegsCents = 0;
    for (const { key, value } of store.journal.getRange({ start: [task.scanFromMs], end: [task.endMs] })) {
      const mark = store.settled.get(key);
      if (mark !== undefined && mark !== task.settlementId) continue;
      postingKeys.push(key);
      addPosting(nets, key, value);
      for (const leg of value.legs) if (MERCHANT_ACCOUNT.test(leg.account)) journalLegsCents += leg.cents;
      if (postingKeys.length % PROGRESS_EVERY === 0)
        task.progress?.postMessage({ postings: postingKeys.length });
    }
    const record = settle(task, nets, postingKeys.length, journalLegsCents);
    await persist(store, task, record, nets, postingKeys);
    return { record, postingKeys: task.returnPostingKeys ? postingKeys : [] };
  } finally {
    await store.root.close();
  }
}

function settle(
  task: SettleTask,
  nets: Map<string, MerchantNet>,
  postings: number,
  journalLegsCents: number,
): SettlementRecord {
  const registered = new Map(task.merchants.map((merchant) => [merchant.merchantId, merchant]));
  applyFees(nets, registered);
  const ordered = [...nets.values()].sort((a, b) => (a.merchantId < b.merchantId ? -1 : 1));
  // A merchant that cannot be paid is left out of the file and reported; it never stops the others.
  const unpaid: SettlementSummary['unpaid'] = [];
  const referenceOf = new Map(ordered.map(({ merchantId }) => [merchantId, achReference(merchantId)]));
  const references = new Set<string>();
  const paid = ordered.filter((net) => {
    if (net.netCents === 0) return false;
    const merchant = registered.get(net.merchantId);
    const reason = !merchant
      ? 'the merchant is not registered'
      : !merchant.bank
        ? 'its bank details do not open: altered, or sealed for another merchant'
        : !isRoutingNumber(merchant.bank.routingNumber)
          ? 'the routing number fails the ABA check'
          : Math.abs(net.netCents) > ACH_ENTRY_MAX_CENTS
            ? 'the net does not fit one ACH entry'
            : references.has(referenceOf.get(net.merchantId) as string)
              ? 'another merchant in the file has the same ACH reference'
              : null;
    if (reason) unpaid.push({ merchantId: net.merchantId, netCents: net.netCents, reason });
    else references.add(referenceOf.get(net.merchantId) as string);
    return reason === null;
  });
  const entries: AchEntry[] = paid.map((net) => {
    const merchant = registered.get(net.merchantId) as SettleTask['merchants'][number];
    return {
      ...(merchant.bank as BankAccount),
      direction: net.netCents > 0 ? 'credit' : 'debit',
      amountCents: Math.abs(net.netCents),
      id: referenceOf.get(net.merchantId) as string,
      name: merchant.name,
    };
  });
  const file = writeAchFile({
    originator: task.originator,
    entries,
    createdDate: task.createdDate,
    createdTime: task.createdTime,
    fileIdModifier: task.fileIdModifier,
    effectiveDate: task.effectiveDate,
    descriptiveDate: task.businessDate.slice(2).replaceAll('-', ''),
    entryDescription: 'SETTLEMENT',
    balanced: task.balanced,
  });
  const traceOf = new Map(paid.map((net, index) => [net.merchantId, file.traces[index] as string]));
  const merchants: SettledMerchant[] = ordered.map(({ lines: _lines, ...net }) => ({
    ...net,
    name: registered.get(net.merchantId)?.name ?? '',
    traceNumber: traceOf.get(net.merchantId) ?? null,
    achReference: referenceOf.get(net.merchantId) as string,
  }));
  return {
    settlementId: task.settlementId,
    businessDate: task.businessDate,
    achFileId: task.achFileId,
    createdAtMs: task.createdAtMs,
    sealedAch: seal(Buffer.from(task.masterKey), file.text, SEALED_FOR.ach(task.businessDate)),
    merchants,
    summary: reconcile(task, nets, merchants, file.text, postings, journalLegsCents, unpaid),
  };
}

async function persist(
  store: Store,
  task: SettleTask,
  record: SettlementRecord,
  nets: Map<string, MerchantNet>,
  postingKeys: [number, number, number][],
): Promise<void> {
  for (let start = 0; start < postingKeys.length; start += WRITES_PER_TRANSACTION) {
    await store.root.transaction(() => {
      for (const key of postingKeys.slice(start, start + WRITES_PER_TRANSACTION))
        store.settled.put(key, task.settlementId);
    });
  }
  // Puts outside a transaction callback are encoded at once and committed together, off the write lock.
  await Promise.all(
    [...nets.values()].map((net) => store.statements.put([task.businessDate, net.merchantId], net.lines)),
  );
  await store.root.transaction(() => {
    if (store.settlements.get(task.businessDate)) return;
    store.settlements.put(task.businessDate, record);
    writeMeta(store, META.settledUpToMs, task.settledUpToMs);
    writeMeta(store, task.filesCounterKey, (readMeta(store, task.filesCounterKey) ?? 0) + 1);
  });
  await whenDurable(store);
}

/**
 * The operator's summary: the journal's totals next to the file's, read back from the file text, with
 * every disagreement listed. The merchant-account legs are summed apart from the nets, so an error in
 * the netting shows as a difference. A settlement that does not reconcile is reported, never hidden.
 */
function reconcile(
  task: SettleTask,
  nets: Map<string, MerchantNet>,
  merchants: SettledMerchant[],
  ach: string,
  postings: number,
  journalLegsCents: number,
  unpaid: SettlementSummary['unpaid'],
): SettlementSummary {
  const { merchantId: _merchantId, lines: _lines, ...totals } = emptyNet('');

  const problems = unpaid.map(({ merchantId, reason }) => `${merchantId}: not paid: ${reason}`);
  for (const merchant of merchants) {
    for (const name of Object.keys(totals) as (keyof typeof totals)[]) totals[name] += merchant[name];
    const lines = nets.get(merchant.merchantId)?.lines ?? [];
    const fromLines = lines.reduce((sum, line) => sum + line.amountCents, 0) - merchant.feeCents;
    if (fromLines !== merchant.netCents)
      problems.push(`${merchant.merchantId}: lines add up to ${fromLines}, net ${merchant.netCents}`);
  }
  if (journalLegsCents - totals.feeCents !== totals.netCents)
    problems.push(
      `the journal's merchant legs less fees are ${journalLegsCents - totals.feeCents}, the nets ${totals.netCents}`,
    );
  const offset = task.originator.offsetAccount;
  const read = readAchEntries(ach);
  const isOffset = (entry: (typeof read)[number]) =>
    entry.routingNumber === offset.routingNumber &&
    entry.accountNumber === offset.accountNumber &&
    entry.id === 'OFFSET';
  const sum = (list: typeof read) => list.reduce((total, entry) => total + entry.amountCents, 0);
  const merchantEntries = read.filter((entry) => !isOffset(entry));
  const creditCents = sum(merchantEntries.filter((entry) => entry.direction === 'credit'));
  const debitCents = sum(merchantEntries.filter((entry) => entry.direction === 'debit'));
  const paid = merchants.filter((merchant) => merchant.traceNumber !== null);
  const owed = paid.reduce((total, merchant) => total + merchant.netCents, 0);
  if (creditCents - debitCents !== owed)
    problems.push(`the file pays ${creditCents - debitCents}, the journal owes ${owed}`);
  for (const merchant of paid) {
    const entry = read.find((candidate) => candidate.traceNumber === merchant.traceNumber);
    const signed = entry ? (entry.direction === 'credit' ? entry.amountCents : -entry.amountCents) : null;
    if (signed !== merchant.netCents)
      problems.push(`${merchant.merchantId}: the file carries ${signed}, the net is ${merchant.netCents}`);
  }
  const fileControl = ach.split('\n').find((line) => line.startsWith('9') && !/^9+$/.test(line)) ?? '';
  return {
    businessDate: task.businessDate,
    settlementId: task.settlementId,
    achFileId: task.achFileId,
    window: { startMs: task.startMs, endMs: task.endMs },
    createdAtMs: task.createdAtMs,
    effectiveDate: task.effectiveDate,
    postings,
    totals,
    journalLegsCents,
    file: {
      entries: read.length,
      creditCents,
      debitCents,
      offsetCents: sum(read.filter(isOffset)),
      entryHash: fileControl.slice(21, 31),
      blocks: Number(fileControl.slice(7, 13)),
    },
    unpaid,
    reconciled: problems.length === 0,
    problems,
  };
}
