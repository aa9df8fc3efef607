/**
 * The length of each new code, checked against a simple model on a real engine (worker threads, LMDB)
 * with fast-check: consumers ask for codes at two merchants, pay with them, cancel them, let them
 * expire, merchants change their shortest length, and the engine restarts. After every step each
 * shard's live codes per length equal the model's, so no length ever holds more than its density
 * allows; every new code has the model's length (the shortest from the merchant's minimum with room in
 * its shard's share), and room comes back by every way a code ends and after a restart.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import fc from 'fast-check';
import { describe, expect, it, onTestFinished } from 'vitest';
import { CODE_DIGITS_MAX, CODE_DIGITS_MIN, CODE_LENGTHS } from '../core/codes.ts';
import { shardOfSlot, slotOfId } from '../core/ids.ts';
import { LIMITS } from '../core/limits.ts';
import { Engine } from '../engine/engine.ts';
import { liveCodeShare } from '../engine/live-codes.ts';
import { randomSecrets } from '../persistence/secrets.ts';
import { fund } from './helpers.ts';

const MINUTE = 60_000;
const SHARDS = 2;
const CONSUMERS = 24;
const MERCHANTS = ['ma', 'mb'] as const;

type Step =
  | { op: 'issue'; consumer: number; merchant: number }
  /** A rush: consumers `from` onwards each ask for a code at the merchant, one after another. */
  | { op: 'rush'; from: number; count: number; merchant: number }
  | { op: 'redeem'; consumer: number }
  | { op: 'cancel'; consumer: number }
  | { op: 'minimum'; merchant: number; digits: number }
  | { op: 'time'; minutes: number }
  | { op: 'restart' };

const step: fc.Arbitrary<Step> = fc.oneof(
  {
    weight: 12,
    arbitrary: fc.record({
      op: fc.constant('issue' as const),
      consumer: fc.nat(CONSUMERS - 1),
      // Mostly the first merchant, so that its shortest length fills up.
      merchant: fc.oneof({ weight: 4, arbitrary: fc.constant(0) }, { weight: 1, arbitrary: fc.constant(1) }),
    }),
  },
  {
    weight: 2,
    arbitrary: fc.record({
      op: fc.constant('rush' as const),
      from: fc.nat(CONSUMERS - 1),
      count: fc.integer({ min: 2, max: CONSUMERS }),
      merchant: fc.nat(1),
    }),
  },
  {
    weight: 2,
    arbitrary: fc.record({ op: fc.constant('redeem' as const), consumer: fc.nat(CONSUMERS - 1) }),
  },
  {
    weight: 2,
    arbitrary: fc.record({ op: fc.constant('cancel' as const), consumer: fc.nat(CONSUMERS - 1) }),
  },
  {
    weight: 1,
    arbitrary: fc.record({
      op: fc.constant('minimum' as const),
      merchant: fc.nat(1),
      digits: fc.oneof(
        fc.constant(CODE_DIGITS_MIN),
        fc.integer({ min: CODE_DIGITS_MIN, max: CODE_DIGITS_MAX }),
      ),
    }),
  },
  {
    weight: 2,
    arbitrary: fc.record({ op: fc.constant('time' as const), minutes: fc.integer({ min: 1, max: 25 }) }),
  },
  { weight: 1, arbitrary: fc.constant({ op: 'restart' as const }) },
);

interface ModelCode {
  merchantId: string;
  code: string;
  expiresAtMs: number;
}

