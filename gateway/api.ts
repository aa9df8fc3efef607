import { type TObject, type TSchema, Type } from '@sinclair/typebox';
import { CODE_DIGITS_MAX, CODE_DIGITS_MIN } from '../core/codes.ts';
import { LIMITS } from '../core/limits.ts';
import { ACCOUNT_NUMBER_SHAPE, ACCOUNT_TYPES } from '../settlement/bank.ts';
import {
  cents,
  codeDigits,
  date,
  epochMs,
  flag,
  id,
  idempotencyKey,
  int,
  nullable,
  otp,
  phone,
  stringEnum,
  text,
} from './api-schema.ts';
import { KEYWORD_SHAPE } from './merchants.ts';

/**
 * Every HTTP route of the API, declared once: its method and path, who may call it, its body, query and
 * path parameters, and its answers. The route files register their handlers against these declarations
 * (route-kit.ts checks the caller and the input from them before a handler runs), and openapi.ts builds
 * docs/openapi.json from them. Errors are added by caller: 401 and 403 where a token is needed, 400 where
 * there is input to check.
 *
 * @module
 */

/**
 * Who may call: `anyone` (no token looked up), `anyToken` (told whose token it is, if any), `merchant`
 * (the merchant named in the path, or the operator), `merchantOnly` (that merchant alone), `device` (a
 * consumer's device token), `operator`.
 */
export type CallerKind = 'anyone' | 'anyToken' | 'merchant' | 'merchantOnly' | 'device' | 'operator';

/** An answer: what it means, and its JSON body (or a body of another content type). */
export interface AnswerSpec {
  description: string;
  schema?: TSchema;
  contentType?: string;
  /** The same answer in other content types, by content type. */
  alternatives?: Record<string, TSchema>;
}

export interface RouteSpec<
  B extends TObject | undefined = TObject | undefined,
  Q extends TObject | undefined = TObject | undefined,
  C extends CallerKind = CallerKind,
> {
  method: 'get' | 'post' | 'delete';
  /** uWebSockets.js pattern: `:name` for a path parameter. */
  path: string;
  caller: C;
  summary: string;
  description?: string;
  /** Path parameters that have a rule (the others are any string). */
  params?: TObject;
  query?: Q;
  body?: B;
  /** The body may be left out (then it counts as `{}`). */
  bodyOptional?: boolean;
  /** What a caller of another kind is told (403). */
  forbidden?: string;
  answers: Record<number, AnswerSpec>;
  /** Error statuses besides those of the caller check and the input check. */
  errors?: readonly number[];
}

/** Answers that name a limit of their own (route handlers use the same words). */
export const CURSOR_EXPIRED = 'the cursor has expired; start again from the newest';
export const DEV_INBOX_TEXTS_MAX = 50;

const route = <
  B extends TObject | undefined = undefined,
  Q extends TObject | undefined = undefined,
  C extends CallerKind = CallerKind,
>(
  spec: RouteSpec<B, Q, C>,
) => spec;

const answer = (
  description: string,
  schema?: TSchema,
  alternatives?: Record<string, TSchema>,
): AnswerSpec => ({
  description,
  schema,
  ...(alternatives && { alternatives }),
});
const object = Type.Object;
const opt = Type.Optional;
const str = (description?: string) => Type.String(description ? { description } : {});
const integer = (description?: string) => Type.Integer(description ? { description } : {});
const NOTHING = Type.Object({});

/** Schemas the document names (components/schemas), each with the name it is given there. */
export const COMPONENTS = new Map<TSchema, string>();
const component = <T extends TSchema>(name: string, schema: T): T => {
  COMPONENTS.set(schema, name);
  return schema;
};

export const ERROR = component(
  'Error',
  object({
    error: object({ code: str('a status of docs/statuses.md'), message: str() }),
  }),
);

const CODE = Type.String({
  pattern: `^[0-9]{${CODE_DIGITS_MIN},${CODE_DIGITS_MAX}}$`,
  description:
    '6 digits at a quiet merchant, longer (up to 10) while it is busy or when the merchant chose a longer minimum; leading zeros kept',
});

