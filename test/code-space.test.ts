/**
 * Proves the keyed permutation behind code drawing (core/code-permutation.ts): for every length it
 * stays within the space and its inverse undoes it (so it is one-to-one), a fifth of the 6-digit space
 * maps to as many distinct codes, each slot draws only from its own part, and
 * another key or another merchant gives an unrelated permutation; drawn digits are spread evenly over
 * the space, leading zeros kept.
 */
import { randomBytes } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { CodePermutation } from '../core/code-permutation.ts';
import { CODE_LENGTHS, CodeSpace, codeSpace, isCodeString } from '../core/codes.ts';
import { SLOT_COUNT } from '../core/ids.ts';

describe('code space', () => {
  const permutation = new CodePermutation(randomBytes(32));

  it('maps a fifth of the 6-digit space to as many distinct codes within it', () => {
    const seen = new Uint8Array(codeSpace(6));
    for (let value = 0; value < codeSpace(6) / 5; value++) {
      const image = permutation.encrypt('mc_one', 6, value);
      if (!(image >= 0 && image < seen.length) || seen[image] === 1) throw new Error(`${value} -> ${image}`);
      seen[image] = 1;
    }
    expect(seen.reduce((sum, hit) => sum + hit, 0)).toBe(codeSpace(6) / 5);
  });

  it('is undone by its inverse at every length, and stays within the space', () => {
    for (const digits of CODE_LENGTHS) {
      for (let i = 0; i < 20_000; i++) {
        const value = Math.floor(Math.random() * codeSpace(digits));
        const image = permutation.encrypt('mc_one', digits, value);
        if (!(image >= 0 && image < codeSpace(digits))) throw new Error(`${digits}: ${value} -> ${image}`);
        if (permutation.decrypt('mc_one', digits, image) !== value)
          throw new Error(`${digits}: ${value} not undone`);
      }
      // The edges of the space too.
      for (const value of [0, 1, codeSpace(digits) - 1])
        expect(permutation.decrypt('mc_one', digits, permutation.encrypt('mc_one', digits, value))).toBe(
          value,
        );
    }
  });

  it('differs between merchants and between keys', () => {
    const other = new CodePermutation(randomBytes(32));
    const same = (a: (v: number) => number, b: (v: number) => number) =>
      Array.from({ length: 1_000 }, (_, v) => a(v) === b(v)).filter(Boolean).length;
    // Two unrelated permutations of 10^6 agree on about 1 in 10^6 points: none of a thousand.
    expect(
      same(
        (v) => permutation.encrypt('mc_one', 6, v),
        (v) => permutation.encrypt('mc_two', 6, v),
      ),
    ).toBeLessThanOrEqual(1);
    expect(
      same(
        (v) => permutation.encrypt('mc_one', 6, v),
        (v) => other.encrypt('mc_one', 6, v),
      ),
    ).toBeLessThanOrEqual(1);
  });

  it("draws each slot's codes from its own part, evenly over the whole space", () => {
    const space = new CodeSpace({ hashKey: randomBytes(32), sealKey: randomBytes(32) });
    for (const digits of CODE_LENGTHS) {
      const firstDigits = new Array<number>(10).fill(0);
      for (let i = 0; i < 2_000; i++) {
        const slot = i % SLOT_COUNT;
        const code = space.draw('mc_one', slot, digits);
        expect(code).toHaveLength(digits);
        expect(isCodeString(code)).toBe(true);
        expect(space.slotOf('mc_one', code)).toBe(slot);
        firstDigits[Number(code[0])] = (firstDigits[Number(code[0])] ?? 0) + 1;
      }
      // Leading digits, zero included, each near 200 of 2,000 (a miss of this size has odds below 1e-9).
      for (const count of firstDigits) expect(count).toBeGreaterThan(100);
    }
  });
});
