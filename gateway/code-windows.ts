import { DAY_MS, type Limits } from '../engine/limits.ts';
import type { CodeFailure } from './registry.ts';

/**
 * The failure windows of code attempts (docs/security.md): each merchant's (the last minute, the last
 * day) and all merchants' together (the last minute). The POS channel counts failures in them and refuses
 * attempts while one is full; the merchant's dashboard shows why and until when.
 */
export type CodeWindow = 'merchant, per minute' | 'merchant, per day' | 'all merchants, per minute';

export interface CodeRefusal {
  window: CodeWindow;
  /** When the window has room again, if nothing more is counted. */
  untilMs: number;
}

export class CodeFailureWindows {
  private readonly merchants = new Map<string, [FailureLog, FailureLog]>();
  private readonly all: FailureLog;

  /** `restored`: the terminals' stored failures of the last day, oldest first, so a restart gives no fresh guesses. */
  constructor(
    private readonly limits: Limits,
    restored: readonly CodeFailure[],
  ) {
    this.all = new FailureLog(limits.merchantCodeFailureWindowMs, limits.globalCodeFailuresPerWindowMax);
    for (const { merchantId, terminalId, atMs } of restored) this.add(merchantId, terminalId, atMs);
  }

  /** Why code attempts at this merchant are refused now, or null when every window has room. */
  refusal(merchantId: string, nowMs: number): CodeRefusal | null {
    const [minute, day] = this.of(merchantId);
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

  /** Counts a failure of a terminal of this merchant (before the attempt runs when it is certain). */
  add(merchantId: string, terminalId: string, nowMs: number): void {
    for (const log of this.of(merchantId)) log.add(nowMs, terminalId);
    this.all.add(nowMs, terminalId);
  }

  /**
   * Forgets a terminal's failures, as the operator's unlock forgets its day's (registry.ts `setLocked`):
   * what one till did no longer holds back its merchant's other tills.
   */
  forgetTerminal(merchantId: string, terminalId: string): void {
    for (const log of [...this.of(merchantId), this.all]) log.forget(terminalId);
  }

  /** A merchant's windows, made on first use. */
  private of(merchantId: string): [FailureLog, FailureLog] {
    let logs = this.merchants.get(merchantId);
    if (!logs) {
      logs = [
        new FailureLog(this.limits.merchantCodeFailureWindowMs, this.limits.merchantCodeFailuresPerWindowMax),
        new FailureLog(DAY_MS, this.limits.merchantCodeFailuresPerDayMax),
      ];
      this.merchants.set(merchantId, logs);
    }
    return logs;
  }
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

  add(atMs: number, terminalId: string): void {
    this.entries.push({ atMs, terminalId });
  }

  forget(terminalId: string): void {
    this.entries = this.entries.filter((entry) => entry.terminalId !== terminalId);
  }
}
