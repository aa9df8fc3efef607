import { createCipheriv, createDecipheriv, randomBytes } from 'node:crypto';
import type { ConsumerId, MerchantId } from '../core/ids.ts';
import type { PostingKind } from '../core/ledger.ts';
import type { Limits } from '../core/limits.ts';
import type { CardKind } from '../core/wallet.ts';
import type { JournalEntry, Store } from '../persistence/store.ts';
import type {
  Activity,
  ActivityBucket,
  LiabilityDay,
  LiabilityReport,
  StatementSummary,
  Transaction,
  TransactionsPage,
} from '../sdk/http-answers.ts';
import { settledReference } from '../settlement/ach-reference.ts';
import {
  addDays,
  businessDayOf,
  businessDayWindow,
  type Cutoff,
  localParts,
} from '../settlement/calendar.ts';
import { LiabilityLedger } from '../settlement/liability.ts';
import { merchantJournalRef, payoutDirection } from '../settlement/reports.ts';

/**
 * What the merchant dashboard reads: a merchant's postings, its sales per day and per hour, its
 * settled days, and the value outstanding on its cards. Amounts count as they do in the merchant's settlement (settlement/net.ts): only legs on
 * the merchant's own ledger accounts, so a sale is positive, a void, reversal, refund or issued card
 * negative. Nothing here names a consumer: a posting's consumer id is never copied out.
 *
 * Cost. The journal is one table for every merchant, keyed by time, so a merchant's postings are found by
 * reading every posting of the period and keeping the merchant's. lmdb-js reads are synchronous and this
 * runs on the main thread, which also serves the POS, so a report reads `reportScanChunkEntries` entries
 * (about 0.7 µs an entry with the pages cached, 1-2 ms a chunk: `npm run bench -- web`) and then yields to the event
 * loop with setImmediate; it reads at most `reportScanEntriesMax` entries (about 0.3 s of CPU in all),
 * and its answer says when that bound stopped it. At most `reportScansMax` reports read at once, and at
 * most `reportScansPerMerchantMax` of them for one merchant; one more is refused (`overloaded`) rather
 * than queued, so a dashboard refreshing many tabs cannot pile up work and a merchant repeating requests
 * cannot take the slots of the others. Settled days are read from the statements settlement stored per
 * merchant, so the activity chart scans the journal only from the first unsettled day.
 *
 * What a merchant learns. A scan reads other merchants' postings, and nothing of them may reach the
 * answer: not how many were read, not the key or time of one. The scan bound stops on whatever entry it
 * reaches, so the cursor to go on from there is sealed (AES-256-GCM under a key made at start, bound to
 * the merchant), and the part of the activity period left unread is given in whole hours of the
 * settlement time zone. A cursor does not outlive a restart: the dashboard then starts from the newest.
 *
 * @module
 */

export type JournalKey = [number, number, number];

/**
 * A report's answer, or why it was not read: `busy` when `reportScansMax` reports are being read,
 * `merchant_busy` when `reportScansPerMerchantMax` of them are this merchant's.
 */
export type ReportResult<T> = { ok: true; answer: T } | { ok: false; status: 'busy' | 'merchant_busy' };

const MINUTE_MS = 60_000;
const HOUR_MS = 3_600_000;

interface Scan {
  lastKey: JournalKey | null;
  /** Stopped by the entry bound with entries left in the range. */
  cutShort: boolean;
}

export class MerchantReports {
  private running = 0;
  /** Reports being read per merchant; a merchant is removed when its last one ends. */
  private readonly runningByMerchant = new Map<MerchantId, number>();
  /** Seals transaction cursors. Made at start and never stored, so a cursor expires with the process. */
  private readonly cursorKey = randomBytes(32);

  constructor(
    private readonly store: Store,
    private readonly limits: Limits,
    private readonly cutoff: Cutoff,
    private readonly now: () => number,
    /** Keys the journal references merchants see (settlement/reports.ts `merchantJournalRef`). */
    private readonly journalRefKey: Buffer,
  ) {}

