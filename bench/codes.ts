import { createHmac, randomBytes, randomInt } from 'node:crypto';
import { CODE_LENGTHS, CodeSpace, hashCode } from '../core/codes.ts';
import { SLOT_COUNT } from '../core/ids.ts';
import { fmtInt, table } from './measure.ts';

/**
 * What drawing one payment code costs on one thread, by length: a uniform index in the holder's slot's
 * part of the space, the keyed permutation, and the keyed hash stored in the code index
 * (core/codes.ts). Beside it, the drawing it replaced: random 6 digits until the first 6 bits of their
 * keyed hash name the holder's slot (64 hashes on average), measured here, not recalled.
 */
export interface CodesBenchResult {
  draws: number;
  rows: { method: string; digits: number; microsPerCode: number; hashesPerCode: number }[];
}

const BASE64URL = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_';

export function runCodesBench(draws: number): CodesBenchResult {
  const keys = { hashKey: randomBytes(32), sealKey: randomBytes(32) };
  const space = new CodeSpace(keys);
  const rows: CodesBenchResult['rows'] = [];
  const time = (method: string, digits: number, draw: (i: number) => number) => {
    for (let i = 0; i < Math.min(draws, 2_000); i++) draw(i); // warm up
    let hashes = 0;
    const started = performance.now();
    for (let i = 0; i < draws; i++) hashes += draw(i);
    const micros = ((performance.now() - started) * 1000) / draws;
    rows.push({ method, digits, microsPerCode: micros, hashesPerCode: hashes / draws });
  };
  for (const digits of CODE_LENGTHS) {
    time('keyed permutation + 1 hash', digits, (i) => {
      hashCode(keys, 'mc_bench', space.draw('mc_bench', i % SLOT_COUNT, digits));
      return 1;
    });
  }
  time('until the hash names the slot (before)', 6, (i) => {
    const slot = i % SLOT_COUNT;
    for (let hashes = 1; ; hashes++) {
      const code = String(randomInt(1_000_000)).padStart(6, '0');
      const hash = createHmac('sha256', keys.hashKey).update(`code|mc_bench|${code}`).digest('base64url');
      if (BASE64URL.indexOf(hash[0] ?? '') === slot) return hashes;
    }
  });
  return { draws, rows };
}

export function printCodesBench(result: CodesBenchResult): void {
  console.log(`\ndrawing a payment code, ${fmtInt(result.draws)} draws per row, one thread`);
  console.log(
    table(
      ['method', 'digits', 'µs per code', 'keyed hashes per code'],
      result.rows.map((row) => [
        row.method,
        String(row.digits),
        row.microsPerCode.toFixed(2),
        row.hashesPerCode.toFixed(1),
      ]),
    ),
  );
}
