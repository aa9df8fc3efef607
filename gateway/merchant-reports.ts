import type { MerchantId } from '../engine/ids.ts';
import type { PostingKind } from '../engine/ledger.ts';
import type { Limits } from '../engine/limits.ts';
import type { JournalEntry, SettledMerchant, Store } from '../persistence/store.ts';
import { addDays, businessDayOf, businessDayWindow, type Cutoff } from '../settlement/calendar.ts';

/**
 * What the merchant dashboard reads: a merchant's postings, its sales per day and per hour, and its
 * settled days. Amounts count as they do in the merchant's settlement (settlement/net.ts): only legs on
 * the merchant's own ledger accounts, so a sale is positive, a void, reversal, refund or issued card
 * negative. Nothing here names a consumer: a posting's consumer id is never copied out.
 *
 * Cost. The journal is one table for every merchant, keyed by time, so a merchant's postings are found by
 * reading every posting of the period and keeping the merchant's. lmdb-js reads are synchronous and this
 * runs on the main thread, which also serves the POS, so a report reads `reportScanChunkEntries` entries
 * (measured at about 0.6 µs an entry with the pages cached: 1-2 ms a chunk) and then yields to the event
 * loop with setImmediate; it reads at most `reportScanEntriesMax` entries (about 0.3 s of CPU in all),
 * and its answer says when that bound stopped it and what it did not read. At most `reportScansMax`
 * reports read at once; one more is refused (`overloaded`) rather than queued, so a dashboard refreshing
 * many tabs cannot pile up work. Settled days are read from the statements settlement stored per
 * merchant, so the activity chart scans the journal only from the first unsettled day.
 */
export type JournalKey = [number, number, number];

export interface Transaction {
  /** The journal key `atMs.writer.seq`, as on statements: unique and stable. */
  journalKey: string;
  atMs: number;
  kind: PostingKind;
  /** The authorization, refund or card id; for an issued card `m:<merchantId>/<idempotencyKey>`. */
  ref: string;
  /** What the posting adds to the merchant's net, before fees. */
  amountCents: number;
}

export interface TransactionsPage {
  transactions: Transaction[];
  /** The `before` of the next page; null when the start of the journal was reached. */
  next: string | null;
  /** Journal entries read (all merchants'). */
  scanned: number;
  /** The scan bound stopped the read before the page was full: `next` goes on from where it stopped. */
  scanLimited: boolean;
}

export interface ActivityBucket {
  startMs: number;
  endMs: number;
  redemptions: number;
  redeemedCents: number;
  /** Voided, reversed and refunded, as a positive amount. */
  returnedCents: number;
  /** `redeemedCents − returnedCents`: the sales before fees. */
  netCents: number;
  /** Gift cards and rewards the merchant issued. */
  issuedCents: number;
}

export interface Activity {
  timeZone: string;
  cutoff: string;
  /** Business days, oldest first (the days of settlement: PAYCODE_SETTLEMENT_TZ and _CUTOFF). */
  days: (ActivityBucket & { date: string })[];
  /** The last 24 clock hours, oldest first; the last one is the current hour. */
  hours: ActivityBucket[];
  scanned: number;
  scanLimited: boolean;
  /** Postings in `[fromMs, toMs)` that the scan bound left unread, or null. */
  unread: { fromMs: number; toMs: number } | null;
}

export interface StatementSummary extends Omit<SettledMerchant, 'merchantId' | 'name'> {
  businessDate: string;
  settlementId: string;
  achFileId: string;
  effectiveDate: string;
  direction: 'credit' | 'debit' | 'none';
}

const HOUR_MS = 3_600_000;

interface Scan {
  scanned: number;
  lastKey: JournalKey | null;
  /** Stopped by the entry bound with entries left in the range. */
  cutShort: boolean;
}

export class MerchantReports {
  private running = 0;

  constructor(
    private readonly store: Store,
    private readonly limits: Limits,
    private readonly cutoff: Cutoff,
    private readonly now: () => number,
  ) {}

