/**
 * The wallet WebSocket against a real server: the auth deadline and bad tokens, the snapshot, pushes
 * of every balance and code change whatever caused it (POS, HTTP, timers), and requestCode/cancelCode
 * answered by the push they caused, in JSON and MessagePack.
 */
import { pack } from 'msgpackr';
import { describe, expect, it } from 'vitest';
import { LIMITS } from '../core/limits.ts';
import { OPERATOR_TOKEN, openSocket, startTestServer } from './server-helpers.ts';

const PHONE = '+15555550140';

describe('wallet WebSocket', () => {
  it('refuses a bad token and a socket that never authenticates', async () => {
    const t = await startTestServer({ limits: { wsAuthDeadlineMs: 300 } });
    const bad = await openSocket(t.server.url, '/v1/wallet');
    bad.send({ type: 'auth', token: 'dt_forged' });
    expect(await bad.next()).toEqual({ type: 'error', status: 'unauthorized' });
    expect(await bad.closed).toBe(4001);
    const silent = await openSocket(t.server.url, '/v1/wallet');
    expect(await silent.next()).toEqual({ type: 'error', status: 'unauthorized' });
    expect(await silent.closed).toBe(4001);
  });

  it('sends a snapshot, then pushes every change as it becomes durable', async () => {
    const t = await startTestServer();
    const merchant = await t.merchant('Bean There');
    const { deviceToken } = await t.consumer(PHONE);
    const wallet = await openSocket(t.server.url, '/v1/wallet');
    wallet.send({ type: 'auth', token: deviceToken });
    expect(await wallet.next()).toEqual({ type: 'snapshot', cards: [], activeCode: null, frozen: false });

    await t.load(merchant, PHONE, 3_000);
    const loaded = await wallet.next((frame) => frame.type === 'balance');
    expect(loaded).toMatchObject({
      merchantId: merchant.merchantId,
      balanceCents: 3_000,
      availableCents: 3_000,
      cause: 'load',
    });
    expect(typeof loaded.cardId).toBe('string');
    expect(Math.abs(loaded.atMs - Date.now())).toBeLessThan(5_000);

    wallet.send({ type: 'requestCode', reqId: 'r1', merchantId: merchant.merchantId, capCents: 1_000 });
    const hold = await wallet.next((frame) => frame.type === 'balance');
    expect(hold).toMatchObject({ balanceCents: 3_000, availableCents: 2_000, cause: 'hold' });
    const issued = await wallet.next((frame) => frame.type === 'code');
    expect(issued).toMatchObject({
      reqId: 'r1',
      state: 'issued',
      capCents: 1_000,
      merchantId: merchant.merchantId,
    });
    expect(issued.code).toMatch(/^[0-9]{6}$/);

    const pos = await t.pos(await t.terminal(merchant));
    const sale = await pos.redeem({ code: issued.code, amountCents: 600 });
    expect(sale.status).toBe('approved');
    const redeemed = await wallet.next((frame) => frame.type === 'code');
    expect(redeemed).toMatchObject({ code: issued.code, state: 'redeemed' });
    expect(redeemed.reqId).toBeUndefined();
    expect(await wallet.next((frame) => frame.type === 'balance')).toMatchObject({
      cause: 'redeem',
      balanceCents: 2_400,
      availableCents: 2_400,
    });

    await pos.void(sale.authId as string);
    expect(await wallet.next((frame) => frame.type === 'balance' && frame.cause === 'void')).toMatchObject({
      balanceCents: 3_000,
    });
  });

  it('answers a request in its own encoding and pushes in the encoding of the first message', async () => {
    const t = await startTestServer();
    const merchant = await t.merchant();
    const { deviceToken } = await t.consumer(PHONE);
    const wallet = await openSocket(t.server.url, '/v1/wallet');
    wallet.send({ type: 'auth', token: deviceToken });
    await wallet.next();
    wallet.send(pack({ type: 'requestCode', reqId: 'm', merchantId: merchant.merchantId }));
    expect(await wallet.next()).toEqual({ type: 'error', reqId: 'm', status: 'insufficient_funds' });
    await t.load(merchant, PHONE, 100);
    expect((await wallet.next()).type).toBe('balance');
    expect(wallet.binary).toEqual([false, true, false]);
  });

  it('bounds wallet sockets per consumer and requests per socket', async () => {
    const t = await startTestServer({
      limits: { walletSocketsPerConsumerMax: 1, wsRequestsPerSecondMax: 2 },
    });
    const { deviceToken } = await t.consumer(PHONE);
    const first = await openSocket(t.server.url, '/v1/wallet');
    first.send({ type: 'auth', token: deviceToken });
    expect((await first.next()).type).toBe('snapshot');
    const second = await openSocket(t.server.url, '/v1/wallet');
    second.send({ type: 'auth', token: deviceToken });
    expect(await second.next()).toEqual({ type: 'error', status: 'rate_limited' });
    expect(await second.closed).toBe(4029);
    for (const reqId of [1, 2, 3]) first.send({ type: 'cancelCode', reqId });
    const answers = [await first.next(), await first.next(), await first.next()];
    expect(answers.map((answer) => answer.status).sort()).toEqual(['not_found', 'not_found', 'rate_limited']);
  });

  it('answers requestCode and cancelCode with the code push, or an error with the HTTP status', async () => {
    const t = await startTestServer({ env: { PAYCODE_CODE_TTL_MS: '1000' } });
    const merchant = await t.merchant();
    const { deviceToken } = await t.consumer(PHONE);
    const wallet = await openSocket(t.server.url, '/v1/wallet');
    wallet.send(pack({ type: 'auth', token: deviceToken }));
    expect((await wallet.next()).type).toBe('snapshot');
    expect(wallet.binary[0]).toBe(true);

    wallet.send(pack({ type: 'requestCode', reqId: 1, merchantId: merchant.merchantId }));
    expect(await wallet.next()).toEqual({ type: 'error', reqId: 1, status: 'insufficient_funds' });
    wallet.send(pack({ type: 'requestCode', reqId: 2, merchantId: 'mc_nope' }));
    expect(await wallet.next()).toEqual({ type: 'error', reqId: 2, status: 'not_found' });
    wallet.send(pack({ type: 'cancelCode', reqId: 3 }));
    expect(await wallet.next()).toEqual({ type: 'error', reqId: 3, status: 'not_found' });
    wallet.send(pack({ type: 'transfer', reqId: 4 }));
    expect(await wallet.next()).toEqual({ type: 'error', reqId: 4, status: 'bad_request' });
    // A string request id of the longest length is echoed; a longer one is refused without it.
    const longest = 'r'.repeat(LIMITS.walletRequestIdLengthMax);
    wallet.send(pack({ type: 'cancelCode', reqId: longest }));
    expect(await wallet.next()).toEqual({ type: 'error', reqId: longest, status: 'not_found' });
    wallet.send(pack({ type: 'cancelCode', reqId: `${longest}r` }));
    expect(await wallet.next()).toEqual({ type: 'error', status: 'bad_request' });

    await t.load(merchant, PHONE, 2_000);
    wallet.send(pack({ type: 'requestCode', reqId: 5, merchantId: merchant.merchantId }));
    const issued = await wallet.next((frame) => frame.type === 'code');
    expect(issued).toMatchObject({ reqId: 5, state: 'issued', capCents: 2_000 });
    expect(issued.code).toMatch(/^[0-9]{6}$/);
    wallet.send(pack({ type: 'cancelCode', reqId: 6 }));
    expect(await wallet.next((frame) => frame.type === 'code')).toMatchObject({
      reqId: 6,
      state: 'cancelled',
      code: issued.code,
    });
    // A merchant's longer codes come over the socket whole.
    const set = { codeDigitsMin: 10 };
    expect(
      (await t.http('POST', `/v1/merchants/${merchant.merchantId}/code-digits`, set, OPERATOR_TOKEN)).status,
    ).toBe(200);
    wallet.send(pack({ type: 'requestCode', reqId: 7, merchantId: merchant.merchantId }));
    const long = await wallet.next((frame) => frame.type === 'code' && frame.reqId === 7);
    expect(long.code).toMatch(/^[0-9]{10}$/);
    wallet.send(pack({ type: 'cancelCode', reqId: 8 }));
    expect(await wallet.next((frame) => frame.type === 'code' && frame.reqId === 8)).toMatchObject({
      state: 'cancelled',
      code: long.code,
    });
    // The release is pushed with the cancellation (just before it).
    expect(wallet.frames).toContainEqual(
      expect.objectContaining({ type: 'balance', cause: 'release', availableCents: 2_000 }),
    );

    // A code left alone expires on the timer wheel, and the phone hears it.
    wallet.send(pack({ type: 'requestCode', reqId: 7, merchantId: merchant.merchantId }));
    const second = await wallet.next((frame) => frame.type === 'code');
    expect(await wallet.next((frame) => frame.type === 'code', 5_000)).toMatchObject({
      code: second.code,
      state: 'expired',
    });
    expect(wallet.frames).toContainEqual(
      expect.objectContaining({ type: 'balance', cause: 'expire', availableCents: 2_000 }),
    );
  });
});
