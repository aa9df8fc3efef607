/**
 * The pure parts of settlement: business-day windows and banking days (weekends, Federal Reserve
 * holidays, DST), the NACHA writer against golden files for a small known day, and a property test that
 * for random journals the file carries exactly each merchant's net, passes achkit's validate() and the
 * stricter checks of ach-checks.ts.
 */
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import type { PostingKind } from '../core/ledger.ts';
import type { JournalEntry, MerchantNet } from '../persistence/store.ts';
import { achReference, settledReference } from '../settlement/ach-reference.ts';
import { isRoutingNumber } from '../settlement/bank.ts';
import {
  businessDayOf,
  businessDayWindow,
  federalReserveHolidays,
  nextBankingDay,
} from '../settlement/calendar.ts';
import { type AchEntry, type Originator, readAchEntries, writeAchFile } from '../settlement/nacha.ts';
import { addPosting, applyFees } from '../settlement/net.ts';
import { achProblems } from './ach-checks.ts';

const ORIGINATOR: Originator = {
  odfiRoutingNumber: '121042882',
  immediateDestination: '091000019',
  immediateDestinationName: 'FED RESERVE BANK',
  immediateOrigin: '121042882',
  immediateOriginName: 'EXAMPLE PREPAID INC',
  companyName: 'EXAMPLE PREPAID',
  companyId: '1234567890',
  offsetAccount: {
    routingNumber: '121042882',
    accountNumber: '4001002001',
    accountType: 'checking',
    name: 'EXAMPLE PREPAID SETTLE',
  },
};

const DAY: AchEntry[] = [
  {
    routingNumber: '091000019',
    accountNumber: '1234567',
    accountType: 'checking',
    direction: 'credit',
    amountCents: 1_250_075,
    id: 'MERCH0001',
    name: 'Corner Coffee LLC',
  },
  {
    routingNumber: '021000021',
    accountNumber: '987654321',
    accountType: 'savings',
    direction: 'credit',
    amountCents: 50_000,
    id: 'MERCH0002',
    name: 'Book Nook Inc',
  },
  {
    routingNumber: '011401533',
    accountNumber: '55501',
    accountType: 'checking',
    direction: 'debit',
    amountCents: 31_500,
    id: 'MERCH0003',
    name: 'Gift Shop Co',
  },
];

const file = (balanced: boolean, entries = DAY) =>
  writeAchFile({
    originator: ORIGINATOR,
    entries,
    createdDate: '2026-11-27',
    createdTime: '17:05',
    fileIdModifier: 'A',
    effectiveDate: '2026-11-30',
    descriptiveDate: '261126',
    entryDescription: 'SETTLEMENT',
    balanced,
  });

describe('business days', () => {
  it('cuts days at the configured time in the configured zone, DST included', () => {
    expect(businessDayWindow('2026-11-25', { timeZone: 'UTC', time: '00:00' })).toEqual({
      startMs: Date.UTC(2026, 10, 25),
      endMs: Date.UTC(2026, 10, 26),
    });
    const newYork = { timeZone: 'America/New_York', time: '17:00' };
    expect(businessDayWindow('2026-11-25', newYork)).toEqual({
      startMs: Date.UTC(2026, 10, 24, 22),
      endMs: Date.UTC(2026, 10, 25, 22),
    });
    // The US springs forward on 2026-03-08: that business day is 23 hours long.
    expect(businessDayWindow('2026-03-08', newYork)).toEqual({
      startMs: Date.UTC(2026, 2, 7, 22),
      endMs: Date.UTC(2026, 2, 8, 21),
    });
    // A cut-off inside a DST gap moves forward, never back: Santiago skips 00:00-01:00 on 2024-09-08.
    expect(businessDayWindow('2024-09-07', { timeZone: 'America/Santiago', time: '00:00' }).endMs).toBe(
      Date.UTC(2024, 8, 8, 4),
    );
    expect(businessDayWindow('2024-03-10', { timeZone: 'America/New_York', time: '02:30' }).endMs).toBe(
      Date.UTC(2024, 2, 10, 7, 30),
    );
    expect(businessDayOf(Date.UTC(2026, 10, 25, 21, 59), newYork)).toBe('2026-11-25');
    expect(businessDayOf(Date.UTC(2026, 10, 25, 22, 0), newYork)).toBe('2026-11-26');
  });

  it('skips weekends and Federal Reserve holidays, a Sunday holiday observed on Monday', () => {
    const holidays = federalReserveHolidays(2026);
    for (const date of [
      '2026-01-01',
      '2026-01-19',
      '2026-02-16',
      '2026-05-25',
      '2026-06-19',
      '2026-09-07',
      '2026-10-12',
      '2026-11-11',
      '2026-11-26',
      '2026-12-25',
    ])
      expect(holidays.has(date), date).toBe(true);
    expect(nextBankingDay('2026-11-25')).toBe('2026-11-27');
    expect(nextBankingDay('2026-11-27')).toBe('2026-11-30');
    expect(nextBankingDay('2027-07-02')).toBe('2027-07-06');
    expect(nextBankingDay('2026-07-02')).toBe('2026-07-03');
  });
});

