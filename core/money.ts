/**
 * Amounts as people write them, for texts, the SMS channel and the web apps alike. Whole cents only: no
 * floating point on the way in or out.
 */

/** `1250` → `$12.50`, `-100` → `-$1.00`, `123456` → `$1,234.56`. */
export function dollars(cents: number): string {
  const whole = Math.floor(Math.abs(cents) / 100);
  const rest = String(Math.abs(cents) % 100).padStart(2, '0');
  return `${cents < 0 ? '-' : ''}$${whole.toLocaleString('en-US')}.${rest}`;
}

/**
 * `12`, `12.5`, `12.50`, `$12.50` (spaces around allowed) → cents; null for anything else: no sign, at
 * most two decimals, nothing that is not more than zero. Whether it is within a limit is the caller's.
 */
export function parseDollars(text: string): number | null {
  const match = /^\s*\$?\s*([0-9]{1,9})(?:\.([0-9]{1,2}))?\s*$/.exec(text);
  if (!match) return null;
  const cents = Number(match[1]) * 100 + Number((match[2] ?? '0').padEnd(2, '0'));
  return cents > 0 ? cents : null;
}
