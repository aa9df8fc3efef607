/**
 * A hashed timer wheel: one bucket per tick, `slots` buckets around. A timer goes into the bucket of
 * its due tick and fires when the wheel passes that bucket in the round it is due; later rounds stay.
 * One interval per shard drives it, instead of one setTimeout per code. Timers are plain data, so the
 * shard rebuilds the wheel from LMDB after a restart.
 */
export class TimerWheel<T> {
  private readonly buckets: { atMs: number; item: T }[][];
  private overdue: { atMs: number; item: T }[] = [];
  private cursorTick: number;
  private count = 0;

  constructor(
    private readonly tickMs: number,
    private readonly slots: number,
    startMs: number,
  ) {
    this.buckets = Array.from({ length: slots }, () => []);
    // Buckets up to the cursor are done; a bucket is done once its whole tick has passed.
    this.cursorTick = Math.floor(startMs / tickMs) - 1;
  }

  get size(): number {
    return this.count;
  }

  add(atMs: number, item: T): void {
    this.count++;
    const tick = Math.floor(atMs / this.tickMs);
    if (tick <= this.cursorTick) this.overdue.push({ atMs, item });
    else (this.buckets[tick % this.slots] as { atMs: number; item: T }[]).push({ atMs, item });
  }

  /** Removes and returns up to `max` timers due at `nowMs`; the rest fire on a later call. */
  due(nowMs: number, max: number): T[] {
    const fired: T[] = [];
    // Timers added behind the cursor; a clock that stepped back leaves them here until they are due.
    this.overdue = this.overdue.filter((timer) => {
      if (timer.atMs > nowMs || fired.length >= max) return true;
      fired.push(timer.item);
      return false;
    });
    const doneTick = Math.floor(nowMs / this.tickMs) - 1;
    // After a long pause one pass over every bucket is enough.
    const lastTick = Math.min(doneTick, this.cursorTick + this.slots);
    while (this.cursorTick < lastTick && fired.length < max) {
      const tick = this.cursorTick + 1;
      const bucket = this.buckets[tick % this.slots] as { atMs: number; item: T }[];
      const kept: { atMs: number; item: T }[] = [];
      for (const timer of bucket) {
        if (timer.atMs <= nowMs && fired.length < max) fired.push(timer.item);
        else kept.push(timer);
      }
      this.buckets[tick % this.slots] = kept;
      if (fired.length >= max && kept.some((timer) => timer.atMs <= nowMs)) break;
      this.cursorTick = tick;
    }
    if (this.cursorTick === lastTick && lastTick < doneTick) this.cursorTick = doneTick;
    this.count -= fired.length;
    return fired;
  }
}
