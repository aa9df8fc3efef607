import type { AccountType } from './bank.ts';
import { isRoutingNumber } from './bank.ts';

/**
 * A NACHA ACH file of CCD entries (docs/settlement.md, reference: NACHA file format notes). Credits and
 * debits go in separate batches, credits first; a batch of credits only has service class 220, of debits
 * only 225. In a balanced file each batch ends with an offset entry to the platform's settlement account
 * that nets it to zero, which makes it mixed (200). Records are 94 characters, numeric fields
 * zero-filled on the left, alphanumeric fields space-filled on the right, blocked by 10 with records of
 * nines. Batch numbers and trace numbers ascend through the file.
 *
 * @module
 */

export interface BankAccount {
  routingNumber: string;
  accountNumber: string;
  accountType: AccountType;
}

export interface Originator {
  /** The ODFI's routing number (9 digits): batch headers, trace numbers. */
  odfiRoutingNumber: string;
  /** File header: where the file goes (a 9-digit routing number) and who sends it (10 characters). */
  immediateDestination: string;
  immediateDestinationName: string;
  immediateOrigin: string;
  immediateOriginName: string;
  companyName: string;
  /** 10 characters, usually `1` + the employer identification number. */
  companyId: string;
  /** The platform's settlement account for offset entries, and its name on them. */
  offsetAccount: BankAccount & { name: string };
}

export interface AchEntry extends BankAccount {
  direction: 'credit' | 'debit';
  amountCents: number;
  /** Receiver identification (15) and name (22). */
  id: string;
  name: string;
}

export interface AchFileInput {
  originator: Originator;
  entries: readonly AchEntry[];
  /** File creation, in the settlement time zone: `YYYY-MM-DD` and `HH:MM`. */
  createdDate: string;
  createdTime: string;
  fileIdModifier: string;
  effectiveDate: string;
  /** Company descriptive date (6 characters, shown to the receiver). */
  descriptiveDate: string;
  entryDescription: string;
  balanced: boolean;
}

export interface AchFile {
  text: string;
  /** The trace number of each input entry, in input order. */
  traces: string[];
  totals: { entries: number; debitCents: number; creditCents: number; entryHash: string; blocks: number };
}

const RECORD_LENGTH = 94;
const BLOCKING_FACTOR = 10;
/** The amount field has 10 digits. */
export const ACH_ENTRY_MAX_CENTS = 9_999_999_999;

const CODES = {
  credit: { checking: '22', savings: '32' },
  debit: { checking: '27', savings: '37' },
} as const;

/** Letters that decomposition does not take to ASCII, and punctuation with a plain ASCII twin. */
const ASCII_OF: Record<string, string> = {
  ß: 'SS',
  Æ: 'AE',
  æ: 'AE',
  Œ: 'OE',
  œ: 'OE',
  Ø: 'O',
  ø: 'O',
  Ł: 'L',
  ł: 'L',
  Đ: 'D',
  đ: 'D',
  Ð: 'D',
  ð: 'D',
  Þ: 'TH',
  þ: 'TH',
  ı: 'I',
  '‘': "'",
  '’': "'",
  '“': '"',
  '”': '"',
  '–': '-',
  '—': '-',
  '€': 'EUR',
};

/**
 * Left-justified, space-filled, cut to `length`, in upper-case printable ASCII: accented letters lose
 * their accents ("Café Déjà-Vu" is CAFE DEJA-VU), a few letters and signs become their ASCII spelling,
 * and anything else left outside ASCII becomes a space.
 */
function alpha(value: string, length: number): string {
  return value
    .normalize('NFKD')
    .replace(/[\u0300-\u036f]/g, '')
    .replace(/[^\x20-\x7e]/gu, (char) => ASCII_OF[char] ?? ' ')
    .toUpperCase()
    .slice(0, length)
    .padEnd(length, ' ');
}

/** Right-justified, zero-filled; a value that does not fit is a programmer error. */
function numeric(value: number | bigint | string, length: number): string {
  const text = String(value);
  if (!/^[0-9]+$/.test(text) || text.length > length)
    throw new RangeError(`${text} does not fit ${length} digits`);
  return text.padStart(length, '0');
}

const yymmdd = (date: string) => date.slice(2, 4) + date.slice(5, 7) + date.slice(8, 10);

function record(fields: string[]): string {
  const line = fields.join('');
  if (line.length !== RECORD_LENGTH) throw new Error(`an ACH record of ${line.length} characters: ${line}`);
  return line;
}