  /**
   * A page of the merchant's postings, newest first, older than `before` (a journal key from
   * `openCursor`, exclusive) or than `beforeMs`.
   */
  transactions(
    merchantId: MerchantId,
    page: { limit: number; before: JournalKey | null; beforeMs: number | null },
  ): Promise<ReportResult<TransactionsPage>> {
    return this.exclusive(merchantId, async () => {
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
          const journalKey = merchantJournalRef(this.journalRefKey, merchantId, key.join('.'));
          transactions.push({ journalKey, atMs, kind, ref, amountCents });
          return transactions.length < page.limit;
        },
      );
      const full = transactions.length >= page.limit;
      return {
        transactions,
        next: (full || scan.cutShort) && scan.lastKey ? this.sealCursor(merchantId, scan.lastKey) : null,
        scanLimited: scan.cutShort,
      };
    });
  }

  /**
   * The journal key a `next` cursor stands for: `malformed` when the text is not a cursor at all,
   * `expired` when it does not open under this process's key for this merchant (it was made before a
   * restart, for another merchant, or altered).
   */
  openCursor(merchantId: MerchantId, cursor: string): JournalKey | 'malformed' | 'expired' {
    if (!/^[A-Za-z0-9_-]+$/.test(cursor)) return 'malformed';
    const bytes = Buffer.from(cursor, 'base64url');
    if (bytes.length !== CURSOR_IV_BYTES + CURSOR_KEY_BYTES + CURSOR_TAG_BYTES) return 'malformed';
    let plain: Buffer;
    try {
      const decipher = createDecipheriv('aes-256-gcm', this.cursorKey, bytes.subarray(0, CURSOR_IV_BYTES));
      decipher.setAAD(Buffer.from(merchantId, 'utf8'));
      decipher.setAuthTag(bytes.subarray(bytes.length - CURSOR_TAG_BYTES));
      plain = Buffer.concat([
        decipher.update(bytes.subarray(CURSOR_IV_BYTES, bytes.length - CURSOR_TAG_BYTES)),
        decipher.final(),
      ]);
    } catch {
      return 'expired';
    }
    return [Number(plain.readBigUInt64BE(0)), plain.readUInt32BE(8), Number(plain.readBigUInt64BE(12))];
  }

  /** A journal key as a cursor: fixed length, so it says nothing of the key, not even its digits. */
  private sealCursor(merchantId: MerchantId, key: JournalKey): string {
    const plain = Buffer.alloc(CURSOR_KEY_BYTES);
    plain.writeBigUInt64BE(BigInt(key[0]), 0);
    plain.writeUInt32BE(key[1], 8);
    plain.writeBigUInt64BE(BigInt(key[2]), 12);
    const iv = randomBytes(CURSOR_IV_BYTES);
    const cipher = createCipheriv('aes-256-gcm', this.cursorKey, iv);
    cipher.setAAD(Buffer.from(merchantId, 'utf8'));
    return Buffer.concat([iv, cipher.update(plain), cipher.final(), cipher.getAuthTag()]).toString(
      'base64url',
    );
  }

  /** Sales per business day for the last `days` days and per hour for the last 24 hours. */
  activity(merchantId: MerchantId, days: number): Promise<ReportResult<Activity>> {
    return this.exclusive(merchantId, async () => {
      const nowMs = this.now();
      const { timeZone } = this.cutoff;
      const today = businessDayOf(nowMs, this.cutoff);
      const dayBuckets = Array.from({ length: days }, (_, i) => {
        const date = addDays(today, i - days + 1);
        return { date, ...emptyBucket(businessDayWindow(date, this.cutoff)) };
      });
      // Hour boundaries of the zone, from the end of the current hour back: across a change of daylight
      // saving time the wall clock repeats or skips an hour, and each bucket is still one real hour.
      const boundariesMs = [zoneHourStartMs(nowMs, timeZone) + HOUR_MS];
      while (boundariesMs.length < 25)
        boundariesMs.unshift(zoneHourStartMs((boundariesMs[0] as number) - 1, timeZone));
      const hours = boundariesMs
        .slice(1)
        .map((endMs, i) => emptyBucket({ startMs: boundariesMs[i] as number, endMs }));
      const fromMs = Math.min(
        (dayBuckets[0] as ActivityBucket).startMs,
        (hours[0] as ActivityBucket).startMs,
      );
      const within = (atMs: number) => (bucket: ActivityBucket) =>
        atMs >= bucket.startMs && atMs < bucket.endMs;
      const add = (atMs: number, kind: PostingKind, cents: number, first: boolean) => {
        const day = dayBuckets.find(within(atMs));
        if (day) tally(day, kind, cents, first);
        const hour = hours.find(within(atMs));
        if (hour) tally(hour, kind, cents, first);
      };

      // Settled days come from their statements: one read per day of only this merchant's postings.
      const counted = new Set<string>();
      let firstUnsettled: string | null = null;
      /** Where the last settled day's run ended: before its cut-off when the day was closed early. */
      let settledEndMs = Number.POSITIVE_INFINITY;
      for (let date = businessDayOf(fromMs, this.cutoff); date <= today; date = addDays(date, 1)) {
        this.store.root.resetReadTxn();
        const settled = this.store.settlements.get(date);
        if (!settled) {
          firstUnsettled ??= date;
          continue;
        }
        if (firstUnsettled === null) settledEndMs = settled.summary.window.endMs;
        for (const line of this.store.statements.get([date, merchantId]) ?? []) {
          if (line.atMs < fromMs) continue;
          add(line.atMs, line.kind, line.amountCents, !counted.has(line.journalKey));
          counted.add(line.journalKey);
        }
        await yieldToEventLoop();
      }
      // The rest from the journal, newest first, so a cut-short scan loses the oldest figures. Like a
      // settlement run, it looks back over the straggler window for postings that came after a settled day.
      // A day closed before its cut-off left its last hours to the next run, which starts where it ended.
      const unsettledStartMs = Math.min(
        businessDayWindow(firstUnsettled ?? today, this.cutoff).startMs,
        settledEndMs,
      );
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
      // The last entry read may be another merchant's: only the end of its hour is given out.
      const unreadToMs = scan.lastKey ? zoneHourStartMs(scan.lastKey[0], timeZone) + HOUR_MS : null;
      return {
        timeZone,
        cutoff: this.cutoff.time,
        days: dayBuckets,
        hours,
        scanLimited: scan.cutShort,
        unread: scan.cutShort && unreadToMs !== null ? { fromMs: scanFromMs, toMs: unreadToMs } : null,
      };
    });
  }

  /**
   * The merchant's outstanding liability per business day for the last `days` days, by card kind
   * (settlement/liability.ts). A finished day that no posting can still reach (its end is older than the
   * straggler window, as for a settlement run) is kept once a report has read it whole, so a report reads
   * kept days and the journal only after the last of them: from the start of the window's first day not
   * kept, opened by the closing of the newest day kept before it (or by every posting since the journal's
   * start), within the scan bounds. A report cut short keeps what it read whole; the next goes on from
   * there. A card's kind is read once per consumer from its account.
   */
  liability(merchantId: MerchantId, days: number): Promise<ReportResult<LiabilityReport>> {
    return this.exclusive(merchantId, async () => {
      const nowMs = this.now();
      const today = businessDayOf(nowMs, this.cutoff);
      this.store.root.resetReadTxn();
      // The window's days kept, from its first on, as long as they run unbroken.
      // A day is final once its end is older than the straggler window: no posting can still reach it.
      const finalMs = nowMs - this.limits.settlementStragglerWindowMs;
      const keptDays: LiabilityDay[] = [];
      let date = addDays(today, 1 - days);
      for (
        let day = this.keptDay(merchantId, date, finalMs);
        day;
        day = this.keptDay(merchantId, date, finalMs)
      ) {
        keptDays.push(day);
        date = addDays(date, 1);
      }
      const opening = keptDays.at(-1) ?? this.keptDayBefore(merchantId, date, finalMs);
      const [firstKey] = this.store.journal.getKeys({ limit: 1 });
      let fromDate = opening ? addDays(opening.date, 1) : date;
      if (!opening && firstKey) fromDate = minDate(businessDayOf(firstKey[0], this.cutoff), date);
      const windows: { date: string; startMs: number; endMs: number }[] = [];
      for (let day = fromDate; day <= today; day = addDays(day, 1))
        windows.push({ date: day, ...businessDayWindow(day, this.cutoff) });
      // A card's kind, from its holder's account: read when the holder is first seen, and again when a
      // card is not there yet (made after that read, while the scan went on).
      const kinds = new Map<string, CardKind>();
      const learn = (consumerId: ConsumerId) => {
        for (const card of this.store.accounts.get(consumerId)?.context.cards ?? [])
          kinds.set(card.cardId, card.kind);
      };
      const known = new Set<ConsumerId>();
      let holder: ConsumerId | null = null;
      const ledger = new LiabilityLedger(
        merchantId,
        windows,
        (cardId) => {
          if (!kinds.has(cardId) && holder) learn(holder);
          return kinds.get(cardId);
        },
        opening,
      );
      const scan =
        windows.length === 0
          ? { lastKey: null, cutShort: false }
          : await this.scan(
              {
                start: [(windows[0] as { startMs: number }).startMs],
                end: [(windows.at(-1) as { endMs: number }).endMs],
                exclusiveStart: false,
                reverse: false,
              },
              (_key, entry) => {
                if (entry.merchantId !== merchantId) return true;
                holder = entry.consumerId;
                if (!known.has(holder)) {
                  known.add(holder);
                  learn(holder);
                }
                ledger.add(entry);
                return true;
              },
            );
      // Keep the final days read whole, as long as every card movement is in a figure: a day that does not
      // reconcile is read again next time (a card's kind may be known by then).
      const read = ledger.kept();
      const readToMs = scan.cutShort
        ? (scan.lastKey?.[0] ?? Number.NEGATIVE_INFINITY)
        : Number.POSITIVE_INFINITY;
      for (const { day, reconciled } of read) {
        if (day.endMs > Math.min(readToMs, finalMs) || !reconciled) break;
        this.store.liabilityDays.put([merchantId, day.date], day).catch(() => {
          // Kept only to shorten later reads: one not kept is read from the journal next time.
        });
      }
      const shown = [...keptDays, ...read.map(({ day }) => day)].slice(-days);
      return {
        timeZone: this.cutoff.timeZone,
        cutoff: this.cutoff.time,
        giftValueExpires: false as const,
        days: shown,
        reconciled: read.at(-1)?.reconciled ?? true,
        scanLimited: scan.cutShort,
      };
    });
  }

  /** The day's figures, if a report kept them and they hold now (see `holds`). */
  private keptDay(merchantId: MerchantId, date: string, finalMs: number): LiabilityDay | undefined {
    const day = this.store.liabilityDays.get([merchantId, date]);
    return day && this.holds(day, finalMs) ? day : undefined;
  }

  /** The newest day kept for the merchant before `date`, if it holds now (see `holds`). */
  private keptDayBefore(merchantId: MerchantId, date: string, finalMs: number): LiabilityDay | undefined {
    for (const { value } of this.store.liabilityDays.getRange({
      start: [merchantId, addDays(date, -1)],
      end: [merchantId],
      reverse: true,
      limit: 1,
    }))
      return this.holds(value, finalMs) ? value : undefined;
    return undefined;
  }

  /** A kept day is used only if it was kept under today's cut-off, and is final by today's clock. */
  private holds(day: LiabilityDay, finalMs: number): boolean {
    const { startMs, endMs } = businessDayWindow(day.date, this.cutoff);
    return day.startMs === startMs && day.endMs === endMs && endMs <= finalMs;
  }

  /** The merchant's settled days, newest first, before `before` (a business date, exclusive). */
  statements(
    merchantId: MerchantId,
    page: { limit: number; before: string | null },
  ): Promise<ReportResult<{ statements: StatementSummary[]; next: string | null }>> {
    return this.exclusive(merchantId, async () => {
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
          direction: payoutDirection(settled.netCents),
          ...figures,
          achReference: settledReference(settled),
        });
        await yieldToEventLoop();
        this.store.root.resetReadTxn();
      }
      return { statements, next: null };
    });
  }

  /** Runs a report unless the merchant's or everyone's reports already take their limit. */
  private async exclusive<T>(merchantId: MerchantId, report: () => Promise<T>): Promise<ReportResult<T>> {
    const mine = this.runningByMerchant.get(merchantId) ?? 0;
    if (mine >= this.limits.reportScansPerMerchantMax) return { ok: false, status: 'merchant_busy' };
    if (this.running >= this.limits.reportScansMax) return { ok: false, status: 'busy' };
    this.running++;
    this.runningByMerchant.set(merchantId, mine + 1);
    try {
      return { ok: true, answer: await report() };
    } finally {
      this.running--;
      const left = (this.runningByMerchant.get(merchantId) ?? 1) - 1;
      if (left > 0) this.runningByMerchant.set(merchantId, left);
      else this.runningByMerchant.delete(merchantId);
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
      if (limit <= 0) return { lastKey, cutShort: more() };
      let readNow = 0;
      for (const { key, value } of read(limit)) {
        readNow++;
        scanned++;
        lastKey = key;
        if (!visit(key, value)) return { lastKey, cutShort: false };
      }
      if (readNow < limit) return { lastKey, cutShort: false };
      start = lastKey as JournalKey;
      exclusiveStart = true;
      await yieldToEventLoop();
    }
  }
}

const CURSOR_IV_BYTES = 12;
/** A journal key in a cursor: `atMs` and `seq` as 64-bit, the writer as 32-bit unsigned integers. */
const CURSOR_KEY_BYTES = 20;
const CURSOR_TAG_BYTES = 16;

/**
 * The start of the hour of `timeZone`'s wall clock that holds `atMs`. Zone offsets are whole minutes,
 * so that is the minute of `atMs` less the wall clock's minutes.
 */
function zoneHourStartMs(atMs: number, timeZone: string): number {
  return Math.floor(atMs / MINUTE_MS) * MINUTE_MS - localParts(atMs, timeZone).minute * MINUTE_MS;
}

/** The sum of a posting's legs on the merchant's own accounts; null when it has none (a purchase, a gift). */
function merchantCents(entry: JournalEntry, merchantId: string): number | null {
  const prefix = `merchant:${merchantId}:`;
  let cents: number | null = null;
  for (const leg of entry.legs) if (leg.account.startsWith(prefix)) cents = (cents ?? 0) + leg.cents;
  return cents;
}

const minDate = (a: string, b: string) => (a < b ? a : b);

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
