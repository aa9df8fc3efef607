import type { MessagePort } from 'node:worker_threads';
import {
  openStore,
  type SettledMerchant,
  type SettlementRecord,
  type SettlementSummary,
} from '../persistence/store.ts';
import { type AchEntry, type BankAccount, type Originator, readAchEntries, writeAchFile } from './nacha.ts';
import { addPosting, applyFees, type MerchantNet, type MerchantTerms } from './net.ts';

/**
 * One settlement run, off the hot threads (a piscina worker): read every journal posting before the
 * day's cut-off that no settlement has paid yet, net them per merchant, write the ACH file, and reconcile
 * the file with the journal to the cent. It only reads the store; the caller writes the result, the
 * marks on the postings and the new settled-up-to time in one transaction.
 */
export interface SettleTask {
  dataDir: string;
  businessDate: string;
  settlementId: string;
  achFileId: string;
  /** Postings in `[scanFromMs, endMs)` not yet marked settled are paid by this run. */
  scanFromMs: number;
  startMs: number;
  endMs: number;
  createdAtMs: number;
  createdDate: string;
  createdTime: string;
  fileIdModifier: string;
  effectiveDate: string;
  originator: Originator;
  balanced: boolean;
  merchants: (MerchantTerms & { name: string; bank: BankAccount })[];
  progress?: MessagePort;
}

export interface SettleResult {
  record: SettlementRecord;
  /** The journal keys this run pays, to be marked with its settlement id. */
  postingKeys: [number, number, number][];
}

const PROGRESS_EVERY = 50_000;

export function computeSettlement(task: SettleTask): SettleResult {
  const store = openStore(task.dataDir);
  const nets = new Map<string, MerchantNet>();
  const postingKeys: [number, number, number][] = [];
  try {
    for (const { key, value } of store.journal.getRange({ start: [task.scanFromMs], end: [task.endMs] })) {
      if (store.settled.get(key) !== undefined) continue;
      postingKeys.push(key);
      addPosting(nets, key, value);
      if (postingKeys.length % PROGRESS_EVERY === 0)
        task.progress?.postMessage({ postings: postingKeys.length });
    }
  } finally {
    void store.root.close();
  }
  const registered = new Map(task.merchants.map((merchant) => [merchant.merchantId, merchant]));
  applyFees(nets, registered);

  const ordered = [...nets.values()].sort((a, b) => (a.merchantId < b.merchantId ? -1 : 1));
  const paid = ordered.filter((net) => net.netCents !== 0 && registered.has(net.merchantId));
  const entries: AchEntry[] = paid.map((net) => {
    const merchant = registered.get(net.merchantId) as SettleTask['merchants'][number];
    return {
      ...merchant.bank,
      direction: net.netCents > 0 ? 'credit' : 'debit',
      amountCents: Math.abs(net.netCents),
      id: net.merchantId.slice(-15),
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
  const merchants: SettledMerchant[] = ordered.map((net) => ({
    ...net,
    name: registered.get(net.merchantId)?.name ?? '',
    traceNumber: traceOf.get(net.merchantId) ?? null,
  }));
  const summary = reconcile(task, merchants, file.text, postingKeys.length);
  return {
    record: {
      settlementId: task.settlementId,
      businessDate: task.businessDate,
      achFileId: task.achFileId,
      createdAtMs: task.createdAtMs,
      ach: file.text,
      merchants,
      summary,
    },
    postingKeys,
  };
}

/**
 * The operator's summary: the journal's totals next to the file's, read back from the file text itself,
 * with every disagreement listed. A settlement that does not reconcile is still reported, never hidden.
 */
function reconcile(
  task: SettleTask,
  merchants: SettledMerchant[],
  ach: string,
  postings: number,
): SettlementSummary {
  const totals = {
    redeemedCents: 0,
    voidedCents: 0,
    reversedCents: 0,
    refundedCents: 0,
    issuedCents: 0,
    expiredCents: 0,
    redemptions: 0,
    feeCents: 0,
    netCents: 0,
  };
  const problems: string[] = [];
  for (const merchant of merchants) {
    for (const name of Object.keys(totals) as (keyof typeof totals)[]) totals[name] += merchant[name];
    const fromLines = merchant.lines.reduce((sum, line) => sum + line.amountCents, 0) - merchant.feeCents;
    if (fromLines !== merchant.netCents)
      problems.push(`${merchant.merchantId}: lines add up to ${fromLines}, net ${merchant.netCents}`);
  }
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
  const unpaid = merchants
    .filter((merchant) => merchant.traceNumber === null && merchant.netCents !== 0)
    .map(({ merchantId, netCents }) => ({ merchantId, netCents }));
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
