// Proves the shard supervisor on real worker threads and a real LMDB: a shard thread that dies (an
// exception, an exit, or an exception after a durable commit whose answers never left) has its in-flight
// commands answered `internal` at once while the other shard keeps serving; it is restarted from LMDB
// with its watchers; retries under the same keys are applied exactly once (stored results when the
// commit had landed) and the ledger audit stays clean; a shard that keeps dying is given up, reported
// as failing, and the rest keeps serving; and the fault hook is off unless a test turns it on.
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import type { Notice } from '../core/commands.ts';
import { type ConsumerId, shardOfSlot, slotOfId } from '../core/ids.ts';
import type { Engine, EngineHealth } from '../engine/engine.ts';
import type { ShardFault } from '../engine/shard-worker.ts';
import { countShardEvent, createMetrics } from '../gateway/metrics.ts';
import { createLogger } from '../log/logger.ts';
import { fund, openEngine, waitUntil } from './helpers.ts';

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

function capturedLogger() {
  const lines: { level: string; msg: string; shard?: number }[] = [];
  const logger = createLogger({ write: (line) => lines.push(JSON.parse(line)) });
  return { lines, logger };
}

/** `count` phones whose consumers live on the given shard of two. */
function phonesOn(engine: Engine, shardIndex: number, count: number, prefix: string): string[] {
  const phones: string[] = [];
  for (let n = 0; phones.length < count; n++) {
    const phone = `+1555${prefix}${String(n).padStart(5, '0')}`;
    if (shardOfSlot(slotOfId(engine.consumerIdFor(phone)), 2) === shardIndex) phones.push(phone);
  }
  return phones;
}

interface Payer {
  phone: string;
  consumerId: ConsumerId;
  code: string;
  key: string;
}

/** Funds each phone with $50 at m1 and issues a code; returns what a redeem needs. */
async function payers(engine: Engine, phones: string[], tag: string): Promise<Payer[]> {
  return Promise.all(
    phones.map(async (phone, index) => {
      const consumerId = await fund(engine, phone);
      const issued = await engine.issueCode({ consumerId, merchantId: 'm1' });
      expect(issued.status).toBe('approved');
      return { phone, consumerId, code: issued.code as string, key: `pay-${tag}-${index}` };
    }),
  );
}

const redeem = (engine: Engine, payer: Payer) =>
  engine.redeem({
    merchantId: 'm1',
    terminalId: 't1',
    key: payer.key,
    code: payer.code,
    amountCents: 1_200,
    partial: false,
  });

const shardState = (health: EngineHealth, shardIndex: number) => health.shards[shardIndex];

async function expectCleanAudit(engine: Engine) {
  const audit = await engine.audit();
  expect(audit.problems).toEqual([]);
  expect(audit.ledgerSumCents).toBe(0);
}

