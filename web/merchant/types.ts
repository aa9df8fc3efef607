/**
 * The answers of the merchant endpoints (docs/http-api.md), as the dashboard names them: the types the
 * server produces its answers with (sdk/http-answers.ts), so the page and the server cannot drift apart.
 */
export type {
  Activity,
  ActivityBucket as Bucket,
  CodeRefusal,
  Me,
  MerchantDetails,
  Statement,
  StatementSummary as StatementFigures,
  TerminalState,
  TerminalView as Terminal,
  Transaction,
  TransactionsPage,
} from '../../sdk/http-answers.ts';
