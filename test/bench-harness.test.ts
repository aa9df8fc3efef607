import { describe, expect, it } from 'vitest';
import { closedLoop, combine, openLoop } from '../bench/load.ts';
import { zipfPicker } from '../bench/pos.ts';

/**
 * The load generator's own logic: latency counted from the scheduled start in open loop (so a stalled
 * server cannot hide its queue), rounds combined without losing counts, and the Zipf picker's law.
 * No timing targets here; only bounds that follow from how the clock is read.
 */
const noServer = () => [];

describe('load generator', () => {
  it('open loop measures latency from the scheduled start, closed loop from the send', async () => {
    // Every transaction waits for one gate that opens 200 ms after the first is sent.
    const gated = () => {
      let open!: () => void;
      const gate = new Promise<void>((resolve) => (open = resolve));
      let started = false;
      return (): Promise<void> => {
        if (!started) setTimeout(open, 200);
        started = true;
        return gate;
      };
    };
    const open = await openLoop({
      label: 'stalled',
      total: 10,
      offeredPerSec: 100,
      outstandingMax: 100,
      tx: gated(),
      serverPids: noServer,
      quiet: true,
    });
    expect(open.completed).toBe(10);
    expect(open.errors).toBe(0);
    // Transaction i was due at 10·i ms and finished at 200 ms or later: the one due last (90 ms)
    // waited at least 110 ms, the first at least 200 ms.
    expect(open.latency.maxMs).toBeGreaterThanOrEqual(199);
    expect(open.histogram.getValueAtPercentile(0) / 1000).toBeGreaterThanOrEqual(109);

    const closed = await closedLoop({
      label: 'stalled',
      total: 10,
      clients: 10,
      tx: gated(),
      serverPids: noServer,
      quiet: true,
    });
    expect(closed.completed).toBe(10);
    expect(closed.latency.maxMs).toBeGreaterThanOrEqual(199);
  });

  it('open loop counts a transaction it cannot send as an error, never as a fast answer', async () => {
    let release!: () => void;
    const gate = new Promise<void>((resolve) => (release = resolve));
    setTimeout(() => release(), 50);
    const result = await openLoop({
      label: 'full',
      total: 5,
      offeredPerSec: 1000,
      outstandingMax: 2,
      // The first two hold the only two slots until the gate opens; the others are due before that.
      tx: (i) => (i < 2 ? gate : Promise.resolve()),
      serverPids: noServer,
      quiet: true,
    });
    expect(result.completed).toBe(2);
    expect(result.errors).toBe(3);
    expect(result.errorSamples).toEqual(['not sent: 2 outstanding']);
  });

  it('failures are counted with their message and left out of the latencies', async () => {
    const result = await closedLoop({
      label: 'failing',
      total: 6,
      clients: 2,
      tx: async (i) => {
        if (i % 3 === 0) throw new Error('declined: insufficient_funds');
      },
      serverPids: noServer,
      quiet: true,
    });
    expect(result.errors).toBe(2);
    expect(result.completed).toBe(4);
    expect(result.errorSamples).toEqual(['declined: insufficient_funds']);
  });

  it('combines rounds: counts and times add up, percentiles come from all samples', async () => {
    const run = (ms: number, total: number) =>
      closedLoop({
        label: 'round',
        total,
        clients: 1,
        tx: () => new Promise((resolve) => setTimeout(resolve, ms)),
        serverPids: noServer,
        quiet: true,
      });
    const fast = await run(0, 30);
    const slow = await run(30, 3);
    const both = combine([fast, slow]);
    expect(both.completed).toBe(33);
    expect(both.elapsedMs).toBeCloseTo(fast.elapsedMs + slow.elapsedMs, 6);
    expect(both.latency.maxMs).toBe(Math.max(fast.latency.maxMs, slow.latency.maxMs));
    expect(both.latency.p50Ms).toBeLessThan(30);
    expect(both.windowsUs).toHaveLength(2);
  });
});

describe('Zipf picker', () => {
  it('picks index k with probability proportional to 1/(k+1)', () => {
    const n = 100;
    const pick = zipfPicker(n, 1, 7);
    const counts = new Array<number>(n).fill(0);
    const draws = 200_000;
    for (let i = 0; i < draws; i++) {
      const k = pick();
      counts[k] = (counts[k] ?? 0) + 1;
    }
    let harmonic = 0;
    for (let k = 1; k <= n; k++) harmonic += 1 / k;
    for (const k of [0, 1, 9]) {
      const expected = draws / ((k + 1) * harmonic);
      expect(Math.abs((counts[k] ?? 0) - expected) / expected).toBeLessThan(0.05);
    }
    expect(counts.every((count) => count > 0)).toBe(true);
  });
});