describe('shard supervision', () => {
  it.each<ShardFault>(['throwAfterNextCommit', 'throwInsideNextCommit', 'throw', 'exit'])(
    'answers in-flight commands internal, restarts the shard from LMDB, and applies retries once (%s)',
    async (fault) => {
      const { lines, logger } = capturedLogger();
      const engine = await openEngine({ testHooks: true, logger, limits: { shardRestartDelayMs: 10 } });
      const onZero = await payers(engine, phonesOn(engine, 0, 6, '10'), 'zero');
      const onOne = await payers(engine, phonesOn(engine, 1, 6, '20'), 'one');
      const watched = onZero[0] as Payer;
      const notices: Notice[] = [];
      engine.watch(watched.consumerId, (notice) => notices.push(notice));

      // The hook that dies after a commit must be armed before the batch; the others hit the batch the
      // thread was just sent (commands are posted on the next turn).
      const armed = fault === 'throwAfterNextCommit' || fault === 'throwInsideNextCommit';
      if (armed) engine.injectShardFaultForTest(0, fault);
      const first = Promise.all([...onZero, ...onOne].map((payer) => redeem(engine, payer)));
      if (!armed) {
        await new Promise((resolve) => setImmediate(resolve));
        engine.injectShardFaultForTest(0, fault);
      }
      const answers = await first;
      const zeroAnswers = answers.slice(0, onZero.length);
      const oneAnswers = answers.slice(onZero.length);
      // In flight at the dead thread: a clear status at once, outcome unknown to the caller.
      expect(zeroAnswers.map((answer) => answer.status)).toEqual(onZero.map(() => 'internal'));
      // The other shard kept serving.
      expect(oneAnswers.map((answer) => answer.status)).toEqual(onOne.map(() => 'approved'));
      expect(['restarting', 'serving']).toContain(shardState(engine.health(), 0)?.state);

      engine.store.root.resetReadTxn();
      if (fault === 'throwAfterNextCommit') {
        // The batch was durable before the thread died: every key already has its stored result.
        for (const payer of onZero)
          expect(engine.store.idempotency.get(['t:t1', payer.key])?.reply.status).toBe('approved');
      }
      if (fault === 'throwInsideNextCommit') {
        // The write that threw took the whole batch with it: not one write of it is in LMDB.
        for (const payer of onZero) expect(engine.store.idempotency.get(['t:t1', payer.key])).toBeUndefined();
        const journal = Array.from(engine.store.journal.getRange(), ({ value }) => value);
        expect(journal.filter((entry) => entry.kind === 'redeem')).toHaveLength(onOne.length);
      }

      // While shard 0 is away its commands are shed, never queued without end; shard 1 serves.
      const during = await engine.wallet((onOne[0] as Payer).consumerId);
      expect(during?.cards[0]?.balanceCents).toBe(3_800);

      await waitUntil('shard 0 to serve again', () => shardState(engine.health(), 0)?.state === 'serving');
      expect(engine.health()).toMatchObject({ ok: true, status: 'ok' });
      expect(shardState(engine.health(), 0)).toMatchObject({ restarts: 1, writable: true });

      // Retries under the same keys: approved exactly once, and a second retry repeats the stored answer.
      const retried = await Promise.all(onZero.map((payer) => redeem(engine, payer)));
      expect(retried.map((answer) => answer.status)).toEqual(onZero.map(() => 'approved'));
      const again = await Promise.all(onZero.map((payer) => redeem(engine, payer)));
      expect(again).toEqual(retried);
      for (const payer of [...onZero, ...onOne]) {
        const wallet = await engine.wallet(payer.consumerId);
        expect(wallet?.cards[0]?.balanceCents).toBe(3_800);
        expect(wallet?.activeCode).toBeNull();
      }
      engine.store.root.resetReadTxn();
      const redeems = Array.from(engine.store.journal.getRange(), ({ value }) => value).filter(
        (entry) => entry.kind === 'redeem',
      );
      expect(redeems.length).toBe(onZero.length + onOne.length);
      expect(new Set(redeems.map((entry) => entry.consumerId)).size).toBe(redeems.length);
      await expectCleanAudit(engine);

      // Pushes of the lost batch were never sent: the listener was told to read the wallet afresh (the
      // wallet socket then sends a new snapshot), once, after the restart.
      expect(notices.filter((notice) => notice.type === 'resync')).toEqual([
        { type: 'resync', consumerId: watched.consumerId },
      ]);
      // The new thread was told who is watched: a change reaches the listener.
      notices.length = 0;
      const topUp = await engine.loadValue({
        merchantId: 'm1',
        phone: watched.phone,
        kind: 'gift',
        funding: 'merchant',
        amountCents: 100,
        idempotencyKey: 'top-up',
      });
      expect(topUp.status).toBe('approved');
      expect(notices.some((notice) => notice.type === 'balance')).toBe(true);

      expect(lines.filter((line) => line.msg === 'shard worker died; restarting it from disk')).toHaveLength(
        1,
      );
      expect(lines.some((line) => line.msg === 'shard worker restarted' && line.shard === 0)).toBe(true);
    },
  );

  it('ends a shard thread that hangs, alive but silent, and restarts it from LMDB', async () => {
    const { lines, logger } = capturedLogger();
    const engine = await openEngine({
      testHooks: true,
      logger,
      limits: { shardRestartDelayMs: 10, shardHeartbeatMs: 100, shardSilenceMaxMs: 800 },
    });
    const onZero = await payers(engine, phonesOn(engine, 0, 3, '30'), 'hang');
    const onOne = await payers(engine, phonesOn(engine, 1, 3, '40'), 'other');
    // The thread's event loop stops for good: no answer, no heartbeat, no exit.
    engine.injectShardFaultForTest(0, 'hang');
    const answers = await Promise.all([...onZero, ...onOne].map((payer) => redeem(engine, payer)));
    expect(answers.map((answer) => answer.status)).toEqual([
      ...onZero.map(() => 'internal'),
      ...onOne.map(() => 'approved'),
    ]);
    await waitUntil('shard 0 to serve again', () => shardState(engine.health(), 0)?.state === 'serving');
    const died = lines.find((line) => line.msg === 'shard worker died; restarting it from disk');
    expect(JSON.stringify(died)).toMatch(/shard worker silent for [0-9]+ ms/);
    const retried = await Promise.all(onZero.map((payer) => redeem(engine, payer)));
    expect(retried.map((answer) => answer.status)).toEqual(onZero.map(() => 'approved'));
    await expectCleanAudit(engine);
  });

  it('finishes a gift whose saga step was committed by a thread that died before reporting it', async () => {
    const { logger } = capturedLogger();
    const engine = await openEngine({ testHooks: true, logger, limits: { shardRestartDelayMs: 10 } });
    const [sender] = phonesOn(engine, 0, 1, '60');
    const [receiver] = phonesOn(engine, 1, 1, '70');
    const loaded = await engine.loadValue({
      merchantId: 'm1',
      phone: sender as string,
      kind: 'gift',
      funding: 'merchant',
      amountCents: 5_000,
      idempotencyKey: 'load-sender',
    });
    expect(loaded.status).toBe('approved');
    const request = {
      consumerId: engine.consumerIdFor(sender as string),
      merchantId: 'm1',
      amountCents: 700,
      toPhone: receiver as string,
      idempotencyKey: 'gift-1',
    };

    engine.injectShardFaultForTest(0, 'throwAfterNextCommit');
    expect((await engine.gift(request)).status).toBe('internal');
    await waitUntil('shard 0 to serve again', () => shardState(engine.health(), 0)?.state === 'serving');

    // The retry finds the stored answer and waits for the saga the restart drove again.
    const retried = await engine.gift(request);
    expect(retried).toMatchObject({ status: 'approved' });
    const received = await engine.wallet(engine.consumerIdFor(receiver as string));
    expect(received?.cards.map((card) => card.balanceCents)).toEqual([700]);
    engine.store.root.resetReadTxn();
    expect(Array.from(engine.store.sagas.getRange())).toEqual([]);
    // One debit into transit and one credit out of it, each exactly once.
    const gifts = Array.from(engine.store.journal.getRange(), ({ value }) => value).filter(
      (entry) => entry.kind === 'gift',
    );
    expect(gifts.map((entry) => entry.consumerId).sort()).toEqual(
      [request.consumerId, engine.consumerIdFor(receiver as string)].sort(),
    );
    await expectCleanAudit(engine);
  });

  it('gives a shard up after too many deaths in the window, reports failing, and keeps the others serving', async () => {
    const { lines, logger } = capturedLogger();
    const fatal: Error[] = [];
    const metrics = createMetrics();
    const engine = await openEngine({
      testHooks: true,
      logger,
      onFatal: (error) => fatal.push(error),
      onShardEvent: (event) => countShardEvent(metrics, event),
      limits: { shardRestartsPerWindowMax: 2, shardRestartDelayMs: 1, shardRestartDelayMaxMs: 1 },
    });
    const [zero] = await payers(engine, phonesOn(engine, 0, 1, '30'), 'zero');
    const [one] = await payers(engine, phonesOn(engine, 1, 1, '40'), 'one');

    for (let death = 1; death <= 2; death++) {
      engine.injectShardFaultForTest(0, 'throw');
      await waitUntil(`restart ${death}`, () => {
        const shard = shardState(engine.health(), 0);
        return shard?.state === 'serving' && shard.restarts === death;
      });
    }
    engine.injectShardFaultForTest(0, 'throw');
    await waitUntil('shard 0 to be given up', () => shardState(engine.health(), 0)?.state === 'failed');

    const health = engine.health();
    expect(health).toMatchObject({ ok: false, status: 'failing' });
    expect(shardState(health, 0)).toMatchObject({ state: 'failed', restarts: 2 });
    expect(shardState(health, 1)).toMatchObject({ state: 'serving', restarts: 0 });
    expect(fatal).toHaveLength(1);
    const counted = await metrics.registry.metrics();
    expect(counted).toMatch(/^paycode_shard_deaths_total\{shard="0"\} 3$/m);
    expect(counted).toMatch(/^paycode_shard_restarts_total\{shard="0"\} 2$/m);
    expect(counted).toMatch(/^paycode_shards_given_up 1$/m);
    expect(
      lines.filter((line) => line.msg === 'shard worker keeps dying; the shard is given up'),
    ).toHaveLength(1);
    // No more restarts: the given-up shard answers at once, the other one serves.
    await sleep(50);
    expect(shardState(engine.health(), 0)?.restarts).toBe(2);
    expect((await redeem(engine, zero as Payer)).status).toBe('internal');
    expect((await engine.wallet((zero as Payer).consumerId)) ?? null).toBeNull();
    expect((await redeem(engine, one as Payer)).status).toBe('approved');
    await expectCleanAudit(engine);
  });

  it('keeps the fault hook out of reach: off by default, ignored by the thread, used by no server code', async () => {
    const engine = await openEngine();
    expect(() => engine.injectShardFaultForTest(0, 'throw')).toThrow(/not enabled/);
    // Even a fault message that reaches a thread of an engine without test hooks is ignored.
    const shards = (engine as unknown as { shards: { injectFault(fault: ShardFault): void }[] }).shards;
    shards[0]?.injectFault('throw');
    shards[0]?.injectFault('exit');
    const [payer] = await payers(engine, phonesOn(engine, 0, 1, '50'), 'zero');
    expect((await redeem(engine, payer as Payer)).status).toBe('approved');
    expect(engine.health()).toMatchObject({ ok: true });
    expect(engine.health().shards.map((shard) => shard.restarts)).toEqual([0, 0]);

    // Only the engine and tests name the hook; the gateway, the CLI and the SDK never do.
    const root = join(import.meta.dirname, '..');
    for (const dir of ['gateway', 'cli', 'sdk', 'notify', 'settlement']) {
      for (const file of readdirSync(join(root, dir), { recursive: true, encoding: 'utf8' })) {
        if (!file.endsWith('.ts')) continue;
        const text = readFileSync(join(root, dir, file), 'utf8');
        expect(text, `${dir}/${file}`).not.toMatch(/injectShardFault|injectFault|testHooks/);
      }
    }
  });
});
