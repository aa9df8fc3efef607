/**
 * Every outcome a client can see, in one append-only table. Business outcomes travel as values
 * (`{ status }`), never as exceptions; the HTTP code is what the gateway answers with. The table is a
 * `Record<Status, ...>`, so a status without a meaning or an HTTP code does not compile.
 *
 * @module
 */

export const STATUSES = {
  approved: { http: 200, meaning: 'The request succeeded.' },
  invalid_code: { http: 422, meaning: 'No live code with these digits exists at this merchant.' },
  expired_code: {
    http: 422,
    meaning: 'The code existed but its lifetime has passed; the consumer needs a new one.',
  },
  insufficient_funds: {
    http: 422,
    meaning: 'The available value (balance minus holds) does not cover the request.',
  },
  over_cap: {
    http: 422,
    meaning: 'The amount is above the code cap and a partial approval was not allowed.',
  },
  account_frozen: { http: 422, meaning: 'The consumer froze the account; no code can be issued or spent.' },
  terminal_locked: {
    http: 423,
    meaning: 'The terminal is locked after too many failed codes; the merchant unlocks it.',
  },
  rate_limited: { http: 429, meaning: 'Too many requests; retry later.' },
  void_window_closed: {
    http: 422,
    meaning: 'The redemption is older than the void window or already settled; refund instead.',
  },
  already_voided: { http: 422, meaning: 'The redemption was already voided or reversed.' },
  nothing_to_void: {
    http: 422,
    meaning: 'The redemption was refunded in full: nothing is left to void.',
  },
  refund_exceeds: {
    http: 422,
    meaning: 'The refund is larger than what is left to refund on this redemption.',
  },
  not_found: { http: 404, meaning: 'The referenced object does not exist or is not visible to the caller.' },
  nothing_to_reverse: { http: 422, meaning: 'No approved, unvoided redemption exists under this key.' },
  reversed: { http: 200, meaning: 'The redemption named by the key was undone (also when repeated).' },
  payment_declined: {
    http: 422,
    meaning: 'The card payment for a purchase was declined by the funding provider.',
  },
  idempotency_mismatch: { http: 409, meaning: 'The idempotency key was used before with different fields.' },
  bad_request: {
    http: 400,
    meaning: 'The request is malformed: a missing or mistyped field, or a value out of range.',
  },
  bad_mac: {
    http: 401,
    meaning: 'The message authentication code does not verify; the message was ignored.',
  },
  replay: {
    http: 409,
    meaning: 'The sequence number is not greater than the last accepted one; the message was ignored.',
  },
  unauthorized: { http: 401, meaning: 'Missing or invalid credentials.' },
  forbidden: { http: 403, meaning: 'The credentials are valid but do not allow this request.' },
  overloaded: {
    http: 503,
    meaning:
      'The server cannot take the request now (a bounded queue is full, a shard is restarting, or storage refuses writes); retry shortly with the same key.',
  },
  internal: { http: 500, meaning: 'An unexpected server error; retry with the same key.' },
  limit_exceeded: {
    http: 422,
    meaning:
      "The request would pass a configured value limit (card balance, load size, the consumer's payments per day).",
  },
} as const satisfies Record<string, { http: number; meaning: string }>;

export type Status = keyof typeof STATUSES;

export function isStatus(value: unknown): value is Status {
  return typeof value === 'string' && Object.hasOwn(STATUSES, value);
}

/** Statuses that describe a transient condition; they are never stored as an idempotent result. */
export const TRANSIENT_STATUSES: ReadonlySet<Status> = new Set(['overloaded', 'internal', 'rate_limited']);