describe('code lengths', () => {
  it('match a model of the shards’ shares through issues, payments, cancels, expiry and restarts', async () => {
    const dataDir = mkdtempSync(join(tmpdir(), 'paycode-test-'));
    onTestFinished(() => rmSync(dataDir, { recursive: true, force: true }));
    const clock = { nowMs: Date.now() };
    const options = { dataDir, secrets: randomSecrets(), shards: SHARDS, now: () => clock.nowMs };
    let engine = await Engine.open(options);
    onTestFinished(() => engine.close());
    const share = liveCodeShare(LIMITS.merchantLiveCodesMax, SHARDS);
    let run = 0;
    /** New codes longer than their merchant's minimum: a shorter length was full. */
    let lengthened = 0;

    await fc.assert(
      fc.asyncProperty(fc.array(step, { minLength: 1, maxLength: 60 }), async (steps) => {
        // Each run has merchants and consumers of its own, so runs do not see each other's codes.
        run++;
        // Every code of the runs before expires (also of a run that failed), so this one starts with none.
        clock.nowMs += 21 * MINUTE + 7;
        await engine.tick(clock.nowMs);
        const merchantIds = MERCHANTS.map((name) => `${name}${run}`);
        const consumerIds = await Promise.all(
          Array.from({ length: CONSUMERS }, async (_, i) => {
            const phone = `+1555${String(run).padStart(3, '0')}${String(i).padStart(4, '0')}`;
            for (const merchantId of merchantIds) await fund(engine, phone, 1_000_000, merchantId);
            return engine.consumerIdFor(phone);
          }),
        );
        const shardOf = (consumerId: string) => shardOfSlot(slotOfId(consumerId), SHARDS);
        const minimum = merchantIds.map(() => CODE_DIGITS_MIN);
        const codes = new Map<string, ModelCode>();
        const live = (shard: number, merchantId: string, digits: number) =>
          [...codes].filter(
            ([holder, code]) =>
              shardOf(holder) === shard && code.merchantId === merchantId && code.code.length === digits,
          ).length;
        /** The model's length for a new code: the shortest from the minimum with room in the shard's share. */
        const expectedLength = (consumerId: string, merchantId: string, digitsMin: number): number | null => {
          const own = codes.get(consumerId);
          const replacing = own?.merchantId === merchantId ? own.code.length : null;
          for (let digits = digitsMin; digits <= CODE_DIGITS_MAX; digits++) {
            const count = live(shardOf(consumerId), merchantId, digits) - (replacing === digits ? 1 : 0);
            if (count < (share.byLength[digits - CODE_DIGITS_MIN] ?? 0)) return digits;
          }
          return null;
        };
        const checkCounts = async () => {
          const stats = await engine.shardStats();
          for (const { shardIndex, liveCodesByLength } of stats) {
            const expected = CODE_LENGTHS.map((digits) =>
              merchantIds.reduce((sum, merchantId) => sum + live(shardIndex, merchantId, digits), 0),
            );
            expect(liveCodesByLength).toEqual(expected);
            liveCodesByLength.forEach((count, i) => {
              expect(count).toBeLessThanOrEqual((share.byLength[i] ?? 0) * merchantIds.length);
            });
          }
        };

        let key = 0;
        const issues = steps.flatMap((s): Exclude<Step, { op: 'rush' }>[] =>
          s.op === 'rush'
            ? Array.from({ length: s.count }, (_, i) => ({
                op: 'issue',
                consumer: (s.from + i) % CONSUMERS,
                merchant: s.merchant,
              }))
            : [s],
        );
        for (const s of issues) {
          if (s.op === 'issue') {
            const consumerId = consumerIds[s.consumer] as string;
            const merchantId = merchantIds[s.merchant] as string;
            const expected = expectedLength(consumerId, merchantId, minimum[s.merchant] as number);
            const reply = await engine.issueCode({
              consumerId,
              merchantId,
              codeDigitsMin: minimum[s.merchant] as number,
            });
            if (expected === null) {
              expect(reply.status).toBe('rate_limited');
            } else {
              expect(reply.status).toBe('approved');
              expect(reply.code).toMatch(new RegExp(`^[0-9]{${expected}}$`));
              if (expected > (minimum[s.merchant] as number)) lengthened++;
              codes.set(consumerId, {
                merchantId,
                code: reply.code as string,
                expiresAtMs: reply.expiresAtMs as number,
              });
            }
          } else if (s.op === 'redeem' || s.op === 'cancel') {
            const consumerId = consumerIds[s.consumer] as string;
            const own = codes.get(consumerId);
            if (s.op === 'cancel') {
              expect((await engine.cancelCode(consumerId)).status).toBe(own ? 'approved' : 'not_found');
              codes.delete(consumerId);
            } else if (own) {
              const reply = await engine.redeem({
                merchantId: own.merchantId,
                terminalId: 't1',
                key: `k${run}-${key++}`,
                code: own.code,
                amountCents: 1,
                partial: false,
              });
              // A code past its lifetime is refused; it counts until its timer fires.
              const expired = clock.nowMs >= own.expiresAtMs;
              expect(reply.status).toBe(expired ? 'expired_code' : 'approved');
              if (!expired) codes.delete(consumerId);
            }
          } else if (s.op === 'minimum') {
            minimum[s.merchant] = s.digits;
          } else if (s.op === 'time') {
            // Never a whole number of minutes, so no tick falls on an expiry to the millisecond.
            clock.nowMs += s.minutes * MINUTE + 7;
            await engine.tick(clock.nowMs);
            for (const [holder, code] of codes) if (code.expiresAtMs <= clock.nowMs) codes.delete(holder);
          } else {
            await engine.close();
            engine = await Engine.open(options);
            // A restarted shard counts the codes of its index until their expiry timers fire, on its first
            // tick (within a tick of the start on the real clock; this test's clock is its own).
            await engine.tick(clock.nowMs);
          }
          await checkCounts();
        }
      }),
      { numRuns: 25 },
    );
    expect(lengthened).toBeGreaterThan(0);
    expect((await engine.audit()).problems).toEqual([]);
  }, 180_000);

  it('keeps every length within its maximum when the engine restarts with another shard count', async () => {
    const dataDir = mkdtempSync(join(tmpdir(), 'paycode-test-'));
    onTestFinished(() => rmSync(dataDir, { recursive: true, force: true }));
    const clock = { nowMs: Date.now() };
    const options = { dataDir, secrets: randomSecrets(), now: () => clock.nowMs };
    let engine = await Engine.open({ ...options, shards: 1 });
    onTestFinished(() => engine.close());
    // Consumers on each shard of two, by their slots.
    const evenSlot: string[] = [];
    const oddSlot: string[] = [];
    for (let i = 0; evenSlot.length < 12 || oddSlot.length < 8; i++) {
      const phone = `+1555777${String(i).padStart(4, '0')}`;
      const consumerId = await fund(engine, phone, 1_000, 'm1');
      const side = slotOfId(consumerId) % 2 === 0 ? evenSlot : oddSlot;
      if (side.length < (side === evenSlot ? 12 : 8)) side.push(consumerId);
    }
    const issue = (consumerId: string) => engine.issueCode({ consumerId, merchantId: 'm1' });
    // One shard: all twelve 6-digit codes go to consumers that two shards will put on the first.
    for (const consumerId of evenSlot) expect((await issue(consumerId)).code).toMatch(/^[0-9]{6}$/);
    await engine.close();

    // Two shards: the first holds 12 six-digit codes, twice its share of 6; the second keeps that excess
    // out of its own share until those codes have expired, so no more 6-digit codes are live meanwhile.
    engine = await Engine.open({ ...options, shards: 2 });
    const sixes = async () =>
      (await engine.shardStats()).reduce((sum, s) => sum + (s.liveCodesByLength[0] ?? 0), 0);
    for (const consumerId of oddSlot.slice(0, 4))
      expect((await issue(consumerId)).code).toMatch(/^[0-9]{7}$/);
    expect(await sixes()).toBe(12);
    clock.nowMs += 21 * MINUTE;
    await engine.tick(clock.nowMs);
    expect(await sixes()).toBe(0);
    for (const consumerId of oddSlot.slice(4)) expect((await issue(consumerId)).code).toMatch(/^[0-9]{6}$/);
    expect((await engine.audit()).problems).toEqual([]);
  });
});
