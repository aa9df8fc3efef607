import { MessageChannel } from 'node:worker_threads';
import { Piscina } from 'piscina';
import type { Registry } from '../gateway/registry.ts';
import type { SettlementRecord, Store } from '../persistence/store.ts';
import { whenDurable } from '../persistence/store.ts';
import { businessDayWindow, type Cutoff, localParts, nextBankingDay, parseDate } from './calendar.ts';
import type { SettleResult, SettleTask } from './compute.ts';
import type { Originator } from './nacha.ts';

/**
 * Daily merchant settlement. `settle(businessDate)` runs once per business day: the first run computes
 * the nets and the ACH file in a piscina worker and stores them, with a mark on every posting it paid and
 * the new settled-up-to time (which closes voids of settled redemptions), in one durable transaction.
 * Every later run returns the stored result, byte for byte. Runs are serialized.
 *
 * A run for day D pays every posting before D's cut-off that no earlier run paid: normally the postings
 * of D, plus any that committed just after the previous day was settled. So every posting is paid by
 * exactly one settlement, and what arrives after a day was settled belongs to the next one.
 */
export interface SettlementConfig {
  cutoff: Cutoff;
  originator: Originator;
  /** Balanced files carry an offset entry per batch to the platform's settlement account. */
  balanced: boolean;
  /** How far before the last settled cut-off a run still looks for postings that committed late. */
  stragglerWindowMs: number;
}

export type SettleOutcome =
  | { ok: true; record: SettlementRecord }
  | { ok: false; status: 'bad_request'; message: string };

const FILE_ID_MODIFIERS = 'ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789';

export class Settlements {
  private readonly pool: Piscina;
  private queue: Promise<unknown> = Promise.resolve();

  constructor(
    private readonly store: Store,
    private readonly dataDir: string,
    private readonly registry: Registry,
    private readonly config: SettlementConfig,
    private readonly now: () => number,
    private readonly log: (line: string) => void,
  ) {
    this.pool = new Piscina({
      filename: new URL('./worker-boot.mjs', import.meta.url).href,
      minThreads: 0,
      maxThreads: 1,
      idleTimeout: 10_000,
    });
  }

  record(businessDate: string): SettlementRecord | undefined {
    if (!parseDate(businessDate)) return undefined;
    this.store.root.resetReadTxn();
    return this.store.settlements.get(businessDate);
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
    if (stored) return { ok: true, record: stored };
    const { cutoff, originator, balanced } = this.config;
    const { startMs, endMs } = businessDayWindow(businessDate, cutoff);
    const createdAtMs = this.now();
    if (endMs > createdAtMs) {
      return {
        ok: false,
        status: 'bad_request',
        message: `business day ${businessDate} ends at ${new Date(endMs).toISOString()}`,
      };
    }
    const created = localParts(createdAtMs, cutoff.timeZone);
    // The file id modifier tells apart files created on the same date.
    const filesKey = `achFilesCreated:${created.date}`;
    const sameDay = (this.store.meta.get(filesKey) as number | undefined) ?? 0;
    const settledUpToMs = (this.store.meta.get('settledUpToMs') as number | undefined) ?? 0;
    const merchants = [...this.store.merchants.getRange()].map(({ value }) => ({
      merchantId: value.merchantId,
      name: value.name,
      feeBps: value.feeBps,
      feeFixedCents: value.feeFixedCents,
      bank: this.registry.bankDetails(value),
    }));
    const settlementId = `st_${businessDate.replaceAll('-', '')}`;
    const task: SettleTask = {
      dataDir: this.dataDir,
      businessDate,
      settlementId,
      achFileId: `ach_${businessDate.replaceAll('-', '')}`,
      scanFromMs: Math.max(0, settledUpToMs - this.config.stragglerWindowMs),
      startMs,
      endMs,
      createdAtMs,
      createdDate: created.date,
      createdTime: `${String(created.hour).padStart(2, '0')}:${String(created.minute).padStart(2, '0')}`,
      fileIdModifier: FILE_ID_MODIFIERS[sameDay % FILE_ID_MODIFIERS.length] as string,
      effectiveDate: nextBankingDay(created.date),
      originator,
      balanced,
      merchants,
    };
    const channel = new MessageChannel();
    channel.port1.on('message', ({ postings }: { postings: number }) =>
      this.log(`paycode settlement ${businessDate}: ${postings.toLocaleString('en-US')} postings read`),
    );
    let result: SettleResult;
    try {
      result = await this.pool.run({ ...task, progress: channel.port2 }, { transferList: [channel.port2] });
    } finally {
      channel.port1.close();
    }
    const { record, postingKeys } = result;
    await this.store.root.transaction(() => {
      this.store.settlements.put(businessDate, record);
      for (const key of postingKeys) this.store.settled.put(key, settlementId);
      this.store.meta.put('settledUpToMs', Math.max(settledUpToMs, endMs));
      this.store.meta.put(filesKey, sameDay + 1);
    });
    await whenDurable(this.store);
    const { summary } = record;
    this.log(
      `paycode settlement ${businessDate}: ${summary.postings} postings, ${record.merchants.length} merchants, ` +
        `credits ${summary.file.creditCents} debits ${summary.file.debitCents} cents, ` +
        `${summary.reconciled ? 'reconciled' : `NOT reconciled: ${summary.problems.join('; ')}`}`,
    );
    return { ok: true, record };
  }
}
