/**
 * A hashed timer wheel: one bucket per tick, `slots` buckets around. A timer goes into the bucket of
 * its due tick and fires at the first call of `due` at or after its time (in the round it is due; later
 * rounds stay).
 * One interval per shard drives it, instead of one setTimeout per code. Timers are plain data, so the
 * shard rebuilds the wheel from LMDB after a restart; a cancelled timer leaves the wheel at once.
 *
 * @module
 */

export interface Timer<T> {
  readonly atMs: number;
  readonly item: T;
}

export class TimerWheel<T> {
  private readonly buckets: Set<Timer<T>>[];
  /** Timers added behind the cursor: a clock that stepped back leaves them here until they are due. */
  private readonly overdue = new Set<Timer<T>>();
  private cursorTick: number;

  constructor(
    private readonly tickMs: number,
    private readonly slots: number,
    startMs: number,
  ) {
    this.buckets = Array.from({ length: slots }, () => new Set());
    // Buckets up to the cursor are done; a bucket is done once its whole tick has passed.
    this.cursorTick = Math.floor(startMs / tickMs) - 1;
  }

  get size(): number {
    let count = this.overdue.size;
    for (const bucket of this.buckets) count += bucket.size;
    return count;
  }

  add(atMs: number, item: T): Timer<T> {
    const timer = { atMs, item };
    this.bucketOf(timer).add(timer);
    return timer;
  }

  cancel(timer: Timer<T>): void {
    this.bucketOf(timer).delete(timer);
    this.overdue.delete(timer);
  }

  /** Removes and returns up to `max` timers due at `nowMs`; the rest fire on a later call. */
  due(nowMs: number, max: number): T[] {
    const fired: T[] = [];
    const take = (bucket: Set<Timer<T>>) => {
      for (const timer of bucket) {
        if (fired.length >= max) return false;
        if (timer.atMs > nowMs) continue;
        fired.push(timer.item);
        bucket.delete(timer);
      }
      return true;
    };
    take(this.overdue);
    const doneTick = Math.floor(nowMs / this.tickMs) - 1;
    // After a long pause one pass over every bucket is enough.
    const lastTick = Math.min(doneTick, this.cursorTick + this.slots);
    while (this.cursorTick < lastTick) {
      if (!take(this.buckets[(this.cursorTick + 1) % this.slots] as Set<Timer<T>>)) return fired;
      this.cursorTick++;
    }
    if (lastTick < doneTick) this.cursorTick = doneTick;
    // The tick under way: its timers already due fire now, not a tick late (its later ones stay).
    take(this.buckets[(this.cursorTick + 1) % this.slots] as Set<Timer<T>>);
    return fired;
  }

  private bucketOf(timer: Timer<T>): Set<Timer<T>> {
    const tick = Math.floor(timer.atMs / this.tickMs);
    return tick <= this.cursorTick ? this.overdue : (this.buckets[tick % this.slots] as Set<Timer<T>>);
  }
}
