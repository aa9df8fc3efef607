import { createHash } from 'node:crypto';

/**
 * A merchant's reference in ACH files: the entry's identification number (positions 40-54), which the
 * merchant's bank shows it next to the credit and its statements show too. Merchant ids are longer than
 * the field and case-sensitive, so the reference is derived from the id: `P` and 14 characters of RFC
 * 4648 base32 (upper case, the alphabet banks keep intact) of a hash of it, 70 bits. It never changes for a
 * merchant; two merchants share one with a chance of about 10⁻⁹ among a million merchants, and a file
 * never carries two entries with the same reference (compute.ts leaves the second unpaid).
 *
 * @module
 */

const BASE32 = 'ABCDEFGHIJKLMNOPQRSTUVWXYZ234567';

export function achReference(merchantId: string): string {
  const digest = createHash('sha256').update(`paycode ach reference|${merchantId}`).digest();
  let bits = 0n;
  for (const byte of digest.subarray(0, 9)) bits = (bits << 8n) | BigInt(byte);
  let reference = '';
  for (let i = 0; i < 14; i++) reference += BASE32[Number((bits >> BigInt(72 - 5 * (i + 1))) & 31n)];
  return `P${reference}`;
}

/** The reference a settled merchant's entry carried, also in settlements made before references existed. */
export function settledReference(merchant: { merchantId: string; achReference?: string }): string {
  return merchant.achReference ?? merchant.merchantId.slice(-15).toUpperCase();
}
