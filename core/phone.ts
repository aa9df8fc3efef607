import { parsePhoneNumberFromString } from 'libphonenumber-js/min';

/**
 * Phone numbers as paycode keeps them: canonical E.164 of a possible number (libphonenumber's metadata:
 * the country exists and the length fits it), so one phone is one consumer however it was written.
 * `+4407911123456` (a UK number with its trunk 0 kept) is `+447911123456`; `+10000000` is no number.
 * Consumer ids are keyed hashes of this canonical form.
 *
 * @module
 */

/** How the API takes a phone number: `+` and up to 15 digits. */
export const E164_SHAPE = /^\+[1-9][0-9]{6,14}$/;

/**
 * The canonical form of an E.164-shaped number; null for anything else, a number no phone can have, or
 * one whose canonical form is not canonical itself (libphonenumber strips one trunk prefix per parse, so
 * `+4900301234567` would become `+490301234567`, then `+49301234567`): a canonical form is a fixed point.
 */
export function canonicalPhone(text: unknown): string | null {
  if (typeof text !== 'string' || !E164_SHAPE.test(text)) return null;
  const canonical = possible(text);
  if (canonical === text) return text;
  return canonical !== null && possible(canonical) === canonical ? canonical : null;
}

/** Whether a value is a phone number in its canonical form already. */
export function isCanonicalPhone(value: unknown): value is string {
  return typeof value === 'string' && canonicalPhone(value) === value;
}

function possible(text: string): string | null {
  const parsed = parsePhoneNumberFromString(text);
  return parsed?.isPossible() ? parsed.number : null;
}
