/**
 * Events per key within a sliding window, for budgets such as texts per phone number or per client
 * address. At most `keysMax` keys are kept, the least recently used forgotten first, so a flood of new
 * keys costs bounded memory.
 *
 * @module
 */

export class KeyedWindow {
  private readonly events = new Map<string, number[]>();

  constructor(
    private readonly windowMs: number,
    private readonly max: number,
    private readonly keysMax = 100_000,
  ) {}

  /** Whether `key`'s window has room now (nothing recorded). */
  hasRoom(key: string, nowMs: number): boolean {
    return (this.events.get(key) ?? []).filter((atMs) => atMs > nowMs - this.windowMs).length < this.max;
  }

  /** Takes back an event recorded at `atMs` by `take` (it did not happen after all). */
  release(key: string, atMs: number): void {
    const recent = this.events.get(key);
    const index = recent ? recent.lastIndexOf(atMs) : -1;
    if (recent && index >= 0) recent.splice(index, 1);
  }

  /** Records an event of `key` when its window has room; false (and nothing recorded) when it is full. */
  take(key: string, nowMs: number): boolean {
    const recent = (this.events.get(key) ?? []).filter((atMs) => atMs > nowMs - this.windowMs);
    const room = recent.length < this.max;
    if (room) recent.push(nowMs);
    // Re-inserted, so the Map's order is least recently used first.
    this.events.delete(key);
    this.events.set(key, recent);
    if (this.events.size > this.keysMax) this.events.delete(this.events.keys().next().value as string);
    return room;
  }
}
