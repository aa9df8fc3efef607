/**
 * Bank account checks for merchants' settlement accounts. A routing (ABA) number is 9 digits whose
 * weighted sum 3-7-1 is a multiple of 10; an account number is 4-17 digits (NACHA's DFI account field
 * is 17 characters).
 *
 * @module
 */

export type AccountType = 'checking' | 'savings';

/** A merchant's settlement account, as the registry keeps it sealed. */
export interface BankDetails {
  routingNumber: string;
  accountNumber: string;
  accountType: AccountType;
}

/**
 * An ABA routing transit number: 9 digits whose first two name a Federal Reserve district in one of the
 * assigned ranges (00 the US government, 01-12 banks, 21-32 thrifts, 61-72 electronic, 80 traveler's
 * checks), never all zeros, and whose check digit (weights 3 7 1) holds.
 */
export function isRoutingNumber(value: unknown): value is string {
  if (typeof value !== 'string' || !/^[0-9]{9}$/.test(value) || value === '000000000') return false;
  const district = Number(value.slice(0, 2));
  const assigned =
    district <= 12 ||
    (district >= 21 && district <= 32) ||
    (district >= 61 && district <= 72) ||
    district === 80;
  if (!assigned) return false;
  const weights = [3, 7, 1, 3, 7, 1, 3, 7, 1];
  let sum = 0;
  for (let i = 0; i < 9; i++) sum += Number(value[i]) * (weights[i] as number);
  return sum % 10 === 0;
}

/** A bank account number: 4 to 17 digits. */
export const ACCOUNT_NUMBER_SHAPE = /^[0-9]{4,17}$/;
export const ACCOUNT_TYPES: readonly AccountType[] = ['checking', 'savings'];

export function isAccountNumber(value: unknown): value is string {
  return typeof value === 'string' && ACCOUNT_NUMBER_SHAPE.test(value);
}

export function isAccountType(value: unknown): value is AccountType {
  return ACCOUNT_TYPES.includes(value as AccountType);
}
