/**
 * What a payment code looks like: 6 to 10 digits, leading zeros kept. The one home of that rule, free of
 * Node modules, so the engine, the gateway and the web pages all check codes with it.
 *
 * @module
 */

export const CODE_DIGITS_MIN = 6;
export const CODE_DIGITS_MAX = 10;

const CODE = new RegExp(`^[0-9]{${CODE_DIGITS_MIN},${CODE_DIGITS_MAX}}$`);

/** A code length: an integer from 6 to 10 (a merchant's `codeDigitsMin`). */
export function isCodeDigits(value: unknown): value is number {
  return (
    Number.isInteger(value) && (value as number) >= CODE_DIGITS_MIN && (value as number) <= CODE_DIGITS_MAX
  );
}

export function isCodeString(value: unknown): value is string {
  return typeof value === 'string' && CODE.test(value);
}
