import type { JournalEntry, MerchantNet } from '../persistence/store.ts';

/**
 * A merchant's net position for one settlement, from the journal alone (docs/settlement.md, "Net positions"; "Value and
 * money"): redeemed − voided − reversed − refunded − merchant-issued value + merchant-funded value that
 * expired − fees. Only the merchant's own ledger accounts count (`payable`, `issued`, `expired`), so
 * value consumers bought by card, and gifts between consumers, never touch a merchant's net.
 *
 * Fees: `feeBps` of the sales (redeemed − voided − reversed, rounded half up to the cent) plus
 * `feeFixedCents` per sale (redemptions − voids − reversals): a sale that was undone costs nothing. A
 * refund does not give the fee back. Undoing an earlier day's sale gives its fee back (a negative fee).
 */

/** A merchant's fees, as its record keeps them. */
export interface MerchantTerms {
  merchantId: string;
  feeBps: number;
  feeFixedCents: number;
}

const MERCHANT_ACCOUNT = /^merchant:([A-Za-z0-9_-]+):(payable|issued|expired)$/;

export function emptyNet(merchantId: string): MerchantNet {
  return {
    merchantId,
    redeemedCents: 0,
    voidedCents: 0,
    reversedCents: 0,
    refundedCents: 0,
    issuedCents: 0,
    expiredCents: 0,
    redemptions: 0,
    undone: 0,
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
        net.undone++;
        break;
      case 'reverse':
        net.reversedCents -= cents;
        net.undone++;
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
    const salesCents = net.redeemedCents - net.voidedCents - net.reversedCents;
    net.feeCents =
      roundHalfUp(BigInt(salesCents) * BigInt(merchant.feeBps), 10_000n) +
      merchant.feeFixedCents * (net.redemptions - net.undone);
    net.netCents -= net.feeCents;
  }
}

/** `numerator / denominator` rounded half away from zero, in integers (no float rounding). */
function roundHalfUp(numerator: bigint, denominator: bigint): number {
  const absolute = numerator < 0n ? -numerator : numerator;
  const magnitude = (absolute * 2n + denominator) / (2n * denominator);
  return Number(numerator < 0n ? -magnitude : magnitude);
}
