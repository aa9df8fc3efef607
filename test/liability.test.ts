/**
 * The liability report's arithmetic (settlement/liability.ts) over random journals, and the report end to
 * end: what a merchant's cards owe per business day, from issue, sale, redemption and gifts, as JSON and
 * CSV, for the merchant and the operator only.
 */
import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import type { ConsumerId, MerchantId } from '../core/ids.ts';
import type { Leg, PostingKind } from '../core/ledger.ts';
import { LIMITS } from '../core/limits.ts';
import type { CardKind } from '../core/wallet.ts';
import { SandboxFunding } from '../gateway/funding/sandbox.ts';
import { MerchantReports } from '../gateway/merchant-reports.ts';
import { type JournalEntry, openStore, type Store } from '../persistence/store.ts';
import type { LiabilityDay } from '../sdk/http-answers.ts';
import { addDays, businessDayWindow } from '../settlement/calendar.ts';
import { LiabilityLedger, liabilityCsv } from '../settlement/liability.ts';
import { transactionsCsv } from '../settlement/reports.ts';
import { OPERATOR_TOKEN, startTestServer } from './server-helpers.ts';

const DAY_MS = 86_400_000;
const T0 = Date.UTC(2026, 10, 1);
const DAYS = Array.from({ length: 5 }, (_, i) => ({
  date: `2026-11-0${i + 1}`,
  startMs: T0 + i * DAY_MS,
  endMs: T0 + (i + 1) * DAY_MS,
}));
const CARDS: Record<string, CardKind> = { g1: 'gift', g2: 'gift', r1: 'reward' };
/** What a card gave up, as a positive figure (and 0, not -0, for nothing). */
const negated = (cents: number) => (cents === 0 ? 0 : -cents);

/** One random posting of merchant m1 or m2, as the engine writes them (the other side of each leg). */
const posting = fc
  .record({
    merchant: fc.constantFrom('m1', 'm2'),
    kind: fc.constantFrom<PostingKind>(
      'load',
      'purchase',
      'redeem',
      'void',
      'reverse',
      'refund',
      'expire',
      'gift',
    ),
    card: fc.constantFrom('g1', 'g2', 'r1'),
    cents: fc.integer({ min: 1, max: 10_000 }),
    /** Of a gift card's movement in a purchase, redemption or its undoing: the bought part, in percent. */
    boughtPercent: fc.constantFrom(0, 50, 100),
    // Some before the days reported (they make the opening), some after (left out).
    atMs: fc.integer({ min: T0 - 3 * DAY_MS, max: T0 + 6 * DAY_MS }),
  })
  .map(({ merchant, kind, card, cents, boughtPercent, atMs }): JournalEntry => {
    const onCard =
      kind === 'load' || kind === 'purchase' || kind === 'void' || kind === 'reverse' || kind === 'refund';
    const cardId =
      kind === 'expire' ? 'r1' : kind === 'gift' || kind === 'purchase' ? card.replace('r1', 'g1') : card;
    const legs: Leg[] =
      kind === 'gift'
        ? // Either half of a gift: out of a card into transit, or out of transit onto a card.
          cents % 2 === 0
          ? [
              { account: `card:${cardId}`, cents: -cents },
              { account: `transit:gf${cents}`, cents },
            ]
          : [
              { account: `card:${cardId}`, cents },
              { account: `transit:gf${cents - 1}`, cents: -cents },
            ]
        : [
            { account: `card:${cardId}`, cents: onCard ? cents : -cents },
            { account: `merchant:${merchant}:x`, cents: onCard ? -cents : cents },
          ];
    // A purchase is all bought value; a redemption, its undoing or a gift's half moves some of it on a
    // gift card.
    const cardLeg = legs[0] as Leg;
    const bought =
      kind === 'purchase'
        ? cardLeg.cents
        : kind !== 'load' && kind !== 'expire' && cardId !== 'r1'
          ? Math.trunc((cardLeg.cents * boughtPercent) / 100)
          : 0;
    return {
      ...(bought !== 0 && { boughtCents: bought }),
      atMs,
      kind,
      consumerId: 'cu_1_a' as ConsumerId,
      merchantId: merchant as MerchantId,
      ref: 'r',
      legs,
    };
  });

