import { DAY_MS, type Limits } from '../core/limits.ts';
import type { CodeRefusal, CodeWindow } from '../sdk/http-answers.ts';
import type { CodeFailure } from './terminal-failures.ts';

/**
 * The failure windows of code attempts (docs/security.md): each merchant's (the last minute, the last
 * day) and all merchants' together (the last minute). The POS channel counts failures in them and refuses
 * attempts while one is full; the merchant's dashboard shows why and until when.
 *
 * A miss that a till's next sale explains as a typo (`explain`) leaves them for the merchant's typo
 * budget, so the slips honest cashiers make at a busy merchant do not stop its sales.
 */

/**
 * A change of the windows, told to the other nodes of a cluster (each node counts the attempts it
 * receives; with these, every node's windows hold every node's misses, a broadcast's delay later).
 */
export type WindowChange =
  | { type: 'miss' | 'uncount' | 'typo'; merchantId: string; terminalId: string; atMs: number }
  | { type: 'forget'; merchantId: string; terminalId: string };

/** A merchant's windows: the last minute's and the last day's misses, and the last day's explained typos. */
interface MerchantLogs {
  minute: FailureLog;
  day: FailureLog;
  typos: FailureLog;
}

export class CodeFailureWindows {
  private readonly merchants = new Map<string, MerchantLogs>();
  private readonly all: FailureLog;
  /** Each terminal's misses a sale may still explain (the last `codeTypoExplainMs`), oldest first. */
  private readonly unexplained = new Map<string, { digits: string; atMs: number }[]>();
  /** Where this node's changes go (the other nodes of a cluster); nowhere alone. */
  private tell: (change: WindowChange) => void = () => {};

  /**
   * `restored`: the terminals' stored failures of the last day, oldest first, so a restart gives no fresh
   * guesses; those explained as typos take room in the typo budget again.
   */
  constructor(
    private readonly limits: Limits,
    restored: readonly CodeFailure[],
  ) {
    this.all = new FailureLog(limits.merchantCodeFailureWindowMs, limits.globalCodeFailuresPerWindowMax);
    for (const { merchantId, terminalId, atMs, explained } of restored) {
      if (explained) this.of(merchantId).typos.add(atMs, terminalId);
      else this.add(merchantId, terminalId, atMs);
    }
  }

  /** Tells every change made here from now on to `tell` (the other nodes). */
  shareWith(tell: (change: WindowChange) => void): void {
    this.tell = tell;
  }

  /** A change another node made: counted here too, and not told again. */
  apply(change: WindowChange): void {
    const { merchantId, terminalId } = change;
    if (change.type === 'forget') {
      this.forgetHere(merchantId, terminalId);
      return;
    }
    const logs = this.of(merchantId);
    const counted = [logs.minute, logs.day, this.all];
    if (change.type === 'miss') for (const log of counted) log.add(change.atMs, terminalId);
    else for (const log of counted) log.remove(change.atMs, terminalId);
    if (change.type === 'typo') logs.typos.add(change.atMs, terminalId);
  }

  /** Why code attempts at this merchant are refused now, or null when every window has room. */
  refusal(merchantId: string, nowMs: number): CodeRefusal | null {
    const { minute, day } = this.of(merchantId);
    const windows: [FailureLog, CodeWindow][] = [
      [minute, 'merchant, per minute'],
      [day, 'merchant, per day'],
      [this.all, 'all merchants, per minute'],
    ];
    for (const [log, window] of windows) {
      const untilMs = log.roomAtMs(nowMs);
      if (untilMs > nowMs) return { window, untilMs };
    }
    return null;
  }

  /**
   * Counts a failure of a terminal of this merchant (before the attempt runs when it is certain);
   * `digits`, what was typed, lets the terminal's next sale explain it as a typo.
   */
  add(merchantId: string, terminalId: string, nowMs: number, digits?: string): void {
    const { minute, day } = this.of(merchantId);
    for (const log of [minute, day, this.all]) log.add(nowMs, terminalId);
    this.tell({ type: 'miss', merchantId, terminalId, atMs: nowMs });
    if (digits === undefined) return;
    const misses = this.recentMisses(terminalId, nowMs);
    misses.push({ digits, atMs: nowMs });
    this.unexplained.set(terminalId, misses);
  }

  /** Takes back a failure counted before its attempt ran (`add` at the same time), which was no miss. */
  uncount(merchantId: string, terminalId: string, atMs: number, digits: string): void {
    const { minute, day } = this.of(merchantId);
    for (const log of [minute, day, this.all]) log.remove(atMs, terminalId);
    this.tell({ type: 'uncount', merchantId, terminalId, atMs });
    const misses = this.unexplained.get(terminalId) ?? [];
    const index = misses.findIndex((miss) => miss.atMs === atMs && miss.digits === digits);
    if (index >= 0) misses.splice(index, 1);
    if (misses.length === 0) this.unexplained.delete(terminalId);
  }