  /**
   * A page of the merchant's postings, newest first, older than `before` (a journal key, exclusive) or
   * than `beforeMs`; null when too many reports are being read.
   */
  transactions(
    merchantId: MerchantId,
    page: { limit: number; before: JournalKey | null; beforeMs: number | null },
  ): Promise<TransactionsPage | null> {
    return this.exclusive(async () => {
      const transactions: Transaction[] = [];
      // `[beforeMs]` sorts before every key of that millisecond, so a reverse read from it starts below it.
      const start = page.before ?? (page.beforeMs === null ? undefined : [page.beforeMs]);
      const scan = await this.scan(
        { start, exclusiveStart: page.before !== null, reverse: true },
        (key, entry) => {
          if (entry.merchantId !== merchantId) return true;
          const amountCents = merchantCents(entry, merchantId);
          if (amountCents === null) return true;
          const { atMs, kind, ref } = entry;
          transactions.push({ journalKey: key.join('.'), atMs, kind, ref, amountCents });
          return transactions.length < page.limit;
        },
      );
      const full = transactions.length >= page.limit;
      return {
        transactions,
        next: (full || scan.cutShort) && scan.lastKey ? scan.lastKey.join('.') : null,
        scanned: scan.scanned,
        scanLimited: scan.cutShort,
      };
    });
  }

  /** Sales per business day for the last `days` days and per hour for the last 24 hours. */
  activity(merchantId: MerchantId, days: number): Promise<Activity | null> {
    return this.exclusive(async () => {
      const nowMs = this.now();
      const today = businessDayOf(nowMs, this.cutoff);
      const dayBuckets = Array.from({ length: days }, (_, i) => {
        const date = addDays(today, i - days + 1);
        return { date, ...emptyBucket(businessDayWindow(date, this.cutoff)) };
      });
      const hoursEndMs = Math.floor(nowMs / HOUR_MS) * HOUR_MS + HOUR_MS;
      const hours = Array.from({ length: 24 }, (_, i) =>
        emptyBucket({ startMs: hoursEndMs - (24 - i) * HOUR_MS, endMs: hoursEndMs - (23 - i) * HOUR_MS }),
      );
      const fromMs = Math.min(
        (dayBuckets[0] as ActivityBucket).startMs,
        (hours[0] as ActivityBucket).startMs,
      );
      const add = (atMs: number, kind: PostingKind, cents: number, first: boolean) => {
        const day = dayBuckets.find((bucket) => atMs >= bucket.startMs && atMs < bucket.endMs);
        if (day) tally(day, kind, cents, first);
        const hour = hours[Math.floor((atMs - (hours[0] as ActivityBucket).startMs) / HOUR_MS)];
        if (hour && atMs >= hour.startMs) tally(hour, kind, cents, first);
      };

      // Settled days come from their statements: one read per day of only this merchant's postings.
      const counted = new Set<string>();
      let firstUnsettled: string | null = null;
      for (let date = businessDayOf(fromMs, this.cutoff); date <= today; date = addDays(date, 1)) {
        this.store.root.resetReadTxn();
        if (!this.store.settlements.doesExist(date)) {
          firstUnsettled ??= date;
          continue;
        }
        for (const line of this.store.statements.get([date, merchantId]) ?? []) {
          if (line.atMs < fromMs) continue;
          add(line.atMs, line.kind, line.amountCents, !counted.has(line.journalKey));
          counted.add(line.journalKey);
        }
        await yieldToEventLoop();
      }
      // The rest from the journal, newest first, so a cut-short scan loses the oldest figures. Like a
      // settlement run, it looks back over the straggler window for postings that came after a settled day.
      const unsettledStartMs = businessDayWindow(firstUnsettled ?? today, this.cutoff).startMs;
      const scanFromMs = Math.max(fromMs, unsettledStartMs - this.limits.settlementStragglerWindowMs);
      const scan = await this.scan(
        { start: undefined, end: [scanFromMs], exclusiveStart: false, reverse: true },
        (key, entry) => {
          if (entry.merchantId !== merchantId) return true;
          const cents = merchantCents(entry, merchantId);
          if (cents !== null && !counted.has(key.join('.'))) add(entry.atMs, entry.kind, cents, true);
          return true;
        },
      );
      return {
        timeZone: this.cutoff.timeZone,
        cutoff: this.cutoff.time,
        days: dayBuckets,
        hours,
        scanned: scan.scanned,
        scanLimited: scan.cutShort,
        unread: scan.cutShort && scan.lastKey ? { fromMs: scanFromMs, toMs: scan.lastKey[0] + 1 } : null,
      };
    });
  }