describe('liability arithmetic', () => {
  it('reconciles opening + issued + sold − redeemed − expired = closing with the balances, every day', () => {
    fc.assert(
      fc.property(fc.array(posting, { maxLength: 60 }), (journal) => {
        const ledger = new LiabilityLedger('m1', DAYS, (cardId) => CARDS[cardId]);
        for (const entry of journal) ledger.add(entry);
        const { days, reconciled } = ledger.result();
        expect(reconciled).toBe(true);
        // The closing of each day, by kind, is the sum of the card and transit legs up to its end.
        for (const [i, day] of days.entries()) {
          for (const kind of ['gift', 'reward'] as const) {
            const balance = journal
              .filter((entry) => entry.merchantId === 'm1' && entry.atMs < day.endMs)
              .flatMap((entry) => entry.legs)
              .filter((leg) =>
                kind === 'gift'
                  ? leg.account.startsWith('transit:') || leg.account.startsWith('card:g')
                  : leg.account === 'card:r1',
              )
              .reduce((sum, leg) => sum + leg.cents, 0);
            const f = day[kind];
            expect(f.closingCents).toBe(balance);
            // Each figure is what its postings moved on that kind's cards that day.
            const moved = (...kinds: PostingKind[]) =>
              journal
                .filter(
                  (entry) =>
                    entry.merchantId === 'm1' &&
                    kinds.includes(entry.kind) &&
                    entry.atMs >= day.startMs &&
                    entry.atMs < day.endMs,
                )
                .flatMap((entry) => entry.legs)
                .filter((leg) => leg.account.startsWith('card:') && CARDS[leg.account.slice(5)] === kind)
                .reduce((sum, leg) => sum + leg.cents, 0);
            expect(f.issuedCents).toBe(moved('load'));
            expect(f.soldCents).toBe(moved('purchase'));
            expect(f.redeemedCents).toBe(negated(moved('redeem', 'void', 'reverse', 'refund')));
            expect(f.expiredCents).toBe(negated(moved('expire')));
            expect(f.closingCents).toBe(
              f.openingCents + f.issuedCents + f.soldCents - f.redeemedCents - f.expiredCents,
            );
            if (i > 0) expect(f.openingCents).toBe(days[i - 1]?.[kind].closingCents);
          }
          // Gift value never expires.
          expect(day.gift.expiredCents).toBe(0);
          // The bought part: its closing is every posting's bought change to the day's end, and each of
          // its figures what the postings of that day moved of it.
          const bought = day.giftBought;
          const mine = journal.filter((entry) => entry.merchantId === 'm1');
          // A gift's half moves bought value between a card and transit, where it is still bought value.
          const boughtSum = (entries: JournalEntry[]) =>
            entries
              .filter((entry) => entry.kind !== 'gift')
              .reduce((sum, entry) => sum + (entry.boughtCents ?? 0), 0);
          expect(bought.closingCents).toBe(boughtSum(mine.filter((entry) => entry.atMs < day.endMs)));
          const today = mine.filter((entry) => entry.atMs >= day.startMs && entry.atMs < day.endMs);
          expect(bought.soldCents).toBe(boughtSum(today.filter((entry) => entry.kind === 'purchase')));
          expect(bought.redeemedCents).toBe(
            negated(boughtSum(today.filter((entry) => entry.kind !== 'purchase'))),
          );
          expect([bought.issuedCents, bought.expiredCents]).toEqual([0, 0]);
          expect(bought.closingCents).toBe(bought.openingCents + bought.soldCents - bought.redeemedCents);
        }
      }),
      { numRuns: 300 },
    );
  });

  it('says it does not reconcile when a posting moves a card in a way the flows do not know', () => {
    const ledger = new LiabilityLedger('m1', DAYS, (cardId) => CARDS[cardId]);
    const unknown = {
      atMs: T0 + 10,
      kind: 'adjust' as PostingKind,
      consumerId: 'cu_1_a' as ConsumerId,
      merchantId: 'm1' as MerchantId,
      ref: 'x',
      legs: [
        { account: 'card:g1', cents: 500 },
        { account: 'platform:x', cents: -500 },
      ],
    };
    ledger.add(unknown);
    expect(ledger.result().reconciled).toBe(false);
    // A card whose kind cannot be told makes it unreconciled too.
    const blind = new LiabilityLedger('m1', DAYS, () => undefined);
    blind.add({ ...unknown, kind: 'load' });
    expect(blind.result().reconciled).toBe(false);
    // So does bought value that no gift card moved: on a reward card, more than the card leg, or the other way.
    const purchase = (account: string, cents: number, boughtCents: number) => {
      const ledger = new LiabilityLedger('m1', DAYS, (cardId) => CARDS[cardId]);
      ledger.add({
        ...unknown,
        kind: 'purchase',
        boughtCents,
        legs: [
          { account, cents },
          { account: 'platform:funding', cents: -cents },
        ],
      });
      return ledger.result().reconciled;
    };
    expect(purchase('card:g1', 500, 500)).toBe(true);
    expect(purchase('card:r1', 500, 500)).toBe(false);
    expect(purchase('card:g1', 500, 501)).toBe(false);
    expect(purchase('card:g1', 500, -500)).toBe(false);
  });

  it('writes one CSV row per day and kind', () => {
    const ledger = new LiabilityLedger('m1', DAYS.slice(0, 1), (cardId) => CARDS[cardId]);
    expect(liabilityCsv(ledger.result().days)).toBe(
      'date,kind,openingCents,issuedCents,soldCents,redeemedCents,expiredCents,closingCents\r\n' +
        '2026-11-01,gift,0,0,0,0,0,0\r\n2026-11-01,reward,0,0,0,0,0,0\r\n2026-11-01,giftBought,0,0,0,0,0,0\r\n',
    );
  });
});

