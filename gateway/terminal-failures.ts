import type { MerchantId, TerminalId } from '../core/ids.ts';
import { DAY_MS, type Limits } from '../core/limits.ts';
import type { Store, TerminalRecord } from '../persistence/store.ts';

/**
 * A terminal's failed codes, kept in its record so a restart gives a guesser no fresh attempts: the run in
 * a row (it locks at `terminalCodeFailuresMax`; its merchant unlocks it) and the last day's
 * (`terminalCodeFailuresPerDayMax`; only the operator's unlock clears them, terminals.ts `setLocked`).
 * Code attempts (code-attempts.ts) read and count them; the failure windows are refilled from them at start.
 *
 * @module
 */

/** A failed code attempt of a terminal, as its record keeps it for the last day. */
export interface CodeFailure {
  merchantId: MerchantId;
  terminalId: TerminalId;
  atMs: number;
  /** Explained as a typo by the terminal's next sale (code-windows.ts). */
  explained: boolean;
}

export class TerminalFailures {
  constructor(
    private readonly store: Store,
    private readonly limits: Limits,
    /** A terminal's record as the registry reads it (outside a write). */
    private readonly read: (terminalId: TerminalId) => TerminalRecord | undefined,
    /** The registry's serialized, durable write (the terminal record is the registry's). */
    private readonly write: <T>(body: () => T) => Promise<T>,
  ) {}

  /**
   * Whether a terminal may not try codes: it is locked, or it failed `terminalCodeFailuresPerDayMax`
   * codes within the last 24 hours.
   */
  locked(terminalId: TerminalId, nowMs: number): boolean {
    const terminal = this.read(terminalId);
    return !terminal || isLocked(terminal, recentFailures(terminal, nowMs).length, this.limits);
  }

  /** Every terminal's failed codes of the last day, by merchant and all together, oldest first. */
  recent(nowMs: number): CodeFailure[] {
    const failures: CodeFailure[] = [];
    for (const { value: terminal } of this.store.terminals.getRange()) {
      const { merchantId, terminalId } = terminal;
      const typos = new Set(terminal.typosAtMs);
      for (const atMs of recentFailures(terminal, nowMs))
        failures.push({ merchantId, terminalId, atMs, explained: typos.has(atMs) });
    }
    return failures.sort((a, b) => a.atMs - b.atMs);
  }

  /**
   * Counts failed codes of a terminal: in a row (it locks at `terminalCodeFailuresMax`) and in the last
   * day. Both are persisted, so a restart gives a guesser no fresh attempts. `atMs` is when a failure was
   * counted in the windows, so an explanation can name it. Returns whether this result locked the terminal.
   */
  async record(terminalId: TerminalId, failed: boolean, atMs: number): Promise<boolean> {
    // An approval with nothing to reset writes nothing: the common case stays off the write lock.
    if (!failed && !this.read(terminalId)?.codeFailures) return false;
    return this.write(() => {
      const current = this.store.terminals.get(terminalId);
      if (!current) return false;
      const codeFailures = failed ? current.codeFailures + 1 : 0;
      const failuresAtMs = failed
        ? [...recentFailures(current, atMs), atMs].slice(-this.limits.terminalCodeFailuresPerDayMax)
        : current.failuresAtMs;
      const typosAtMs = current.typosAtMs?.filter((typoAtMs) => failuresAtMs?.includes(typoAtMs));
      const locked = current.locked || codeFailures >= this.limits.terminalCodeFailuresMax;
      this.store.terminals.put(terminalId, { ...current, codeFailures, failuresAtMs, typosAtMs, locked });
      return locked && !current.locked;
    });
  }

  /**
   * Stores that the terminal's failure counted at `atMs` was explained as a typo, so a restart puts it in
   * its merchant's typo budget, not its windows. The terminal's own counts keep it.
   */
  async explain(terminalId: TerminalId, atMs: number): Promise<void> {
    await this.write(() => {
      const current = this.store.terminals.get(terminalId);
      if (!current?.failuresAtMs?.includes(atMs)) return;
      this.store.terminals.put(terminalId, { ...current, typosAtMs: [...(current.typosAtMs ?? []), atMs] });
    });
  }
}

/**
 * The lock rule: a terminal may not try codes when its merchant locked it (also set after failed codes in
 * a row) or when it reached `terminalCodeFailuresPerDayMax` failures in the last 24 hours
 * (`recentFailures`).
 */
export function isLocked(terminal: TerminalRecord, failuresInDay: number, limits: Limits): boolean {
  return terminal.locked || failuresInDay >= limits.terminalCodeFailuresPerDayMax;
}

/** A terminal's failures within the 24 hours before `nowMs`. */
export function recentFailures(terminal: TerminalRecord, nowMs: number): number[] {
  return (terminal.failuresAtMs ?? []).filter((atMs) => atMs > nowMs - DAY_MS);
}
