/**
 * Structured logs. Every line the server logs is one JSON object with `level`, `time` and `msg`, and no
 * line ever holds a secret: a full flow against a real server (operator, merchant with bank details,
 * terminal activation, phone verification, device token, card purchase, payment code, redemption, the
 * wallet socket, SMS over SMPP) and its failure paths (wrong OTP, bad MACs, a wrong terminal key, a bad
 * wallet token, malformed bodies, a handler that throws) collect every secret they handle, and the
 * captured log must contain none of them. The log must also show those refusals and failures, so the
 * test cannot pass with logging switched off. A unit test checks the redaction on a crafted value.
 */
import { createHmac, randomBytes } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import type { FundingProvider } from '../gateway/funding/provider.ts';
import { SandboxFunding } from '../gateway/funding/sandbox.ts';
import { createLogger } from '../log/logger.ts';
import { isSecretName, REDACTED } from '../log/redact.ts';
import { posMac } from '../sdk/pos-client.ts';
import { OPERATOR_TOKEN, openSocket, startTestServer, type TestServer, waitFor } from './server-helpers.ts';
import { SmscSimulator } from './smsc-simulator.ts';

const PHONE = '+15555550142';
const SMS_PHONE = '+15555550186';
const ROUTING = '011000015';
const ACCOUNT = '4070001234567';
/** The amount at which the test's card processor throws, to force an internal error. */
const FAILING_AMOUNT_CENTS = 999;

interface LogLine {
  level: string;
  time: number;
  msg: string;
  [field: string]: unknown;
}

/** Parses every line, failing the test on one that is not a JSON object with the three fixed fields. */
function parseLog(lines: string[]): LogLine[] {
  return lines.map((line) => {
    const parsed = JSON.parse(line) as LogLine;
    expect(parsed).toEqual(
      expect.objectContaining({
        level: expect.stringMatching(/^(debug|info|warn|error)$/),
        time: expect.any(Number),
        msg: expect.any(String),
      }),
    );
    expect(Number.isSafeInteger(parsed.time)).toBe(true);
    return parsed;
  });
}

/**
 * Fails with the secret's kind (never its value, which would only move the leak into the test report)
 * when a line holds a secret. Digits-only secrets (codes, OTPs, phone and account numbers) must not
 * appear as a whole number; the same digits inside a longer run, such as a timestamp, are a coincidence.
 */
function expectNoSecrets(lines: string[], secrets: Map<string, string>): void {
  const text = lines.join('\n');
  for (const [secret, kind] of secrets) {
    expect(secret.length, `${kind} is too short to search for`).toBeGreaterThanOrEqual(6);
    const found = /^[0-9]+$/.test(secret)
      ? new RegExp(`(?<![0-9])${secret}(?![0-9])`).test(text)
      : text.includes(secret);
    expect(found, `the log holds: ${kind}`).toBe(false);
  }
}

/** The sandbox processor, except that it throws at one amount, as a processor that fails mid-call would. */
function flakyFunding(): FundingProvider {
  const sandbox = new SandboxFunding();
  return {
    name: 'flaky',
    charge: async (request) => {
      if (request.amountCents === FAILING_AMOUNT_CENTS) throw new Error('the card processor did not answer');
      return sandbox.charge(request);
    },
    refund: (chargeId) => sandbox.refund(chargeId),
  };
}

async function otpFor(t: TestServer, phone: string): Promise<string> {
  return waitFor(() => {
    const text = t.server.devInbox?.inbox.findLast(
      (entry) => entry.phone === phone && /verification/.test(entry.text),
    );
    return text ? /([0-9]{6})/.exec(text.text)?.[1] : undefined;
  });
}