describe('liability days kept between reports', () => {
  const cutoff = { timeZone: 'UTC', time: '00:00' };
  const nowMs = T0 + 8 * DAY_MS + 12 * 3_600_000;
  const today = '2026-11-09';
  // 200 random postings, spread evenly over nine days.
  const journal = fc
    .sample(posting, { numRuns: 200, seed: 7 })
    .map((entry, i) => ({ ...entry, atMs: T0 - 3 * DAY_MS + Math.floor((i * 9 * DAY_MS) / 200) }));
  /** Every day from the journal's first to today, computed from the whole journal in memory. */
  const expected = (() => {
    const windows = [];
    for (let date = '2026-10-29'; date <= today; date = addDays(date, 1))
      windows.push({ date, ...businessDayWindow(date, cutoff) });
    const ledger = new LiabilityLedger('m1', windows, (cardId) => CARDS[cardId]);
    for (const entry of journal) ledger.add(entry);
    return ledger.kept().map(({ day, reconciled }) => {
      expect(reconciled).toBe(true);
      return day;
    });
  })();
  const lastDays = (days: number) => expected.slice(-days);
  const withStore = async (run: (store: Store) => Promise<void>, entries: JournalEntry[] = journal) => {
    const dir = mkdtempSync(join(tmpdir(), 'paycode-liability-'));
    const store = openStore(dir, { mapSizeBytes: 64 * 1024 ** 2 });
    try {
      const cards = Object.entries(CARDS).map(([cardId, kind]) => ({ cardId, kind }));
      await store.accounts.put('cu_1_a' as ConsumerId, { value: {}, context: { cards } } as never);
      for (const [i, entry] of entries.entries()) await store.journal.put([entry.atMs, 0, i], entry);
      await run(store);
    } finally {
      await store.root.close();
      rmSync(dir, { recursive: true, force: true });
    }
  };
  /** A report of the last `days` days, reading at most `entriesMax` journal entries. */
  const report = async (
    store: Store,
    days: number,
    entriesMax: number = LIMITS.reportScanEntriesMax,
    atMs = nowMs,
  ) => {
    const limits = { ...LIMITS, reportScanEntriesMax: entriesMax, reportScanChunkEntries: 10 };
    const reports = new MerchantReports(store, limits, cutoff, () => atMs, randomBytes(32));
    const result = await reports.liability('m1' as MerchantId, days);
    if (!result.ok) throw new Error(result.status);
    // The days are kept without waiting for the write; the next report must see them.
    await store.root.committed;
    return result.answer;
  };

  it('keeps each finished day, so the next report reads the journal only after the last one kept', async () => {
    await withStore(async (store) => {
      // Half an hour after midnight, yesterday is not final yet: a posting may still reach it.
      await report(store, 5, LIMITS.reportScanEntriesMax, T0 + 8 * DAY_MS + 30 * 60_000);
      expect(store.liabilityDays.get(['m1', '2026-11-07'])).toBeDefined();
      expect(store.liabilityDays.get(['m1', '2026-11-08'])).toBeUndefined();
      expect(await report(store, 5)).toMatchObject({
        scanLimited: false,
        reconciled: true,
        days: lastDays(5),
      });
      // Kept: every day that ended before the straggler window (today is not over).
      const yesterday = expected.find((day) => day.date === '2026-11-08');
      expect(store.liabilityDays.get(['m1', '2026-11-08'])).toEqual(yesterday);
      expect(store.liabilityDays.get(['m1', '2026-10-29'])).toEqual(expected[0]);
      expect(store.liabilityDays.get(['m1', today])).toBeUndefined();
      // A report that may read a single entry still answers whole for a month: only today is read.
      expect(await report(store, 9, 1)).toMatchObject({ scanLimited: false, days: lastDays(9) });
      // A day kept under another cut-off is not used: the report reads the journal again, and keeps anew.
      await store.liabilityDays.put(['m1', '2026-11-08'], { ...(yesterday as LiabilityDay), endMs: 1 });
      expect((await report(store, 1, 1)).scanLimited).toBe(true);
      expect((await report(store, 2)).days).toEqual(lastDays(2));
      expect(store.liabilityDays.get(['m1', '2026-11-08'])).toEqual(yesterday);
    });
  });

  it('keeps no day from the first that does not reconcile', async () => {
    const stray = {
      ...(journal[100] as JournalEntry),
      merchantId: 'm1' as MerchantId,
      kind: 'load' as const,
    };
    stray.legs = [
      { account: 'card:unknown', cents: 100 },
      { account: 'merchant:m1:issued', cents: -100 },
    ];
    await withStore(
      async (store) => {
        const answer = await report(store, 5);
        expect(answer.reconciled).toBe(false);
        const strayDate = new Date(stray.atMs).toISOString().slice(0, 10);
        expect(store.liabilityDays.get(['m1', addDays(strayDate, -1)])).toBeDefined();
        expect(store.liabilityDays.get(['m1', strayDate])).toBeUndefined();
        expect([...store.liabilityDays.getKeys({ start: ['m1', strayDate] })]).toEqual([]);
      },
      [...journal, stray],
    );
  });

  it('goes on where a report cut short stopped, until the figures are whole', async () => {
    await withStore(async (store) => {
      const answers = [await report(store, 5, 50)];
      expect(answers[0]?.scanLimited).toBe(true);
      while (answers.at(-1)?.scanLimited && answers.length < 10) answers.push(await report(store, 5, 50));
      expect(answers.at(-1)).toMatchObject({ scanLimited: false, reconciled: true, days: lastDays(5) });
      // 200 entries, 50 a report, and each keeps the days it read whole.
      expect(answers.length).toBeLessThanOrEqual(6);
    });
  });
});

