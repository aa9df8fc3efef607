import { errorText as apiErrorText } from '../common/api.ts';
import { money } from '../common/ui.ts';
import type { Transaction } from './types.ts';

/** How the dashboard names and shows things: posting kinds, times, signed amounts, errors. */
export const KINDS: Record<string, { label: string; badge: string }> = {
  redeem: { label: 'Sale', badge: 'ok' },
  void: { label: 'Void', badge: 'warn' },
  reverse: { label: 'Reversal', badge: 'warn' },
  refund: { label: 'Refund', badge: 'warn' },
  load: { label: 'Card issued', badge: '' },
  expire: { label: 'Reward expired', badge: 'muted' },
};

export function kindLabel(kind: string): string {
  return KINDS[kind]?.label ?? kind;
}

const shortTimeFormat = new Intl.DateTimeFormat('en-US', {
  month: 'short',
  day: 'numeric',
  hour: 'numeric',
  minute: '2-digit',
});
const clockFormat = new Intl.DateTimeFormat('en-US', {
  hour: 'numeric',
  minute: '2-digit',
  second: '2-digit',
});
// Business dates are calendar dates: shown as written, whatever the browser's time zone.
const dayFormat = new Intl.DateTimeFormat('en-US', { month: 'short', day: 'numeric', timeZone: 'UTC' });
const longDayFormat = new Intl.DateTimeFormat('en-US', {
  weekday: 'short',
  month: 'short',
  day: 'numeric',
  year: 'numeric',
  timeZone: 'UTC',
});

export const shortTime = (atMs: number) => shortTimeFormat.format(atMs);
export const clock = (atMs: number) => clockFormat.format(atMs);

// The activity report's hours are whole hours of the settlement time zone, so they are shown in it.
const zonedFormats = new Map<string, Intl.DateTimeFormat>();
function zoned(timeZone: string, options: Intl.DateTimeFormatOptions): Intl.DateTimeFormat {
  const key = `${timeZone} ${JSON.stringify(options)}`;
  let format = zonedFormats.get(key);
  if (!format) {
    format = new Intl.DateTimeFormat('en-US', { ...options, timeZone });
    zonedFormats.set(key, format);
  }
  return format;
}
const zoneName = { timeZoneName: 'short' } as const;

/** `3 PM` in `timeZone`; `3 PM UTC` with `named`. */
export const hourLabel = (atMs: number, timeZone: string, named = false) =>
  zoned(timeZone, { hour: 'numeric', ...(named ? zoneName : {}) }).format(atMs);
/** `Nov 27, 3:00 PM` in `timeZone`; `Nov 27, 3:00 PM GMT+5:30` with `named`. */
export const zonedTime = (atMs: number, timeZone: string, named = false) =>
  zoned(timeZone, {
    month: 'short',
    day: 'numeric',
    hour: 'numeric',
    minute: '2-digit',
    ...(named ? zoneName : {}),
  }).format(atMs);
export const isBrowserTimeZone = (timeZone: string) =>
  new Intl.DateTimeFormat().resolvedOptions().timeZone === timeZone;
export const dayLabel = (date: string) => dayFormat.format(Date.parse(`${date}T00:00:00Z`));
export const longDay = (date: string) => longDayFormat.format(Date.parse(`${date}T00:00:00Z`));

/** `+$12.50`, `−$5.00`, `$0.00`. */
export function signedMoney(cents: number): string {
  if (cents > 0) return `+${money(cents)}`;
  if (cents < 0) return `−${money(-cents)}`;
  return money(0);
}

/** The reference a merchant recognizes: for an issued card its own idempotency key, else the id. */
export function displayRef(transaction: Pick<Transaction, 'kind' | 'ref'>): string {
  if (transaction.kind === 'load') return transaction.ref.slice(transaction.ref.indexOf('/') + 1);
  return transaction.ref;
}

const MESSAGES: Record<string, string> = {
  offline: 'The server cannot be reached. Check the connection; the page retries by itself.',
  unauthorized: 'This API key is no longer valid. Sign in again.',
  overloaded: 'The server is busy. The figures will refresh in a moment.',
  rate_limited: 'Too many requests. Wait a moment and try again.',
  limit_exceeded: 'That is more than a card may hold or be loaded with at once.',
  idempotency_mismatch: 'This issuance was already sent with other details. Check the cards and try again.',
};

/** What went wrong, as a sentence, in the dashboard's words where it has them. */
export function errorText(error: unknown): string {
  return apiErrorText(error, MESSAGES);
}
