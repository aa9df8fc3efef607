import { MessageChannel } from 'node:worker_threads';
import { Piscina } from 'piscina';
import {
  META,
  type MerchantRecord,
  readMeta,
  type SettlementRecord,
  type Store,
  whenDurable,
  writeMeta,
} from '../persistence/store.ts';
import type { StatementLine } from '../sdk/http-answers.ts';
import type { BankDetails } from './bank.ts';
import {
  addDays,
  businessDayWindow,
  type Cutoff,
  localParts,
  nextBankingDay,
  parseDate,
} from './calendar.ts';
import type { Settled, SettleTask } from './compute.ts';
import type { Originator } from './nacha.ts';

/**
 * Daily merchant settlement. `settle(businessDate)` runs once per business day: a piscina worker computes
 * the nets and the ACH file and stores them (see compute.ts); every later run returns the stored result,
 * byte for byte. Runs are serialized.
 *
 * A run for day D pays the postings of D's window that no other settlement paid. When D−1 is already
 * settled it also looks back `stragglerWindowMs` before D's start, for postings of D−1 that committed
 * after D−1 was settled: those belong to D. Days may be settled in any order; each posting is paid by
 * exactly one of them. The run also advances the settled-up-to time, which closes voids of settled sales.
 *
 * @module
 */

export interface SettlementConfig {
  cutoff: Cutoff;
  originator: Originator;
  /** Balanced files carry offset entries to the platform's settlement account. */
  balanced: boolean;
  stragglerWindowMs: number;
}

export type SettleOutcome =
  | { ok: true; record: SettlementRecord }
  | { ok: false; status: 'bad_request' | 'overloaded'; message: string };

/**
 * In a cluster (docs/cluster.md): `claim` says whether this node settles a day (one node per day, the
 * first to claim it); a node that did not waits for the other's record to reach it. What the settlement
 * thread stored is written again through the main thread's store, which shares it with every node.
 */
export interface SharedSettlement {
  claim(businessDate: string): Promise<boolean>;
}

/** How long a node waits for the settlement another node is making before it says to ask again. */
const CLAIMED_WAIT_MS = 30_000;

const FILE_ID_MODIFIERS = 'ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789';
/** Banking days are the Federal Reserve's, whose day is Eastern time, wherever the platform's zone is. */
const FEDERAL_RESERVE_TIME_ZONE = 'America/New_York';

/** What a settlement needs of the registry: a merchant's bank details, and a stored file unsealed. */
export interface SealedRecords {
  bankDetails(merchant: MerchantRecord): BankDetails;
  /** A day's ACH file, as `compute.ts` sealed it (bound to its business date). */
  openAch(sealedAch: string, businessDate: string): string;
}

export class Settlements {
  private readonly pool: Piscina;
  private queue: Promise<unknown> = Promise.resolve();

  constructor(
    private readonly store: Store,
    private readonly dataDir: string,
    private readonly registry: SealedRecords,
    private readonly masterKey: Buffer,
    private readonly config: SettlementConfig,
    private readonly now: () => number,
    private readonly log: (line: string) => void,
    private readonly shared?: SharedSettlement,
  ) {
    this.pool = new Piscina({
      filename: new URL('./worker-boot.mjs', import.meta.url).href,
      minThreads: 0,
      maxThreads: 1,
      idleTimeout: 10_000,
    });
  }

  /** A merchant's bank details; null (the merchant is then not paid, and the summary says why) if they do not open. */
  private bankDetailsOf(merchant: MerchantRecord): BankDetails | null {
    try {
      return this.registry.bankDetails(merchant);
    } catch {
      return null;
    }
  }

  record(businessDate: string): SettlementRecord | undefined {
    if (!parseDate(businessDate)) return undefined;
    this.store.root.resetReadTxn();
    return this.store.settlements.get(businessDate);
  }

  /** The ACH file of a settled day, unsealed. */
  ach(record: SettlementRecord): string {
    return this.registry.openAch(record.sealedAch, record.businessDate);
  }

  /** The postings a merchant was paid for in a settled day. */
  statementLines(businessDate: string, merchantId: string): StatementLine[] {
    return this.store.statements.get([businessDate, merchantId]) ?? [];
  }

  /** The record of a day another node claimed, once it reached this node. */
  private async settledElsewhere(businessDate: string): Promise<SettleOutcome> {
    const deadline = this.now() + CLAIMED_WAIT_MS;
    while (this.now() < deadline) {
      await new Promise((resolve) => setTimeout(resolve, 200));
      const record = this.record(businessDate);
      if (record) return { ok: true, record };
    }
    return {
      ok: false,
      status: 'overloaded',
      message: 'another node is settling this business day: ask again',
    };
  }