/** A text cell as the CSV writes it: one a spreadsheet would read as a formula is kept as text. */
const asText = (text: string) => (/^[=+\-@\t\r]/.test(text) ? `'${text}` : text);

describe('CSV cells', () => {
  it('keeps text that a spreadsheet would read as a formula as text, and numbers as they are', () => {
    const row = (ref: string, amountCents: number) =>
      transactionsCsv([{ journalKey: 'k', atMs: 0, kind: 'redeem', ref, amountCents }]).split('\r\n')[1];
    expect(row('=HYPERLINK("x")', -5)).toBe(`k,1970-01-01T00:00:00.000Z,redeem,"'=HYPERLINK(""x"")",-5`);
    for (const risky of ['+1', '-1', '@a', '\tx']) expect(row(risky, 1)).toContain(`,'${risky},1`);
    expect(row('\rx', 1)).toContain(`,"'\rx",1`);
    expect(row('au_1_x', -250)).toBe('k,1970-01-01T00:00:00.000Z,redeem,au_1_x,-250');
  });
});

describe('liability report', () => {
  it("shows what the merchant's cards owe today: issued, sold, redeemed, with gifts between phones changing nothing", async () => {
    const t = await startTestServer({ funding: new SandboxFunding() });
    const merchant = await t.merchant('Corner Cafe');
    const other = await t.merchant('Book Nook');
    const phone = '+15555550195';
    const { deviceToken } = await t.consumer(phone);
    await t.load(merchant, phone, 5_000);
    await t.load(merchant, phone, 1_000, 'reward');
    await t.load(other, phone, 700);
    await t.purchase(merchant, deviceToken, 2_000);
    const pos = await t.pos(await t.terminal(merchant));
    expect((await pos.redeem({ code: await t.code(merchant, deviceToken), amountCents: 1_500 })).status).toBe(
      'approved',
    );
    const gift = {
      merchantId: merchant.merchantId,
      toPhone: '+15555550196',
      amountCents: 1_000,
      idempotencyKey: 'g',
    };
    expect((await t.http('POST', '/v1/wallet/gifts', gift, deviceToken)).status).toBe(201);
    // Issued value goes first: $35 of it is left, so a $40 sale takes $5 of the bought value.
    expect((await pos.redeem({ code: await t.code(merchant, deviceToken), amountCents: 4_000 })).status).toBe(
      'approved',
    );

    const path = `/v1/merchants/${merchant.merchantId}/liability?days=2`;
    const report = await t.http('GET', path, undefined, merchant.apiKey);
    expect(report.status).toBe(200);
    expect(report.body).toMatchObject({ giftValueExpires: false, reconciled: true, scanLimited: false });
    const [yesterday, today] = report.body.days;
    expect(yesterday.gift.closingCents).toBe(0);
    // The first sale took the reward first ($10), then $5 of gift value; the second $40 of gift value.
    expect(today.gift).toEqual({
      openingCents: 0,
      issuedCents: 5_000,
      soldCents: 2_000,
      redeemedCents: 4_500,
      expiredCents: 0,
      closingCents: 2_500,
    });
    // Of which bought: the $20 bought, less the $5 of it the second sale took (the $10 given was issued).
    expect(today.giftBought).toEqual({
      openingCents: 0,
      issuedCents: 0,
      soldCents: 2_000,
      redeemedCents: 500,
      expiredCents: 0,
      closingCents: 1_500,
    });
    expect(today.reward).toMatchObject({ issuedCents: 1_000, redeemedCents: 1_000, closingCents: 0 });

    const csv = await fetch(`${t.server.url}${path}&format=csv`, {
      headers: { authorization: `Bearer ${OPERATOR_TOKEN}` },
    });
    expect(csv.headers.get('content-type')).toBe('text/csv; charset=utf-8');
    const rows = (await csv.text()).trim().split('\r\n');
    expect(rows).toHaveLength(7);
    expect(rows[4]).toBe(`${today.date},gift,0,5000,2000,4500,0,2500`);
    expect(rows[6]).toBe(`${today.date},giftBought,0,0,2000,500,0,1500`);
    expect((await t.http('GET', path, undefined, other.apiKey)).status).toBe(403);

    // The transactions as CSV, a page at a time, the next page's cursor in a header.
    const page = await t.http(
      'GET',
      `/v1/merchants/${merchant.merchantId}/transactions`,
      undefined,
      merchant.apiKey,
    );
    const asCsv = (query: string) =>
      fetch(`${t.server.url}/v1/merchants/${merchant.merchantId}/transactions?format=csv${query}`, {
        headers: { authorization: `Bearer ${merchant.apiKey}` },
      });
    const all = await asCsv('');
    const lines = (await all.text()).trim().split('\r\n');
    expect(lines[0]).toBe('journalKey,at,kind,ref,amountCents');
    expect(lines.slice(1)).toEqual(
      page.body.transactions.map(
        (tx: { journalKey: string; atMs: number; kind: string; ref: string; amountCents: number }) =>
          `${asText(tx.journalKey)},${new Date(tx.atMs).toISOString()},${tx.kind},${tx.ref},${tx.amountCents}`,
      ),
    );
    expect(all.headers.get('paycode-next')).toBeNull();
    const first = await asCsv('&limit=1');
    const next = first.headers.get('paycode-next') as string;
    expect(next).toMatch(/^[A-Za-z0-9_-]{64}$/);
    const second = await asCsv(`&limit=1&before=${next}`);
    expect((await second.text()).trim().split('\r\n')[1]).toBe(lines[2]);
  });
});
