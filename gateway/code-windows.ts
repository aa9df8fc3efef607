import type { MerchantId } from '../engine/ids.ts';
import { DAY_MS, type Limits } from '../engine/limits.ts';

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

  /** `restored`: the terminals' stored failures of the last day, so a restart gives no fresh guesses. */
  constructor(
    private readonly limits: Limits,
    restored: { byMerchant: Map<MerchantId, number[]>; all: number[] },
  ) {
    this.all = new FailureLog(limits.merchantCodeFailureWindowMs, limits.globalCodeFailuresPerWindowMax);
    for (const [merchantId, failuresAtMs] of restored.byMerchant)
      for (const log of this.of(merchantId)) for (const atMs of failuresAtMs) log.add(atMs);
    for (const atMs of restored.all) this.all.add(atMs);
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

  /** Counts a failure at this merchant (before the attempt runs when it is certain). */
  add(merchantId: string, nowMs: number): void {
    for (const log of this.of(merchantId)) log.add(nowMs);
    this.all.add(nowMs);
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
  private readonly atMs: number[] = [];

  constructor(
    private readonly windowMs: number,
    private readonly max: number,
  ) {}

  /** When the window has room: now, or when enough of its failures have slid out of it. */
  roomAtMs(nowMs: number): number {
    while (this.atMs.length > 0 && (this.atMs[0] as number) <= nowMs - this.windowMs) this.atMs.shift();
    if (this.atMs.length < this.max) return nowMs;
    return (this.atMs[this.atMs.length - this.max] as number) + this.windowMs;
  }

  add(nowMs: number): void {
    this.atMs.push(nowMs);
  }
}
