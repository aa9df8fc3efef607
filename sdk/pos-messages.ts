/**
 * The POS message table of docs/pos-guide.md and its canonical form, shared by the server, the client library
 * and the browser terminal (no Node.js imports): each request type with its canonical fields (after
 * `type, seq`), its answer type and the answer's canonical fields (after `type, seq, status`). The MAC
 * over the canonical form is in pos-protocol.ts (Node) and web/pos/session.ts (WebCrypto).
 *
 * @module
 */

export interface PosRequestSpec {
  result: string;
  fields: readonly string[];
  answer: readonly string[];
}

export const POS_REQUESTS = {
  redeem: {
    result: 'redeemResult',
    fields: ['key', 'code', 'amountCents', 'partial'],
    answer: ['authId', 'approvedCents', 'balanceCents'],
  },
  inquire: { result: 'inquireResult', fields: ['code'], answer: ['availableCents'] },
  void: { result: 'voidResult', fields: ['key', 'authId'], answer: ['authId', 'balanceCents'] },
  refund: {
    result: 'refundResult',
    fields: ['key', 'authId', 'amountCents'],
    answer: ['refundId', 'balanceCents'],
  },
  reverse: { result: 'reverseResult', fields: ['key'], answer: [] },
  ping: { result: 'pong', fields: [], answer: [] },
} as const satisfies Record<string, PosRequestSpec>;

export type PosRequestType = keyof typeof POS_REQUESTS;

export function isPosRequestType(type: unknown): type is PosRequestType {
  return typeof type === 'string' && Object.hasOwn(POS_REQUESTS, type);
}

/** The canonical fields of a request type after `type, seq`; undefined for an unknown type. */
export function requestFields(type: unknown): readonly string[] | undefined {
  return isPosRequestType(type) ? POS_REQUESTS[type].fields : undefined;
}

/** The canonical fields of an answer type after `type, seq, status`; undefined for an unknown type. */
export function answerFields(type: unknown): readonly string[] | undefined {
  return typeof type === 'string' && Object.hasOwn(POS_ANSWERS, type) ? POS_ANSWERS[type] : undefined;
}

/** The answer fields of each answer type, `error` (an unknown request type) included. */
export const POS_ANSWERS: Readonly<Record<string, readonly string[]>> = Object.fromEntries([
  ...Object.values(POS_REQUESTS).map((spec: PosRequestSpec) => [spec.result, spec.answer]),
  ['error', []],
]);

/**
 * Fields joined with `|`: integers in decimal, strings as they are, absent or null as ''. Null when a
 * field is an object or array, which no message of the protocol has (such a message is malformed).
 */
export function canonical(fields: readonly unknown[]): string | null {
  const parts: string[] = [];
  for (const field of fields) {
    if (field === undefined || field === null) parts.push('');
    else if (typeof field === 'object' || typeof field === 'function' || typeof field === 'symbol')
      return null;
    else parts.push(String(field));
  }
  return parts.join('|');
}