export function writeAchFile(input: AchFileInput): AchFile {
  const { originator } = input;
  const odfi = originator.odfiRoutingNumber;
  for (const routing of [odfi, originator.immediateDestination, originator.offsetAccount.routingNumber]) {
    if (!isRoutingNumber(routing))
      throw new Error(`originator routing number ${routing} fails the ABA check`);
  }
  const lines: string[] = [];
  lines.push(
    record([
      '1',
      '01',
      ` ${originator.immediateDestination}`,
      alpha(originator.immediateOrigin.padStart(10, ' '), 10),
      yymmdd(input.createdDate),
      input.createdTime.replace(':', ''),
      alpha(input.fileIdModifier, 1),
      '094',
      '10',
      '1',
      alpha(originator.immediateDestinationName, 23),
      alpha(originator.immediateOriginName, 23),
      alpha('', 8),
    ]),
  );

  const traces: string[] = new Array(input.entries.length);
  let traceSeq = 0;
  let batchNumber = 0;
  let fileEntries = 0;
  let fileHash = 0n;
  let fileDebit = 0;
  let fileCredit = 0;
  for (const direction of ['credit', 'debit'] as const) {
    const indexed = input.entries
      .map((entry, index) => ({ entry, index }))
      .filter(({ entry }) => entry.direction === direction);
    if (indexed.length === 0) continue;
    // The offset nets the batch; a total above one entry's amount field takes several offset entries.
    let remaining = input.balanced ? indexed.reduce((sum, { entry }) => sum + entry.amountCents, 0) : 0;
    const offsets: AchEntry[] = [];
    while (remaining > 0) {
      const amountCents = Math.min(remaining, ACH_ENTRY_MAX_CENTS);
      const offsetDirection = direction === 'credit' ? 'debit' : 'credit';
      offsets.push({ ...originator.offsetAccount, direction: offsetDirection, amountCents, id: 'OFFSET' });
      remaining -= amountCents;
    }
    const serviceClass = input.balanced ? '200' : direction === 'credit' ? '220' : '225';
    batchNumber++;
    lines.push(
      record([
        '5',
        serviceClass,
        alpha(originator.companyName, 16),
        alpha('', 20),
        alpha(originator.companyId, 10),
        'CCD',
        alpha(input.entryDescription, 10),
        alpha(input.descriptiveDate, 6),
        yymmdd(input.effectiveDate),
        '   ',
        '1',
        odfi.slice(0, 8),
        numeric(batchNumber, 7),
      ]),
    );
    let hash = 0n;
    let debit = 0;
    let credit = 0;
    const batch = [...indexed, ...offsets.map((entry) => ({ entry, index: -1 }))];
    for (const { entry, index } of batch) {
      if (!isRoutingNumber(entry.routingNumber))
        throw new Error(`routing number ${entry.routingNumber} fails the ABA check`);
      if (
        !Number.isSafeInteger(entry.amountCents) ||
        entry.amountCents <= 0 ||
        entry.amountCents > ACH_ENTRY_MAX_CENTS
      )
        throw new RangeError(`an ACH entry of ${entry.amountCents} cents`);
      const trace = `${odfi.slice(0, 8)}${numeric(++traceSeq, 7)}`;
      if (index >= 0) traces[index] = trace;
      hash += BigInt(entry.routingNumber.slice(0, 8));
      if (entry.direction === 'credit') credit += entry.amountCents;
      else debit += entry.amountCents;
      lines.push(
        record([
          '6',
          CODES[entry.direction][entry.accountType],
          entry.routingNumber.slice(0, 8),
          entry.routingNumber.slice(8),
          alpha(entry.accountNumber, 17),
          numeric(entry.amountCents, 10),
          alpha(entry.id, 15),
          alpha(entry.name, 22),
          '  ',
          '0',
          trace,
        ]),
      );
    }
    const batchHash = hash % 10_000_000_000n;
    lines.push(
      record([
        '8',
        serviceClass,
        numeric(batch.length, 6),
        numeric(batchHash, 10),
        numeric(debit, 12),
        numeric(credit, 12),
        alpha(originator.companyId, 10),
        alpha('', 19),
        alpha('', 6),
        odfi.slice(0, 8),
        numeric(batchNumber, 7),
      ]),
    );
    fileEntries += batch.length;
    fileHash += hash;
    fileDebit += debit;
    fileCredit += credit;
  }

  const recordCount = lines.length + 1;
  const blocks = Math.ceil(recordCount / BLOCKING_FACTOR);
  const entryHash = numeric(fileHash % 10_000_000_000n, 10);
  lines.push(
    record([
      '9',
      numeric(batchNumber, 6),
      numeric(blocks, 6),
      numeric(fileEntries, 8),
      entryHash,
      numeric(fileDebit, 12),
      numeric(fileCredit, 12),
      alpha('', 39),
    ]),
  );
  while (lines.length % BLOCKING_FACTOR !== 0) lines.push('9'.repeat(RECORD_LENGTH));
  return {
    text: `${lines.join('\n')}\n`,
    traces,
    totals: { entries: fileEntries, debitCents: fileDebit, creditCents: fileCredit, entryHash, blocks },
  };
}

export interface AchEntryRead {
  transactionCode: string;
  direction: 'credit' | 'debit';
  routingNumber: string;
  accountNumber: string;
  amountCents: number;
  id: string;
  name: string;
  traceNumber: string;
}

/** The entry detail records of a file, read back by position (for reconciliation and tests). */
export function readAchEntries(text: string): AchEntryRead[] {
  return text
    .split('\n')
    .filter((line) => line.startsWith('6'))
    .map((line) => {
      const transactionCode = line.slice(1, 3);
      return {
        transactionCode,
        direction: transactionCode[1] === '2' || transactionCode[1] === '3' ? 'credit' : 'debit',
        routingNumber: line.slice(3, 12),
        accountNumber: line.slice(12, 29).trim(),
        amountCents: Number(line.slice(29, 39)),
        id: line.slice(39, 54).trim(),
        name: line.slice(54, 76).trim(),
        traceNumber: line.slice(79, 94),
      };
    });
}
