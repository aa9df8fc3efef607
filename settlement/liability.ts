import type { PostingKind } from '../core/ledger.ts';
import type { CardKind } from '../core/wallet.ts';
import type { JournalEntry } from '../persistence/store.ts';
import type { LiabilityDay, LiabilityFigures } from '../sdk/http-answers.ts';

/**
 * A merchant's outstanding liability, per business day and card kind: the value on consumers' cards of
 * the merchant that it still owes in goods, and how each day moved it. Two ways to the closing figure
 * are kept apart, so the report reconciles itself to the journal to the cent:
 *
 * - the balance: the sum of every leg on the merchant's cards (and gifts in transit between two phones)
 *   up to the day's end;
 * - the flows: opening + issued (by the merchant) + sold (bought by consumers) − redeemed (net of voids,
 *   reversals and refunds) − expired (rewards only: gift value never expires).
 *
 * They agree when every posting is one of the kinds the flows know; `reconciled` says whether they did.
 * A gift between two phones moves value from one card of the merchant to another (through transit), so
 * it changes no figure.
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

const emptyFigures = (): LiabilityFigures => ({
  openingCents: 0,
  issuedCents: 0,
  soldCents: 0,
  redeemedCents: 0,
  expiredCents: 0,
  closingCents: 0,
});

export class LiabilityLedger {
  /** Per day, then per kind: the balance change of the day, from the legs alone. */
  private readonly changes: Record<CardKind, number>[];
  private readonly flows: Record<CardKind, LiabilityFigures>[];
  private readonly before: Record<CardKind, number> = { gift: 0, reward: 0 };
  private unknownKinds = 0;

  constructor(
    private readonly merchantId: string,
    /** The business days reported, oldest first, each [startMs, endMs), back to back. */
    private readonly days: readonly { date: string; startMs: number; endMs: number }[],
    /** The kind of a card by its id; undefined when it cannot be told. */
    private readonly kindOf: (cardId: string) => CardKind | undefined,
  ) {
    this.changes = days.map(() => ({ gift: 0, reward: 0 }));
    this.flows = days.map(() => ({ gift: emptyFigures(), reward: emptyFigures() }));
  }

  /** Counts a posting, in any order; those of other merchants and after the last day are left out. */
  add(entry: JournalEntry): void {
    if (entry.merchantId !== this.merchantId) return;
    const last = this.days.at(-1);
    if (!last || entry.atMs >= last.endMs) return;
    const index = this.days.findIndex((day) => entry.atMs >= day.startMs && entry.atMs < day.endMs);
    for (const leg of entry.legs) {
      let kind: CardKind | undefined;
      if (leg.account.startsWith('card:')) kind = this.kindOf(leg.account.slice('card:'.length));
      else if (leg.account.startsWith('transit:')) kind = 'gift';
      else continue;
      if (kind === undefined) {
        this.unknownKinds++;
        continue;
      }
      if (index < 0) {
        this.before[kind] += leg.cents;
        continue;
      }
      (this.changes[index] as Record<CardKind, number>)[kind] += leg.cents;
      const flow = FLOWS[entry.kind];
      if (flow)
        (this.flows[index] as Record<CardKind, LiabilityFigures>)[kind][flow[0]] += flow[1] * leg.cents;
    }
  }

  /**
   * The days with their figures, and whether the flows reconcile with the balances on every day (and
   * every card's kind was known).
   */
  result(): { days: LiabilityDay[]; reconciled: boolean } {
    const balance = { ...this.before };
    let reconciled = this.unknownKinds === 0;
    const days = this.days.map((day, i) => {
      const figures = {} as Record<CardKind, LiabilityFigures>;
      for (const kind of KINDS) {
        const flow = (this.flows[i] as Record<CardKind, LiabilityFigures>)[kind];
        const openingCents = balance[kind];
        balance[kind] += (this.changes[i] as Record<CardKind, number>)[kind];
        const closingCents =
          openingCents + flow.issuedCents + flow.soldCents - flow.redeemedCents - flow.expiredCents;
        if (closingCents !== balance[kind]) reconciled = false;
        figures[kind] = { ...flow, openingCents, closingCents };
      }
      return { ...day, ...figures };
    });
    return { days, reconciled };
  }
}

const CSV_HEADER = 'date,kind,openingCents,issuedCents,soldCents,redeemedCents,expiredCents,closingCents';

/** The report for spreadsheets: one row per day and kind. */
export function liabilityCsv(days: readonly LiabilityDay[]): string {
  const rows = days.flatMap((day) =>
    KINDS.map((kind) => {
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
      ].join(',');
    }),
  );
  return `${[CSV_HEADER, ...rows].join('\r\n')}\r\n`;
}
