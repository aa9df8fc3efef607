import { dollars } from '../core/money.ts';
import type { OutboxMessage } from '../persistence/store.ts';

/**
 * The texts consumers receive. Amounts are written `$12.50`; texts stay in the GSM 7-bit alphabet
 * (SMPP `data_coding` 0) and within one 160-character message where they can.
 */

/** What the confirmation text says happened, by the kind of movement. */
const RECEIPT_VERB = {
  redeem: (amount: string, merchant: string) => `${amount} paid at ${merchant}.`,
  void: (amount: string, merchant: string) => `Your ${amount} payment at ${merchant} was voided.`,
  reverse: (amount: string, merchant: string) => `Your ${amount} payment at ${merchant} was reversed.`,
  refund: (amount: string, merchant: string) => `${merchant} refunded ${amount}.`,
  giftSent: (amount: string, merchant: string) => `You gave ${amount} of your ${merchant} gift card.`,
  giftReceived: (amount: string, merchant: string) => `You were given a ${amount} gift card for ${merchant}.`,
} as const;

export function receiptText(
  message: Extract<OutboxMessage, { kind: 'receipt' }>,
  merchantName: string,
): string {
  const line = RECEIPT_VERB[message.event](dollars(message.amountCents), merchantName);
  return `paycode: ${line} New balance there ${dollars(message.balanceCents)}. Ref ${message.ref}`;
}

export function paymentCodeText(code: string, merchantName: string, capCents: number, ttlMs: number): string {
  return (
    `paycode: your code for ${merchantName} is ${code}, good for up to ${dollars(capCents)} ` +
    `for ${Math.round(ttlMs / 60_000)} min. Show it at the till. Never share it by phone.`
  );
}

export const HELP_TEXT =
  'paycode: text PAY <store> [amount] for a payment code, CANCEL to cancel it, BAL for balances, ' +
  'STOP to freeze your account, HELP for this.';

export const STOP_TEXT =
  'paycode: your account is frozen and any live code is cancelled. Nothing can be paid until you ' +
  'unfreeze it in the wallet.';
