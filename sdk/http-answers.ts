/**
 * The answers of the HTTP API that the web apps and other clients read (docs/http-api.md), one home for
 * the server that produces them and the pages that show them. Types only.
 */
import type { PostingKind } from '../core/ledger.ts';

/** `GET /v1/me`: who a credential is. */
export interface Me {
  kind: 'merchant' | 'operator' | 'device';
  merchantId?: string;
  name?: string;
}

/** `GET /v1/merchants/:merchantId`: the store's own settings (never its bank details). */
export interface MerchantDetails {
  merchantId: string;
  name: string;
  keyword: string | null;
  feeBps: number;
  feeFixedCents: number;
  codeDigitsMin: number;
}

/** Why code attempts at a merchant are refused (`codeAttempts` of the terminal list), and until when. */
export type CodeWindow = 'merchant, per minute' | 'merchant, per day' | 'all merchants, per minute';

export interface CodeRefusal {
  window: CodeWindow;
  /** When the window has room again, if nothing more is counted. */
  untilMs: number;
}

/**
 * A terminal as its merchant sees it. `pending`: created or rekeyed after a revoke, waiting for its
 * activation code; `active`: holds a key; `locked`: holds a key but may not try codes (locked by the
 * merchant, after failed codes in a row, or at the day's failure limit); `revoked`: its key was taken
 * away; `expired`: its activation code ran out unused. `activationExpiresAtMs` is set while a code is
 * outstanding (also for an active terminal being rekeyed).
 */
export type TerminalState = 'pending' | 'active' | 'locked' | 'revoked' | 'expired';

export interface TerminalView {
  terminalId: string;
  label: string;
  state: TerminalState;
  locked: boolean;
  failedCodesToday: number;
  activationExpiresAtMs: number | null;
  createdAtMs: number;
}

export interface Transaction {
  /** An opaque reference of the posting, as on statements: unique and stable (`merchantJournalRef`). */
  journalKey: string;
  atMs: number;
  kind: PostingKind;
  /** The authorization, refund or card id; for an issued card `m:<merchantId>/<idempotencyKey>`. */
  ref: string;
  /** What the posting adds to the merchant's net, before fees. */
  amountCents: number;
}

export interface TransactionsPage {
  transactions: Transaction[];
  /** The `before` of the next page, an opaque cursor; null when the start of the journal was reached. */
  next: string | null;
  /** The scan bound stopped the read before the page was full: `next` goes on from where it stopped. */
  scanLimited: boolean;
}

export interface ActivityBucket {
  startMs: number;
  endMs: number;
  redemptions: number;
  redeemedCents: number;
  /** Voided, reversed and refunded, as a positive amount. */
  returnedCents: number;
  /** `redeemedCents − returnedCents`: the sales before fees. */
  netCents: number;
  /** Gift cards and rewards the merchant issued. */
  issuedCents: number;
}

export interface Activity {
  timeZone: string;
  cutoff: string;
  /** Business days, oldest first (the days of settlement: PAYCODE_SETTLEMENT_TZ and _CUTOFF). */
  days: (ActivityBucket & { date: string })[];
  /**
   * The last 24 hours of the settlement time zone's clock, oldest first, each from a whole hour of that
   * zone (a zone half an hour off UTC has them start at :30 UTC); the last one is the current hour.
   */
  hours: ActivityBucket[];
  scanLimited: boolean;
  /**
   * When the scan bound stopped the read: `[fromMs, toMs)` holds every posting it left unread, `toMs`
   * rounded up to a whole hour of the settlement time zone, so figures from before `toMs` may be low.
   */
  unread: { fromMs: number; toMs: number } | null;
}

/** A merchant's figures in one settlement (docs/settlement.md, "Net positions"). */
export interface SettlementFigures {
  redeemedCents: number;
  voidedCents: number;
  reversedCents: number;
  refundedCents: number;
  issuedCents: number;
  expiredCents: number;
  redemptions: number;
  /** Voids and reversals: sales undone. */
  undone: number;
  feeCents: number;
  /** Positive: the platform pays the merchant (an ACH credit); negative: the merchant pays (a debit). */
  netCents: number;
}

/** A settled day as one merchant's statement shows it (`GET /v1/merchants/:merchantId/statements`). */
export interface StatementSummary extends SettlementFigures {
  /** The ACH trace number of its entry; null when the net is zero. */
  traceNumber: string | null;
  /** How the ACH entry names the merchant (its identification number), as the merchant's bank shows it. */
  achReference: string;
  businessDate: string;
  settlementId: string;
  achFileId: string;
  effectiveDate: string;
  direction: PayoutDirection;
}

/** Which way a merchant's net goes: `credit` paid to the merchant, `debit` collected, `none` nothing due. */
export type PayoutDirection = 'credit' | 'debit' | 'none';

/** A posting that a settlement paid, as the merchant's statement lists it (settlement/net.ts). */
export interface StatementLine {
  /** The journal key `atMs.writer.seq`, unique and stable. */
  journalKey: string;
  atMs: number;
  kind: PostingKind;
  ref: string;
  /** What the posting adds to the merchant's net (before fees). */
  amountCents: number;
}

/** A settled day of one merchant with the postings it paid. */
export interface Statement extends StatementSummary {
  lines: StatementLine[];
}

/** One kind of card's figures for a business day (settlement/liability.ts). */
export interface LiabilityFigures {
  openingCents: number;
  /** Value the merchant issued (gift cards and rewards it pays for at settlement). */
  issuedCents: number;
  /** Gift cards consumers bought by card. */
  soldCents: number;
  /** Redeemed, net of voids, reversals and refunds. */
  redeemedCents: number;
  /** Rewards that expired unspent; gift value never expires. */
  expiredCents: number;
  /** opening + issued + sold − redeemed − expired: what the merchant still owes in goods. */
  closingCents: number;
}

export interface LiabilityDay {
  date: string;
  startMs: number;
  endMs: number;
  gift: LiabilityFigures;
  reward: LiabilityFigures;
  /**
   * The part of the gift figures consumers bought (purchases, and gifts of bought value); the rest of the
   * gift figures is value the merchant issued. Its `issuedCents` and `expiredCents` are always 0.
   */
  giftBought: LiabilityFigures;
}

/** `GET /v1/merchants/:merchantId/liability`. */
export interface LiabilityReport {
  timeZone: string;
  cutoff: string;
  /** Always false: gift card value never expires (rewards may). */
  giftValueExpires: false;
  /** Business days, oldest first. */
  days: LiabilityDay[];
  /** Every movement of the merchant's cards in the journal is in one of the figures. */
  reconciled: boolean;
  /** The journal was longer than one report reads: the figures cover only the part read; asking again reads on. */
  scanLimited: boolean;
}