describe('names and references in the file', () => {
  it('spells names in upper-case ASCII, accents dropped, and never in another character set', () => {
    const entry = { ...(DAY[0] as AchEntry), name: 'Café Déjà-Vu ß’ Ø😀!' };
    const [read] = readAchEntries(file(false, [entry]).text);
    expect(read?.name).toBe("CAFE DEJA-VU SS' O !");
    expect(achProblems(file(false, [entry]).text, ORIGINATOR.odfiRoutingNumber)).toEqual([]);
  });

  it('names each merchant by a stable 15-character reference that differs between merchants', () => {
    expect(achReference('mc_AbCdEfGhIjKlMnOp')).toBe(achReference('mc_AbCdEfGhIjKlMnOp'));
    // Ids differing only in case (they are case-sensitive) get different references.
    expect(achReference('mc_AbCdEfGhIjKlMnOp')).not.toBe(achReference('mc_abcdefghijklmnop'));
    const references = new Set<string>();
    for (let n = 0; n < 100_000; n++) {
      const reference = achReference(`mc_${n.toString(36).padStart(16, '0')}`);
      expect(reference).toMatch(/^P[A-Z2-7]{14}$/);
      references.add(reference);
    }
    expect(references.size).toBe(100_000);
    // A settlement stores the reference its file carried; one made before references existed carried the
    // id's last 15 characters, and its statements still show those.
    const id = 'mc_AbCdEfGhIjKlMnOp';
    expect(settledReference({ merchantId: id, achReference: achReference(id) })).toBe(achReference(id));
    expect(settledReference({ merchantId: id })).toBe('BCDEFGHIJKLMNOP');
  });
});

describe('routing numbers', () => {
  it('take a check digit that holds and a district in an assigned range, never all zeros', () => {
    for (const valid of ['021000021', '011000015', '121042882', '322271627', '061000104'])
      expect(isRoutingNumber(valid), valid).toBe(true);
    // Each of these passes the check digit: only the district or the zeros refuse them.
    for (const invalid of ['000000000', '150000002', '500000005', '900000003'])
      expect(isRoutingNumber(invalid), invalid).toBe(false);
    for (const malformed of ['021000022', '02100002', '0210000210', '02100002a', 21000021, null])
      expect(isRoutingNumber(malformed), String(malformed)).toBe(false);
  });
});

