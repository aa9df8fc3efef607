import type { PostingKind } from '../core/ledger.ts';
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
  const alerts = (message.alerts ?? []).map(
    ({ kind, belowCents, balanceCents }) =>
      ` Low balance: your ${merchantName} ${kind === 'gift' ? 'gift card' : 'reward'} is at ${dollars(balanceCents)}, below your alert of ${dollars(belowCents)}.`,
  );
  return `paycode: ${line} New balance there ${dollars(message.balanceCents)}.${alerts.join('')} Ref ${message.ref}`;
}

export function paymentCodeText(code: string, merchantName: string, capCents: number, ttlMs: number): string {
  return (
    `paycode: your code for ${merchantName} is ${code}, good for up to ${dollars(capCents)} ` +
    `for ${Math.round(ttlMs / 60_000)} min. Show it at the till. Never share it by phone.`
  );
}

export const HELP_TEXT =
  'paycode: text PAY <store> [amount] for a code, CANCEL, BAL, HIST (recent), ' +
  'GIFT <store> <phone> <amount>, STOP to freeze, HELP.';

export function giftConfirmText(
  code: string,
  amountCents: number,
  merchantName: string,
  toPhone: string,
  ttlMs: number,
): string {
  return (
    `paycode: to give ${dollars(amountCents)} of your ${merchantName} gift card to ${toPhone}, ` +
    `reply YES ${code} within ${Math.round(ttlMs / 60_000)} min. Ignore this text to give nothing.`
  );
}

/** How a movement is named in the `HIST` answer. */
const MOVEMENT_NAME: Record<PostingKind, string> = {
  redeem: 'payment',
  void: 'voided payment',
  reverse: 'reversed payment',
  refund: 'refund',
  load: 'added',
  purchase: 'bought',
  gift: 'gift',
  expire: 'expired',
};

/** The last movements, newest first: `-$12.50 payment Corner Cafe Dec 5`. */
export function historyText(
  movements: readonly { atMs: number; kind: PostingKind; amountCents: number; merchantName: string }[],
): string {
  if (movements.length === 0) return 'paycode: no movements yet.';
  const lines = movements.map(({ atMs, kind, amountCents, merchantName }) => {
    const day = new Date(atMs).toLocaleDateString('en-US', {
      month: 'short',
      day: 'numeric',
      timeZone: 'UTC',
    });
    const signed = `${amountCents < 0 ? '-' : '+'}${dollars(Math.abs(amountCents))}`;
    return `${signed} ${MOVEMENT_NAME[kind]} ${merchantName} ${day}`;
  });
  return `paycode: ${lines.join('; ')}.`;
}

export const STOP_TEXT =
  'paycode: your account is frozen and any live code is cancelled. Nothing can be paid until you ' +
  'unfreeze it in the wallet.';
