/** The answers of the merchant endpoints (docs/http-api.md), as the dashboard reads them. */
export interface Me {
  kind: 'merchant' | 'operator' | 'device';
  merchantId?: string;
  name?: string;
}

export type TerminalState = 'pending' | 'active' | 'locked' | 'revoked' | 'expired';

export interface Terminal {
  terminalId: string;
  label: string;
  state: TerminalState;
  locked: boolean;
  failedCodesToday: number;
  activationExpiresAtMs: number | null;
  createdAtMs: number;
}

export interface Transaction {
  journalKey: string;
  atMs: number;
  kind: string;
  ref: string;
  amountCents: number;
}

export interface TransactionsPage {
  transactions: Transaction[];
  /** An opaque cursor: the `before` of the next page. */
  next: string | null;
  scanLimited: boolean;
}

export interface Bucket {
  startMs: number;
  endMs: number;
  redemptions: number;
  redeemedCents: number;
  returnedCents: number;
  netCents: number;
  issuedCents: number;
}

export interface Activity {
  timeZone: string;
  cutoff: string;
  days: (Bucket & { date: string })[];
  hours: Bucket[];
  scanLimited: boolean;
  unread: { fromMs: number; toMs: number } | null;
}

export interface StatementFigures {
  businessDate: string;
  settlementId: string;
  achFileId: string;
  effectiveDate: string;
  direction: 'credit' | 'debit' | 'none';
  redeemedCents: number;
  voidedCents: number;
  reversedCents: number;
  refundedCents: number;
  issuedCents: number;
  expiredCents: number;
  redemptions: number;
  undone: number;
  feeCents: number;
  netCents: number;
  traceNumber: string | null;
}

export interface Statement extends StatementFigures {
  lines: { journalKey: string; atMs: number; kind: string; ref: string; amountCents: number }[];
}