describe('NACHA file', () => {
  for (const balanced of [false, true]) {
    it(`matches the golden file of a small known day (${balanced ? 'balanced' : 'unbalanced'})`, () => {
      const written = file(balanced);
      const golden = join(
        import.meta.dirname,
        'fixtures',
        `settlement-${balanced ? 'balanced' : 'unbalanced'}.ach`,
      );
      if (process.env.UPDATE_GOLDEN) writeFileSync(golden, written.text);
      expect(written.text).toBe(readFileSync(golden, 'utf8'));
      expect(achProblems(written.text, ORIGINATOR.odfiRoutingNumber)).toEqual([]);
      expect(written.traces).toEqual([
        '121042880000001',
        '121042880000002',
        balanced ? '121042880000004' : '121042880000003',
      ]);
    });
  }

  it('has checks that catch what a broken file gets wrong', () => {
    const good = file(false).text;
    const lines = good.split('\n');
    const swapped = lines.map((line) =>
      line.startsWith('5220') || line.startsWith('8220') ? `${line[0]}225${line.slice(4)}` : line,
    );
    expect(achProblems(swapped.join('\n'), ORIGINATOR.odfiRoutingNumber)).toContain(
      'a credit in a debits-only batch',
    );
    const richer = good.replace('0001250075MERCH0001', '0001250076MERCH0001');
    expect(
      achProblems(richer, ORIGINATOR.odfiRoutingNumber).some((problem) =>
        problem.startsWith('achkit BAD_BATCH_CREDIT'),
      ),
    ).toBe(true);
    const unpadded = `${lines.slice(0, 9).join('\n')}\n`;
    expect(achProblems(unpadded, ORIGINATOR.odfiRoutingNumber)).toContain(
      '9 records is not a whole number of blocks',
    );
  });

  it('splits a balanced offset that does not fit one entry', () => {
    const big = (DAY[0] as AchEntry).routingNumber;
    const entries = [6_000_000_000, 5_000_000_000].map((amountCents, i) => ({
      ...(DAY[0] as AchEntry),
      amountCents,
      id: `M${i}`,
      routingNumber: big,
    }));
    const written = file(true, entries);
    expect(achProblems(written.text, ORIGINATOR.odfiRoutingNumber)).toEqual([]);
    const offsets = readAchEntries(written.text).filter((entry) => entry.id === 'OFFSET');
    expect(offsets.map((entry) => entry.amountCents)).toEqual([9_999_999_999, 1_000_000_001]);
  });

  it('refuses an entry whose routing number fails the check digit', () => {
    expect(() => file(false, [{ ...DAY[0], routingNumber: '091000018' } as AchEntry])).toThrow(/ABA/);
  });

  it('carries exactly each merchant net of a random journal', () => {
    const merchantIds = ['mc_a', 'mc_b', 'mc_c', 'mc_d'];
    const legsOf = (kind: PostingKind, merchantId: string, cents: number) => {
      const account = kind === 'load' ? 'issued' : kind === 'expire' ? 'expired' : 'payable';
      const sign = kind === 'redeem' || kind === 'expire' ? 1 : -1;
      return [
        { account: `merchant:${merchantId}:${account}`, cents: sign * cents },
        { account: 'card:cd_x', cents: -sign * cents },
      ];
    };
    const posting = fc.record({
      kind: fc.constantFrom<PostingKind>('redeem', 'void', 'reverse', 'refund', 'load', 'expire', 'purchase'),
      merchantId: fc.constantFrom(...merchantIds),
      cents: fc.integer({ min: 1, max: 5_000_000 }),
    });
    fc.assert(
      fc.property(
        fc.array(posting, { maxLength: 60 }),
        fc.boolean(),
        fc.nat(500),
        (postings, balanced, feeBps) => {
          const nets = new Map<string, MerchantNet>();
          postings.forEach(({ kind, merchantId, cents }, seq) => {
            const entry: JournalEntry = {
              atMs: 1_000 + seq,
              kind,
              consumerId: 'cu_1_x' as never,
              merchantId: merchantId as never,
              ref: `r${seq}`,
              legs:
                kind === 'purchase'
                  ? [
                      { account: 'platform:funding', cents: -cents },
                      { account: 'card:cd_x', cents },
                    ]
                  : legsOf(kind, merchantId, cents),
            };
            addPosting(nets, [entry.atMs, 0, seq], entry);
          });
          applyFees(
            nets,
            new Map(merchantIds.map((merchantId) => [merchantId, { merchantId, feeBps, feeFixedCents: 3 }])),
          );
          const paid = [...nets.values()].filter((net) => net.netCents !== 0);
          const written = file(
            balanced,
            paid.map((net, i) => ({
              ...(DAY[i % 3] as AchEntry),
              direction: net.netCents > 0 ? 'credit' : 'debit',
              amountCents: Math.abs(net.netCents),
              id: net.merchantId,
            })),
          );
          expect(achProblems(written.text, ORIGINATOR.odfiRoutingNumber)).toEqual([]);
          const read = readAchEntries(written.text).filter((entry) => entry.id !== 'OFFSET');
          for (const net of paid) {
            const entry = read.find((candidate) => candidate.id === net.merchantId.toUpperCase());
            expect(entry && (entry.direction === 'credit' ? entry.amountCents : -entry.amountCents)).toBe(
              net.netCents,
            );
            const byKind =
              net.redeemedCents -
              net.voidedCents -
              net.reversedCents -
              net.refundedCents -
              net.issuedCents +
              net.expiredCents;
            expect(byKind - net.feeCents).toBe(net.netCents);
          }
          const sum = (direction: string) =>
            read
              .filter((entry) => entry.direction === direction)
              .reduce((total, entry) => total + entry.amountCents, 0);
          expect(sum('credit') - sum('debit')).toBe(paid.reduce((total, net) => total + net.netCents, 0));
        },
      ),
      { numRuns: Number(process.env.RUNS ?? 200) },
    );
  });
});