  /** The merchant's settled days, newest first, before `before` (a business date, exclusive). */
  statements(
    merchantId: MerchantId,
    page: { limit: number; before: string | null },
  ): Promise<{ statements: StatementSummary[]; next: string | null } | null> {
    return this.exclusive(async () => {
      this.store.root.resetReadTxn();
      // Keys only: cheap, a few thousand days at most. A record holds every merchant of its day, so only
      // the days that have a statement for this merchant are decoded, one per turn of the event loop.
      const dates = [
        ...this.store.settlements.getKeys({
          start: page.before ?? undefined,
          exclusiveStart: page.before !== null,
          reverse: true,
        }),
      ];
      const statements: StatementSummary[] = [];
      for (const date of dates) {
        if (statements.length >= page.limit)
          return { statements, next: statements.at(-1)?.businessDate ?? null };
        if (!this.store.statements.doesExist([date, merchantId])) continue;
        const record = this.store.settlements.get(date);
        const settled = record?.merchants.find((merchant) => merchant.merchantId === merchantId);
        if (!record || !settled) continue;
        const { merchantId: _merchantId, name: _name, ...figures } = settled;
        statements.push({
          businessDate: record.businessDate,
          settlementId: record.settlementId,
          achFileId: record.achFileId,
          effectiveDate: record.summary.effectiveDate,
          direction: settled.netCents > 0 ? 'credit' : settled.netCents < 0 ? 'debit' : 'none',
          ...figures,
        });
        await yieldToEventLoop();
        this.store.root.resetReadTxn();
      }
      return { statements, next: null };
    });
  }

  /** Runs a report unless `reportScansMax` are running; null then. */
  private async exclusive<T>(report: () => Promise<T>): Promise<T | null> {
    if (this.running >= this.limits.reportScansMax) return null;
    this.running++;
    try {
      return await report();
    } finally {
      this.running--;
    }
  }

  /**
   * Reads journal entries in chunks of `reportScanChunkEntries`, yielding to the event loop between
   * them, at most `reportScanEntriesMax` in all; `visit` returns false to stop. Each chunk is a new
   * read from the last key, on a fresh read transaction: no snapshot is held across a yield, and
   * postings the shards committed meanwhile are seen.
   */
  private async scan(
    range: { start: number[] | undefined; end?: number[]; exclusiveStart: boolean; reverse: boolean },
    visit: (key: JournalKey, entry: JournalEntry) => boolean,
  ): Promise<Scan> {
    const { reportScanChunkEntries: chunkEntries, reportScanEntriesMax: entriesMax } = this.limits;
    let start = range.start;
    let exclusiveStart = range.exclusiveStart;
    let scanned = 0;
    let lastKey: JournalKey | null = null;
    const read = (limit: number) => {
      this.store.root.resetReadTxn();
      return this.store.journal.getRange({
        start,
        end: range.end,
        reverse: range.reverse,
        exclusiveStart,
        limit,
      });
    };
    const more = () => {
      for (const _entry of read(1)) return true;
      return false;
    };
    for (;;) {
      const limit = Math.min(chunkEntries, entriesMax - scanned);
      if (limit <= 0) return { scanned, lastKey, cutShort: more() };
      let readNow = 0;
      for (const { key, value } of read(limit)) {
        readNow++;
        scanned++;
        lastKey = key;
        if (!visit(key, value)) return { scanned, lastKey, cutShort: false };
      }
      if (readNow < limit) return { scanned, lastKey, cutShort: false };
      start = lastKey as JournalKey;
      exclusiveStart = true;
      await yieldToEventLoop();
    }
  }
}

/** The sum of a posting's legs on the merchant's own accounts; null when it has none (a purchase, a gift). */
function merchantCents(entry: JournalEntry, merchantId: string): number | null {
  const prefix = `merchant:${merchantId}:`;
  let cents: number | null = null;
  for (const leg of entry.legs) if (leg.account.startsWith(prefix)) cents = (cents ?? 0) + leg.cents;
  return cents;
}

function emptyBucket(window: { startMs: number; endMs: number }): ActivityBucket {
  return {
    ...window,
    redemptions: 0,
    redeemedCents: 0,
    returnedCents: 0,
    netCents: 0,
    issuedCents: 0,
  };
}

/** Adds a posting's merchant legs to a bucket; `first` is false for a further leg of a counted posting. */
function tally(bucket: ActivityBucket, kind: PostingKind, cents: number, first: boolean): void {
  if (kind === 'redeem') {
    bucket.redeemedCents += cents;
    if (first) bucket.redemptions++;
  } else if (kind === 'void' || kind === 'reverse' || kind === 'refund') bucket.returnedCents -= cents;
  else if (kind === 'load') bucket.issuedCents -= cents;
  bucket.netCents = bucket.redeemedCents - bucket.returnedCents;
}

function yieldToEventLoop(): Promise<void> {
  return new Promise((resolve) => setImmediate(resolve));
}