  /**
   * Writes what the settlement thread stored again, through the store every node shares: the marks of
   * the postings it paid, the statements, the record and the counters.
   */
  private async share(
    postingKeys: readonly [number, number, number][],
    record: SettlementRecord,
  ): Promise<void> {
    const { store } = this;
    const { businessDate, settlementId } = record;
    const filesCounterKey = META.achFilesCreated(
      localParts(record.createdAtMs, this.config.cutoff.timeZone).date,
    );
    store.root.resetReadTxn();
    await store.root.transaction(() => {
      for (const key of postingKeys) store.settled.put(key, settlementId);
      for (const merchant of record.merchants) {
        const lines = store.statements.get([businessDate, merchant.merchantId]);
        if (lines) store.statements.put([businessDate, merchant.merchantId], lines);
      }
      store.settlements.put(businessDate, record);
      const settledUpToMs = readMeta(store, META.settledUpToMs);
      if (settledUpToMs !== undefined) writeMeta(store, META.settledUpToMs, settledUpToMs);
      writeMeta(store, filesCounterKey, readMeta(store, filesCounterKey) ?? 1);
    });
    await whenDurable(store);
  }

  /** Shares a day stored here again, its marks read back from `settled`. */
  private async shareStored(record: SettlementRecord): Promise<void> {
    const postingKeys: [number, number, number][] = [];
    for (const { key, value } of this.store.settled.getRange())
      if (value === record.settlementId) postingKeys.push(key);
    await this.share(postingKeys, record);
  }

  settle(businessDate: string): Promise<SettleOutcome> {
    const run = this.queue.then(() => this.run(businessDate));
    this.queue = run.catch(() => undefined);
    return run;
  }

  async close(): Promise<void> {
    await this.queue;
    await this.pool.destroy();
  }

  private async run(businessDate: string): Promise<SettleOutcome> {
    if (!parseDate(businessDate))
      return { ok: false, status: 'bad_request', message: 'businessDate must be YYYY-MM-DD' };
    const stored = this.record(businessDate);
    // In a cluster a stored day is shared again (its first sharing may not have reached JetStream).
    if (stored && this.shared) await this.shareStored(stored);
    if (stored) return { ok: true, record: stored };
    if (this.shared && !(await this.shared.claim(businessDate))) return this.settledElsewhere(businessDate);
    const { cutoff, originator, balanced } = this.config;
    const { startMs, endMs: dayEndMs } = businessDayWindow(businessDate, cutoff);
    const createdAtMs = this.now();
    if (startMs > createdAtMs) {
      return {
        ok: false,
        status: 'bad_request',
        message: `business day ${businessDate} has not begun (it starts at ${new Date(startMs).toISOString()})`,
      };
    }
    // A day may be closed before its cut-off (an earlier ACH window): the run pays what was posted up to
    // now, and what is posted later belongs to the next business day.
    const endMs = Math.min(dayEndMs, createdAtMs);
    const previous = this.store.settlements.get(addDays(businessDate, -1));
    const created = localParts(createdAtMs, cutoff.timeZone);
    const filesCounterKey = META.achFilesCreated(created.date);
    const sameDay = readMeta(this.store, filesCounterKey) ?? 0;
    const settledUpToMs = readMeta(this.store, META.settledUpToMs) ?? 0;
    const task: SettleTask = {
      dataDir: this.dataDir,
      masterKey: this.masterKey,
      businessDate,
      settlementId: `st_${businessDate.replaceAll('-', '')}`,
      achFileId: `ach_${businessDate.replaceAll('-', '')}`,
      // After a settled day the run also pays what that run could not: postings of its last moments, and
      // everything after it when it closed before its cut-off.
      scanFromMs: previous
        ? Math.min(startMs, previous.summary.window.endMs) - this.config.stragglerWindowMs
        : startMs,
      startMs,
      endMs,
      createdAtMs,
      createdDate: created.date,
      createdTime: `${String(created.hour).padStart(2, '0')}:${String(created.minute).padStart(2, '0')}`,
      fileIdModifier: FILE_ID_MODIFIERS[sameDay % FILE_ID_MODIFIERS.length] as string,
      settledUpToMs: Math.max(settledUpToMs, endMs),
      returnPostingKeys: this.shared !== undefined,
      filesCounterKey,
      effectiveDate: nextBankingDay(localParts(createdAtMs, FEDERAL_RESERVE_TIME_ZONE).date),
      originator,
      balanced,
      merchants: [...this.store.merchants.getRange()].map(({ value }) => ({
        merchantId: value.merchantId,
        name: value.name,
        feeBps: value.feeBps,
        feeFixedCents: value.feeFixedCents,
        bank: this.bankDetailsOf(value),
      })),
    };
    const channel = new MessageChannel();
    channel.port1.on('message', ({ postings }: { postings: number }) =>
      this.log(`paycode settlement ${businessDate}: ${postings.toLocaleString('en-US')} postings read`),
    );
    let settled: Settled;
    try {
      settled = await this.pool.run({ ...task, progress: channel.port2 }, { transferList: [channel.port2] });
    } finally {
      channel.port1.close();
    }
    const { record } = settled;
    if (this.shared) await this.share(settled.postingKeys, record);
    const { summary } = record;
    this.log(
      `paycode settlement ${businessDate}: ${summary.postings} postings, ${record.merchants.length} merchants, ` +
        `credits ${summary.file.creditCents} debits ${summary.file.debitCents} cents, ` +
        `${summary.reconciled ? 'reconciled' : `NOT reconciled: ${summary.problems.join('; ')}`}`,
    );
    return { ok: true, record: this.record(businessDate) ?? record };
  }
}
