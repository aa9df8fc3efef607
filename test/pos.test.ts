/**
 * The POS WebSocket against a real server: the handshake and its failures, every request type and
 * status of docs/pos-guide.md in JSON and MessagePack, MACs both ways, `seq` replay, idempotent retries,
 * terminal locking after failed codes, and that no answer carries personal data.
 */
import { createHmac, randomBytes } from 'node:crypto';
import { pack } from 'msgpackr';
import { describe, expect, it } from 'vitest';
import { posMac } from '../sdk/pos-client.ts';
import { openSocket, posHandshake, startTestServer, type TestServer } from './server-helpers.ts';

const PHONE = '+15555550123';

async function shop(t: TestServer, amountCents = 5_000) {
  const merchant = await t.merchant();
  const terminal = await t.terminal(merchant);
  const consumer = await t.consumer(PHONE);
  await t.load(merchant, PHONE, amountCents);
  const code = async (capCents?: number) => {
    const issued = await t.http(
      'POST',
      '/v1/wallet/codes',
      { merchantId: merchant.merchantId, capCents },
      consumer.deviceToken,
    );
    expect(issued.status).toBe(201);
    return issued.body.code as string;
  };
  return { merchant, terminal, consumer, code };
}

/** A raw handshake, for the failure cases the client library refuses to make. */
describe('POS WebSocket', () => {
  for (const encoding of ['json', 'msgpack'] as const) {
    it(`redeems a code with a MACed, durable answer that names no person (${encoding})`, async () => {
      const t = await startTestServer();
      const { terminal, consumer, code, merchant } = await shop(t);
      const pos = await t.pos(terminal, encoding);
      expect(pos.merchantId).toBe(merchant.merchantId);
      const digits = await code();
      const sale = await pos.redeem({ code: digits, amountCents: 1_250 });
      expect(sale).toMatchObject({
        type: 'redeemResult',
        status: 'approved',
        approvedCents: 1_250,
        balanceCents: 3_750,
      });
      expect(Object.keys(sale).sort()).toEqual([
        'approvedCents',
        'authId',
        'balanceCents',
        'mac',
        'seq',
        'status',
        'type',
      ]);
      const text = JSON.stringify(sale);
      expect(text).not.toContain(consumer.consumerId);
      expect(text).not.toContain(PHONE.slice(1));
      const wallet = await t.http('GET', '/v1/wallet', undefined, consumer.deviceToken);
      expect(wallet.body.cards[0]).toMatchObject({ balanceCents: 3_750, availableCents: 3_750 });
      expect(wallet.body.activeCode).toBeNull();
      // Single use: the code is spent.
      expect((await pos.redeem({ code: digits, amountCents: 1 })).status).toBe('invalid_code');
    });
  }

  it('answers over_cap without partial, and approves the cap with partial', async () => {
    const t = await startTestServer();
    const { terminal, code } = await shop(t);
    const pos = await t.pos(terminal);
    const digits = await code(2_000);
    expect((await pos.inquire(digits)).availableCents).toBe(2_000);
    expect((await pos.redeem({ code: digits, amountCents: 3_000 })).status).toBe('over_cap');
    // A declined redeem leaves the code usable.
    const partial = await pos.redeem({ code: digits, amountCents: 3_000, partial: true });
    expect(partial).toMatchObject({ status: 'approved', approvedCents: 2_000, balanceCents: 3_000 });
  });

  it('voids, refunds and reverses, with the statuses for each refusal', async () => {
    const t = await startTestServer();
    const { terminal, code } = await shop(t);
    const pos = await t.pos(terminal);
    const sale = await pos.redeem({ code: await code(), amountCents: 1_000 });
    expect((await pos.refund(sale.authId as string, 400)).status).toBe('approved');
    expect((await pos.refund(sale.authId as string, 700)).status).toBe('refund_exceeds');
    const voided = await pos.void(sale.authId as string);
    expect(voided).toMatchObject({ status: 'approved', authId: sale.authId, balanceCents: 5_000 });
    expect((await pos.void(sale.authId as string)).status).toBe('already_voided');
    expect((await pos.void('au_1_doesnotexist')).status).toBe('not_found');

    const key = 'sale-reverse-1';
    expect((await pos.redeem({ code: await code(), amountCents: 800, key })).status).toBe('approved');
    expect(await pos.reverse(key)).toMatchObject({ type: 'reverseResult', status: 'reversed' });
    expect((await pos.reverse(key)).status).toBe('reversed');
    expect((await pos.reverse('never-used')).status).toBe('nothing_to_reverse');
    expect((await pos.ping()).status).toBe('approved');
  });

  it('returns the stored result for a replayed key and idempotency_mismatch for changed fields', async () => {
    const t = await startTestServer();
    const { terminal, code, merchant } = await shop(t);
    const pos = await t.pos(terminal);
    const digits = await code();
    const first = await pos.redeem({ code: digits, amountCents: 500, key: 'k-1' });
    const again = await pos.redeem({ code: digits, amountCents: 500, key: 'k-1' });
    expect(again.authId).toBe(first.authId);
    expect(again.seq).toBeGreaterThan(first.seq);
    expect((await pos.redeem({ code: digits, amountCents: 600, key: 'k-1' })).status).toBe(
      'idempotency_mismatch',
    );
    // Keys are scoped to the terminal: another terminal's same key is a new request (the code is spent).
    const other = await t.pos(await t.terminal(merchant));
    expect((await other.redeem({ code: digits, amountCents: 500, key: 'k-1' })).status).toBe('invalid_code');
  });

  it('answers expired_code after the lifetime and invalid_code for unknown digits or another merchant', async () => {
    const t = await startTestServer({ env: { PAYCODE_CODE_TTL_MS: '1000' } });
    const { terminal, code } = await shop(t);
    const pos = await t.pos(terminal);
    const stranger = await t.merchant('Other Shop');
    const strangerPos = await t.pos(await t.terminal(stranger));
    const digits = await code();
    expect((await strangerPos.redeem({ code: digits, amountCents: 100 })).status).toBe('invalid_code');
    await new Promise((resolve) => setTimeout(resolve, 1_200));
    expect((await pos.redeem({ code: digits, amountCents: 100 })).status).toBe('expired_code');
  });

  it('locks a terminal after consecutive failed codes until its merchant unlocks it', async () => {
    const t = await startTestServer({ limits: { terminalCodeFailuresMax: 3 } });
    const { terminal, merchant, code } = await shop(t);
    const pos = await t.pos(terminal);
    for (let guess = 0; guess < 3; guess++) {
      expect((await pos.redeem({ code: String(guess).padStart(6, '0'), amountCents: 100 })).status).toBe(
        'invalid_code',
      );
    }
    const digits = await code();
    expect((await pos.redeem({ code: digits, amountCents: 100 })).status).toBe('terminal_locked');
    expect((await pos.inquire(digits)).status).toBe('terminal_locked');
    const path = `/v1/merchants/${merchant.merchantId}/terminals/${terminal.terminalId}/unlock`;
    expect((await t.http('POST', path, {}, merchant.apiKey)).status).toBe(200);
    expect((await pos.redeem({ code: digits, amountCents: 100 })).status).toBe('approved');
  });

  it('refuses bad MACs, replayed seqs, unknown types and unreadable frames', async () => {
    const t = await startTestServer();
    const { terminal } = await shop(t);
    const key = Buffer.from(terminal.terminalKey, 'base64url');
    const { socket, sessionKey, answer } = await posHandshake(t.server.url, terminal.terminalId, key);
    expect(answer).toMatchObject({ type: 'welcome', terminalId: terminal.terminalId });
    expect(answer.mac).toBe(posMac(sessionKey, ['welcome', answer.terminalId, answer.merchantId]));

    socket.send({ type: 'ping', seq: 5, mac: posMac(sessionKey, ['ping', 5]) });
    expect(await socket.next()).toMatchObject({ type: 'pong', seq: 5, status: 'approved' });
    socket.send({ type: 'ping', seq: 5, mac: posMac(sessionKey, ['ping', 5]) });
    const replay = await socket.next();
    expect(replay).toMatchObject({ type: 'pong', seq: 5, status: 'replay' });
    expect(replay.mac).toBe(posMac(sessionKey, ['pong', 5, 'replay']));
    socket.send({ type: 'ping', seq: 6, mac: posMac(randomBytes(32), ['ping', 6]) });
    expect(await socket.next()).toMatchObject({ type: 'pong', seq: 6, status: 'bad_mac' });
    // A bad MAC is not accepted, so seq 6 is still free.
    socket.send({ type: 'ping', seq: 6, mac: posMac(sessionKey, ['ping', 6]) });
    expect(await socket.next()).toMatchObject({ seq: 6, status: 'approved' });

    socket.send({ type: 'teleport', seq: 7, mac: 'x' });
    const unknown = await socket.next();
    expect(unknown).toEqual({
      type: 'error',
      seq: 7,
      status: 'bad_request',
      mac: posMac(sessionKey, ['error', 7, 'bad_request']),
    });
    socket.send('{not json');
    expect(await socket.next()).toEqual({ type: 'error', status: 'bad_request' });
    socket.send(Buffer.from([0xc1, 0xff]));
    expect(await socket.next()).toEqual({ type: 'error', status: 'bad_request' });
    socket.send({ type: 'redeem', mac: 'x' });
    expect(await socket.next()).toEqual({ type: 'error', status: 'bad_request' });

    // Well-formed MACs over wrong types are bad requests and change nothing.
    const fields = ['redeem', 8, 'k', 123456, 1.5, 0];
    socket.send({
      type: 'redeem',
      seq: 8,
      key: 'k',
      code: 123456,
      amountCents: 1.5,
      partial: 0,
      mac: posMac(sessionKey, fields),
    });
    expect(await socket.next()).toMatchObject({ type: 'redeemResult', seq: 8, status: 'bad_request' });
  });

  it('refuses a wrong terminal key, an unknown terminal and a late hello', async () => {
    const t = await startTestServer({ limits: { wsAuthDeadlineMs: 300 } });
    const { terminal } = await shop(t);
    const key = Buffer.from(terminal.terminalKey, 'base64url');
    const wrong = await posHandshake(t.server.url, terminal.terminalId, key, true);
    expect(wrong.answer).toEqual({ type: 'error', status: 'unauthorized' });
    expect(await wrong.socket.closed).toBe(4001);
    const unknown = await posHandshake(t.server.url, 'tm_unknown', key);
    expect(unknown.answer).toEqual({ type: 'error', status: 'unauthorized' });

    const silent = await openSocket(t.server.url, '/v1/pos');
    await silent.next();
    expect(await silent.next()).toEqual({ type: 'error', status: 'unauthorized' });
    expect(await silent.closed).toBe(4001);
  });

  it('counts pipelined guesses one by one, resets only on a redeem, and replays a stored sale when locked', async () => {
    const t = await startTestServer({ limits: { terminalCodeFailuresMax: 3 } });
    const { terminal, merchant, code } = await shop(t);
    const pos = await t.pos(terminal);
    const digits = await code(1_000);
    const sale = await pos.redeem({ code: digits, amountCents: 100, key: 'sale-1' });
    expect(sale.status).toBe('approved');
    // Twenty guesses sent at once: three are tried, the rest meet the lock.
    const guesses = await Promise.all(
      Array.from({ length: 20 }, (_, i) => pos.send('inquire', { code: String(900_000 + i) })),
    );
    const statuses = guesses.map((answer) => answer.status);
    expect(statuses.filter((status) => status === 'invalid_code')).toHaveLength(3);
    expect(statuses.filter((status) => status === 'terminal_locked')).toHaveLength(17);
    // The till retries the sale whose answer it lost: it gets the stored approval, not the lock.
    const retried = await pos.redeem({ code: digits, amountCents: 100, key: 'sale-1' });
    expect(retried).toMatchObject({ status: 'approved', authId: sale.authId });
    const unlock = `/v1/merchants/${merchant.merchantId}/terminals/${terminal.terminalId}/unlock`;
    expect((await t.http('POST', unlock, {}, merchant.apiKey)).status).toBe(200);
    // An inquire of a code the terminal knows does not reset the count.
    const known = await code(500);
    for (const guess of ['900100', '900101']) expect((await pos.inquire(guess)).status).toBe('invalid_code');
    expect((await pos.inquire(known)).status).toBe('approved');
    expect((await pos.inquire('900102')).status).toBe('invalid_code');
    expect((await pos.inquire(known)).status).toBe('terminal_locked');
  });

  it('throttles a merchant whose terminals together fail too many codes', async () => {
    const t = await startTestServer({
      limits: {
        merchantCodeFailuresPerWindowMax: 3,
        terminalCodeFailuresMax: 100,
        terminalCodeFailuresPerDayMax: 100,
      },
    });
    const { terminal, merchant, code } = await shop(t);
    const first = await t.pos(terminal);
    const second = await t.pos(await t.terminal(merchant));
    expect((await first.inquire('900001')).status).toBe('invalid_code');
    expect((await first.inquire('900002')).status).toBe('invalid_code');
    expect((await second.inquire('900003')).status).toBe('invalid_code');
    // The window is full: even a real code waits, on every terminal of the merchant.
    const digits = await code();
    expect((await second.inquire(digits)).status).toBe('rate_limited');
    expect((await first.redeem({ code: digits, amountCents: 100 })).status).toBe('rate_limited');
    // Another merchant is not affected.
    const other = await t.merchant('Elsewhere');
    expect((await (await t.pos(await t.terminal(other))).inquire('900004')).status).toBe('invalid_code');
  });

  it('closes a session after too many bad messages', async () => {
    const t = await startTestServer({ limits: { posBadMessagesMax: 2 } });
    const { terminal } = await shop(t);
    const { socket, sessionKey } = await posHandshake(
      t.server.url,
      terminal.terminalId,
      Buffer.from(terminal.terminalKey, 'base64url'),
    );
    socket.send({ type: 'ping', seq: 1, mac: posMac(randomBytes(32), ['ping', 1]) });
    socket.send('garbage');
    socket.send({ type: 'ping', seq: 0, mac: posMac(sessionKey, ['ping', 0]) });
    expect(await socket.closed).toBe(4008);
    expect(socket.frames.slice(2).map((frame) => frame.status)).toEqual(['bad_mac', 'bad_request', 'replay']);
  });

  it('answers each request in its own encoding', async () => {
    const t = await startTestServer();
    const { terminal } = await shop(t);
    const key = Buffer.from(terminal.terminalKey, 'base64url');
    const { socket, sessionKey } = await posHandshake(t.server.url, terminal.terminalId, key);
    socket.send(pack({ type: 'ping', seq: 1, mac: posMac(sessionKey, ['ping', 1]) }));
    expect(await socket.next()).toMatchObject({ type: 'pong', seq: 1, status: 'approved' });
    socket.send({ type: 'ping', seq: 2, mac: posMac(sessionKey, ['ping', 2]) });
    expect(await socket.next()).toMatchObject({ type: 'pong', seq: 2, status: 'approved' });
    expect(socket.binary).toEqual([false, false, true, false]);
  });

  it('bounds sessions per terminal and requests per second per socket', async () => {
    const t = await startTestServer({
      limits: { posConnectionsPerTerminalMax: 2, wsRequestsPerSecondMax: 5 },
    });
    const { terminal } = await shop(t);
    const pos = await t.pos(terminal);
    await t.pos(terminal);
    await expect(t.pos(terminal)).rejects.toMatchObject({ status: 'rate_limited' });
    const answers = await Promise.all(Array.from({ length: 10 }, () => pos.send('ping', {})));
    const statuses = answers.map((answer) => answer.status);
    expect(statuses.filter((status) => status === 'approved').length).toBeLessThanOrEqual(5);
    expect(statuses).toContain('rate_limited');
  });

  it('speaks MessagePack to a client whose first frame is MessagePack', async () => {
    const t = await startTestServer();
    const { terminal } = await shop(t);
    const socket = await openSocket(t.server.url, '/v1/pos');
    const challenge = await socket.next();
    const key = Buffer.from(terminal.terminalKey, 'base64url');
    const cnonce = randomBytes(16).toString('base64url');
    socket.send(
      pack({
        type: 'hello',
        terminalId: terminal.terminalId,
        cnonce,
        mac: posMac(key, ['hello', terminal.terminalId, challenge.nonce, cnonce]),
      }),
    );
    const welcome = await socket.next();
    expect(welcome.type).toBe('welcome');
    expect(socket.binary).toEqual([false, true]);
    const sessionKey = createHmac('sha256', key).update(`session|${challenge.nonce}|${cnonce}`).digest();
    socket.send(pack({ type: 'ping', seq: 1, mac: posMac(sessionKey, ['ping', 1]) }));
    expect(await socket.next()).toMatchObject({ type: 'pong', seq: 1, status: 'approved' });
    expect(socket.binary).toEqual([false, true, true]);
  });
});
