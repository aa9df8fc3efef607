import { validate } from 'achkit';
import { isRoutingNumber } from '../settlement/bank.ts';

/**
 * Checks of an ACH file beyond what achkit's `validate()` looks at: record order, header constants,
 * service classes against transaction codes, ascending batch and trace numbers, numeric fields, the
 * blocking padding. Returns every problem found (an empty list for a good file), achkit's included.
 */
export function achProblems(text: string, odfiRoutingNumber: string): string[] {
  const problems: string[] = [];
  const checked = validate(text);
  for (const error of checked.errors) problems.push(`achkit ${error.code}: ${error.message}`);
  if (!text.endsWith('\n')) problems.push('the file does not end with a newline');
  const lines = text.split('\n').slice(0, -1);
  if (lines.length % 10 !== 0) problems.push(`${lines.length} records is not a whole number of blocks`);
  lines.forEach((line, index) => {
    if (line.length !== 94) problems.push(`record ${index + 1} has ${line.length} characters`);
    if (!/^[\x20-\x7e]*$/.test(line))
      problems.push(`record ${index + 1} holds characters outside printable ASCII`);
  });
  const digits = (line: string, from: number, to: number, what: string) => {
    const field = line.slice(from - 1, to);
    if (!/^[0-9]+$/.test(field)) problems.push(`${what} "${field}" is not numeric`);
    return Number(field);
  };
  const header = lines[0] ?? '';
  if (header[0] !== '1') problems.push('the first record is not a file header');
  if (header.slice(1, 3) !== '01') problems.push('priority code is not 01');
  if (header[3] !== ' ' || !isRoutingNumber(header.slice(4, 13)))
    problems.push('immediate destination is not " " + a routing number');
  digits(header, 24, 29, 'file creation date');
  digits(header, 30, 33, 'file creation time');
  if (!/^[A-Z0-9]$/.test(header[33] ?? '')) problems.push('file id modifier is not A-Z or 0-9');
  if (header.slice(34, 40) !== '094101')
    problems.push('record size, blocking factor and format code are not 094, 10, 1');

  let index = 1;
  let batchNumber = 0;
  let lastTrace = 0;
  let entryCount = 0;
  let hash = 0n;
  let debit = 0;
  let credit = 0;
  while ((lines[index] ?? '').startsWith('5')) {
    const batchHeader = lines[index++] as string;
    const serviceClass = batchHeader.slice(1, 4);
    if (!['200', '220', '225'].includes(serviceClass)) problems.push(`service class ${serviceClass}`);
    if (batchHeader.slice(50, 53) !== 'CCD') problems.push('SEC code is not CCD');
    digits(batchHeader, 70, 75, 'effective entry date');
    if (batchHeader.slice(75, 78) !== '   ') problems.push('settlement date is not blank');
    if (batchHeader[78] !== '1') problems.push('originator status code is not 1');
    if (batchHeader.slice(79, 87) !== odfiRoutingNumber.slice(0, 8))
      problems.push('batch ODFI is not the originator');
    const number = digits(batchHeader, 88, 94, 'batch number');
    if (number !== ++batchNumber) problems.push(`batch number ${number}, expected ${batchNumber}`);
    let batchCount = 0;
    let batchHash = 0n;
    let batchDebit = 0;
    let batchCredit = 0;
    while ((lines[index] ?? '').startsWith('6')) {
      const entry = lines[index++] as string;
      const code = entry.slice(1, 3);
      const isCredit = code === '22' || code === '32';
      const isDebit = code === '27' || code === '37';
      if (!isCredit && !isDebit) problems.push(`transaction code ${code}`);
      if (serviceClass === '220' && !isCredit) problems.push('a debit in a credits-only batch');
      if (serviceClass === '225' && !isDebit) problems.push('a credit in a debits-only batch');
      const routing = entry.slice(3, 12);
      if (!/^[0-9]{9}$/.test(routing) || !isRoutingNumber(routing))
        problems.push(`receiving routing ${routing}`);
      const amount = digits(entry, 30, 39, 'amount');
      if (entry[78] !== '0') problems.push('addenda indicator is not 0');
      const trace = digits(entry, 80, 94, 'trace number');
      if (entry.slice(79, 87) !== odfiRoutingNumber.slice(0, 8))
        problems.push('trace number does not start with the ODFI');
      if (trace <= lastTrace) problems.push(`trace number ${trace} does not ascend`);
      lastTrace = trace;
      batchCount++;
      batchHash += BigInt(routing.slice(0, 8));
      if (isCredit) batchCredit += amount;
      else batchDebit += amount;
    }
    const control = lines[index++] ?? '';
    if (control[0] !== '8') problems.push('a batch without a control record');
    if (control.slice(1, 4) !== serviceClass)
      problems.push('batch control service class differs from its header');
    if (digits(control, 5, 10, 'batch entry count') !== batchCount) problems.push('batch entry count');
    if (BigInt(digits(control, 11, 20, 'batch entry hash')) !== batchHash % 10_000_000_000n)
      problems.push('batch entry hash');
    if (digits(control, 21, 32, 'batch debit total') !== batchDebit) problems.push('batch debit total');
    if (digits(control, 33, 44, 'batch credit total') !== batchCredit) problems.push('batch credit total');
    if (digits(control, 88, 94, 'batch control number') !== batchNumber)
      problems.push('batch control number');
    if (serviceClass === '200' && batchDebit !== batchCredit)
      problems.push('a balanced batch that does not net to zero');
    entryCount += batchCount;
    hash += batchHash;
    debit += batchDebit;
    credit += batchCredit;
  }
  const fileControl = lines[index++] ?? '';
  if (fileControl[0] !== '9' || /^9+$/.test(fileControl)) problems.push('no file control after the batches');
  if (digits(fileControl, 2, 7, 'batch count') !== batchNumber) problems.push('file batch count');
  if (digits(fileControl, 8, 13, 'block count') !== lines.length / 10) problems.push('file block count');
  if (digits(fileControl, 14, 21, 'file entry count') !== entryCount) problems.push('file entry count');
  if (BigInt(digits(fileControl, 22, 31, 'file entry hash')) !== hash % 10_000_000_000n)
    problems.push('file entry hash');
  if (digits(fileControl, 32, 43, 'file debit total') !== debit) problems.push('file debit total');
  if (digits(fileControl, 44, 55, 'file credit total') !== credit) problems.push('file credit total');
  for (const padding of lines.slice(index))
    if (padding !== '9'.repeat(94)) problems.push('padding is not nines');
  return problems;
}
