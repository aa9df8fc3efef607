// Proves the engine API end to end on real worker threads and a real LMDB: every operation and its
// statuses, idempotent replays, exactly one approval among concurrent redeems of one code, expiry by
// timer (also after a restart), gift sagas, passivation of idle accounts, and a clean audit throughout.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it, onTestFinished } from 'vitest';
import type { Notice, ShardReport } from '../core/commands.ts';
import { LIMITS } from '../core/limits.ts';
import type { Reply } from '../core/wallet.ts';
import { Engine } from '../engine/engine.ts';
import { randomSecrets } from '../persistence/secrets.ts';
import { openStore } from '../persistence/store.ts';
import { fund, openEngine } from './helpers.ts';

const MINUTE = 60_000;
const phone = '+15555550123';
/** A load for `phone` at m1 under `key`: a $1.00 merchant-issued gift card unless `fields` say otherwise. */
const loadTo = (engine: Engine, key: string, fields: Partial<Parameters<Engine['loadValue']>[0]> = {}) =>
  engine.loadValue({
    merchantId: 'm1',
    phone,
    kind: 'gift',
    funding: 'merchant',
    amountCents: 100,
    idempotencyKey: key,
    ...fields,
  });

function fakeClock(start = Date.now()) {
  const clock = { nowMs: start, now: () => clock.nowMs };
  return clock;
}

const funded = (engine: Engine, cents = 5_000, who = phone, merchantId = 'm1') =>
  fund(engine, who, cents, merchantId);

const redeemReq = (code: string, amountCents: number, key: string, partial = false) => ({
  merchantId: 'm1',
  terminalId: 't1',
  key,
  code,
  amountCents,
  partial,
});

async function expectCleanAudit(engine: Engine) {
  const audit = await engine.audit();
  expect(audit.problems).toEqual([]);
  expect(audit.ledgerSumCents).toBe(0);
}