const LIVE_CODE = object({
  code: CODE,
  merchantId: str(),
  capCents: integer(),
  expiresAtMs: integer(),
});

const WALLET = component(
  'Wallet',
  object({
    cards: Type.Array(
      object({
        cardId: str(),
        merchantId: str(),
        merchantName: str(),
        kind: stringEnum(['gift', 'reward']),
        balanceCents: integer(),
        availableCents: integer(),
        alertBelowCents: opt(integer('the low-balance alert the consumer set on the card (v1.1 extension)')),
      }),
    ),
    activeCode: nullable(LIVE_CODE),
    frozen: opt(flag('extension')),
  }),
);

const ACTIVITY_BUCKET = component(
  'ActivityBucket',
  object({
    startMs: integer(),
    endMs: integer(),
    redemptions: integer(),
    redeemedCents: integer(),
    returnedCents: integer('voided, reversed and refunded, positive'),
    netCents: integer('redeemedCents - returnedCents, before fees'),
    issuedCents: integer('gift cards and rewards the merchant issued'),
  }),
);

const CARD = object({ cardId: str(), balanceCents: integer() });
const LIABILITY_FIGURES = component(
  'LiabilityFigures',
  object({
    openingCents: integer(),
    issuedCents: integer('value the merchant issued'),
    soldCents: integer('gift cards consumers bought by card'),
    redeemedCents: integer('redeemed, net of voids, reversals and refunds'),
    expiredCents: integer('rewards that expired unspent'),
    closingCents: integer('opening + issued + sold - redeemed - expired'),
  }),
);
const TERMINAL_ACTIVATION = object({ terminalId: str(), activationCode: str() });
const BUSINESS_DATE = object({ businessDate: date() });
const TERMINAL_LOCK = object({ terminalId: str(), locked: Type.Boolean() });
const PAGE_LIMIT = (fallback: number) => int(1, LIMITS.reportPageEntriesMax, { default: fallback });
const DAYS = int(1, LIMITS.reportActivityDaysMax, { default: 7 });
const FORMAT = opt(stringEnum(['json', 'csv'], '"json" or "csv"'));
const NAME = text(
  LIMITS.nameLengthMax,
  `1-${LIMITS.nameLengthMax} characters, not blank, without | or control characters`,
);
const REPORT_BOUNDS = `At most reportScansPerMerchantMax (${LIMITS.reportScansPerMerchantMax}) report of a merchant and reportScansMax (${LIMITS.reportScansMax}) in all are read at once; one more is overloaded.`;
const SCAN_BOUND = `at most reportScanEntriesMax entries (${LIMITS.reportScanEntriesMax.toLocaleString('en-US')})`;
const ACTIVATION_HOURS = `${LIMITS.activationTtlMs / 3_600_000} h`;

