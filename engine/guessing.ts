import { CODE_SPACE } from './codes.ts';
import { DAY_MS, type Limits } from './limits.ts';

/**
 * How likely a code guesser succeeds under the configured limits (docs/security.md publishes these
 * figures for the defaults; `paycode guessing` prints them for a configuration).
 *
 * The attacker controls `terminals` activated terminals of one merchant (stolen, compromised, or the
 * merchant's own) and sends redeems or inquiries with guessed digits for a day. The merchant holds its
 * cap of live codes all day (`merchantLiveCodesMax`), each drawn by a CSPRNG independently of the
 * guesses, so a guess at digits not tried before hits a live code with probability at most
 * L / (10^6 - digits already excluded). Every miss is a counted failure, and the limits bound the misses
 * in any 24 hours:
 * - each terminal: `terminalCodeFailuresPerDayMax` (a merchant's unlock does not reset it);
 * - the merchant's terminals together: `merchantCodeFailuresPerDayMax`, and
 *   `merchantCodeFailuresPerWindowMax` per `merchantCodeFailureWindowMs`; all terminals together:
 *   `globalCodeFailuresPerWindowMax` per window. The windows slide, and an attempt at digits that are no
 *   live code is counted before it runs, so concurrent guesses cannot pass a maximum.
 * An attacker allowed g misses succeeds at least once only if one of his first g guesses hits, so
 * P(success) <= 1 - prod_{i<g} (1 - L / (10^6 - i)).
 *
 * Not modelled, because it only lowers the figure: codes redeemed or cancelled before the guess
 * reaches them, a cap below the balance, the lock after `terminalCodeFailuresMax` misses in a row.
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

export function guessingBound(limits: Limits, terminals: number): GuessingBound {
  const windowsPerDay = Math.ceil(DAY_MS / limits.merchantCodeFailureWindowMs);
  const guessesPerDay = Math.min(
    terminals * limits.terminalCodeFailuresPerDayMax,
    limits.merchantCodeFailuresPerDayMax,
    limits.merchantCodeFailuresPerWindowMax * windowsPerDay,
    limits.globalCodeFailuresPerWindowMax * windowsPerDay,
  );
  let allMiss = 1;
  for (let i = 0; i < guessesPerDay; i++) allMiss *= 1 - limits.merchantLiveCodesMax / (CODE_SPACE - i);
  const successPerDay = 1 - allMiss;
  return { terminals, guessesPerDay, successPerDay, successPerTerminalDay: successPerDay / terminals };
}

/** The per-terminal-day target the defaults must meet. */
export const GUESSING_TARGET_PER_TERMINAL_DAY = 1e-4;
