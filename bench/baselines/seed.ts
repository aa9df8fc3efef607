import { createHmac } from 'node:crypto';

/**
 * The deterministic data set the baselines are seeded with, shared with the load generator, and the
 * redeem messages both sides speak.
 *
 * Code index i in [0, codes): merchant `m${i % merchants}`, code `String(floor(i / merchants))` padded to
 * 6 digits, consumer `c${i % accounts}`. Every consumer holds one card at every merchant.
 */
export interface BaselineSeed {
  codes: number;
  merchants: number;
  accounts: number;
}

export interface SeededCode {
  merchantId: string;
  code: string;
  consumerId: string;
}

/** Each card's starting balance: enough for any consumer's redemptions at 100 cents each. */
export const CARD_BALANCE_CENTS = 1_000_000_000;
/** Each code's cap. */
export const CODE_CAP_CENTS = 1_000_000;
/** Codes expire this long after seeding. */
export const CODE_TTL_MS = 3_600_000;

const CODES_PER_MERCHANT_MAX = 1_000_000;

export function validateSeed(seed: BaselineSeed): void {
  for (const [name, value] of Object.entries(seed)) {
    if (!Number.isSafeInteger(value) || value < 1)
      throw new RangeError(`seed.${name} must be a positive integer`);
  }
  if (seed.codes > seed.merchants * CODES_PER_MERCHANT_MAX) {
    throw new RangeError(`seed: at most ${CODES_PER_MERCHANT_MAX} six-digit codes per merchant`);
  }
}

export function baselineCode(i: number, seed: BaselineSeed): SeededCode {
  return {
    merchantId: `m${i % seed.merchants}`,
    code: String(Math.floor(i / seed.merchants)).padStart(6, '0'),
    consumerId: `c${i % seed.accounts}`,
  };
}

/** How a code is stored and looked up: HMAC-SHA256 of `${merchantId}|${code}`, hex. */
export function codeHash(hashKey: Buffer, merchantId: string, code: string): string {
  return createHmac('sha256', hashKey).update(`${merchantId}|${code}`).digest('hex');
}

export interface RedeemRequest {
  seq: number;
  terminalId: string;
  key: string;
  merchantId: string;
  code: string;
  amountCents: number;
}

/** What a redeem answers (the frame adds `type` and `seq`). Declines carry approvedCents 0. */
export interface RedeemOutcome {
  status: string;
  authId?: string;
  approvedCents: number;
  balanceCents?: number;
}

export function decline(status: string): RedeemOutcome {
  return { status, approvedCents: 0 };
}

const ID = /^[\w.:-]{1,64}$/;

/** Parses a redeem frame; a malformed one gives the seq it carried (or null) to answer `bad_request`. */
export function parseRedeem(text: string): RedeemRequest | { seq: number | null } {
  let frame: unknown;
  try {
    frame = JSON.parse(text);
  } catch {
    return { seq: null };
  }
  if (typeof frame !== 'object' || frame === null) return { seq: null };
  const f = frame as Record<string, unknown>;
  const seq = Number.isSafeInteger(f.seq) ? (f.seq as number) : null;
  const valid =
    f.type === 'redeem' &&
    seq !== null &&
    typeof f.terminalId === 'string' &&
    ID.test(f.terminalId) &&
    typeof f.key === 'string' &&
    ID.test(f.key) &&
    typeof f.merchantId === 'string' &&
    ID.test(f.merchantId) &&
    typeof f.code === 'string' &&
    /^\d{6}$/.test(f.code) &&
    Number.isSafeInteger(f.amountCents) &&
    (f.amountCents as number) > 0;
  if (!valid) return { seq };
  return {
    seq,
    terminalId: f.terminalId as string,
    key: f.key as string,
    merchantId: f.merchantId as string,
    code: f.code as string,
    amountCents: f.amountCents as number,
  };
}

/** A redeem backend: one implementation per database. */
export interface Redeemer {
  redeem(request: RedeemRequest): Promise<RedeemOutcome>;
  close(): Promise<void>;
}
