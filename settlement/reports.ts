import { createHmac } from 'node:crypto';
import type { SettledMerchant, SettlementRecord } from '../persistence/store.ts';
import type { PayoutDirection, StatementLine, Transaction } from '../sdk/http-answers.ts';
import { settledReference } from './ach-reference.ts';

export function payoutDirection(netCents: number): PayoutDirection {
  return netCents > 0 ? 'credit' : netCents < 0 ? 'debit' : 'none';
}

/**
 * A merchant's statement for one settlement: every posting that went into its net, the fees, the net,
 * and the ACH file and trace number that carry it. JSON for programs, CSV for spreadsheets.
 */
export function statementJson(record: SettlementRecord, merchant: SettledMerchant, lines: StatementLine[]) {
  return {
    businessDate: record.businessDate,
    settlementId: record.settlementId,
    achFileId: record.achFileId,
    effectiveDate: record.summary.effectiveDate,
    direction: payoutDirection(merchant.netCents),
    ...merchant,
    /** How the ACH entry names the merchant (its identification number), as its bank shows it. */
    achReference: settledReference(merchant),
    lines,
  };
}

/**
 * What a merchant sees of a journal key: a keyed hash (16 base64url characters), unique and stable, that
 * tells nothing of the rest of the journal. The key itself carries a sequence its writer shares with
 * every merchant, whose gaps would show other merchants' volume.
 */
export function merchantJournalRef(refKey: Buffer, merchantId: string, journalKey: string): string {
  return createHmac('sha256', refKey).update(`${merchantId}|${journalKey}`).digest('base64url').slice(0, 16);
}

/** The key of `merchantJournalRef`, derived from the consumer id key (which is never rotated). */
export function journalRefKey(consumerIdKey: Buffer): Buffer {
  return createHmac('sha256', consumerIdKey).update('merchant-journal-ref').digest();
}

const CSV_HEADER = [
  'businessDate',
  'merchantId',
  'achFileId',
  'traceNumber',
  'journalKey',
  'at',
  'kind',
  'ref',
  'amountCents',
  'achReference',
];

/** A page of a merchant's postings for spreadsheets, in the order given. */
export function transactionsCsv(transactions: readonly Transaction[]): string {
  return csv(
    ['journalKey', 'at', 'kind', 'ref', 'amountCents'],
    transactions.map(({ journalKey, atMs, kind, ref, amountCents }) => [
      journalKey,
      new Date(atMs).toISOString(),
      kind,
      ref,
      amountCents,
    ]),
  );
}

export function statementCsv(
  record: SettlementRecord,
  merchant: SettledMerchant,
  lines: StatementLine[],
): string {
  const cells = (journalKey: string, at: string, kind: string, ref: string, amountCents: number) => [
    record.businessDate,
    merchant.merchantId,
    record.achFileId,
    merchant.traceNumber ?? '',
    journalKey,
    at,
    kind,
    ref,
    amountCents,
    settledReference(merchant),
  ];
  const rows = lines.map((line) =>
    cells(line.journalKey, new Date(line.atMs).toISOString(), line.kind, line.ref, line.amountCents),
  );
  rows.push(cells('', '', 'fee', '', -merchant.feeCents));
  rows.push(cells('', '', 'net', '', merchant.netCents));
  return csv(CSV_HEADER, rows);
}

/** A CSV file (RFC 4180, CRLF line ends): the header, then one line per row. */
export function csv(header: readonly string[], rows: readonly (readonly (string | number)[])[]): string {
  return `${[header.join(','), ...rows.map((row) => row.map(csvCell).join(','))].join('\r\n')}\r\n`;
}

/**
 * A cell as a spreadsheet reads it back: quoted when it holds a comma, quote or line break, and a text
 * that a spreadsheet would take for a formula (`=`, `+`, `-`, `@`, a tab or carriage return first) is
 * kept as text with a leading `'`. Numbers are written as they are.
 */
function csvCell(value: string | number): string {
  const text = typeof value === 'string' && /^[=+\-@\t\r]/.test(value) ? `'${value}` : String(value);
  return /[",\r\n]/.test(text) ? `"${text.replaceAll('"', '""')}"` : text;
}