describe('structured logs', () => {
  it('log every refusal and failure of a full flow as JSON lines, and never a secret', async () => {
    const t = await startTestServer({ limits: { posBadMessagesMax: 2 }, funding: flakyFunding() });
    const secrets = new Map<string, string>([
      [OPERATOR_TOKEN, 'operator token'],
      [PHONE, 'phone number'],
      [PHONE.slice(1), 'phone number without +'],
      [ROUTING, 'routing number'],
      [ACCOUNT, 'account number'],
      ['tok_sandbox_ok', 'payment token'],
    ]);
    for (const [name, value] of Object.entries(t.secrets)) {
      for (const key of [value].flat()) {
        if (!Buffer.isBuffer(key)) continue;
        for (const encoding of ['hex', 'base64', 'base64url'] as const)
          secrets.set(key.toString(encoding), `server key ${name}`);
      }
    }

    // Operator and merchant.
    const created = await t.http(
      'POST',
      '/v1/merchants',
      { name: 'Log Cafe', routingNumber: ROUTING, accountNumber: ACCOUNT, accountType: 'checking' },
      OPERATOR_TOKEN,
    );
    expect(created.status).toBe(201);
    const merchant = created.body as { merchantId: string; apiKey: string };
    secrets.set(merchant.apiKey, 'merchant API key');
    expect(
      (await t.http('GET', `/v1/merchants/${merchant.merchantId}`, undefined, 'mk_wrong_key')).status,
    ).toBe(401);

    // Terminal and its activation.
    const added = await t.http(
      'POST',
      `/v1/merchants/${merchant.merchantId}/terminals`,
      { label: 'till' },
      merchant.apiKey,
    );
    expect(added.status).toBe(201);
    const activationCode = added.body.activationCode as string;
    secrets.set(activationCode, 'activation code');
    secrets.set(activationCode.replace('-', ''), 'activation code without dash');
    const activated = await t.http('POST', '/v1/terminals/activate', { activationCode });
    expect(activated.status).toBe(200);
    const terminal = activated.body as { terminalId: string; terminalKey: string };
    secrets.set(terminal.terminalKey, 'terminal key');
    const terminalKey = Buffer.from(terminal.terminalKey, 'base64url');
    secrets.set(terminalKey.toString('hex'), 'terminal key (hex)');

    // Phone verification: a wrong code first, then the right one.
    expect((await t.http('POST', '/v1/consumers', { phone: PHONE })).status).toBe(202);
    const otp = await otpFor(t, PHONE);
    secrets.set(otp, 'verification code');
    const wrongOtp = otp === '000000' ? '000001' : '000000';
    const refused = await t.http('POST', '/v1/consumers/verify', { phone: PHONE, otp: wrongOtp });
    expect(refused.status).toBe(401);
    const verified = await t.http('POST', '/v1/consumers/verify', { phone: PHONE, otp });
    expect(verified.status).toBe(200);
    const deviceToken = verified.body.deviceToken as string;
    secrets.set(deviceToken, 'device token');

    // Malformed bodies.
    expect((await t.http('POST', '/v1/consumers', '{"phone": ')).status).toBe(400);
    expect((await t.http('POST', '/v1/consumers', { phone: 'call me' })).status).toBe(400);
    expect((await t.http('POST', '/v1/consumers/verify', { phone: PHONE, otp: `${otp}${otp}` })).status).toBe(
      400,
    );
    // An oversized body is read to its end and answered 413, which the client reads.
    expect(
      (await t.http('POST', '/v1/terminals/activate', { activationCode: 'x'.repeat(20_000) })).status,
    ).toBe(413);

    // Cards: a merchant's load, a purchase with a card, and a purchase whose processor throws.
    await t.load(merchant, PHONE, 5_000);
    const purchase = (amountCents: number, idempotencyKey: string) =>
      t.http(
        'POST',
        '/v1/wallet/purchases',
        { merchantId: merchant.merchantId, amountCents, paymentToken: 'tok_sandbox_ok', idempotencyKey },
        deviceToken,
      );
    expect((await purchase(1_000, 'buy-1')).status).toBe(201);
    const failed = await purchase(FAILING_AMOUNT_CENTS, 'buy-2');
    expect(failed.status).toBe(500);
    expect(failed.body.error.code).toBe('internal');
    expect((await t.http('GET', '/v1/wallet', undefined, deviceToken)).status).toBe(200);

    // The wallet socket: a bad token is refused, the device token is let in and hears the code.
    const intruder = await openSocket(t.server.url, '/v1/wallet');
    intruder.send({ type: 'auth', token: `dt_${randomBytes(32).toString('base64url')}` });
    expect(await intruder.next()).toEqual({ type: 'error', status: 'unauthorized' });
    expect(await intruder.closed).toBe(4001);
    const wallet = await openSocket(t.server.url, '/v1/wallet');
    wallet.send({ type: 'auth', token: deviceToken });
    expect(await wallet.next()).toMatchObject({ type: 'snapshot' });

    // A payment code, redeemed at the POS; a guessed code is declined.
    const issued = await t.http('POST', '/v1/wallet/codes', { merchantId: merchant.merchantId }, deviceToken);
    expect(issued.status).toBe(201);
    const code = issued.body.code as string;
    secrets.set(code, 'payment code');
    expect(await wallet.next((frame) => frame.type === 'code')).toMatchObject({ code, state: 'issued' });
    const pos = await t.pos(terminal);
    const guess = code === '000000' ? '000001' : '000000';
    expect((await pos.inquire(guess)).status).toBe('invalid_code');
    const sale = await pos.redeem({ code, amountCents: 1_250 });
    expect(sale.status).toBe('approved');
    secrets.set(sale.mac as string, 'answer MAC');

    // A handshake with the wrong terminal key.
    const impostor = await openSocket(t.server.url, '/v1/pos');
    const challenge = await impostor.next();
    const cnonce = randomBytes(16).toString('base64url');
    const wrongMac = posMac(randomBytes(32), ['hello', terminal.terminalId, challenge.nonce, cnonce]);
    secrets.set(wrongMac, 'hello MAC');
    impostor.send({ type: 'hello', terminalId: terminal.terminalId, cnonce, mac: wrongMac });
    expect(await impostor.next()).toEqual({ type: 'error', status: 'unauthorized' });
    expect(await impostor.closed).toBe(4001);

    // A session that sends bad MACs until the server closes it.
    const raw = await openSocket(t.server.url, '/v1/pos');
    const nonce = (await raw.next()).nonce as string;
    const rawCnonce = randomBytes(16).toString('base64url');
    const helloMac = posMac(terminalKey, ['hello', terminal.terminalId, nonce, rawCnonce]);
    secrets.set(helloMac, 'hello MAC');
    raw.send({ type: 'hello', terminalId: terminal.terminalId, cnonce: rawCnonce, mac: helloMac });
    expect(await raw.next()).toMatchObject({ type: 'welcome' });
    const sessionKey = createHmac('sha256', terminalKey).update(`session|${nonce}|${rawCnonce}`).digest();
    secrets.set(sessionKey.toString('base64url'), 'session key');
    secrets.set(sessionKey.toString('hex'), 'session key (hex)');
    const pingMac = posMac(sessionKey, ['ping', 1]);
    secrets.set(pingMac, 'request MAC');
    raw.send({ type: 'ping', seq: 1, mac: pingMac });
    expect(await raw.next()).toMatchObject({ type: 'pong', status: 'approved' });
    for (const seq of [2, 3, 4]) {
      const badMac = posMac(randomBytes(32), ['ping', seq]);
      secrets.set(badMac, 'bad request MAC');
      raw.send({ type: 'ping', seq, mac: badMac });
    }
    expect(await raw.closed).toBe(4008);

    // The texts (codes among them) are delivered and listed in the development inbox.
    await waitFor(() => (t.server.outbox.pending() === 0 ? true : undefined));
    expect((await t.http('GET', '/v1/dev/inbox', undefined, OPERATOR_TOKEN)).status).toBe(200);
    for (const text of t.server.devInbox?.inbox.filter((entry) => entry.text.includes('code')) ?? []) {
      for (const digits of text.text.match(/(?<![0-9])[0-9]{6}(?![0-9])/g) ?? [])
        secrets.set(digits, 'number in a text');
    }

    await t.server.close();
    const lines = parseLog(t.logs);
    expect(lines.length).toBeGreaterThan(20);
    expectNoSecrets(t.logs, secrets);

    // What the log must show.
    const access = (route: string, status: number) =>
      lines.filter((line) => line.msg === 'http request' && line.route === route && line.status === status);
    expect(access('/v1/merchants', 201)).toHaveLength(1);
    expect(access('/v1/merchants/:merchantId', 401)[0]).toMatchObject({
      method: 'GET',
      params: [merchant.merchantId],
      error: 'unauthorized',
      durationMs: expect.any(Number),
    });
    expect(access('/v1/consumers/verify', 401)[0]).toMatchObject({ method: 'POST', error: 'unauthorized' });
    expect(access('/v1/consumers', 400)).toHaveLength(2);
    expect(access('/v1/terminals/activate', 413)).toHaveLength(1);
    expect(access('/v1/wallet/purchases', 500)[0]).toMatchObject({ error: 'internal' });
    const handlerFailure = lines.find((line) => line.msg === 'http handler failed');
    expect(handlerFailure).toMatchObject({
      level: 'error',
      route: '/v1/wallet/purchases',
      err: {
        name: 'Error',
        message: 'the card processor did not answer',
        stack: expect.stringContaining('logs.test.ts'),
      },
    });
    expect(lines).toContainEqual(
      expect.objectContaining({
        level: 'warn',
        msg: 'pos handshake refused',
        reason: 'bad mac',
        terminalId: terminal.terminalId,
      }),
    );
    const refusedMessages = lines.filter((line) => line.msg === 'pos message refused');
    expect(refusedMessages.map((line) => line.status)).toEqual(['bad_mac', 'bad_mac', 'bad_mac']);
    expect(lines).toContainEqual(
      expect.objectContaining({
        msg: 'pos session closed: too many bad messages',
        terminalId: terminal.terminalId,
        badMessages: 3,
      }),
    );
    expect(lines).toContainEqual(
      expect.objectContaining({ msg: 'wallet auth refused', reason: 'bad token' }),
    );
    expect(lines.map((line) => line.msg)).toEqual(
      expect.arrayContaining(['server listening', 'server closing']),
    );
  });

  it('log the SMPP link and inbound texts, never a code, a number or the link password', async () => {
    const smsc = new SmscSimulator('paycode', 'smpp-pass-7Hq2');
    await smsc.start();
    try {
      const t = await startTestServer({ env: { PAYCODE_SMS: smsc.url } });
      await waitFor(() => (smsc.binds.length > 0 ? true : undefined));
      const secrets = new Map<string, string>([
        ['smpp-pass-7Hq2', 'SMPP password'],
        [SMS_PHONE, 'phone number'],
        [SMS_PHONE.slice(1), 'phone number without +'],
      ]);
      const textsTo = (phone: string) =>
        smsc.submitted.filter((text) => text.to === phone).map((text) => text.text);

      const merchant = await t.merchant('Tea House', 'TEA');
      secrets.set(merchant.apiKey, 'merchant API key');
      await t.load(merchant, SMS_PHONE, 3_000);
      expect((await t.http('POST', '/v1/consumers', { phone: SMS_PHONE })).status).toBe(202);
      const verification = await waitFor(() =>
        textsTo(SMS_PHONE).find((text) => text.includes('verification')),
      );
      const otp = /([0-9]{6})/.exec(verification)?.[1] as string;
      secrets.set(otp, 'verification code');
      const verified = await t.http('POST', '/v1/consumers/verify', { phone: SMS_PHONE, otp });
      expect(verified.status).toBe(200);
      secrets.set(verified.body.deviceToken, 'device token');

      smsc.deliver(SMS_PHONE, 'PAY TEA 12.50');
      const payText = await waitFor(() => textsTo(SMS_PHONE).find((text) => text.includes('your code')));
      const code = /is ([0-9]{6})/.exec(payText)?.[1] as string;
      secrets.set(code, 'payment code');
      smsc.deliver(SMS_PHONE, 'BAL');
      await waitFor(() => textsTo(SMS_PHONE).find((text) => text.includes('Tea House gift $')));

      await t.server.close();
      const lines = parseLog(t.logs);
      expectNoSecrets(t.logs, secrets);
      expect(lines).toContainEqual(
        expect.objectContaining({ level: 'info', msg: 'sms bound', host: '127.0.0.1' }),
      );
      const inbound = lines.filter((line) => line.msg === 'sms inbound').map((line) => line.command);
      expect(inbound).toHaveLength(2);
    } finally {
      await smsc.stop();
    }
  });

  it('redact secrets by field name, mask phone numbers and keep errors readable', () => {
    const written: string[] = [];
    const logger = createLogger({ write: (line) => written.push(line), now: () => 1_700_000_000_000 });
    const cyclic: Record<string, unknown> = { name: 'loop' };
    cyclic.self = cyclic;
    logger.info('crafted', {
      apiKey: 'mk_secret_1',
      api_key: 'mk_secret_2',
      'x-api-key': 'mk_secret_3',
      APIKey: 'mk_secret_4',
      apikey: 'mk_secret_5',
      deviceToken: 'dt_secret',
      authorization: 'Bearer op_secret',
      otp: '123456',
      code: 654321,
      activationCode: 'ABCDE-FGHJK',
      terminalKey: 'tk_secret',
      sessionKey: Buffer.from('raw key bytes'),
      mac: 'mac_secret',
      password: 'hunter2',
      bank: { routingNumber: '011000015', accountNumber: '4070001234567', accountType: 'checking' },
      requests: [{ key: 'idem-1', amountCents: 1_250 }],
      phone: '+15555550123',
      toPhone: '15555550123',
      note: 'texted +447700900123 and +15555550123.',
      serial: '+9090909090909090909',
      keyword: 'CAFE',
      merchantId: 'mc_abc',
      amountCents: 1_250,
      count: 10n,
      empty: null,
      cyclic,
      err: new Error('no answer from +15555550123', { cause: new TypeError('socket hang up') }),
      level: 'fake',
      msg: 'fake',
    });
    logger.debug('dropped below the level');
    logger.child({ component: 'pos', token: 'tk_child' }).warn('child line', { terminalId: 'tm_1' });
    // A writer that throws does not reach the caller.
    createLogger({
      write: () => {
        throw new Error('disk full');
      },
    }).error('lost');

    expect(written).toHaveLength(2);
    const [line, child] = written.map((text) => JSON.parse(text));
    expect(Object.keys(line).slice(0, 3)).toEqual(['level', 'time', 'msg']);
    expect(line).toMatchObject({
      level: 'info',
      time: 1_700_000_000_000,
      msg: 'crafted',
      apiKey: REDACTED,
      api_key: REDACTED,
      'x-api-key': REDACTED,
      APIKey: REDACTED,
      apikey: REDACTED,
      deviceToken: REDACTED,
      authorization: REDACTED,
      otp: REDACTED,
      code: REDACTED,
      activationCode: REDACTED,
      terminalKey: REDACTED,
      sessionKey: REDACTED,
      mac: REDACTED,
      password: REDACTED,
      bank: { routingNumber: REDACTED, accountNumber: REDACTED, accountType: 'checking' },
      requests: [{ key: REDACTED, amountCents: 1_250 }],
      phone: '+1••••••23',
      toPhone: '1••••••23',
      note: 'texted +4••••••23 and +1••••••23.',
      serial: '+9090909090909090909',
      keyword: 'CAFE',
      merchantId: 'mc_abc',
      amountCents: 1_250,
      count: '10',
      empty: null,
      err: {
        name: 'Error',
        message: 'no answer from +1••••••23',
        stack: expect.stringMatching(/^Error: no answer from \+1••••••23\n\s+at /),
        cause: { name: 'TypeError', message: 'socket hang up' },
      },
    });
    expect(JSON.stringify(line.cyclic)).toContain('[too deep]');
    expect(child).toEqual({
      level: 'warn',
      time: 1_700_000_000_000,
      msg: 'child line',
      component: 'pos',
      token: REDACTED,
      terminalId: 'tm_1',
    });
    expect(written.join('\n')).not.toMatch(/secret|hunter2|123456|654321|ABCDE|4070001234567|5555550123/);

    for (const name of ['operatorTokenHash', 'sealedText', 'cnonce', 'ROUTING_NUMBER', 'otpHash'])
      expect(isSecretName(name), name).toBe(true);
    for (const name of ['keyword', 'terminalId', 'authId', 'status', 'reason', 'route', 'durationMs'])
      expect(isSecretName(name), name).toBe(false);
  });
});
