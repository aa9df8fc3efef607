import { type Cipher, createCipheriv, createHash, createHmac } from 'node:crypto';

/**
 * A keyed permutation of each code length's space (the numbers below 10^digits), one per merchant:
 * a Feistel network over the two decimal halves of the number, the construction of NIST SP 800-38G's
 * FF1, with ten rounds whose round function is AES-128 under a key derived from the code hash key. The
 * merchant id enters every round as a tweak, so two merchants' permutations are unrelated.
 *
 * It lets a shard draw, in one evaluation, digits that are uniform in the whole space and yet belong
 * to a part of it that no other slot can draw from (the index times the slot count, plus the slot), so
 * two shards never issue the same digits at one merchant. Without the key, the digits tell nothing of
 * which part, and so of which consumer, they came from.
 *
 * @module
 */

const ROUNDS = 10;
/** Tweaks of recently seen merchants, so a busy merchant's is not hashed for every code. */
const TWEAKS_CACHED_MAX = 4_096;

export class CodePermutation {
  private readonly cipher: Cipher;
  private readonly block = Buffer.alloc(16);
  private readonly tweaks = new Map<string, Buffer>();

  constructor(hashKey: Buffer) {
    // A key of its own, so the permutation and the code hashes never share one.
    const key = createHmac('sha256', hashKey).update('code-permutation').digest().subarray(0, 16);
    // ECB over single blocks: each round enciphers one independent block, the AES permutation itself.
    this.cipher = createCipheriv('aes-128-ecb', key, null);
    this.cipher.setAutoPadding(false);
  }

  /** The image of `value` (0 <= value < 10^digits) in `merchantId`'s permutation of that space. */
  encrypt(merchantId: string, digits: number, value: number): number {
    const { left, right } = halves(digits);
    const tweak = this.tweak(merchantId);
    let a = Math.floor(value / 10 ** right);
    let b = value % 10 ** right;
    for (let round = 0; round < ROUNDS; round++) {
      const modulus = 10 ** (round % 2 === 0 ? left : right);
      const c = (a + this.roundValue(tweak, digits, round, b, modulus)) % modulus;
      a = b;
      b = c;
    }
    return a * 10 ** right + b;
  }

  /** The inverse of `encrypt`. */
  decrypt(merchantId: string, digits: number, value: number): number {
    const { left, right } = halves(digits);
    const tweak = this.tweak(merchantId);
    let a = Math.floor(value / 10 ** right);
    let b = value % 10 ** right;
    for (let round = ROUNDS - 1; round >= 0; round--) {
      const modulus = 10 ** (round % 2 === 0 ? left : right);
      const c = b;
      b = a;
      a = (c - this.roundValue(tweak, digits, round, b, modulus) + modulus) % modulus;
    }
    return a * 10 ** right + b;
  }

  /** AES of (tweak, length, round, half) taken modulo `modulus` (48 bits over at most 10^5: no bias to speak of). */
  private roundValue(tweak: Buffer, digits: number, round: number, half: number, modulus: number): number {
    const { block } = this;
    tweak.copy(block, 0);
    block[8] = digits;
    block[9] = round;
    block.writeUIntBE(half, 10, 6);
    return this.cipher.update(block).readUIntBE(0, 6) % modulus;
  }

  private tweak(merchantId: string): Buffer {
    let tweak = this.tweaks.get(merchantId);
    if (!tweak) {
      if (this.tweaks.size >= TWEAKS_CACHED_MAX) this.tweaks.clear();
      tweak = createHash('sha256').update(merchantId).digest().subarray(0, 8);
      this.tweaks.set(merchantId, tweak);
    }
    return tweak;
  }
}

/**
 * FF1's split: the first half has floor(digits / 2) digits, the second the rest. An even number of
 * rounds leaves each half where it started.
 */
function halves(digits: number): { left: number; right: number } {
  const left = Math.floor(digits / 2);
  return { left, right: digits - left };
}