describe('engine', () => {
  it('loads, issues, inquires, redeems, refunds and voids with the documented statuses', async () => {
    const engine = await openEngine();
    const consumerId = await funded(engine);
    const notices: Notice[] = [];
    engine.watch(consumerId, (notice) => notices.push(notice));

    expect((await engine.issueCode({ consumerId, merchantId: 'm2' })).status).toBe('insufficient_funds');
    const issued = await engine.issueCode({ consumerId, merchantId: 'm1', capCents: 3_000 });
    expect(issued).toMatchObject({ status: 'approved', capCents: 3_000 });
    const code = issued.code as string;
    expect(code).toMatch(/^[0-9]{6}$/);
    expect((await engine.wallet(consumerId))?.activeCode).toMatchObject({ code, capCents: 3_000 });
    expect((await engine.wallet(consumerId))?.cards[0]).toMatchObject({
      balanceCents: 5_000,
      availableCents: 2_000,
    });

    expect(await engine.inquire({ merchantId: 'm1', code })).toEqual({
      status: 'approved',
      availableCents: 3_000,
    });
    expect((await engine.inquire({ merchantId: 'm2', code })).status).toBe('invalid_code');
    expect((await engine.redeem(redeemReq(code, 3_001, 'k1'))).status).toBe('over_cap');
    const wrong = code === '000000' ? '000001' : '000000';
    expect((await engine.redeem(redeemReq(wrong, 100, 'k2'))).status).toBe('invalid_code');

    const approved = await engine.redeem(redeemReq(code, 3_500, 'k3', true));
    expect(approved).toMatchObject({ status: 'approved', approvedCents: 3_000, balanceCents: 2_000 });
    expect((await engine.redeem(redeemReq(code, 100, 'k4'))).status).toBe('invalid_code');
    expect(
      notices.map((n) =>
        n.type === 'code'
          ? `code:${n.state}`
          : n.type === 'balance'
            ? `${n.cause}:${n.card.availableCents}`
            : n.type,
      ),
    ).toEqual(['hold:2000', 'code:issued', 'code:redeemed', 'redeem:2000']);

    const authId = approved.authId as string;
    const refund = (key: string, amountCents: number) =>
      engine.refund({ merchantId: 'm1', terminalId: 't1', key, authId, amountCents });
    expect(await refund('f1', 1_000)).toMatchObject({ status: 'approved', balanceCents: 3_000 });
    expect((await refund('f2', 2_001)).status).toBe('refund_exceeds');
    expect(
      (await engine.refund({ merchantId: 'm2', terminalId: 't9', key: 'f3', authId, amountCents: 1 })).status,
    ).toBe('not_found');
    const voidIt = (key: string) => engine.void({ merchantId: 'm1', terminalId: 't1', key, authId });
    expect(await voidIt('v1')).toMatchObject({ status: 'approved', balanceCents: 5_000 });
    expect((await voidIt('v2')).status).toBe('already_voided');
    expect((await refund('f4', 1)).status).toBe('refund_exceeds');

    const history = (await engine.history(consumerId)) ?? [];
    expect(history.map((entry) => entry.kind)).toEqual(['void', 'refund', 'redeem', 'load']);
    expect(history.map((entry) => entry.amountCents)).toEqual([2_000, 1_000, -3_000, 5_000]);
    expect((await engine.history(consumerId, 2))?.map((entry) => entry.kind)).toEqual(['void', 'refund']);
    await expectCleanAudit(engine);
  });

  it('commits the commands that wait for a flush together, at most shardBatchLengthMax at a time', async () => {
    const engine = await openEngine({ shards: 1, limits: { shardBatchLengthMax: 3 } });
    // Each group commit of the shard comes back as one report: count the answers in each.
    const sizes: number[] = [];
    const internals = engine as unknown as { onReport(report: ShardReport): void };
    const onReport = internals.onReport.bind(engine);
    internals.onReport = (report) => {
      if (report.outcomes.length > 0) sizes.push(report.outcomes.length);
      onReport(report);
    };
    // One load per turn of the event loop, so each goes to the shard in a message of its own.
    const pending: Promise<{ status: string }>[] = [];
    for (let i = 0; i < 30; i++) {
      pending.push(loadTo(engine, `batch-${i}`));
      await new Promise(setImmediate);
    }
    const loads = await Promise.all(pending);
    expect(loads.map((load) => load.status)).toEqual(Array(30).fill('approved'));
    expect(sizes.reduce((sum, size) => sum + size, 0)).toBe(30);
    // Messages that waited for a flush went together, never more than the bound.
    expect(sizes.some((size) => size > 1)).toBe(true);
    expect(Math.max(...sizes)).toBeLessThanOrEqual(3);
    expect((await engine.wallet(engine.consumerIdFor(phone)))?.cards[0]?.balanceCents).toBe(3_000);
  });

  it('answers a replay with the stored result and a changed replay with idempotency_mismatch', async () => {
    const engine = await openEngine();
    const consumerId = await funded(engine);
    const { code } = await engine.issueCode({ consumerId, merchantId: 'm1' });
    const first = await engine.redeem(redeemReq(code as string, 1_200, 'same'));
    expect(first.status).toBe('approved');
    expect(await engine.redeem(redeemReq(code as string, 1_200, 'same'))).toEqual(first);
    expect((await engine.redeem(redeemReq(code as string, 1_300, 'same'))).status).toBe(
      'idempotency_mismatch',
    );
    // A key is scoped to its terminal: another terminal's key of the same name is a new request.
    expect(
      (await engine.redeem({ ...redeemReq(code as string, 1_200, 'same'), terminalId: 't2' })).status,
    ).toBe('invalid_code');

    const load = {
      merchantId: 'm1',
      phone,
      kind: 'gift' as const,
      funding: 'merchant' as const,
      amountCents: 700,
      idempotencyKey: 'issue-7',
    };
    const loaded = await engine.loadValue(load);
    expect(await engine.loadValue(load)).toEqual(loaded);
    expect((await engine.loadValue({ ...load, amountCents: 701 })).status).toBe('idempotency_mismatch');
    expect((await engine.wallet(consumerId))?.cards[0]?.balanceCents).toBe(5_000 - 1_200 + 700);
    await expectCleanAudit(engine);
  });

  it('replays a stored redeem only when asked to, and runs nothing without a stored result', async () => {
    const engine = await openEngine();
    const consumerId = await funded(engine);
    const { code } = await engine.issueCode({ consumerId, merchantId: 'm1' });
    const request = redeemReq(code as string, 700, 'r-replay');
    expect(await engine.redeem({ ...request, replayOnly: true })).toEqual({ status: 'not_found' });
    const sale = await engine.redeem(request);
    expect(sale.status).toBe('approved');
    expect(await engine.redeem({ ...request, replayOnly: true })).toEqual(sale);
    expect((await engine.redeem({ ...request, amountCents: 1, replayOnly: true })).status).toBe(
      'idempotency_mismatch',
    );
    await expectCleanAudit(engine);
  });

  it('reverses a redeem by its key once, and closes an unused key', async () => {
    const engine = await openEngine();
    const consumerId = await funded(engine);
    const { code } = await engine.issueCode({ consumerId, merchantId: 'm1' });
    const reverse = (key: string) => engine.reverse({ merchantId: 'm1', terminalId: 't1', key });
    expect((await engine.redeem(redeemReq(code as string, 2_000, 'lost'))).status).toBe('approved');
    expect((await reverse('lost')).status).toBe('reversed');
    expect((await reverse('lost')).status).toBe('reversed');
    expect((await engine.wallet(consumerId))?.cards[0]?.balanceCents).toBe(5_000);

    expect((await reverse('never-sent')).status).toBe('nothing_to_reverse');
    const late = await engine.issueCode({ consumerId, merchantId: 'm1' });
    expect((await engine.redeem(redeemReq(late.code as string, 100, 'never-sent'))).status).toBe(
      'idempotency_mismatch',
    );
    await expectCleanAudit(engine);
  });

  it('approves exactly one of 50 concurrent redeems of one code', async () => {
    const engine = await openEngine();
    const consumerId = await funded(engine, 10_000);
    const { code } = await engine.issueCode({ consumerId, merchantId: 'm1' });
    const replies = await Promise.all(
      Array.from({ length: 50 }, (_, i) =>
        engine.redeem({ ...redeemReq(code as string, 100, `c${i}`), terminalId: `t${i % 5}` }),
      ),
    );
    expect(replies.filter((reply) => reply.status === 'approved')).toHaveLength(1);
    expect(replies.filter((reply) => reply.status === 'invalid_code')).toHaveLength(49);
    expect((await engine.wallet(consumerId))?.cards[0]?.balanceCents).toBe(9_900);
    await expectCleanAudit(engine);
  });

  it('expires codes at redeem time and by timer, releases holds, and ends the void window', async () => {
    const clock = fakeClock();
    const engine = await openEngine({ now: clock.now });
    const consumerId = await funded(engine);
    const first = await engine.issueCode({ consumerId, merchantId: 'm1', capCents: 1_000 });
    clock.nowMs += 20 * MINUTE;
    expect((await engine.redeem(redeemReq(first.code as string, 100, 'e1'))).status).toBe('expired_code');
    expect((await engine.wallet(consumerId))?.cards[0]?.availableCents).toBe(5_000);

    const second = await engine.issueCode({ consumerId, merchantId: 'm1', capCents: 1_000 });
    const approved = await engine.redeem(redeemReq(second.code as string, 500, 'e2'));
    const third = await engine.issueCode({ consumerId, merchantId: 'm1', capCents: 1_000 });
    expect((await engine.wallet(consumerId))?.cards[0]?.availableCents).toBe(3_500);
    clock.nowMs += 21 * MINUTE;
    await engine.tick(clock.nowMs);
    const wallet = await engine.wallet(consumerId);
    expect(wallet?.activeCode).toBeNull();
    expect(wallet?.cards[0]?.availableCents).toBe(4_500);
    expect((await engine.redeem(redeemReq(third.code as string, 100, 'e3'))).status).toBe('expired_code');
    expect((await engine.cancelCode(consumerId)).status).toBe('not_found');
    // An hour after expiry the tombstone goes, and the digits are simply unknown.
    clock.nowMs += 60 * MINUTE;
    await engine.tick(clock.nowMs);
    expect((await engine.redeem(redeemReq(third.code as string, 100, 'e4'))).status).toBe('invalid_code');

    clock.nowMs += 24 * 60 * MINUTE;
    const voided = await engine.void({
      merchantId: 'm1',
      terminalId: 't1',
      key: 'v',
      authId: approved.authId as string,
    });
    expect(voided.status).toBe('void_window_closed');
    await expectCleanAudit(engine);
  });

  it('caps live codes per merchant, each shard its share, and frees room as codes end', async () => {
    const dataDir = mkdtempSync(join(tmpdir(), 'paycode-test-'));
    onTestFinished(() => rmSync(dataDir, { recursive: true, force: true }));
    const clock = fakeClock();
    const options = {
      dataDir,
      secrets: randomSecrets(),
      shards: 2,
      now: clock.now,
      limits: { merchantLiveCodesMax: 4 },
      auditEachCommit: true,
    };
    let engine = await Engine.open(options);
    const phones = Array.from({ length: 40 }, (_, i) => `+1555001${String(i).padStart(4, '0')}`);
    const ids = await Promise.all(phones.map((p) => funded(engine, 1_000, p)));
    const issueAll = (consumerIds: string[]) =>
      Promise.all(consumerIds.map((consumerId) => engine.issueCode({ consumerId, merchantId: 'm1' })));
    // Forty consumers spread over both shards: each shard issues its two, the rest wait.
    const first = await issueAll(ids);
    const holders = ids.filter((_, i) => first[i]?.status === 'approved');
    const waiting = ids.filter((_, i) => first[i]?.status !== 'approved');
    expect(holders).toHaveLength(4);
    expect(new Set(first.map((answer) => answer.status))).toEqual(new Set(['approved', 'rate_limited']));
    expect((await engine.audit()).liveCodes).toBe(4);
    // A holder may replace its own code; another merchant is not affected.
    expect((await engine.issueCode({ consumerId: holders[0] as string, merchantId: 'm1' })).status).toBe(
      'approved',
    );
    const elsewhere = await funded(engine, 1_000, '+15550019999', 'm2');
    expect((await engine.issueCode({ consumerId: elsewhere, merchantId: 'm2' })).status).toBe('approved');
    await engine.close();

    // The count is rebuilt from the code index at start.
    engine = await Engine.open(options);
    onTestFinished(() => engine.close());
    expect((await issueAll(waiting)).filter((answer) => answer.status === 'approved')).toHaveLength(0);
    // Cancelling or paying with a code frees room in the holder's shard, expiry frees all of it.
    const approvedOf = (answers: Reply[]) => answers.filter((answer) => answer.status === 'approved');
    expect((await engine.cancelCode(holders[1] as string)).status).toBe('approved');
    const afterCancel = await issueAll(waiting);
    expect(approvedOf(afterCancel)).toHaveLength(1);
    const rest = waiting.filter((_, i) => afterCancel[i]?.status !== 'approved');
    const paid = await engine.redeem(
      redeemReq(first[ids.indexOf(holders[2] as (typeof ids)[number])]?.code as string, 100, 'cap'),
    );
    expect(paid.status).toBe('approved');
    expect(approvedOf(await issueAll(rest))).toHaveLength(1);
    clock.nowMs += 21 * MINUTE;
    await engine.tick(clock.nowMs);
    expect((await engine.audit()).liveCodes).toBe(0);
    expect((await issueAll(waiting)).filter((answer) => answer.status === 'approved')).toHaveLength(4);
    await expectCleanAudit(engine);
  });

  it('freezes: cancels the live code, refuses new codes, and unfreezes', async () => {
    const engine = await openEngine();
    const consumerId = await funded(engine);
    const { code } = await engine.issueCode({ consumerId, merchantId: 'm1' });
    expect((await engine.freeze(consumerId)).status).toBe('approved');
    expect((await engine.redeem(redeemReq(code as string, 100, 'z1'))).status).toBe('invalid_code');
    expect((await engine.issueCode({ consumerId, merchantId: 'm1' })).status).toBe('account_frozen');
    expect((await engine.wallet(consumerId))?.cards[0]?.availableCents).toBe(5_000);
    expect((await engine.unfreeze(consumerId)).status).toBe('approved');
    expect((await engine.issueCode({ consumerId, merchantId: 'm1' })).status).toBe('approved');
    await expectCleanAudit(engine);
  });

  it('keeps a freeze and an unfreeze across a restart, with or without a live code', async () => {
    const options = {
      dataDir: mkdtempSync(join(tmpdir(), 'paycode-freeze-')),
      secrets: randomSecrets(),
      shards: 2,
    };
    onTestFinished(() => rmSync(options.dataDir, { recursive: true, force: true }));
    let engine = await Engine.open(options);
    const consumerId = await funded(engine);
    // No live code: the freeze changes only the account's state, which must be stored all the same.
    expect((await engine.freeze(consumerId)).status).toBe('approved');
    await engine.close();
    engine = await Engine.open(options);
    expect((await engine.wallet(consumerId))?.frozen).toBe(true);
    expect((await engine.issueCode({ consumerId, merchantId: 'm1' })).status).toBe('account_frozen');
    expect((await engine.unfreeze(consumerId)).status).toBe('approved');
    await engine.close();
    engine = await Engine.open(options);
    expect((await engine.wallet(consumerId))?.frozen).toBe(false);
    expect((await engine.issueCode({ consumerId, merchantId: 'm1' })).status).toBe('approved');
    await engine.close();
  });

  it('spends reward value before gift value and returns expired rewards to the merchant', async () => {
    const clock = fakeClock();
    const engine = await openEngine({ now: clock.now });
    const consumerId = await funded(engine, 1_000);
    const reward = await loadTo(engine, 'reward-1', {
      kind: 'reward',
      amountCents: 300,
      expiresAtMs: clock.nowMs + 60 * MINUTE,
    });
    expect(reward.status).toBe('approved');
    const { code } = await engine.issueCode({ consumerId, merchantId: 'm1' });
    expect((await engine.redeem(redeemReq(code as string, 200, 'r1'))).status).toBe('approved');
    let cards = (await engine.wallet(consumerId))?.cards ?? [];
    expect(cards.map((card) => [card.kind, card.balanceCents])).toEqual([
      ['gift', 1_000],
      ['reward', 100],
    ]);
    clock.nowMs += 61 * MINUTE;
    await engine.tick(clock.nowMs);
    cards = (await engine.wallet(consumerId))?.cards ?? [];
    expect(cards.map((card) => card.balanceCents)).toEqual([1_000, 0]);
    await expectCleanAudit(engine);
  });

  it('moves gift value between two consumers on different shards exactly once', async () => {
    const engine = await openEngine({ shards: 2 });
    const sender = await funded(engine, 2_000);
    const others = ['+15555550124', '+15555550125', '+15555550126', '+15555550127'];
    const receiverPhone = others.find(
      (p) => engine.consumerIdFor(p).split('_')[1] !== sender.split('_')[1],
    ) as string;
    const gift = {
      consumerId: sender,
      merchantId: 'm1',
      amountCents: 750,
      toPhone: receiverPhone,
      idempotencyKey: 'g1',
    };
    const sent = await engine.gift(gift);
    expect(sent).toMatchObject({ status: 'approved', balanceCents: 1_250 });
    expect(await engine.gift(gift)).toEqual(sent);
    expect((await engine.gift({ ...gift, idempotencyKey: 'g2', amountCents: 5_000 })).status).toBe(
      'insufficient_funds',
    );
    // To a number in a non-canonical form: refused, the gift is not split between two consumers.
    expect((await engine.gift({ ...gift, idempotencyKey: 'g3', toPhone: '+4407911123456' })).status).toBe(
      'bad_request',
    );
    const receiver = await engine.wallet(engine.consumerIdFor(receiverPhone));
    expect(receiver?.cards.map((card) => card.balanceCents)).toEqual([750]);
    await expectCleanAudit(engine);
  });

  it("carries a gift's bought value to the receiver through the saga, issued value given first", async () => {
    const engine = await openEngine({ shards: 2 });
    const sender = await funded(engine, 500);
    const bought = await loadTo(engine, 'bought', { funding: 'consumer', amountCents: 1_000 });
    expect(bought.status).toBe('approved');
    const receiverPhone = '+15555550124';
    const sent = await engine.gift({
      consumerId: sender,
      merchantId: 'm1',
      amountCents: 900,
      toPhone: receiverPhone,
      idempotencyKey: 'g1',
    });
    expect(sent).toMatchObject({ status: 'approved', balanceCents: 600 });
    // The $5 issued went first, then $4 of the $10 bought: the receiver holds $4 bought, the giver $6.
    const giftCard = (consumerId: string) => {
      engine.store.root.resetReadTxn();
      return engine.store.accounts.get(consumerId as never)?.context.cards[0];
    };
    expect(giftCard(engine.consumerIdFor(receiverPhone))).toMatchObject({
      balanceCents: 900,
      boughtCents: 400,
    });
    expect(giftCard(sender)).toMatchObject({ balanceCents: 600, boughtCents: 600 });
    // The journal's bought changes add up to what the cards hold: the gift moved bought value, made none.
    engine.store.root.resetReadTxn();
    const posted = Array.from(engine.store.journal.getRange(), ({ value }) => value.boughtCents ?? 0);
    expect(posted.reduce((sum, cents) => sum + cents, 0)).toBe(1_000);
    await expectCleanAudit(engine);
  });

  it('rejects malformed input with bad_request and changes nothing', async () => {
    const engine = await openEngine();
    const consumerId = await funded(engine);
    const load = {
      merchantId: 'm1',
      phone,
      kind: 'gift' as const,
      funding: 'merchant' as const,
      amountCents: 5,
      idempotencyKey: 'x',
    };
    const bad = [
      engine.loadValue({ ...load, phone: '5555' }),
      // E.164 in shape, but not canonical (the trunk 0 kept) or no possible phone: the engine takes
      // canonical numbers only, so one phone is never two consumers.
      engine.loadValue({ ...load, phone: '+4407911123456' }),
      engine.loadValue({ ...load, phone: '+10000000' }),
      engine.loadValue({ ...load, amountCents: 1.5 }),
      engine.loadValue({ ...load, amountCents: -5 }),
      engine.loadValue({ ...load, idempotencyKey: 'a|b' }),
      engine.loadValue({ ...load, expiresAtMs: Date.now() + 1e6 }),
      engine.loadValue({ ...load, kind: 'voucher' as never }),
      engine.loadValue({ ...load, kind: 'reward', funding: 'consumer' }),
      engine.redeem({ ...redeemReq('123456', 100, 'k'), partial: 1 as never }),
      engine.gift({ consumerId, merchantId: 'm1', amountCents: 10, toPhone: phone, idempotencyKey: 'self' }),
      engine.issueCode({ consumerId: 'nobody', merchantId: 'm1' }),
      engine.issueCode({ consumerId, merchantId: 'm1', capCents: 0 }),
      engine.redeem(redeemReq('12345', 100, 'k')),
      engine.redeem(redeemReq('123456', Number.MAX_SAFE_INTEGER + 1, 'k')),
      engine.redeem(redeemReq('123456', 100, 'k'.repeat(65))),
      engine.refund({ merchantId: 'm1', terminalId: 't1', key: 'k', authId: 'au_1_x', amountCents: 0 }),
    ];
    for (const reply of await Promise.all(bad)) expect(reply.status).toBe('bad_request');
    // A well-formed amount above what one load may move is a limit, not a malformed request.
    expect((await engine.loadValue({ ...load, amountCents: LIMITS.loadMaxCents + 1 })).status).toBe(
      'limit_exceeded',
    );
    // A gift below the least one may give is malformed, whatever the wallet holds.
    const tiny = {
      consumerId,
      merchantId: 'm1',
      amountCents: LIMITS.giftMinCents - 1,
      idempotencyKey: 'tiny',
    };
    expect((await engine.gift({ ...tiny, toPhone: '+15555550199' })).status).toBe('bad_request');
    expect(
      (await engine.void({ merchantId: 'm1', terminalId: 't1', key: 'k', authId: 'nonsense' })).status,
    ).toBe('not_found');
    expect((await engine.wallet(consumerId))?.cards.map((card) => card.balanceCents)).toEqual([5_000]);
    expect((await engine.history(consumerId))?.length).toBe(1);
    expect(await engine.history(consumerId, Number.NaN)).toBeNull();
    expect(() => engine.watch('nobody' as never, () => {})).toThrow(TypeError);
  });

  it('keeps money, live codes, holds and timers across a restart and with passivated accounts', async () => {
    const dataDir = mkdtempSync(join(tmpdir(), 'paycode-test-'));
    onTestFinished(() => rmSync(dataDir, { recursive: true, force: true }));
    const secrets = randomSecrets();
    const clock = fakeClock();
    const options = {
      dataDir,
      secrets,
      now: clock.now,
      limits: { liveActorsPerShardMax: 8, merchantLiveCodesMax: 1_000 },
      auditEachCommit: true,
    };
    let engine = await Engine.open({ ...options, shards: 2 });
    const phones = Array.from({ length: 60 }, (_, i) => `+1555000${String(i).padStart(4, '0')}`);
    const ids = await Promise.all(phones.map((p) => funded(engine, 1_000, p)));
    const codes = await Promise.all(
      ids.map((consumerId) => engine.issueCode({ consumerId, merchantId: 'm1', capCents: 400 })),
    );
    await engine.close();

    // Reopen with a different shard count: slots move between shards, data does not.
    engine = await Engine.open({ ...options, shards: 3 });
    onTestFinished(() => engine.close());
    expect((await engine.audit()).liveCodes).toBe(60);
    const wallet = await engine.wallet(ids[7] as string);
    expect(wallet?.activeCode?.code).toBe(codes[7]?.code);
    expect(wallet?.cards[0]?.availableCents).toBe(600);
    expect((await engine.redeem(redeemReq(codes[3]?.code as string, 400, 'after-restart'))).status).toBe(
      'approved',
    );
    clock.nowMs += 21 * MINUTE;
    await engine.tick(clock.nowMs);
    const audit = await engine.audit();
    expect(audit.liveCodes).toBe(0);
    expect(audit.problems).toEqual([]);
    const balances = await Promise.all(
      ids.map(async (consumerId) => (await engine.wallet(consumerId))?.cards[0]),
    );
    expect(balances.filter((card) => card?.availableCents === 1_000)).toHaveLength(59);
  });

  it('refuses to open a store whose ledger does not add up', async () => {
    const dataDir = mkdtempSync(join(tmpdir(), 'paycode-test-'));
    onTestFinished(() => rmSync(dataDir, { recursive: true, force: true }));
    const secrets = randomSecrets();
    const engine = await Engine.open({ dataDir, secrets, shards: 1 });
    const consumerId = await funded(engine, 900);
    await engine.close();

    const store = openStore(dataDir);
    const account = store.accounts.get(consumerId as never);
    const card = account?.context.cards[0];
    if (!account || !card) throw new Error('the funded account is missing');
    card.balanceCents += 1;
    await store.accounts.put(consumerId as never, account);
    await store.journal.put([1, 99, 1], {
      atMs: 1,
      kind: 'load',
      consumerId: consumerId as never,
      merchantId: 'm1' as never,
      ref: 'x',
      legs: [{ account: 'platform:funding', cents: 5 }],
    });
    await store.root.close();

    const opening = Engine.open({ dataDir, secrets, shards: 1 });
    await expect(opening).rejects.toThrow(
      /ledger audit failed: .*sums to 5.*card:\S+ differs from its ledger by 1/,
    );
  });

  it('answers overloaded at once when a shard inbox is full, and serves again once it drains', async () => {
    const engine = await openEngine({
      shards: 1,
      limits: { shardInboxLengthMax: 4, shardBatchLengthMax: 2 },
    });
    const phones = Array.from({ length: 12 }, (_, i) => `+1555200${String(i).padStart(4, '0')}`);
    const replies = await Promise.all(
      phones.map((who, i) =>
        engine.loadValue({
          merchantId: 'm1',
          phone: who,
          kind: 'gift',
          funding: 'merchant',
          amountCents: 100,
          idempotencyKey: `o${i}`,
        }),
      ),
    );
    const statuses = replies.map((reply) => reply.status);
    expect(statuses.filter((status) => status === 'approved')).toHaveLength(4);
    expect(statuses.filter((status) => status === 'overloaded')).toHaveLength(8);
    // Nothing was stored for a shed request: the same key is served normally later.
    const retried = await engine.loadValue({
      merchantId: 'm1',
      phone: phones[11] as string,
      kind: 'gift',
      funding: 'merchant',
      amountCents: 100,
      idempotencyKey: 'o11',
    });
    expect(retried.status).toBe('approved');
    expect((await engine.audit()).accounts).toBe(5);
  });

  it('sends notices only while a consumer is watched', async () => {
    const engine = await openEngine();
    const consumerId = await funded(engine);
    const seen: string[] = [];
    const unwatch = engine.watch(consumerId, (notice) => seen.push(notice.type));
    await engine.issueCode({ consumerId, merchantId: 'm1' });
    expect(seen).toEqual(['balance', 'code']);
    unwatch();
    await engine.cancelCode(consumerId);
    await funded(engine, 100, '+15555550999');
    expect(seen).toEqual(['balance', 'code']);
  });

  it('expires a code on the shard clock alone, durably, and tells the watcher', async () => {
    const engine = await openEngine({ codeTtlMs: 1_000 });
    const consumerId = await funded(engine);
    const seen: string[] = [];
    engine.watch(consumerId, (notice) =>
      seen.push(
        notice.type === 'code' ? notice.state : notice.type === 'balance' ? notice.cause : notice.type,
      ),
    );
    await engine.issueCode({ consumerId, merchantId: 'm1' });
    // No command reaches the shard meanwhile: only its own timer tick can expire the code.
    await new Promise((resolve) => setTimeout(resolve, 1_800));
    expect(seen).toEqual(['hold', 'issued', 'expire', 'expired']);
    engine.store.root.resetReadTxn();
    const persisted = engine.store.accounts.get(consumerId as never);
    expect(JSON.stringify(persisted)).not.toContain('codeIssued');
    expect((await engine.wallet(consumerId))?.cards[0]?.availableCents).toBe(5_000);
  });

  it("ticks the shard's clock on the engine's: a code stamped by a clock days behind lives its 20 minutes", async () => {
    // The engine's clock three days back (as a test plays past days): the shard's own ticks follow it, so
    // they do not expire the code by the machine's clock, which is past its expiry already.
    const clock = { nowMs: Date.now() - 3 * 24 * 60 * MINUTE };
    const engine = await openEngine({ now: () => clock.nowMs });
    const consumerId = await funded(engine);
    const { code } = await engine.issueCode({ consumerId, merchantId: 'm1' });
    await new Promise((resolve) => setTimeout(resolve, 3 * LIMITS.timerTickMs));
    expect((await engine.redeem(redeemReq(code as string, 100, 'behind'))).status).toBe('approved');
    await expectCleanAudit(engine);
  });

  it('replays a reward load after its expiry passed, and refuses a past expiry without using the key', async () => {
    const clock = fakeClock();
    const engine = await openEngine({ now: clock.now });
    const reward = {
      merchantId: 'm1',
      phone,
      kind: 'reward' as const,
      funding: 'merchant' as const,
      amountCents: 400,
      idempotencyKey: 'reward-late',
      expiresAtMs: clock.nowMs + 1_000,
    };
    const first = await engine.loadValue(reward);
    expect(first.status).toBe('approved');
    clock.nowMs += 2_000;
    expect(await engine.loadValue(reward)).toEqual(first);

    const past = { ...reward, idempotencyKey: 'reward-past', expiresAtMs: clock.nowMs - 1 };
    expect((await engine.loadValue(past)).status).toBe('bad_request');
    const corrected = await engine.loadValue({ ...past, expiresAtMs: clock.nowMs + MINUTE });
    expect(corrected.status).toBe('approved');
  });

  it('does not claim nothing_to_reverse when the key could not be closed', async () => {
    const engine = await openEngine({
      shards: 1,
      limits: { shardInboxLengthMax: 1, shardBatchLengthMax: 1 },
    });
    const busy = engine.loadValue({
      merchantId: 'm1',
      phone,
      kind: 'gift',
      funding: 'merchant',
      amountCents: 1,
      idempotencyKey: 'busy',
    });
    const reversal = engine.reverse({ merchantId: 'm1', terminalId: 't1', key: 'lost-redeem' });
    expect((await reversal).status).toBe('overloaded');
    expect((await busy).status).toBe('approved');
    expect((await engine.reverse({ merchantId: 'm1', terminalId: 't1', key: 'lost-redeem' })).status).toBe(
      'nothing_to_reverse',
    );
  });

  it('sweeps idempotency records after the retention and keeps the newer ones', async () => {
    const clock = fakeClock();
    const engine = await openEngine({ now: clock.now, limits: { idempotencySweepPerTickMax: 3 } });
    const load = (key: string) => loadTo(engine, key);
    for (const key of ['a', 'b', 'c', 'd', 'e']) expect((await load(key)).status).toBe('approved');
    clock.nowMs += 48 * 60 * MINUTE;
    expect((await load('f')).status).toBe('approved');
    await engine.tick(clock.nowMs);
    expect(Array.from(engine.store.idempotency.getRange())).toHaveLength(6);

    clock.nowMs += 24 * 60 * MINUTE + 1;
    // Stretches of 3 per tick; after each pass over the table the sweep rests.
    for (let i = 0; i < 4; i++) {
      await engine.tick(clock.nowMs);
      clock.nowMs += LIMITS.idempotencySweepRestMs;
    }
    engine.store.root.resetReadTxn();
    expect(Array.from(engine.store.idempotency.getKeys())).toEqual([['m:m1', 'f']]);
    // Past the retention a key is new again: the same request loads once more.
    expect((await load('a')).balanceCents).toBe(700);
  });
});
