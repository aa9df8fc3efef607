import type { PostingKind } from '../core/ledger.ts';
import type { CardKind } from '../core/wallet.ts';
import type { JournalEntry } from '../persistence/store.ts';
import type { LiabilityDay, LiabilityFigures } from '../sdk/http-answers.ts';
import { csv } from './reports.ts';

/**
 * A merchant's outstanding liability, per business day and card kind: the value on consumers' cards of
 * the merchant that it still owes in goods, and how each day moved it: opening + issued (by the merchant)
 * + sold (bought by consumers) − redeemed (net of voids, reversals and refunds) − expired (rewards only:
 * gift value never expires) = closing. The opening is the closing of a day an earlier report kept (a
 * day kept in `liabilityDays`) plus every leg on the merchant's cards after it and before the first day. A gift between two phones moves value from one card of the merchant to another
 * (through transit), so it changes no figure. `reconciled` says that every card movement is in a figure,
 * so each closing is the sum of the cards' legs in the journal to its day's end (the test checks that
 * identity over random journals).
 *
 * @module
 */

type Flow = 'issuedCents' | 'soldCents' | 'redeemedCents' | 'expiredCents';

/** Which figure a card leg of a posting moves, and with which sign (a leg is what the card gained). */
const FLOWS: Readonly<Record<PostingKind, [Flow, 1 | -1] | null>> = {
  load: ['issuedCents', 1],
  purchase: ['soldCents', 1],
  redeem: ['redeemedCents', -1],
  void: ['redeemedCents', -1],
  reverse: ['redeemedCents', -1],
  refund: ['redeemedCents', -1],
  expire: ['expiredCents', -1],
  gift: null,
};

const KINDS: readonly CardKind[] = ['gift', 'reward'];

/**
 * The figure sets of a day: each card kind, and `giftBought`, the part of the gift figures that consumers
 * bought (core/wallet.ts `Card.boughtCents`); the rest of the gift figures the merchant issued.
 */
type Figures = CardKind | 'giftBought';
const FIGURES: readonly Figures[] = [...KINDS, 'giftBought'];

/** Which bought figure a posting's `boughtCents` moves, and with which sign. */
const BOUGHT_FLOWS: Readonly<Partial<Record<PostingKind, [Flow, 1 | -1]>>> = {
  purchase: ['soldCents', 1],
  redeem: ['redeemedCents', -1],
  void: ['redeemedCents', -1],
  reverse: ['redeemedCents', -1],
  refund: ['redeemedCents', -1],
};

const emptyFigures = (): LiabilityFigures => ({
  openingCents: 0,
  issuedCents: 0,
  soldCents: 0,
  redeemedCents: 0,
  expiredCents: 0,
  closingCents: 0,
});

export class LiabilityLedger {
  private readonly flows: Record<Figures, LiabilityFigures>[];
  /** The opening balance: the closing given, and the legs after it before the first day. */
  private readonly before: Record<Figures, number>;
  /** Card movements no figure counts (a card of unknown kind, a posting kind no figure knows), per day. */
  private readonly unaccounted: number[];
  private unaccountedBefore = 0;

  constructor(
    private readonly merchantId: string,
    /** The business days reported, oldest first, each [startMs, endMs), back to back. */
    private readonly days: readonly { date: string; startMs: number; endMs: number }[],
    /** The kind of a card by its id; undefined when it cannot be told. */
    private readonly kindOf: (cardId: string) => CardKind | undefined,
    /** A day kept before the first (it reconciled), whose closing opens it; otherwise the legs before. */
    opening?: LiabilityDay,
  ) {
    this.flows = days.map(() => ({
      gift: emptyFigures(),
      reward: emptyFigures(),
      giftBought: emptyFigures(),
    }));
    this.before = {
      gift: opening?.gift.closingCents ?? 0,
      reward: opening?.reward.closingCents ?? 0,
      giftBought: opening?.giftBought.closingCents ?? 0,
    };
    this.unaccounted = days.map(() => 0);
  }

