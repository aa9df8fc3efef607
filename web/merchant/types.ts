/**
 * The answers of the merchant endpoints (docs/http-api.md), as the dashboard reads them: the gateway's
 * own types, imported as types only, so the page and the server cannot drift apart.
 */

export type { CodeRefusal } from '../../gateway/code-windows.ts';
export type {
  Activity,
  ActivityBucket as Bucket,
  StatementSummary as StatementFigures,
  Transaction,
  TransactionsPage,
} from '../../gateway/merchant-reports.ts';
export type { TerminalState, TerminalView as Terminal } from '../../gateway/registry.ts';

import type { StatementSummary } from '../../gateway/merchant-reports.ts';
import type { StatementLine } from '../../settlement/net.ts';

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

export interface Statement extends StatementSummary {
  lines: StatementLine[];
}
