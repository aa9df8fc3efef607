/**
 * Bad input of every kind against a live server: random and MACed-but-malformed POS requests, random
 * wallet messages, random and truncated frames in JSON and MessagePack, and random HTTP bodies on every
 * POST endpoint. Every answer carries a documented status, nothing 5xx, no money moves (the ledger
 * audit runs after every commit and the consumer's wallet is unchanged), and the server stays up.
 */
import { createHmac, randomBytes } from 'node:crypto';
import fc from 'fast-check';
import { pack } from 'msgpackr';
import { describe, expect, it } from 'vitest';
import { isStatus } from '../core/statuses.ts';
import { canonical, posMac, requestFields } from '../sdk/pos-protocol.ts';
import { OPERATOR_TOKEN, openSocket, startTestServer } from './server-helpers.ts';

const RUNS = Number(process.env.RUNS ?? 150);
const PHONE = '+15555550170';
const TYPES = [
  'redeem',
  'inquire',
  'void',
  'refund',
  'reverse',
  'ping',
  'hello',
  'auth',
  'requestCode',
  'cancelCode',
];

const value = fc.oneof(
  fc.string({ maxLength: 12 }),
  fc.integer(),
  fc.double(),
  fc.boolean(),
  fc.constant(null),
  fc.constantFrom('123456', '000000', 'au_1_x', 'k-1', -1, 0, 1, Number.MAX_SAFE_INTEGER + 2),
  fc.array(fc.integer(), { maxLength: 3 }),
  fc.dictionary(fc.string({ maxLength: 4 }), fc.integer(), { maxKeys: 2 }),
);
const frame = fc.record(
  {
    type: fc.oneof(fc.constantFrom(...TYPES), value),
    seq: fc.oneof(fc.integer({ min: -5, max: 1_000_000 }), value),
    key: value,
    code: value,
    amountCents: value,
    partial: value,
    authId: value,
    reqId: value,
    merchantId: value,
    capCents: value,
  },
  { requiredKeys: [] },
);
const garbage = fc.oneof(
  fc.uint8Array({ maxLength: 64 }).map((bytes) => ({ binary: true, data: Buffer.from(bytes) })),
  fc.string({ maxLength: 64 }).map((text) => ({ binary: false, data: text })),
  frame.map((f) => ({ binary: true, data: pack(f).subarray(0, Math.max(1, pack(f).length - 2)) })),
  frame.map((f) => ({ binary: false, data: JSON.stringify(f).slice(0, -1) })),
);