  /**
   * After the approved redeem of `code` at a terminal: its latest miss one slip away from the code, if
   * any within `codeTypoExplainMs`, was the cashier's typo. It leaves the merchant's and the global
   * windows for the merchant's typo budget, while that has room. Returns when the miss was counted (for
   * the terminal's stored record), or null when nothing was explained.
   */
  explain(merchantId: string, terminalId: string, code: string, nowMs: number): number | null {
    // Every approved sale asks; a till with no recent miss (nearly all of them) costs one map look-up.
    if (!this.unexplained.has(terminalId)) return null;
    const misses = this.recentMisses(terminalId, nowMs);
    const index = misses.findLastIndex((miss) => oneSlipApart(miss.digits, code));
    const logs = this.of(merchantId);
    if (index < 0 || logs.typos.roomAtMs(nowMs) > nowMs) return null;
    const { atMs } = misses.splice(index, 1)[0] as { atMs: number };
    if (misses.length > 0) this.unexplained.set(terminalId, misses);
    else this.unexplained.delete(terminalId);
    for (const log of [logs.minute, logs.day, this.all]) log.remove(atMs, terminalId);
    logs.typos.add(atMs, terminalId);
    this.tell({ type: 'typo', merchantId, terminalId, atMs });
    return atMs;
  }

  /**
   * Forgets a terminal's failures, as the operator's unlock forgets its day's (terminals.ts `setLocked`):
   * what one till did no longer holds back its merchant's other tills.
   */
  forgetTerminal(merchantId: string, terminalId: string): void {
    this.forgetHere(merchantId, terminalId);
    this.tell({ type: 'forget', merchantId, terminalId });
  }

  private forgetHere(merchantId: string, terminalId: string): void {
    const { minute, day, typos } = this.of(merchantId);
    for (const log of [minute, day, typos, this.all]) log.forget(terminalId);
    this.unexplained.delete(terminalId);
  }

  /** A terminal's misses still young enough to be explained (the map forgets terminals with none). */
  private recentMisses(terminalId: string, nowMs: number): { digits: string; atMs: number }[] {
    const misses = (this.unexplained.get(terminalId) ?? []).filter(
      (miss) => miss.atMs > nowMs - this.limits.codeTypoExplainMs,
    );
    if (misses.length === 0) this.unexplained.delete(terminalId);
    return misses;
  }

  /** A merchant's windows, made on first use. */
  private of(merchantId: string): MerchantLogs {
    let logs = this.merchants.get(merchantId);
    if (!logs) {
      const { limits } = this;
      logs = {
        minute: new FailureLog(limits.merchantCodeFailureWindowMs, limits.merchantCodeFailuresPerWindowMax),
        day: new FailureLog(DAY_MS, limits.merchantCodeFailuresPerDayMax),
        typos: new FailureLog(DAY_MS, limits.merchantCodeTyposPerDayMax),
      };
      this.merchants.set(merchantId, logs);
    }
    return logs;
  }
}

/**
 * Whether typed digits are one slip from a code: one digit changed, left out or added, or two
 * neighbouring digits swapped.
 */
export function oneSlipApart(typed: string, code: string): boolean {
  if (typed === code) return false;
  if (typed.length === code.length) {
    const differ: number[] = [];
    for (let i = 0; i < code.length && differ.length <= 2; i++) if (typed[i] !== code[i]) differ.push(i);
    if (differ.length === 1) return true;
    const [a, b] = differ as [number, number];
    return differ.length === 2 && b === a + 1 && typed[a] === code[b] && typed[b] === code[a];
  }
  const [shorter, longer] = typed.length < code.length ? [typed, code] : [code, typed];
  if (longer.length !== shorter.length + 1) return false;
  let same = 0;
  while (same < shorter.length && shorter[same] === longer[same]) same++;
  return shorter.slice(same) === longer.slice(same + 1);
}

/**
 * Failures within a sliding window; it has room while they are fewer than `max`. The caller records a
 * failure as soon as it is certain, before the attempt runs, so attempts running at once cannot pass the
 * maximum together; honest sales (live codes) take no room.
 */
class FailureLog {
  /** Oldest first: when, and by which terminal. */
  private entries: { atMs: number; terminalId: string }[] = [];

  constructor(
    private readonly windowMs: number,
    private readonly max: number,
  ) {}

  /** When the window has room: now, or when enough of its failures have slid out of it. */
  roomAtMs(nowMs: number): number {
    while (this.entries.length > 0 && (this.entries[0]?.atMs as number) <= nowMs - this.windowMs)
      this.entries.shift();
    if (this.entries.length < this.max) return nowMs;
    return (this.entries[this.entries.length - this.max]?.atMs as number) + this.windowMs;
  }

  /** Adds a failure in its place by time (an explained typo may be older than the last one added). */
  add(atMs: number, terminalId: string): void {
    let index = this.entries.length;
    while (index > 0 && (this.entries[index - 1]?.atMs as number) > atMs) index--;
    this.entries.splice(index, 0, { atMs, terminalId });
  }

  /** Takes out one failure, if it is still in the window. */
  remove(atMs: number, terminalId: string): void {
    const index = this.entries.findIndex((entry) => entry.atMs === atMs && entry.terminalId === terminalId);
    if (index >= 0) this.entries.splice(index, 1);
  }

  forget(terminalId: string): void {
    this.entries = this.entries.filter((entry) => entry.terminalId !== terminalId);
  }
}
