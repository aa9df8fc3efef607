/**
 * Double-entry ledger. Every movement of value is one journal entry whose legs sum to zero; a leg is
 * the signed change of one ledger account. Consumer cards are `card:<cardId>` (what the platform owes
 * the consumer); the counter-accounts say who funded or received the value, which settlement nets per
 * merchant. Because every entry sums to zero, all account balances together sum to zero at every commit.
 *
 * @module
 */

export interface Leg {
  account: string;
  cents: number;
}

export type PostingKind = 'load' | 'purchase' | 'redeem' | 'void' | 'reverse' | 'refund' | 'expire' | 'gift';

export const ledgerAccount = {
  card: (cardId: string) => `card:${cardId}`,
  /** Redemptions net of voids, reversals and refunds: what the platform owes the merchant. */
  merchantPayable: (merchantId: string) => `merchant:${merchantId}:payable`,
  /** Value the merchant issued (gift cards, rewards): what the merchant owes the platform. */
  merchantIssued: (merchantId: string) => `merchant:${merchantId}:issued`,
  /** Merchant-funded value that expired unspent: returned to the merchant. */
  merchantExpired: (merchantId: string) => `merchant:${merchantId}:expired`,
  /** Value consumers bought by card, paid to the platform by the card processor. */
  platformFunding: 'platform:funding',
  /** Value of a gift between two consumers while the saga moves it from one shard to the other. */
  transit: (giftId: string) => `transit:${giftId}`,
} as const;

export function legsSum(legs: readonly Leg[]): number {
  let sum = 0;
  for (const leg of legs) sum += leg.cents;
  return sum;
}

/** A programmer error, not a business outcome: an unbalanced entry must never reach the journal. */
export function assertBalanced(legs: readonly Leg[]): void {
  if (legsSum(legs) !== 0 || legs.some((leg) => !Number.isSafeInteger(leg.cents))) {
    throw new Error(`unbalanced journal entry: ${JSON.stringify(legs)}`);
  }
}
