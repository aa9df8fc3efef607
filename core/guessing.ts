import { CODE_DIGITS_MIN, codeSpace, liveCodesOfLengthMax } from './codes.ts';
import { DAY_MS, type Limits } from './limits.ts';

/**
 * How likely a code guesser succeeds under the configured limits (docs/security.md publishes these
 * figures for the defaults; `paycode guessing` prints them for a configuration).
 *
 * The attacker controls `terminals` activated terminals of one merchant (stolen, compromised, or the
 * merchant's own) and sends redeems or inquiries with guessed digits, of any length, for a day. However
 * busy the merchant, its live codes of one length are at most 12 per million codes of that length
 * (codes.ts), each drawn by a CSPRNG independently of the guesses; so after i misses at one merchant, a
 * guess of L digits hits a live code with probability at most 12·10^(L−6) / (10^L − i), which is largest
 * at 6 digits: 12 / (10^6 − i). (An operator cap on a merchant's live codes below 12 lowers it.) The
 * bound therefore does not depend on how many codes the merchant holds. Every miss is a counted failure,
 * and the limits bound the misses in any 24 hours:
 * - each terminal: `terminalCodeFailuresPerDayMax` (a merchant's unlock does not reset it);
 * - the merchant's terminals together: `merchantCodeFailuresPerDayMax`, and
 *   `merchantCodeFailuresPerWindowMax` per `merchantCodeFailureWindowMs`; all terminals together:
 *   `globalCodeFailuresPerWindowMax` per window. The windows slide, and an attempt at digits that are no
 *   live code is counted before it runs, so concurrent guesses cannot pass a maximum.
 * An attacker allowed g misses succeeds at least once only if one of his first g guesses hits, so
 * P(success) <= 1 - prod_{i<g} (1 - d / (10^6 - i)) with d the 6-digit maximum.
 *
 * A miss that the terminal's next sale explains as a typo (gateway/code-windows.ts) leaves the merchant's
 * and the global windows for the merchant's typo budget (`merchantCodeTyposPerDayMax`), though never the
 * terminal's count. Only an attacker whose tills also take sales can use it (a rogue cashier, a
 * compromised till, the merchant itself: he sees each code before it is redeemed, or redeems his own):
 * each sale explains one guess one slip from its code. `withTypos` computes the bound for him.
 *
 * Not modelled, because it only lowers the figure: codes redeemed or cancelled before the guess
 * reaches them, a cap below the balance, the lock after `terminalCodeFailuresMax` misses in a row.
 *
 * @module
 */

export interface GuessingBound {
  terminals: number;
  /** Misses the limits allow these terminals in any 24 hours. */
  guessesPerDay: number;
  /** Probability that at least one guess in a day redeems a live code. */
  successPerDay: number;
  /** The same divided by the terminals: the figure the target is set for (at most 1e-4). */
  successPerTerminalDay: number;
}

/** The platform as a whole: every merchant's terminals guessing at once, within the global window. */
export interface PlatformGuessingBound {
  /** Misses all terminals together are allowed in any 24 hours. */
  guessesPerDay: number;
  /** The most live codes those guesses can be expected to hit in a day (at most the hit chance per guess each). */
  hitsPerDayExpected: number;
  /** How many merchants' terminals the attacker must hold to use them all (each merchant gives its day's misses). */
  merchantsNeeded: number;
}

/** Live codes of the shortest length one merchant may hold: what a guess can hit most easily. */
function liveAtShortest(limits: Limits): number {
  return Math.min(limits.merchantLiveCodesMax, liveCodesOfLengthMax(CODE_DIGITS_MIN));
}

/** The highest probability that one guess hits a live code, after a merchant's day of misses. */
export function hitPerGuessMax(limits: Limits): number {
  return liveAtShortest(limits) / (codeSpace(CODE_DIGITS_MIN) - limits.merchantCodeFailuresPerDayMax);
}

function windowsPerDay(limits: Limits): number {
  return Math.ceil(DAY_MS / limits.merchantCodeFailureWindowMs);
}

export function guessingBound(limits: Limits, terminals: number, withTypos = false): GuessingBound {
  const explained = withTypos ? limits.merchantCodeTyposPerDayMax : 0;
  const guessesPerDay = Math.min(
    terminals * limits.terminalCodeFailuresPerDayMax,
    limits.merchantCodeFailuresPerDayMax + explained,
    limits.merchantCodeFailuresPerWindowMax * windowsPerDay(limits) + explained,
    limits.globalCodeFailuresPerWindowMax * windowsPerDay(limits) + explained,
  );
  const live = liveAtShortest(limits);
  let allMiss = 1;
  for (let i = 0; i < guessesPerDay; i++) allMiss *= 1 - live / (codeSpace(CODE_DIGITS_MIN) - i);
  const successPerDay = 1 - allMiss;
  return { terminals, guessesPerDay, successPerDay, successPerTerminalDay: successPerDay / terminals };
}

/**
 * The bound of one merchant-day: as many terminals as it likes, within its own windows (and, with
 * `withTypos`, its typo budget too).
 */
export function merchantGuessingBound(limits: Limits, withTypos = false): GuessingBound {
  const misses = limits.merchantCodeFailuresPerDayMax + (withTypos ? limits.merchantCodeTyposPerDayMax : 0);
  return guessingBound(limits, Math.ceil(misses / limits.terminalCodeFailuresPerDayMax), withTypos);
}

export function platformGuessingBound(limits: Limits): PlatformGuessingBound {
  const guessesPerDay = limits.globalCodeFailuresPerWindowMax * windowsPerDay(limits);
  const perMerchant = merchantGuessingBound(limits).guessesPerDay;
  return {
    guessesPerDay,
    hitsPerDayExpected: guessesPerDay * hitPerGuessMax(limits),
    merchantsNeeded: Math.ceil(guessesPerDay / perMerchant),
  };
}

/** The per-terminal-day target the defaults must meet. */
export const GUESSING_TARGET_PER_TERMINAL_DAY = 1e-4;
