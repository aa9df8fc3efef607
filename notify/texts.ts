import type { OutboxMessage } from '../persistence/store.ts';

/**
 * The texts consumers receive. Amounts are written `$12.50`; texts stay in the GSM 7-bit alphabet
 * (SMPP `data_coding` 0) and within one 160-character message where they can.
 */
export function dollars(cents: number): string {
  const whole = Math.floor(Math.abs(cents) / 100);
  const rest = String(Math.abs(cents) % 100).padStart(2, '0');
  return `${cents < 0 ? '-' : ''}$${whole.toLocaleString('en-US')}.${rest}`;
}

/** `12`, `12.5`, `12.50`, `$12.50` as cents; null when it is not an amount. No floats involved. */
export function parseDollars(text: string): number | null {
  const match = /^\$?([0-9]{1,7})(?:\.([0-9]{1,2}))?$/.exec(text);
  if (!match) return null;
  const cents = Number(match[1]) * 100 + Number((match[2] ?? '0').padEnd(2, '0'));
  return cents > 0 ? cents : null;
}

const RECEIPT_VERB = {
  redeem: (amount: string, merchant: string) => `${amount} paid at ${merchant}.`,
  void: (amount: string, merchant: string) => `Your ${amount} payment at ${merchant} was voided.`,
  reverse: (amount: string, merchant: string) => `Your ${amount} payment at ${merchant} was reversed.`,
  refund: (amount: string, merchant: string) => `${merchant} refunded ${amount}.`,
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
