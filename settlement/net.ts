import type { PostingKind } from '../engine/ledger.ts';
import type { JournalEntry } from '../persistence/store.ts';

/**
 * A merchant's net position for one settlement, from the journal alone (PROTOCOL.md, "Value and
 * money"): redeemed − voided − reversed − refunded − merchant-issued value + merchant-funded value that
 * expired − fees. Only the merchant's own ledger accounts count (`payable`, `issued`, `expired`), so
 * value consumers bought by card, and gifts between consumers, never touch a merchant's net.
 *
 * Fees: `feeBps` of the value redeemed (gross, rounded half up to the cent) plus `feeFixedCents` per
 * redemption. Voids, reversals and refunds do not give fees back.
 */
export interface MerchantTerms {
  merchantId: string;
  feeBps: number;
  feeFixedCents: number;
}

export interface StatementLine {
  /** The journal key `atMs.writer.seq`, unique and stable. */
  journalKey: string;
  atMs: number;
  kind: PostingKind;
  ref: string;
  /** What the posting adds to the merchant's net (before fees). */
  amountCents: number;
}

export interface MerchantNet {
  merchantId: string;
  redeemedCents: number;
  voidedCents: number;
  reversedCents: number;
  refundedCents: number;
  issuedCents: number;
  expiredCents: number;
  redemptions: number;
  feeCents: number;
  /** Positive: the platform pays the merchant (an ACH credit); negative: the merchant pays (a debit). */
  netCents: number;
  lines: StatementLine[];
}

const MERCHANT_ACCOUNT = /^merchant:([A-Za-z0-9_-]+):(payable|issued|expired)$/;

function emptyNet(merchantId: string): MerchantNet {
  return {
    merchantId,
    redeemedCents: 0,
    voidedCents: 0,
    reversedCents: 0,
    refundedCents: 0,
    issuedCents: 0,
    expiredCents: 0,
    redemptions: 0,
    feeCents: 0,
    netCents: 0,
    lines: [],
  };
}

/** Adds one journal posting to the nets of the merchants whose accounts it touches. */
export function addPosting(
  nets: Map<string, MerchantNet>,
  key: readonly number[],
  entry: JournalEntry,
): void {
  for (const leg of entry.legs) {
    const match = MERCHANT_ACCOUNT.exec(leg.account);
    if (!match) continue;
    const merchantId = match[1] as string;
    let net = nets.get(merchantId);
    if (!net) {
      net = emptyNet(merchantId);
      nets.set(merchantId, net);
    }
    const cents = leg.cents;
    switch (entry.kind) {
      case 'redeem':
        net.redeemedCents += cents;
        net.redemptions++;
        break;
      case 'void':
        net.voidedCents -= cents;
        break;
      case 'reverse':
        net.reversedCents -= cents;
        break;
      case 'refund':
        net.refundedCents -= cents;
        break;
      case 'load':
        net.issuedCents -= cents;
        break;
      case 'expire':
        net.expiredCents += cents;
        break;
      default:
        throw new Error(`a ${entry.kind} posting on merchant account ${leg.account}`);
    }
    net.netCents += cents;
    net.lines.push({
      journalKey: key.join('.'),
      atMs: entry.atMs,
      kind: entry.kind,
      ref: entry.ref,
      amountCents: cents,
    });
  }
}

/** Applies each merchant's fees; merchants without terms pay none. */
export function applyFees(nets: Map<string, MerchantNet>, terms: ReadonlyMap<string, MerchantTerms>): void {
  for (const net of nets.values()) {
    const merchant = terms.get(net.merchantId);
    if (!merchant) continue;
    const percentage = (BigInt(net.redeemedCents) * BigInt(merchant.feeBps) + 5_000n) / 10_000n;
    net.feeCents = Number(percentage) + merchant.feeFixedCents * net.redemptions;
    net.netCents -= net.feeCents;
  }
}
