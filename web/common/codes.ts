/**
 * Payment codes as people read them. A code is a string of 6 to 10 digits (leading zeros kept): a quiet
 * store's codes have 6, a busy store's get longer while it is busy, and a store may ask for longer codes
 * always. The digits are shown in groups of three or four, so the customer can read them out and the
 * cashier can check them at a glance: 6 → 3-3, 7 → 4-3, 8 → 4-4, 9 → 3-3-3, 10 → 4-3-3. The grouping
 * is for the eye only: the code sent and compared is always the plain digits.
 */
import { isCodeString } from '../../core/code-shape.ts';

export { CODE_DIGITS_MAX, CODE_DIGITS_MIN } from '../../core/code-shape.ts';

const GROUPS: Readonly<Record<number, readonly number[]>> = {
  6: [3, 3],
  7: [4, 3],
  8: [4, 4],
  9: [3, 3, 3],
  10: [4, 3, 3],
};

/** Whether `text` is a whole payment code: 6 to 10 digits, nothing else (core/code-shape.ts). */
export function isPaymentCode(text: string): boolean {
  return isCodeString(text);
}

/**
 * The digits of `code` in their reading groups: `12345678` → `['1234', '5678']`. A code still being
 * typed (fewer than 6 digits) is grouped by threes, as its 6-digit form will be.
 */
export function groupCode(code: string): string[] {
  const sizes = GROUPS[code.length];
  if (!sizes) return code.match(/.{1,3}/g) ?? [];
  const groups: string[] = [];
  let at = 0;
  for (const size of sizes) {
    groups.push(code.slice(at, at + size));
    at += size;
  }
  return groups;
}

/**
 * What a screen reader should say for a code: each digit on its own, a pause between groups
 * (`12345678` → `1 2 3 4, 5 6 7 8`), never "twelve million...".
 */
export function spokenCode(code: string): string {
  return groupCode(code)
    .map((group) => group.split('').join(' '))
    .join(', ');
}