  /** Counts a posting of the merchant, in any order; those after the last day are left out. */
  add(entry: JournalEntry): void {
    const last = this.days.at(-1);
    if (entry.merchantId !== this.merchantId || !last || entry.atMs >= last.endMs) return;
    const index = this.dayIndex(entry.atMs);
    const flow = FLOWS[entry.kind];
    // A posting no figure counts (a gift: card against transit) must move nothing in all.
    let moved = 0;
    /** What the posting moved on the merchant's gift cards (not in transit). */
    let giftCardCents = 0;
    for (const leg of entry.legs) {
      let kind: CardKind | undefined;
      if (leg.account.startsWith('card:')) {
        kind = this.kindOf(leg.account.slice('card:'.length));
        if (kind === 'gift') giftCardCents += leg.cents;
      } else if (leg.account.startsWith('transit:')) kind = 'gift';
      else continue;
      if (kind === undefined || flow === undefined) {
        this.miscounted(index);
        continue;
      }
      if (index < 0) this.before[kind] += leg.cents;
      else if (flow)
        (this.flows[index] as Record<Figures, LiabilityFigures>)[kind][flow[0]] += flow[1] * leg.cents;
      else moved += leg.cents;
    }
    if (moved !== 0) this.miscounted(index);
    // The bought part of the gift value it moved: of the same sign as the gift card legs, and no more. A
    // gift's half moves it between a card and transit, where it is still the merchant's bought value.
    const bought = entry.boughtCents ?? 0;
    if (bought === 0) return;
    const boughtFlow = BOUGHT_FLOWS[entry.kind];
    if (
      (!boughtFlow && entry.kind !== 'gift') ||
      Math.sign(bought) !== Math.sign(giftCardCents) ||
      Math.abs(bought) > Math.abs(giftCardCents)
    )
      this.miscounted(index);
    else if (!boughtFlow) return;
    else if (index < 0) this.before.giftBought += bought;
    else
      (this.flows[index] as Record<Figures, LiabilityFigures>).giftBought[boughtFlow[0]] +=
        boughtFlow[1] * bought;
  }

  /** The day that holds `atMs` (the days are back to back), or -1 before the first. */
  private dayIndex(atMs: number): number {
    let low = 0;
    let high = this.days.length - 1;
    while (low <= high) {
      const middle = (low + high) >> 1;
      const day = this.days[middle] as { startMs: number; endMs: number };
      if (atMs < day.startMs) high = middle - 1;
      else if (atMs >= day.endMs) low = middle + 1;
      else return middle;
    }
    return -1;
  }

  private miscounted(index: number): void {
    if (index < 0) this.unaccountedBefore++;
    else this.unaccounted[index] = (this.unaccounted[index] ?? 0) + 1;
  }

  /**
   * The days with their figures; `reconciled` when every card movement of the merchant is in one of
   * them, so that each closing is the sum of the cards' legs up to the day's end.
   */
  result(): { days: LiabilityDay[]; reconciled: boolean } {
    const balance = { ...this.before };
    const days = this.days.map((day, i) => {
      const figures = {} as Record<Figures, LiabilityFigures>;
      for (const kind of FIGURES) {
        const flow = (this.flows[i] as Record<Figures, LiabilityFigures>)[kind];
        const openingCents = balance[kind];
        balance[kind] += flow.issuedCents + flow.soldCents - flow.redeemedCents - flow.expiredCents;
        figures[kind] = { ...flow, openingCents, closingCents: balance[kind] };
      }
      return { ...day, ...figures };
    });
    return { days, reconciled: this.unaccountedBefore + this.unaccounted.reduce((a, b) => a + b, 0) === 0 };
  }

  /** The days with whether every card movement up to each one's end was in a figure: what a report keeps. */
  kept(): { day: LiabilityDay; reconciled: boolean }[] {
    let unaccounted = this.unaccountedBefore;
    return this.result().days.map((day, i) => {
      unaccounted += this.unaccounted[i] ?? 0;
      return { day, reconciled: unaccounted === 0 };
    });
  }
}

/** The report for spreadsheets: one row per day and kind. */
export function liabilityCsv(days: readonly LiabilityDay[]): string {
  const header = [
    'date',
    'kind',
    'openingCents',
    'issuedCents',
    'soldCents',
    'redeemedCents',
    'expiredCents',
    'closingCents',
  ];
  return csv(
    header,
    days.flatMap((day) =>
      FIGURES.map((kind) => {
        const f = day[kind];
        return [
          day.date,
          kind,
          f.openingCents,
          f.issuedCents,
          f.soldCents,
          f.redeemedCents,
          f.expiredCents,
          f.closingCents,
        ];
      }),
    ),
  );
}
