/**
 * What a log line may hold. A field whose name suggests a secret (a token, a key, a code, an OTP, a MAC,
 * a password, a bank account or routing number, ...) is replaced by "[redacted]" whatever its value,
 * and phone numbers are masked to their first and last two digits (`+15555550123` becomes
 * `+1••••••23`; the fixed run of dots hides the length too), so an operator can tell numbers apart
 * without reading them. Errors keep their name, message and stack: our error messages never carry a
 * secret, and test/logs.test.ts checks that against every secret a full flow handles.
 *
 * The walk is bounded (depth, items, string length), so logging a large or cyclic value cannot stall
 * the server or blow its stack.
 *
 * @module
 */

export const REDACTED = '[redacted]';

const DEPTH_MAX = 6;
const ITEMS_MAX = 50;
const STRING_LENGTH_MAX = 8_192;

/** Words of a field name (split at camelCase, snake_case and kebab-case breaks) that mark it secret. */
const SECRET_WORDS: ReadonlySet<string> = new Set([
  'token',
  'tokens',
  'key',
  'keys',
  'secret',
  'secrets',
  'password',
  'passphrase',
  'code',
  'codes',
  'otp',
  'pin',
  'mac',
  'hmac',
  'signature',
  'nonce',
  'cnonce',
  'cvv',
  'cvc',
  'iban',
  'authorization',
  'cookie',
  'credential',
  'credentials',
  'seal',
  'sealed',
]);

/** Parts that mark a name secret even when it is written without breaks (`apikey`, `accountnumber`). */
const SECRET_PARTS = [
  'token',
  'secret',
  'password',
  'apikey',
  'accountnumber',
  'routingnumber',
  'cardnumber',
];

const PHONE_WORDS: ReadonlySet<string> = new Set(['phone', 'phones', 'msisdn']);

/** An E.164 number anywhere in a text; the lookahead keeps longer digit runs (not phones) whole. */
const E164 = /\+[1-9][0-9]{6,14}(?![0-9])/g;

function nameWords(name: string): string[] {
  return name
    .replace(/([a-z0-9])([A-Z])/g, '$1 $2')
    .replace(/([A-Z]+)([A-Z][a-z])/g, '$1 $2')
    .toLowerCase()
    .split(/[^a-z0-9]+/)
    .filter((word) => word.length > 0);
}

export function isSecretName(name: string): boolean {
  const words = nameWords(name);
  if (words.some((word) => SECRET_WORDS.has(word))) return true;
  const joined = words.join('');
  return SECRET_PARTS.some((part) => joined.includes(part));
}

function isPhoneName(name: string): boolean {
  return nameWords(name).some((word) => PHONE_WORDS.has(word));
}

/** `+15555550123` → `+1••••••23`: the first digit (a hint of the country) and the last two. */
export function maskedPhone(phone: string): string {
  const digits = phone.replace(/[^0-9]/g, '');
  if (digits.length < 6) return '••••••';
  return `${phone.startsWith('+') ? '+' : ''}${digits[0]}••••••${digits.slice(-2)}`;
}

/** A free text as it may be logged: bounded in length, phone numbers masked. */
export function scrubText(text: string): string {
  const bounded = text.length > STRING_LENGTH_MAX ? `${text.slice(0, STRING_LENGTH_MAX)}…` : text;
  return bounded.replace(E164, maskedPhone);
}

/** A copy of `value` that is safe to log and to pass to JSON.stringify (no cycles, no bigints). */
export function redact(value: unknown, depth = 0): unknown {
  if (typeof value === 'string') return scrubText(value);
  if (typeof value === 'bigint') return String(value);
  if (typeof value === 'function' || typeof value === 'symbol') return undefined;
  if (typeof value !== 'object' || value === null) return value;
  if (depth >= DEPTH_MAX) return '[too deep]';
  if (value instanceof Error) return errorFields(value, depth);
  if (value instanceof Date) return Number.isNaN(value.getTime()) ? null : value.toISOString();
  // Raw bytes in a diagnostic are far more often a key than anything an operator could read.
  if (ArrayBuffer.isView(value) || value instanceof ArrayBuffer) return REDACTED;
  if (Array.isArray(value)) return value.slice(0, ITEMS_MAX).map((item) => redact(item, depth + 1));
  const copy: Record<string, unknown> = {};
  for (const [name, field] of Object.entries(value).slice(0, ITEMS_MAX)) {
    copy[name] = redactField(name, field, depth + 1);
  }
  return copy;
}

type FieldKind = 'secret' | 'phone' | 'plain';

/**
 * What each field name is, decided once: the access line alone has a dozen fields, and splitting their
 * names into words for every line cost more than the rest of the line. Field names come from the code,
 * so few; names beyond the bound (keys of some logged map) are decided each time.
 */
const fieldKinds = new Map<string, FieldKind>();
const FIELD_KINDS_MAX = 1_000;

function fieldKind(name: string): FieldKind {
  let kind = fieldKinds.get(name);
  if (kind) return kind;
  kind = isSecretName(name) ? 'secret' : isPhoneName(name) ? 'phone' : 'plain';
  if (fieldKinds.size < FIELD_KINDS_MAX) fieldKinds.set(name, kind);
  return kind;
}

function redactField(name: string, value: unknown, depth: number): unknown {
  const kind = fieldKind(name);
  if (kind === 'secret') return value === undefined || value === null ? value : REDACTED;
  if (kind === 'phone' && typeof value === 'string') return maskedPhone(value);
  return redact(value, depth);
}

function errorFields(error: Error, depth: number): Record<string, unknown> {
  const fields: Record<string, unknown> = {
    name: scrubText(String(error.name)),
    message: scrubText(String(error.message)),
  };
  if (typeof error.stack === 'string') fields.stack = scrubText(error.stack);
  if (error.cause !== undefined) fields.cause = redact(error.cause, depth + 1);
  return fields;
}
