// Proves the timer wheel fires every timer once, never before it is due, including timers beyond one
// turn of the wheel, timers added behind the cursor, after a pause longer than the whole wheel, and
// never once cancelled.
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { TimerWheel } from '../engine/timer-wheel.ts';

describe('TimerWheel', () => {
  it('fires each timer exactly once and never before it is due', () => {
    fc.assert(
      fc.property(
        fc.array(fc.integer({ min: 0, max: 50_000 }), { maxLength: 200 }),
        fc.array(fc.integer({ min: 1, max: 3_000 }), { minLength: 1, maxLength: 100 }),
        (offsets, steps) => {
          const start = 1_000_000;
          const wheel = new TimerWheel<number>(100, 16, start);
          offsets.forEach((offset, id) => {
            wheel.add(start + offset, id);
          });
          const firedAt = new Map<number, number>();
          let now = start;
          const drain = () => {
            for (const id of wheel.due(now, 1_000_000)) {
              expect(firedAt.has(id)).toBe(false);
              expect(start + (offsets[id] as number)).toBeLessThanOrEqual(now);
              firedAt.set(id, now);
            }
          };
          for (const step of steps) {
            now += step;
            drain();
          }
          now += 60_000;
          drain();
          expect(firedAt.size).toBe(offsets.length);
          expect(wheel.size).toBe(0);
        },
      ),
    );
  });

  it('fires on the first tick at or after the due time when ticked every tick', () => {
    const wheel = new TimerWheel<string>(100, 8, 0);
    wheel.add(1_250, 'a');
    const fired: [string, number][] = [];
    for (let now = 100; now <= 2_000; now += 100) for (const id of wheel.due(now, 10)) fired.push([id, now]);
    expect(fired).toEqual([['a', 1_300]]);
  });

  it('fires a timer due inside the tick under way at once, not a tick late', () => {
    const wheel = new TimerWheel<string>(100, 8, 0);
    wheel.add(1_250, 'a');
    wheel.add(1_290, 'b');
    wheel.add(1_250 + 800, 'a later round');
    expect(wheel.due(1_249, 10)).toEqual([]);
    expect(wheel.due(1_260, 10)).toEqual(['a']);
    expect(wheel.due(1_300, 10)).toEqual(['b']);
    expect(wheel.due(2_049, 10)).toEqual([]);
    expect(wheel.due(2_050, 10)).toEqual(['a later round']);
  });

  it('keeps a timer added behind the cursor until the clock reaches it', () => {
    const wheel = new TimerWheel<string>(100, 8, 10_000);
    expect(wheel.due(10_500, 10)).toEqual([]);
    wheel.add(10_250, 'behind');
    // The clock stepped back: not due yet, so it must not fire (and must not be lost).
    expect(wheel.due(10_200, 10)).toEqual([]);
    expect(wheel.due(10_250, 10)).toEqual(['behind']);
  });

  it('bounds the timers fired per call and fires the rest later', () => {
    const wheel = new TimerWheel<number>(100, 8, 0);
    for (let id = 0; id < 25; id++) wheel.add(150, id);
    const first = wheel.due(200, 10);
    const second = wheel.due(200, 10);
    const third = wheel.due(300, 10);
    expect([first.length, second.length, third.length]).toEqual([10, 10, 5]);
    expect(new Set([...first, ...second, ...third]).size).toBe(25);
  });

  it('never fires a cancelled timer, wherever it waits', () => {
    const wheel = new TimerWheel<string>(100, 8, 1_000);
    const soon = wheel.add(1_150, 'soon');
    const later = wheel.add(9_000, 'later round');
    wheel.due(1_600, 10);
    const behind = wheel.add(1_200, 'behind the cursor');
    wheel.add(1_300, 'kept');
    for (const timer of [soon, later, behind]) wheel.cancel(timer);
    expect(wheel.due(20_000, 10)).toEqual(['kept']);
    expect(wheel.size).toBe(0);
  });
});
