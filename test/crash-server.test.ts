/**
 * Crash recovery of the real server under load (bench/crash.ts, short variant; `npm run bench -- crash`
 * runs the long one): POS terminals redeem, void and refund, phones give each other gift value and hold
 * wallet sockets while the server is killed with SIGKILL three times at random moments and restarted on
 * the same data directory, then stopped with SIGTERM. Every acknowledged answer is recovered exactly once
 * with one confirmation text (a gift with one text to each phone), no gift is left half given, a spent
 * code shown again after a restart does not pay twice, no consumer paid more often than it had codes, the
 * audits are clean, SIGTERM exits 0, and the checker does report a confirmation removed from a copy of the
 * data.
 */
import { describe, expect, it } from 'vitest';
import { crashRun } from '../bench/crash.ts';

describe('crash recovery under load', () => {
  it('recovers every acknowledged answer exactly once after SIGKILLs', async () => {
    const seed = Number(process.env.SEED ?? Math.floor(Math.random() * 2 ** 31));
    const report = await crashRun({
      cycles: 3,
      terminals: 6,
      consumers: 48,
      wallets: 12,
      shards: 2,
      loadMsMin: 300,
      loadMsMax: 1_200,
      seed,
      log: () => undefined,
    });
    expect(report.problems, `seed ${seed}`).toEqual([]);
    expect(report.restartMs).toHaveLength(3);
    expect(report.acknowledged.redeem).toBeGreaterThan(0);
    expect(report.acknowledged.void + report.acknowledged.refund).toBeGreaterThan(0);
    expect(report.acknowledged.gift).toBeGreaterThan(0);
    expect(report.sigtermExitCode).toBe(0);
    expect(report.lossDetected).toBe(true);
    // Each restart had a till show its last paid code again: never paid twice.
    expect(report.spentShownAgain).toBeGreaterThan(0);
  }, 120_000);
});
