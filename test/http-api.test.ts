/**
 * The HTTP API of docs/http-api.md against a real server: every endpoint with its success and error
 * statuses, bearer auth for each kind of caller, idempotent replays, the sandbox funding provider,
 * health and metrics, and a restart on the same data directory that keeps every credential and balance
 * (the OpenAPI document: openapi.test.ts).
 */

import { get, request } from 'node:http';
import { connect } from 'node:net';
import { describe, expect, it } from 'vitest';
import { LIMITS } from '../core/limits.ts';
import type { FundingProvider } from '../gateway/funding/provider.ts';
import { SandboxFunding } from '../gateway/funding/sandbox.ts';
import { isLoopbackAddress, isLoopbackName } from '../gateway/loopback.ts';
import { OPERATOR_TOKEN, ROUTING, startTestServer, type TestServer, waitFor } from './server-helpers.ts';

const PHONE = '+15555550160';
const error = (code: string) => ({ error: { code, message: expect.any(String) } });

describe('HTTP API', () => {
  it('creates merchants for the operator only, with checked bank details', async () => {
    const t = await startTestServer();
    const good = { name: 'Deli', routingNumber: ROUTING, accountNumber: '987654321', accountType: 'savings' };
    expect(await t.http('POST', '/v1/merchants', good)).toEqual({ status: 401, body: error('unauthorized') });
    const created = await t.http(
      'POST',
      '/v1/merchants',
      { ...good, keyword: 'deli', feeBps: 150 },
      OPERATOR_TOKEN,
    );
    expect(created).toEqual({
      status: 201,
      body: { merchantId: expect.stringMatching(/^mc_/), apiKey: expect.stringMatching(/^pk_/) },
    });
    const merchant = await t.http(
      'GET',
      `/v1/merchants/${created.body.merchantId}`,
      undefined,
      created.body.apiKey,
    );
    expect(merchant.body).toEqual({
      merchantId: created.body.merchantId,
      name: 'Deli',
      keyword: 'DELI',
      feeBps: 150,
      feeFixedCents: 0,
      codeDigitsMin: 6,
    });
    expect(JSON.stringify(merchant.body)).not.toContain('987654321');
    // A merchant's key is not the operator's.
    expect(await t.http('POST', '/v1/merchants', good, created.body.apiKey)).toEqual({
      status: 403,
      body: error('forbidden'),
    });
    for (const bad of [
      { ...good, routingNumber: '021000022' },
      { ...good, routingNumber: 21000021 },
      { ...good, accountNumber: '12' },
      { ...good, accountType: 'brokerage' },
      { ...good, name: '' },
      { ...good, name: 'x'.repeat(LIMITS.nameLengthMax + 1) },
      { ...good, feeBps: 10.5 },
      { ...good, keyword: 'deli' },
    ]) {
      expect(await t.http('POST', '/v1/merchants', bad, OPERATOR_TOKEN)).toEqual({
        status: 400,
        body: error('bad_request'),
      });
    }
  });

  it('lets only the merchant itself create its terminals and issue value it pays for, not the operator', async () => {
    const t = await startTestServer();
    const merchant = await t.merchant('Own Keys');
    const [terminal] = (
      await t.http('GET', `/v1/merchants/${merchant.merchantId}/terminals`, undefined, merchant.apiKey)
    ).body.terminals;
    expect(terminal).toBeUndefined();
    // A label of the longest length is taken, one character more is not (another merchant's fleet).
    const labelled = await t.merchant('Long Labels');
    const terminals = `/v1/merchants/${labelled.merchantId}/terminals`;
    const longest = 'L'.repeat(LIMITS.nameLengthMax);
    expect((await t.http('POST', terminals, { label: longest }, labelled.apiKey)).status).toBe(201);
    expect(await t.http('POST', terminals, { label: `${longest}L` }, labelled.apiKey)).toEqual({
      status: 400,
      body: error('bad_request'),
    });
    expect((await t.http('GET', terminals, undefined, labelled.apiKey)).body.terminals).toHaveLength(1);
    const phone = '+15554440001';
    const base = `/v1/merchants/${merchant.merchantId}`;
    const card = { phone, amountCents: 1_000_000, kind: 'gift', idempotencyKey: 'operator-mint' };
    for (const [path, body] of [
      [`${base}/terminals`, { label: 'back door' }],
      [`${base}/cards`, card],
    ] as const) {
      expect(await t.http('POST', path, body, OPERATOR_TOKEN)).toEqual({
        status: 403,
        body: error('forbidden'),
      });
    }
    // Nothing was made: no terminal, no value for the phone.
    expect((await t.http('GET', `${base}/terminals`, undefined, OPERATOR_TOKEN)).body.terminals).toEqual([]);
    const { deviceToken } = await t.consumer(phone);
    expect((await t.http('GET', '/v1/wallet', undefined, deviceToken)).body.cards).toEqual([]);
    // A rekey makes a terminal credential: the merchant's too. Protective acts stay the operator's as well.
    const made = await t.http('POST', `${base}/terminals`, { label: 'till' }, merchant.apiKey);
    const till = `${base}/terminals/${made.body.terminalId}`;
    expect((await t.http('POST', `${till}/rekey`, {}, OPERATOR_TOKEN)).status).toBe(403);
    expect((await t.http('POST', `${till}/rekey`, {}, merchant.apiKey)).status).toBe(201);
    expect((await t.http('POST', `${till}/lock`, {}, OPERATOR_TOKEN)).status).toBe(200);
    expect((await t.http('POST', `${till}/revoke`, {}, OPERATOR_TOKEN)).status).toBe(200);
    // The merchant's own key issues value as before.
    expect(
      (await t.http('POST', `${base}/cards`, { ...card, amountCents: 1_000 }, merchant.apiKey)).status,
    ).toBe(201);
  });

  it('provisions terminals: merchant-scoped creation and single-use activation codes', async () => {
    const t = await startTestServer();
    const a = await t.merchant('A');
    const b = await t.merchant('B');
    const path = `/v1/merchants/${a.merchantId}/terminals`;
    expect((await t.http('POST', path, { label: 'till' }, b.apiKey)).status).toBe(403);
    expect((await t.http('POST', path, { label: 'till' })).status).toBe(401);
    expect((await t.http('POST', path, { label: '' }, a.apiKey)).status).toBe(400);
    expect(
      (await t.http('POST', '/v1/merchants/mc_missing/terminals', { label: 'x' }, a.apiKey)).status,
    ).toBe(403);
    const created = await t.http('POST', path, { label: 'till' }, a.apiKey);
    expect(created).toEqual({
      status: 201,
      body: { terminalId: expect.stringMatching(/^tm_/), activationCode: expect.any(String) },
    });
    const activated = await t.http('POST', '/v1/terminals/activate', {
      activationCode: created.body.activationCode,
    });
    expect(activated.status).toBe(200);
    expect(activated.body).toMatchObject({ terminalId: created.body.terminalId, merchantId: a.merchantId });
    expect(Buffer.from(activated.body.terminalKey, 'base64url')).toHaveLength(32);
    const again = await t.http('POST', '/v1/terminals/activate', {
      activationCode: created.body.activationCode,
    });
    expect(again).toEqual({ status: 404, body: error('not_found') });
  });

  it('verifies phones by SMS code and limits wrong codes', async () => {
    const t = await startTestServer({ limits: { otpAttemptsMax: 2 } });
    expect((await t.http('POST', '/v1/consumers', { phone: '5555550160' })).status).toBe(400);
    expect(await t.http('POST', '/v1/consumers', { phone: PHONE })).toEqual({ status: 202, body: {} });
    const sent = t.server.devInbox?.inbox.at(-1);
    const otp = /([0-9]{6})/.exec(sent?.text ?? '')?.[1] as string;
    const wrong = otp === '000000' ? '000001' : '000000';
    expect(await t.http('POST', '/v1/consumers/verify', { phone: PHONE, otp: wrong })).toEqual({
      status: 401,
      body: error('unauthorized'),
    });
    expect((await t.http('POST', '/v1/consumers/verify', { phone: PHONE, otp: wrong })).status).toBe(401);
    // The attempts are used up: even the right code no longer works.
    expect((await t.http('POST', '/v1/consumers/verify', { phone: PHONE, otp })).status).toBe(401);
    const { deviceToken, consumerId } = await t.consumer(PHONE);
    expect(consumerId).toMatch(/^cu_/);
    expect((await t.http('GET', '/v1/wallet', undefined, deviceToken)).status).toBe(200);
    expect((await t.http('GET', '/v1/wallet', undefined, 'dt_forged')).status).toBe(401);
  });

  it('budgets verification texts per client address and for the platform, except for the operator', async () => {
    const perAddress = await startTestServer({ limits: { otpSendsPerAddressPerHourMax: 3 } });
    const ask = (t: typeof perAddress, phone: string, token?: string) =>
      t.http('POST', '/v1/consumers', { phone }, token);
    for (const n of [1, 2, 3]) expect((await ask(perAddress, `+1555222000${n}`)).status).toBe(202);
    expect(await ask(perAddress, '+15552220004')).toEqual({ status: 429, body: error('rate_limited') });
    expect((await ask(perAddress, '+15552220004', OPERATOR_TOKEN)).status).toBe(202);
    const platform = await startTestServer({
      limits: { otpSendsPerMinuteMax: 2, otpSendsPerAddressPerHourMax: 100 },
    });
    for (const n of [1, 2]) expect((await ask(platform, `+1555333000${n}`)).status).toBe(202);
    expect((await ask(platform, '+15553330003')).status).toBe(429);
    // Only what was sent is in the inbox: nothing for the refused numbers.
    expect(platform.server.devInbox?.inbox.map((text) => text.phone).sort()).toEqual([
      '+15553330001',
      '+15553330002',
    ]);

    // Two client addresses (loopback has many): one past its own budget takes nothing of the platform's,
    // so the other still gets the rest of it.
    const both = await startTestServer({
      limits: { otpSendsPerMinuteMax: 5, otpSendsPerAddressPerHourMax: 3 },
    });
    const from = (localAddress: string, phone: string) =>
      new Promise<number>((resolve, reject) => {
        const body = JSON.stringify({ phone });
        const sent = request(
          `${both.server.url}/v1/consumers`,
          { method: 'POST', localAddress, headers: { 'content-type': 'application/json' } },
          (response) => {
            response.resume();
            resolve(response.statusCode as number);
          },
        );
        sent.on('error', reject);
        sent.end(body);
      });
    for (const n of [1, 2, 3, 4, 5]) {
      const phone = `+1555444000${n}`;
      expect(await from('127.0.0.2', phone)).toBe(n <= 3 ? 202 : 429);
    }
    expect(await from('127.0.0.3', '+15554440006')).toBe(202);
    expect(await from('127.0.0.3', '+15554440007')).toBe(202);
    expect(await from('127.0.0.3', '+15554440008')).toBe(429);
  });

  it('says in the verification text how long its code lasts, as configured', async () => {
    const t = await startTestServer({ limits: { otpTtlMs: 5 * 60_000 } });
    expect((await t.http('POST', '/v1/consumers', { phone: PHONE }, OPERATOR_TOKEN)).status).toBe(202);
    const text = await waitFor(() => t.server.devInbox?.inbox.find((entry) => entry.phone === PHONE));
    expect(text.text).toMatch(/^Your paycode verification code is [0-9]{6}\. It expires in 5 minutes\.$/);
  });

  it('limits verification texts per phone per hour and per day, and lets activation codes and device tokens expire', async () => {
    let shiftMs = 0;
    const t = await startTestServer({
      limits: { otpSendsPerHourMax: 2, otpSendsPerDayMax: 3 },
      now: () => Date.now() + shiftMs,
    });
    const { deviceToken } = await t.consumer(PHONE);
    expect((await t.http('POST', '/v1/consumers', { phone: PHONE })).status).toBe(202);
    expect(await t.http('POST', '/v1/consumers', { phone: PHONE })).toEqual({
      status: 429,
      body: error('rate_limited'),
    });
    expect((await t.http('POST', '/v1/consumers', { phone: '+15555550161' })).status).toBe(202);
    // An hour later the phone may ask again, until its day's allowance is used.
    shiftMs = 61 * 60_000;
    expect((await t.http('POST', '/v1/consumers', { phone: PHONE })).status).toBe(202);
    expect((await t.http('POST', '/v1/consumers', { phone: PHONE })).status).toBe(429);
    const merchant = await t.merchant();
    const created = await t.http(
      'POST',
      `/v1/merchants/${merchant.merchantId}/terminals`,
      { label: 'till' },
      merchant.apiKey,
    );
    shiftMs = 26 * 60 * 60_000;
    expect(
      (await t.http('POST', '/v1/terminals/activate', { activationCode: created.body.activationCode }))
        .status,
    ).toBe(404);
    expect((await t.http('GET', '/v1/wallet', undefined, deviceToken)).status).toBe(200);
    shiftMs = 91 * 24 * 60 * 60_000;
    expect(await t.http('GET', '/v1/wallet', undefined, deviceToken)).toEqual({
      status: 401,
      body: error('unauthorized'),
    });
  });

  it('issues cards idempotently, serves the wallet, codes and history', async () => {
    const t = await startTestServer();
    const merchant = await t.merchant('Bakery');
    const cards = `/v1/merchants/${merchant.merchantId}/cards`;
    const gift = { phone: PHONE, amountCents: 2_500, kind: 'gift', idempotencyKey: 'gift-1' };
    const first = await t.http('POST', cards, gift, merchant.apiKey);
    expect(first).toEqual({
      status: 201,
      body: { cardId: expect.stringMatching(/^cd_/), balanceCents: 2_500 },
    });
    expect(await t.http('POST', cards, gift, merchant.apiKey)).toEqual(first);
    expect(await t.http('POST', cards, { ...gift, amountCents: 2_600 }, merchant.apiKey)).toEqual({
      status: 409,
      body: error('idempotency_mismatch'),
    });
    const reward = {
      phone: PHONE,
      amountCents: 500,
      kind: 'reward',
      idempotencyKey: 'r-1',
      expiresAtMs: Date.now() + 86_400_000,
    };
    expect((await t.http('POST', cards, reward, merchant.apiKey)).status).toBe(201);
    expect(
      (
        await t.http(
          'POST',
          cards,
          { ...gift, idempotencyKey: 'g-2', expiresAtMs: Date.now() + 1 },
          merchant.apiKey,
        )
      ).status,
    ).toBe(400);

    const { deviceToken } = await t.consumer(PHONE);
    const wallet = await t.http('GET', '/v1/wallet', undefined, deviceToken);
    expect(wallet.body.activeCode).toBeNull();
    expect(wallet.body.cards).toHaveLength(2);
    expect(wallet.body.cards).toContainEqual({
      cardId: first.body.cardId,
      merchantId: merchant.merchantId,
      merchantName: 'Bakery',
      kind: 'gift',
      balanceCents: 2_500,
      availableCents: 2_500,
    });

    expect(await t.http('DELETE', '/v1/wallet/codes', undefined, deviceToken)).toEqual({
      status: 404,
      body: error('not_found'),
    });
    expect((await t.http('POST', '/v1/wallet/codes', { merchantId: 'mc_none' }, deviceToken)).status).toBe(
      404,
    );
    expect(
      (
        await t.http(
          'POST',
          '/v1/wallet/codes',
          { merchantId: merchant.merchantId, capCents: 0 },
          deviceToken,
        )
      ).status,
    ).toBe(400);
    const code = await t.http(
      'POST',
      '/v1/wallet/codes',
      { merchantId: merchant.merchantId, capCents: 10_000 },
      deviceToken,
    );
    expect(code).toEqual({
      status: 201,
      body: {
        code: expect.stringMatching(/^[0-9]{6}$/),
        merchantId: merchant.merchantId,
        capCents: 3_000,
        expiresAtMs: expect.any(Number),
      },
    });
    expect((await t.http('GET', '/v1/wallet', undefined, deviceToken)).body.activeCode).toEqual(code.body);
    // A new code replaces the live one.
    const second = await t.http(
      'POST',
      '/v1/wallet/codes',
      { merchantId: merchant.merchantId, capCents: 100 },
      deviceToken,
    );
    expect((await t.http('GET', '/v1/wallet', undefined, deviceToken)).body.activeCode.code).toBe(
      second.body.code,
    );
    expect(await t.http('DELETE', '/v1/wallet/codes', undefined, deviceToken)).toEqual({
      status: 200,
      body: {},
    });

    const history = await t.http('GET', '/v1/wallet/history', undefined, deviceToken);
    expect(
      history.body.entries.map((entry: { kind: string; amountCents: number }) => [
        entry.kind,
        entry.amountCents,
      ]),
    ).toEqual([
      ['load', 500],
      ['load', 2_500],
    ]);
    expect(history.body.entries[0]).toMatchObject({
      merchantId: merchant.merchantId,
      balanceCents: 500,
      ref: expect.any(String),
    });
  });

  it('freezes and unfreezes a wallet: no code while frozen', async () => {
    const t = await startTestServer();
    const merchant = await t.merchant();
    const { deviceToken } = await t.consumer(PHONE);
    await t.load(merchant, PHONE, 1_000);
    const codes = { merchantId: merchant.merchantId };
    expect((await t.http('POST', '/v1/wallet/codes', codes, deviceToken)).status).toBe(201);
    expect(await t.http('POST', '/v1/wallet/freeze', {}, deviceToken)).toEqual({
      status: 200,
      body: { frozen: true },
    });
    const wallet = await t.http('GET', '/v1/wallet', undefined, deviceToken);
    expect(wallet.body).toMatchObject({ frozen: true, activeCode: null });
    expect(await t.http('POST', '/v1/wallet/codes', codes, deviceToken)).toEqual({
      status: 422,
      body: error('account_frozen'),
    });
    // Unfreezing takes a fresh code texted to the phone: a token alone, such as a thief's, cannot.
    const thief = (await t.consumer(PHONE)).deviceToken;
    expect((await t.http('POST', '/v1/wallet/unfreeze', {}, thief)).status).toBe(400);
    expect((await t.http('POST', '/v1/wallet/unfreeze', { otp: '000000' }, thief)).status).toBe(401);
    const texts = () => t.server.devInbox?.inbox.filter((text) => text.phone === PHONE).length ?? 0;
    // A sign-in code is not an unfreeze code, and signing in spends nothing of unfreezing's sends.
    const sends: number[] = [];
    for (let i = 0; i < LIMITS.otpSendsPerHourMax; i++)
      sends.push((await t.http('POST', '/v1/consumers', { phone: PHONE }, OPERATOR_TOKEN)).status);
    expect(sends[0]).toBe(202);
    expect(sends.at(-1)).toBe(429); // the phone's sign-in sends of the hour are spent
    const signInText = await waitFor(
      () => t.server.devInbox?.inbox.findLast((text) => text.phone === PHONE)?.text,
    );
    const signInOtp = /([0-9]{6})/.exec(signInText)?.[1];
    expect((await t.http('POST', '/v1/wallet/unfreeze', { otp: signInOtp }, deviceToken)).status).toBe(401);
    const before = texts();
    expect((await t.http('POST', '/v1/wallet/unfreeze/code', {}, deviceToken)).status).toBe(202);
    const text = await waitFor(() => (texts() > before ? t.server.devInbox?.inbox.at(-1)?.text : undefined));
    expect(text).toContain('to unfreeze your account');
    const otp = /([0-9]{6})/.exec(text ?? '')?.[1];
    expect(await t.http('POST', '/v1/wallet/unfreeze', { otp }, deviceToken)).toEqual({
      status: 200,
      body: { frozen: false },
    });
    // A code is used once.
    expect((await t.http('POST', '/v1/wallet/unfreeze', { otp }, deviceToken)).status).toBe(401);
    expect((await t.http('POST', '/v1/wallet/codes', codes, deviceToken)).status).toBe(201);

    // Freezing may sign out every other device: the thief's token stops working, this device gets a new one.
    const frozen = await t.http('POST', '/v1/wallet/freeze', { revokeOtherDevices: true }, deviceToken);
    expect(frozen).toEqual({
      status: 200,
      body: { frozen: true, deviceToken: expect.stringMatching(/^dt_/) },
    });
    expect((await t.http('GET', '/v1/wallet', undefined, thief)).status).toBe(401);
    expect((await t.http('GET', '/v1/wallet', undefined, deviceToken)).status).toBe(401);
    expect((await t.http('GET', '/v1/wallet', undefined, frozen.body.deviceToken)).body.frozen).toBe(true);
    expect(
      (await t.http('POST', '/v1/wallet/freeze', { revokeOtherDevices: 'yes' }, frozen.body.deviceToken))
        .status,
    ).toBe(400);
  });

  /** A merchant and a signed-in phone, and a purchase of $40.00 there with the sandbox's good token. */
  const buyer = async (t: TestServer) => {
    const merchant = await t.merchant('Books');
    const { deviceToken } = await t.consumer(PHONE);
    const buy = {
      merchantId: merchant.merchantId,
      amountCents: 4_000,
      paymentToken: 'tok_sandbox_ok',
      idempotencyKey: 'buy-1',
    };
    return { merchant, deviceToken, buy };
  };

  it('sells gift cards through the sandbox funding provider', async () => {
    const t = await startTestServer();
    const { merchant, buy, deviceToken } = await buyer(t);
    const bought = await t.http('POST', '/v1/wallet/purchases', buy, deviceToken);
    expect(bought).toEqual({ status: 201, body: { cardId: expect.any(String), balanceCents: 4_000 } });
    expect(await t.http('POST', '/v1/wallet/purchases', buy, deviceToken)).toEqual(bought);
    const declined = await t.http(
      'POST',
      '/v1/wallet/purchases',
      { ...buy, paymentToken: 'tok_sandbox_decline', idempotencyKey: 'buy-2' },
      deviceToken,
    );
    expect(declined).toEqual({ status: 422, body: error('payment_declined') });
    expect(
      (await t.http('POST', '/v1/wallet/purchases', { ...buy, amountCents: 1 }, deviceToken)).status,
    ).toBe(409);
    expect((await t.http('POST', '/v1/wallet/purchases', buy, merchant.apiKey)).status).toBe(401);
    const wallet = await t.http('GET', '/v1/wallet', undefined, deviceToken);
    expect(wallet.body.cards).toEqual([expect.objectContaining({ balanceCents: 4_000, kind: 'gift' })]);
  });

  it('sells nothing by card when purchases are off, and says so at start-up', async () => {
    const t = await startTestServer({ env: { PAYCODE_FUNDING: 'none' } });
    expect(t.lines).toContain(
      'paycode: card purchases are off (PAYCODE_FUNDING=none): consumers cannot buy value',
    );
    const { buy, deviceToken } = await buyer(t);
    expect(await t.http('POST', '/v1/wallet/purchases', buy, deviceToken)).toEqual({
      status: 403,
      body: error('forbidden'),
    });
    expect((await t.http('GET', '/v1/wallet', undefined, deviceToken)).body.cards).toEqual([]);
  });

  it('charges nothing for a purchase the engine would refuse', async () => {
    const sandbox = new SandboxFunding();
    const charged: number[] = [];
    const funding: FundingProvider = {
      name: 'recording sandbox',
      async charge(request) {
        const result = await sandbox.charge(request);
        if (result.ok) charged.push(request.amountCents);
        return result;
      },
      refund: (chargeId) => sandbox.refund(chargeId),
    };
    const t = await startTestServer({ funding, limits: { loadMaxCents: 5_000, cardBalanceMaxCents: 5_000 } });
    const merchant = await t.merchant('Books');
    const { deviceToken } = await t.consumer(PHONE);
    const buy = (amountCents: number, idempotencyKey: string) =>
      t.http(
        'POST',
        '/v1/wallet/purchases',
        { merchantId: merchant.merchantId, amountCents, paymentToken: 'tok_sandbox_ok', idempotencyKey },
        deviceToken,
      );
    expect((await buy(4_000, 'b-1')).status).toBe(201);
    expect(await buy(2_000, 'b-2')).toEqual({ status: 422, body: error('limit_exceeded') });
    expect(await buy(6_000, 'b-3')).toEqual({ status: 422, body: error('limit_exceeded') });
    expect(charged).toEqual([4_000]);
  });

  it('answers health, metrics on loopback, unknown routes, oversized and malformed bodies', async () => {
    const t = await startTestServer({ limits: { httpBodyBytesMax: 1_024 } });
    expect(await t.http('GET', '/healthz')).toEqual({ status: 200, body: { ok: true } });
    expect(await t.http('GET', '/v1/nothing')).toEqual({ status: 404, body: error('not_found') });
    // A known path with another method: 405 and the methods it takes.
    for (const [method, path, allow] of [
      ['GET', '/v1/consumers', 'POST'],
      ['PUT', '/v1/wallet/codes', 'POST, DELETE'],
      ['DELETE', '/v1/merchants/mc_x/terminals', 'GET, POST'],
    ]) {
      const response = await fetch(`${t.server.url}${path}`, { method });
      expect(response.status).toBe(405);
      expect(response.headers.get('allow')).toBe(allow);
      expect(await response.json()).toEqual(error('bad_request'));
    }
    expect(await t.http('POST', '/v1/consumers', '{"phone":')).toEqual({
      status: 400,
      body: error('bad_request'),
    });
    // An oversize body is answered 413, read to its end so the client can read the answer.
    expect(await t.http('POST', '/v1/consumers', 'x'.repeat(5_000))).toEqual({
      status: 413,
      body: error('bad_request'),
    });
    expect(
      await t.http('POST', '/v1/terminals/activate', JSON.stringify({ activationCode: 'x'.repeat(20_000) })),
    ).toEqual({
      status: 413,
      body: error('bad_request'),
    });
    // One said to be larger than what is drained is answered and the connection closed at once, while
    // the client has sent almost nothing of it: nobody makes the server read megabytes it will drop.
    const cutOff = await new Promise<{ answer: string; closed: boolean }>((resolve, reject) => {
      const { hostname, port } = new URL(t.server.url);
      const socket = connect(Number(port), hostname, () => {
        socket.write(
          `POST /v1/consumers HTTP/1.1\r\nhost: ${hostname}:${port}\r\ncontent-type: application/json\r\n` +
            `content-length: ${LIMITS.httpBodyDrainBytesMax + 1}\r\n\r\n{"phone":`,
        );
      });
      let answer = '';
      socket.on('data', (data) => {
        answer += data.toString('latin1');
      });
      socket.on('error', reject);
      socket.on('close', () => resolve({ answer, closed: true }));
    });
    expect(cutOff.closed).toBe(true);
    expect(cutOff.answer).toMatch(/^HTTP\/1\.1 413 /);
    expect(await t.http('POST', '/v1/consumers', [1, 2])).toEqual({
      status: 400,
      body: error('bad_request'),
    });
    // What only this machine may read is refused to a page whose name points here (DNS rebinding): it
    // comes from loopback, but with another name in its Host header.
    const asHost = (path: string, host: string) =>
      new Promise<number>((resolve, reject) => {
        const url = new URL(path, t.server.url);
        get({ hostname: url.hostname, port: url.port, path, headers: { host } }, (response) => {
          response.resume();
          resolve(response.statusCode ?? 0);
        }).on('error', reject);
      });
    const port = new URL(t.server.url).port;
    for (const path of ['/metrics', '/v1/dev/inbox']) {
      expect(await asHost(path, `rebound.example:${port}`)).toBe(403);
      expect(await asHost(path, `localhost:${port}`)).toBe(200);
      expect(await asHost(path, `127.0.0.1:${port}`)).toBe(200);
    }
    const metrics = await t.http('GET', '/metrics');
    expect(metrics.status).toBe(200);
    expect(metrics.body).toContain('paycode_http_requests_total{route="/v1/consumers",code="400"} 2');
    expect(metrics.body).toContain('paycode_http_requests_total{route="/v1/consumers",code="413"} 2');
    // Every answer is timed too: 4 answers of the route, each within the largest bucket.
    expect(metrics.body).toContain('paycode_http_request_duration_seconds_count{route="/v1/consumers"} 4');
    expect(metrics.body).toContain(
      'paycode_http_request_duration_seconds_bucket{le="2.5",route="/v1/consumers"} 4',
    );
    expect(metrics.body).toContain('paycode_process_cpu_seconds_total');
  });

  it('keeps merchants, terminals, device tokens and balances across a restart', async () => {
    const t = await startTestServer();
    const merchant = await t.merchant();
    const terminal = await t.terminal(merchant);
    const { deviceToken } = await t.consumer(PHONE);
    await t.load(merchant, PHONE, 1_500);
    await t.restart();
    const wallet = await t.http('GET', '/v1/wallet', undefined, deviceToken);
    expect(wallet.body.cards[0]).toMatchObject({ balanceCents: 1_500, merchantName: 'Corner Cafe' });
    const code = await t.http('POST', '/v1/wallet/codes', { merchantId: merchant.merchantId }, deviceToken);
    const pos = await t.pos(terminal);
    expect(await pos.redeem({ code: code.body.code, amountCents: 1_000 })).toMatchObject({
      status: 'approved',
      balanceCents: 500,
    });
  });
});

describe('this machine', () => {
  it('is known by name (bound, or in a Host header) and by peer address, and nothing else is', () => {
    for (const name of ['localhost', 'LOCALHOST:8080', '127.0.0.1', '127.1.2.3:443', '::1', '[::1]:9000'])
      expect(isLoopbackName(name)).toBe(true);
    for (const name of [
      'localhost.evil.test',
      '127.0.0.1.evil.test',
      'evil.test:80',
      '10.0.0.1',
      '[::2]',
      '',
    ])
      expect(isLoopbackName(name)).toBe(false);
    for (const address of ['127.0.0.1', '127.0.0.2', '::1', '0000:0000:0000:0000:0000:ffff:127.0.0.1'])
      expect(isLoopbackAddress(address)).toBe(true);
    expect(isLoopbackAddress('0000:0000:0000:0000:0000:0000:0000:0001')).toBe(true);
    for (const address of ['10.0.0.1', '128.0.0.1', '::2', '0000:0000:0000:0000:0000:ffff:10.0.0.1'])
      expect(isLoopbackAddress(address)).toBe(false);
  });
});