export const ROUTES = {
  me: route({
    method: 'get',
    path: '/v1/me',
    caller: 'anyToken',
    summary: 'Who the bearer token stands for, without personal data (extension)',
    answers: {
      200: answer(
        'the caller',
        Type.Union([
          object({ kind: Type.Literal('merchant'), merchantId: str(), name: str() }),
          object({ kind: Type.Literal('operator') }),
          object({ kind: Type.Literal('device'), expiresAtMs: integer() }),
        ]),
      ),
    },
    errors: [401],
  }),

  // The operator's.
  createMerchant: route({
    method: 'post',
    path: '/v1/merchants',
    caller: 'operator',
    forbidden: 'only the operator creates merchants',
    summary: 'Create a merchant',
    body: object({
      name: NAME,
      routingNumber: Type.String({
        pattern: '^[0-9]{9}$',
        format: 'aba-routing',
        description: '9 digits of an assigned ABA prefix with a valid check digit',
      }),
      accountNumber: Type.String({ pattern: ACCOUNT_NUMBER_SHAPE.source, description: '4-17 digits' }),
      accountType: stringEnum(ACCOUNT_TYPES, '"checking" or "savings"'),
      keyword: nullable(
        Type.String({
          pattern: KEYWORD_SHAPE.source,
          description: '2-16 letters or digits: the SMS keyword (PAY <keyword>), unique; null for none',
        }),
        { default: null },
      ),
      feeBps: int(0, 10_000, { default: 0 }),
      feeFixedCents: int(0, 100_000, { default: 0 }),
      codeDigitsMin: codeDigits({ default: CODE_DIGITS_MIN }),
    }),
    answers: {
      201: answer('created', object({ merchantId: str(), apiKey: str('returned once; stored hashed') })),
    },
  }),

  setCodeDigits: route({
    method: 'post',
    path: '/v1/merchants/:merchantId/code-digits',
    caller: 'operator',
    forbidden: 'only the operator sets the code length',
    summary:
      "Set the shortest payment code a merchant's consumers get, 6 to 10 digits (extension); live codes keep their length",
    body: object({ codeDigitsMin: codeDigits() }),
    answers: {
      200: answer("the merchant's setting", object({ merchantId: str(), codeDigitsMin: codeDigits() })),
    },
    errors: [404],
  }),

  settle: route({
    method: 'post',
    path: '/v1/settlements',
    caller: 'operator',
    forbidden: 'settlement is for the operator',
    summary: 'Settle a business day (idempotent per date): nets per merchant and the NACHA file',
    body: BUSINESS_DATE,
    errors: [503],
    answers: {
      200: answer(
        'settled (again: the same result)',
        object({
          businessDate: str(),
          merchants: Type.Array(
            object({
              merchantId: str(),
              netCents: integer('positive: ACH credit to the merchant; negative: debit'),
            }),
          ),
          achFileId: str(),
        }),
      ),
    },
  }),

  settlement: route({
    method: 'get',
    path: '/v1/settlements/:businessDate',
    caller: 'operator',
    forbidden: 'settlement is for the operator',
    summary: "The operator's reconciliation summary of a settled day (extension)",
    params: BUSINESS_DATE,
    answers: {
      200: answer(
        "journal totals next to the file's, with every disagreement",
        Type.Object({}, { additionalProperties: true }),
      ),
    },
    errors: [404],
  }),

  achFile: route({
    method: 'get',
    path: '/v1/settlements/:businessDate/ach',
    caller: 'operator',
    forbidden: 'settlement is for the operator',
    summary: 'The NACHA ACH file of a settled day',
    params: BUSINESS_DATE,
    answers: {
      200: {
        description: '94-character records blocked by 10',
        schema: Type.String(),
        contentType: 'text/plain',
      },
    },
    errors: [404],
  }),

  deadTexts: route({
    method: 'get',
    path: '/v1/texts/dead',
    caller: 'operator',
    forbidden: 'dead texts are for the operator',
    summary: `The texts the SMS provider refused for good, oldest first, at most ${LIMITS.reportPageEntriesMax} (extension)`,
    answers: {
      200: answer(
        'never a text or a phone number',
        object({
          texts: Type.Array(
            object({
              id: Type.String({ pattern: '^[0-9]+-[0-9]+-[0-9]+$' }),
              kind: stringEnum(['text', 'receipt']),
              consumerId: str(),
              queuedAtMs: integer(),
              failedAtMs: integer(),
              reason: str(),
            }),
          ),
        }),
      ),
    },
  }),

  resendDeadText: route({
    method: 'post',
    path: '/v1/texts/dead/:id/resend',
    caller: 'operator',
    forbidden: 'dead texts are for the operator',
    summary: 'Puts a dead text back in the outbox (extension)',
    answers: { 200: answer('back in the outbox, durably', object({ resent: Type.Literal(true) })) },
    errors: [404],
  }),

  // A merchant's, with its own API key or the operator's token.
  merchant: route({
    method: 'get',
    path: '/v1/merchants/:merchantId',
    caller: 'merchant',
    summary: "A merchant's public details (extension)",
    answers: {
      200: answer(
        'the merchant',
        object({
          merchantId: str(),
          name: str(),
          keyword: nullable(str()),
          feeBps: integer(),
          feeFixedCents: integer(),
          codeDigitsMin: codeDigits(),
        }),
      ),
    },
  }),

  rotateApiKey: route({
    method: 'post',
    path: '/v1/merchants/:merchantId/api-key',
    caller: 'merchant',
    summary:
      'A new API key for the merchant; every earlier key of the merchant stops working at once (extension)',
    answers: { 201: answer('the new key, shown once', object({ merchantId: str(), apiKey: str() })) },
  }),

  terminals: route({
    method: 'get',
    path: '/v1/merchants/:merchantId/terminals',
    caller: 'merchant',
    summary:
      "The merchant's terminals, oldest first, never a key or an activation code, and whether its code attempts are refused (extension)",
    answers: {
      200: answer(
        'the terminals',
        object({
          terminals: Type.Array(
            object({
              terminalId: str(),
              label: str(),
              state: stringEnum(['pending', 'active', 'locked', 'revoked', 'expired']),
              locked: flag(
                "may not try codes: locked by the merchant, after failed codes in a row, or at the day's failure limit",
              ),
              failedCodesToday: integer('failed codes in the last 24 hours'),
              activationExpiresAtMs: nullable(integer('set while an activation code is outstanding')),
              createdAtMs: integer(),
            }),
          ),
          codeAttempts: Type.Union(
            [
              object({ refused: Type.Literal(false) }),
              object(
                { refused: Type.Literal(true) },
                { additionalProperties: true, description: 'which failure window refuses, and until when' },
              ),
            ],
            { description: "whether the merchant's code attempts are refused for too many failed codes" },
          ),
        }),
      ),
    },
  }),

  createTerminal: route({
    method: 'post',
    path: '/v1/merchants/:merchantId/terminals',
    caller: 'merchantOnly',
    summary: 'Create a terminal',
    body: object({
      label: NAME,
    }),
    answers: {
      201: answer(
        `created; the activation code is single use and valid ${ACTIVATION_HOURS}`,
        TERMINAL_ACTIVATION,
      ),
    },
  }),

  lockTerminal: route({
    method: 'post',
    path: '/v1/merchants/:merchantId/terminals/:terminalId/lock',
    caller: 'merchant',
    summary: 'Lock a terminal: codes are refused with terminal_locked (extension)',
    answers: { 200: answer('locked', TERMINAL_LOCK) },
  }),

  unlockTerminal: route({
    method: 'post',
    path: '/v1/merchants/:merchantId/terminals/:terminalId/unlock',
    caller: 'merchant',
    summary:
      "Unlock a terminal and reset its failed codes in a row; the operator's unlock also clears the day's failed codes (extension)",
    answers: { 200: answer('unlocked', TERMINAL_LOCK) },
  }),

  revokeTerminal: route({
    method: 'post',
    path: '/v1/merchants/:merchantId/terminals/:terminalId/revoke',
    caller: 'merchant',
    summary:
      'Revoke the terminal key at once: its POS sessions are closed, an unused activation code is voided (extension)',
    answers: { 200: answer('revoked', object({ terminalId: str(), revoked: Type.Boolean() })) },
  }),

  rekeyTerminal: route({
    method: 'post',
    path: '/v1/merchants/:merchantId/terminals/:terminalId/rekey',
    caller: 'merchantOnly',
    summary: `A new single-use activation code (${ACTIVATION_HOURS}) for the terminal; the old key works until it is used, then its sessions are closed (extension)`,
    answers: { 201: answer('a new activation code', TERMINAL_ACTIVATION) },
  }),

  issueCard: route({
    method: 'post',
    path: '/v1/merchants/:merchantId/cards',
    caller: 'merchantOnly',
    summary: 'Issue a gift card or reward to a phone (loads the existing card of that kind)',
    body: Type.Object(
      {
        phone: phone(),
        amountCents: cents(),
        kind: stringEnum(['gift', 'reward'], '"gift" or "reward"'),
        idempotencyKey: idempotencyKey(),
        expiresAtMs: opt(epochMs('an epoch time in milliseconds, for rewards only: when the reward expires')),
      },
      {
        if: { required: ['kind'], properties: { kind: { const: 'gift' } } },
        // biome-ignore lint/suspicious/noThenProperty: the JSON Schema keyword
        then: { properties: { expiresAtMs: false } },
      },
    ),
    answers: { 201: answer('loaded; a replay gets the same response', CARD) },
    errors: [404, 409, 422],
  }),

  transactions: route({
    method: 'get',
    path: '/v1/merchants/:merchantId/transactions',
    caller: 'merchant',
    summary:
      "The merchant's postings from the journal, newest first, as they count for its net; no consumer data (extension)",
    description: `Reads the journal in chunks, ${SCAN_BOUND} per request; a page cut short by that bound has scanLimited true and a next cursor to go on from where it stopped. The cursor is opaque (sealed under a key the server makes at start) and names nothing of other merchants; after a restart it is refused as bad_request, '${CURSOR_EXPIRED}'. With ?format=csv the page comes as CSV (journalKey, at, kind, ref, amountCents), and the next page's cursor in the paycode-next header. ${REPORT_BOUNDS}`,
    query: object({
      limit: PAGE_LIMIT(50),
      before: opt(
        Type.String({
          pattern: '^[A-Za-z0-9_-]{64}$',
          description:
            'the next of a previous page (an opaque cursor valid until the server restarts), not with beforeMs',
        }),
      ),
      beforeMs: opt(epochMs('an epoch time in milliseconds: postings before it; not with before')),
      format: FORMAT,
    }),
    answers: {
      200: answer(
        'a page',
        object({
          transactions: Type.Array(
            object({
              journalKey: str(),
              atMs: integer(),
              kind: stringEnum(['redeem', 'void', 'reverse', 'refund', 'load', 'expire']),
              ref: str(),
              amountCents: integer("what the posting adds to the merchant's net, before fees"),
            }),
          ),
          next: nullable(
            str('the before of the next page, an opaque cursor; null at the start of the journal'),
          ),
          scanLimited: flag(
            'the scan bound stopped the read before the page was full; next goes on from there',
          ),
        }),
        { 'text/csv': Type.String() },
      ),
    },
    errors: [503],
  }),

  activity: route({
    method: 'get',
    path: '/v1/merchants/:merchantId/activity',
    caller: 'merchant',
    summary: 'Sales per business day for the last N days and per hour for the last 24 hours (extension)',
    description: `Settled days are read from their statements; the rest from the journal, newest first, at most reportScanEntriesMax entries; what the bound left unread is given in unread, in whole hours of the settlement time zone. The hours are whole hours of that zone (timeZone). ${REPORT_BOUNDS}`,
    query: object({
      days: DAYS,
    }),
    answers: {
      200: answer(
        'the buckets, oldest first',
        object({
          timeZone: str(),
          cutoff: str(),
          days: Type.Array(Type.Intersect([ACTIVITY_BUCKET, object({ date: str() })])),
          hours: Type.Array(ACTIVITY_BUCKET, {
            description:
              'the last 24 hours of the clock of timeZone, each from a whole hour of that zone, oldest first; the last one is the current hour',
          }),
          scanLimited: Type.Boolean(),
          unread: nullable(object({ fromMs: integer(), toMs: integer() }), {
            description:
              'when the scan bound stopped the read: every posting left out lies in [fromMs, toMs); toMs is a whole hour of timeZone',
          }),
        }),
      ),
    },
    errors: [503],
  }),

  liability: route({
    method: 'get',
    path: '/v1/merchants/:merchantId/liability',
    caller: 'merchant',
    summary:
      "Value outstanding on the merchant's cards per business day, by kind: opening, issued, sold, redeemed, expired, closing (extension); JSON or CSV (?format=csv)",
    description: `Gift card value never expires (giftValueExpires is always false); only rewards do. giftBought is the part of the gift figures consumers bought (purchases, and gifts of bought value), the rest being value the merchant issued: a payment or a gift spends issued value first and bought value last, a void or refund gives bought value back first; gift value loaded before the funding was kept counts as issued; its issuedCents and expiredCents are always 0. reconciled says that every movement of the merchant's cards in the journal is in one of the figures, so each closing is the sum of the cards' legs to that day's end. A finished day is kept once a report has read it whole, it reconciles, and no posting can still reach it (its end is older than settlementStragglerWindowMs), so a report reads the kept days and the journal only after the last of them (a merchant's first report, or the first after the settlement cut-off changed, reads it from its start), ${SCAN_BOUND}. A read cut short by that bound gives scanLimited true and figures of the part read only; it keeps the days it read whole, so asking again goes on from there, as long as one business day of the whole journal fits in that bound. ${REPORT_BOUNDS}`,
    query: object({
      days: DAYS,
      format: FORMAT,
    }),
    answers: {
      200: {
        description: 'the business days, oldest first; CSV with ?format=csv (one row per day and kind)',
        schema: object({
          timeZone: str(),
          cutoff: str(),
          giftValueExpires: Type.Literal(false),
          days: Type.Array(
            object({
              date: str(),
              startMs: integer(),
              endMs: integer(),
              gift: LIABILITY_FIGURES,
              reward: LIABILITY_FIGURES,
              giftBought: LIABILITY_FIGURES,
            }),
          ),
          reconciled: flag("every movement of the merchant's cards in the journal is in one of the figures"),
          scanLimited: Type.Boolean(),
        }),
        alternatives: { 'text/csv': Type.String() },
      },
    },
    errors: [503],
  }),

  statements: route({
    method: 'get',
    path: '/v1/merchants/:merchantId/statements',
    caller: 'merchant',
    summary: "The merchant's settled business days with its figures and net, newest first (extension)",
    query: object({
      limit: PAGE_LIMIT(31),
      before: opt(date('a date YYYY-MM-DD: days before it')),
    }),
    answers: {
      200: answer(
        'the days; the postings of each are at /statements/{businessDate}',
        object({
          statements: Type.Array(
            object({
              businessDate: str(),
              settlementId: str(),
              achFileId: str(),
              effectiveDate: str(),
              direction: stringEnum(['credit', 'debit', 'none']),
              redeemedCents: opt(integer()),
              voidedCents: opt(integer()),
              reversedCents: opt(integer()),
              refundedCents: opt(integer()),
              issuedCents: opt(integer()),
              expiredCents: opt(integer()),
              redemptions: opt(integer()),
              undone: opt(integer()),
              feeCents: integer(),
              netCents: integer(),
              traceNumber: opt(nullable(str())),
              achReference: Type.String({
                pattern: '^P[A-Z2-7]{14}$',
                description: 'how the ACH entry names the merchant (its identification number)',
              }),
            }),
          ),
          next: nullable(str('the before of the next page')),
        }),
      ),
    },
    errors: [503],
  }),

  statement: route({
    method: 'get',
    path: '/v1/merchants/:merchantId/statements/:businessDate',
    caller: 'merchant',
    summary: "A merchant's statement for a settled day, JSON or CSV (?format=csv) (extension)",
    params: BUSINESS_DATE,
    query: object({ format: FORMAT }),
    answers: {
      200: {
        description: 'every posting, fees, net, file and trace number; CSV with ?format=csv',
        schema: Type.Object({}, { additionalProperties: true }),
        alternatives: { 'text/csv': Type.String() },
      },
    },
  }),

  // Terminals, before they hold a credential.
  activateTerminal: route({
    method: 'post',
    path: '/v1/terminals/activate',
    caller: 'anyone',
    summary: 'Activate a terminal',
    body: object({ activationCode: text(32, 'the activation code the merchant was given') }),
    answers: {
      200: answer(
        'the terminal key, returned once',
        object({ terminalId: str(), merchantId: str(), terminalKey: str('base64url of 32 bytes') }),
      ),
    },
    errors: [404],
  }),

  // Consumers.
  register: route({
    method: 'post',
    path: '/v1/consumers',
    caller: 'anyToken',
    summary: 'Text a verification code to a phone',
    description:
      "The operator's token (bulk onboarding) skips the budgets per client address and for the whole platform, never the phone's own limits.",
    body: object({ phone: phone() }),
    answers: { 202: answer('sent', NOTHING) },
    errors: [429],
  }),

  verify: route({
    method: 'post',
    path: '/v1/consumers/verify',
    caller: 'anyone',
    summary: 'Check the verification code; get a device token',
    body: object({
      phone: phone(),
      otp: otp(),
      revokeOtherDevices: opt(
        flag(
          'true or false (extension): a lost phone; every other device token of the consumer stops working and their wallet sockets are closed',
        ),
      ),
    }),
    answers: { 200: answer('verified', object({ consumerId: str(), deviceToken: str() })) },
    errors: [401],
  }),

  purchase: route({
    method: 'post',
    path: '/v1/wallet/purchases',
    caller: 'device',
    summary: 'Buy a gift card with a payment token',
    body: object({
      merchantId: id('a merchant id'),
      amountCents: cents(),
      paymentToken: text(256, "the card processor's payment token"),
      idempotencyKey: idempotencyKey(),
    }),
    answers: { 201: answer('bought; a replay gets the same response and is not charged again', CARD) },
    errors: [403, 404, 409, 422],
  }),

  sendGift: route({
    method: 'post',
    path: '/v1/wallet/gifts',
    caller: 'device',
    summary: 'Give gift-card value to another phone (v1.1)',
    description: `Only gift value is given, never reward value; more than the card's available gift value is insufficient_funds, more than is left of the day's spending (payments and gifts together) limit_exceeded. The receiver need not be registered yet: the value waits on a gift card for that phone. Both phones get a text; the receiver's wallet gets a balance push with cause gift. toPhone must be another phone than the giver's. A giver makes at most giftsPerDayMax (${LIMITS.giftsPerDayMax}) gifts a day; one more is rate_limited.`,
    body: object({
      merchantId: id('a merchant id: whose gift card the value is given from'),
      toPhone: phone(),
      amountCents: Type.Integer({
        minimum: LIMITS.giftMinCents,
        maximum: Number.MAX_SAFE_INTEGER,
        description: `an integer of cents, at least ${LIMITS.giftMinCents}`,
      }),
      idempotencyKey: idempotencyKey(),
    }),
    answers: {
      201: answer(
        'given; a replay gets the same response',
        object({
          giftId: str(),
          balanceCents: integer("the giver's gift card at that merchant afterwards"),
        }),
      ),
    },
    errors: [404, 409, 422, 429],
  }),

  wallet: route({
    method: 'get',
    path: '/v1/wallet',
    caller: 'device',
    summary: 'The wallet',
    answers: { 200: answer('cards and the live code', WALLET) },
  }),

  setCardAlert: route({
    method: 'post',
    path: '/v1/wallet/cards/:cardId/alert',
    caller: 'device',
    summary: "Set or clear a card's low-balance alert (extension)",
    description:
      'Off by default. When a redemption (or a gift sent) takes the card from at least belowCents to below it, its confirmation text says so; later sales below it do not repeat it, until the balance is above it again and crosses once more.',
    body: object({
      belowCents: nullable(
        cents('a positive integer of cents: the balance to be told about; null for no alert'),
      ),
    }),
    answers: {
      200: answer('the alert', object({ cardId: str(), alertBelowCents: nullable(integer()) })),
    },
    errors: [404],
  }),

  issueCode: route({
    method: 'post',
    path: '/v1/wallet/codes',
    caller: 'device',
    summary: 'Request a payment code (cancels the previous live code)',
    body: object({
      merchantId: id('a merchant id'),
      capCents: opt(
        nullable(cents('a positive integer of cents: the most the code may take; null for no cap')),
      ),
    }),
    answers: { 201: answer('issued', LIVE_CODE) },
    errors: [404, 422],
  }),

  cancelCode: route({
    method: 'delete',
    path: '/v1/wallet/codes',
    caller: 'device',
    summary: 'Cancel the live code',
    answers: { 200: answer('cancelled', NOTHING) },
    errors: [404],
  }),

  history: route({
    method: 'get',
    path: '/v1/wallet/history',
    caller: 'device',
    summary: 'Card movements, newest first',
    answers: {
      200: answer(
        'history',
        object({
          entries: Type.Array(
            object({
              atMs: integer(),
              kind: str(),
              merchantId: str(),
              amountCents: integer(),
              balanceCents: integer(),
              ref: str(),
              cardId: str(),
            }),
          ),
        }),
      ),
    },
  }),

  signOut: route({
    method: 'delete',
    path: '/v1/wallet/token',
    caller: 'device',
    summary: 'Sign this device out: its token stops working and its wallet sockets are closed (extension)',
    answers: { 200: answer('signed out', NOTHING) },
  }),

  freeze: route({
    method: 'post',
    path: '/v1/wallet/freeze',
    caller: 'device',
    summary:
      'Freeze the account: cancels the live code, refuses new ones; optionally signs out every other device (extension)',
    body: object({
      revokeOtherDevices: opt(
        flag(
          'true or false: every other device token of the consumer stops working (their wallet sockets close); this device gets the new `deviceToken`',
        ),
      ),
    }),
    bodyOptional: true,
    answers: {
      200: answer(
        'frozen',
        object({
          frozen: Type.Boolean(),
          deviceToken: opt(
            str("with revokeOtherDevices: this device's new token (the old one no longer works)"),
          ),
        }),
      ),
    },
  }),

  unfreezeCode: route({
    method: 'post',
    path: '/v1/wallet/unfreeze/code',
    caller: 'device',
    summary:
      "Text a verification code to the consumer's phone for unfreezing; the same send limits as POST /v1/consumers (extension)",
    answers: { 202: answer('the code was queued', NOTHING) },
    errors: [404, 429],
  }),

  unfreeze: route({
    method: 'post',
    path: '/v1/wallet/unfreeze',
    caller: 'device',
    summary:
      'Unfreeze the account with a fresh verification code texted to the phone (POST /v1/wallet/unfreeze/code), so a device token alone cannot undo a freeze (extension)',
    body: object({ otp: otp('the 6 digits texted by POST /v1/wallet/unfreeze/code') }),
    answers: { 200: answer('unfrozen', object({ frozen: Type.Boolean() })) },
  }),

  // Operations.
  health: route({
    method: 'get',
    path: '/healthz',
    caller: 'anyone',
    summary:
      'Health: 200 while every shard serves and writes (in a cluster: here, or on another node whose lease lives: `remote`), 503 otherwise (in a cluster, on every node while some shard has no live owner)',
    answers: {
      200: answer('up', object({ ok: Type.Literal(true) })),
      503: answer(
        'degraded (a shard is restarting or the storage refuses its writes) or failing (a shard was given up)',
        object({
          ok: Type.Literal(false),
          status: stringEnum(['degraded', 'failing']),
          shards: Type.Array(
            object({
              shardIndex: integer(),
              state: stringEnum(['starting', 'serving', 'restarting', 'failed', 'stopped', 'remote']),
              writable: Type.Boolean(),
              restarts: integer(),
            }),
          ),
        }),
      ),
    },
  }),

  metrics: route({
    method: 'get',
    path: '/metrics',
    caller: 'anyone',
    summary:
      'Prometheus metrics: to this machine only (never a forwarded request), or to anyone with the metrics token when PAYCODE_METRICS_TOKEN is set',
    answers: { 200: { description: 'text format', schema: Type.String(), contentType: 'text/plain' } },
    errors: [401, 403],
  }),

  devInbox: route({
    method: 'get',
    path: '/v1/dev/inbox',
    caller: 'anyone',
    summary: `Texts sent, newest first, at most ${DEV_INBOX_TEXTS_MAX}; only with PAYCODE_SMS=console (development), from this machine`,
    query: object({ phone: opt(str('only the texts to this number, as written')) }),
    answers: {
      200: answer(
        'texts',
        object({ texts: Type.Array(object({ phone: str(), text: str(), atMs: integer() })) }),
      ),
    },
    errors: [403],
  }),
};