describe('malformed input', () => {
  it('answers every POS frame with a documented status and moves no money', async () => {
    const t = await startTestServer({
      limits: {
        posBadMessagesMax: 1_000_000,
        terminalCodeFailuresMax: 1_000_000,
        terminalCodeFailuresPerDayMax: 1_000_000,
        merchantCodeFailuresPerWindowMax: 1_000_000,
        merchantCodeFailuresPerDayMax: 1_000_000,
        globalCodeFailuresPerWindowMax: 1_000_000,
      },
    });
    const merchant = await t.merchant();
    const terminal = await t.terminal(merchant);
    const { deviceToken } = await t.consumer(PHONE);
    await t.load(merchant, PHONE, 5_000);
    await t.http(
      'POST',
      '/v1/wallet/codes',
      { merchantId: merchant.merchantId, capCents: 4_000 },
      deviceToken,
    );
    const before = (await t.http('GET', '/v1/wallet', undefined, deviceToken)).body;

    const socket = await openSocket(t.server.url, '/v1/pos');
    const { nonce } = await socket.next();
    const key = Buffer.from(terminal.terminalKey, 'base64url');
    const cnonce = randomBytes(16).toString('base64url');
    socket.send({
      type: 'hello',
      terminalId: terminal.terminalId,
      cnonce,
      mac: posMac(key, ['hello', terminal.terminalId, nonce, cnonce]),
    });
    expect((await socket.next()).type).toBe('welcome');
    const sessionKey = createHmac('sha256', key).update(`session|${nonce}|${cnonce}`).digest();
    const fieldsOf = (type: unknown) => requestFields(type) ?? [];

    await fc.assert(
      fc.asyncProperty(frame, fc.boolean(), fc.boolean(), async (request, signed, binary) => {
        const message: Record<string, unknown> = { ...request };
        // Half the frames carry a valid MAC, so they reach the field checks behind it.
        const signedFields = [
          request.type,
          request.seq,
          ...fieldsOf(request.type).map((name) => message[name]),
        ];
        if (signed && canonical(signedFields) !== null) message.mac = posMac(sessionKey, signedFields);
        socket.send(binary ? pack(message) : JSON.stringify(message));
        const answer = await socket.next();
        expect(isStatus(answer.status)).toBe(true);
        expect(answer.status).not.toBe('internal');
      }),
      { numRuns: RUNS },
    );
    for (let i = 0; i < 50; i++) {
      const [bad] = fc.sample(garbage, 1);
      socket.socket.send(bad?.data as Buffer);
      const answer = await socket.next();
      expect(isStatus(answer.status)).toBe(true);
    }
    expect((await t.http('GET', '/v1/wallet', undefined, deviceToken)).body).toEqual(before);
    expect((await t.http('GET', '/healthz')).status).toBe(200);
  });

  it('answers every wallet message with a documented status and changes nothing it should not', async () => {
    const t = await startTestServer({ limits: { wsAuthDeadlineMs: 60_000 } });
    const { deviceToken } = await t.consumer(PHONE);
    const wallet = await openSocket(t.server.url, '/v1/wallet');
    wallet.send({ type: 'auth', token: deviceToken });
    expect((await wallet.next()).type).toBe('snapshot');
    await fc.assert(
      fc.asyncProperty(fc.oneof(frame, garbage), async (message) => {
        const isGarbage = 'data' in message && Object.keys(message).length === 2 && 'binary' in message;
        wallet.socket.send(isGarbage ? (message.data as Buffer) : JSON.stringify(message));
        const answer = await wallet.next();
        expect(answer.type === 'error' ? isStatus(answer.status) : answer.type === 'code').toBe(true);
      }),
      { numRuns: RUNS },
    );
    // Garbage before auth closes the socket with unauthorized.
    const stranger = await openSocket(t.server.url, '/v1/wallet');
    stranger.socket.send(Buffer.from([0xc1]));
    expect(await stranger.next()).toEqual({ type: 'error', status: 'unauthorized' });
    expect((await t.http('GET', '/healthz')).status).toBe(200);
  });

  it('closes a socket that sends a frame above the size limit, and only that one', async () => {
    const t = await startTestServer({ limits: { wsMessageBytesMax: 1_024 } });
    const big = await openSocket(t.server.url, '/v1/pos');
    const calm = await openSocket(t.server.url, '/v1/pos');
    await big.next();
    big.socket.send(JSON.stringify({ type: 'hello', pad: 'x'.repeat(2_000) }));
    expect(await big.closed).toBe(1006);
    expect(calm.socket.readyState).toBe(calm.socket.OPEN);
    expect((await t.http('GET', '/healthz')).status).toBe(200);
  });

  it('answers every HTTP body with a documented error and never a 5xx', async () => {
    const t = await startTestServer();
    const merchant = await t.merchant();
    const { deviceToken } = await t.consumer(PHONE);
    const endpoints: [string, string | undefined][] = [
      ['/v1/merchants', OPERATOR_TOKEN],
      [`/v1/merchants/${merchant.merchantId}/terminals`, merchant.apiKey],
      [`/v1/merchants/${merchant.merchantId}/cards`, merchant.apiKey],
      ['/v1/terminals/activate', undefined],
      ['/v1/consumers', undefined],
      ['/v1/consumers/verify', undefined],
      ['/v1/wallet/purchases', deviceToken],
      ['/v1/wallet/codes', deviceToken],
    ];
    const body = fc.oneof(
      fc.dictionary(
        fc.constantFrom(
          'name',
          'phone',
          'amountCents',
          'kind',
          'idempotencyKey',
          'otp',
          'label',
          'merchantId',
          'routingNumber',
        ),
        value,
      ),
      value,
      fc.string({ maxLength: 40 }),
    );
    await fc.assert(
      fc.asyncProperty(fc.constantFrom(...endpoints), body, async ([path, token], payload) => {
        const answer = await t.http(
          'POST',
          path,
          typeof payload === 'string' ? payload : JSON.stringify(payload),
          token,
        );
        expect(answer.status).toBeLessThan(500);
        if (answer.status >= 400) expect(isStatus(answer.body.error.code)).toBe(true);
      }),
      { numRuns: RUNS },
    );
    const wallet = await t.http('GET', '/v1/wallet', undefined, deviceToken);
    expect(wallet.body.cards).toEqual([]);
  });
});
