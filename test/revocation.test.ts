/**
 * Taking credentials back, on a live server: a device signs out and its token stops working at once, its
 * open wallet socket is closed and other devices carry on; verifying the phone again with
 * `revokeOtherDevices` (a lost phone) closes every other device's sockets and leaves only the new token,
 * also after a restart; an expired token's socket is
 * closed. A merchant's API key is replaced and the old one stops working. A terminal key revoked closes its POS sessions and no handshake works with it; a rekey keeps the
 * old key working until the new activation code is used, then ends the old sessions.
 */
import { describe, expect, it } from 'vitest';
import {
  OPERATOR_TOKEN,
  openSocket,
  posHandshake,
  startTestServer,
  type TestServer,
  waitFor,
} from './server-helpers.ts';

const PHONE = '+15555550150';

async function walletSocket(t: TestServer, token: string) {
  const socket = await openSocket(t.server.url, '/v1/wallet');
  socket.send({ type: 'auth', token });
  expect((await socket.next()).type).toBe('snapshot');
  return socket;
}

describe('revocation', () => {
  it('signs one device out, or every device, and closes their wallet sockets', async () => {
    const t = await startTestServer();
    const first = (await t.consumer(PHONE)).deviceToken;
    const second = (await t.consumer(PHONE)).deviceToken;
    const firstSocket = await walletSocket(t, first);
    const secondSocket = await walletSocket(t, second);
    const wallet = (token: string) => t.http('GET', '/v1/wallet', undefined, token);

    expect(await t.http('DELETE', '/v1/wallet/token', undefined, first)).toEqual({ status: 200, body: {} });
    expect(await firstSocket.next()).toEqual({ type: 'error', status: 'unauthorized' });
    expect(await firstSocket.closed).toBe(4001);
    expect((await wallet(first)).status).toBe(401);
    expect((await wallet(second)).status).toBe(200);
    expect((await t.http('DELETE', '/v1/wallet/token', undefined, first)).status).toBe(401);
    // The other device's socket still serves.
    secondSocket.send({ type: 'cancelCode', reqId: 'r1' });
    expect(await secondSocket.next()).toEqual({ type: 'error', reqId: 'r1', status: 'not_found' });

    // A lost phone: the consumer verifies the number again on a new one and revokes every other device.
    // A device token alone cannot do that: it takes a fresh code sent to the phone.
    expect((await t.http('POST', '/v1/consumers', { phone: PHONE })).status).toBe(202);
    const otp = await waitFor(() => {
      const text = t.server.devInbox?.inbox.findLast((entry) => entry.phone === PHONE);
      return text ? /([0-9]{6})/.exec(text.text)?.[1] : undefined;
    });
    const badFlag = await t.http('POST', '/v1/consumers/verify', {
      phone: PHONE,
      otp,
      revokeOtherDevices: 'yes',
    });
    expect(badFlag.status).toBe(400);
    const revoked = await t.http('POST', '/v1/consumers/verify', {
      phone: PHONE,
      otp,
      revokeOtherDevices: true,
    });
    expect(revoked.status).toBe(200);
    const third: string = revoked.body.deviceToken;
    expect(third).toMatch(/^dt_/);
    expect(await secondSocket.next()).toEqual({ type: 'error', status: 'unauthorized' });
    expect(await secondSocket.closed).toBe(4001);
    expect((await wallet(second)).status).toBe(401);
    expect((await wallet(third)).status).toBe(200);
    const refused = await openSocket(t.server.url, '/v1/wallet');
    refused.send({ type: 'auth', token: second });
    expect(await refused.next()).toEqual({ type: 'error', status: 'unauthorized' });

    // A device verified after the revocation is fine; revoked tokens stay revoked after a restart.
    const fourth = (await t.consumer(PHONE)).deviceToken;
    await t.restart();
    expect((await wallet(second)).status).toBe(401);
    expect((await wallet(third)).status).toBe(200);
    expect((await wallet(fourth)).status).toBe(200);
    await walletSocket(t, third);
  });

  it('closes a wallet socket whose device token expired', async () => {
    let shiftMs = 0;
    const t = await startTestServer({ now: () => Date.now() + shiftMs });
    const { deviceToken } = await t.consumer(PHONE);
    const socket = await walletSocket(t, deviceToken);
    shiftMs = 91 * 24 * 60 * 60_000;
    socket.send({ type: 'cancelCode', reqId: 'late' });
    expect(await socket.next()).toEqual({ type: 'error', status: 'unauthorized' });
    expect(await socket.closed).toBe(4001);
  });

  it("replaces a merchant's API key: every earlier key stops working at once", async () => {
    const t = await startTestServer();
    const merchant = await t.merchant();
    const other = await t.merchant('Elsewhere');
    const path = `/v1/merchants/${merchant.merchantId}/api-key`;
    const profile = (key: string) => t.http('GET', `/v1/merchants/${merchant.merchantId}`, undefined, key);
    expect((await t.http('POST', path, {}, other.apiKey)).status).toBe(403);

    const byMerchant = await t.http('POST', path, {}, merchant.apiKey);
    expect(byMerchant.status).toBe(201);
    expect(byMerchant.body).toMatchObject({
      merchantId: merchant.merchantId,
      apiKey: expect.stringMatching(/^pk_/),
    });
    expect((await profile(merchant.apiKey)).status).toBe(401);
    expect((await profile(byMerchant.body.apiKey)).status).toBe(200);

    const byOperator = await t.http('POST', path, {}, OPERATOR_TOKEN);
    expect(byOperator.status).toBe(201);
    await t.restart();
    expect((await profile(byMerchant.body.apiKey)).status).toBe(401);
    expect((await profile(byOperator.body.apiKey)).status).toBe(200);
    expect((await profile(other.apiKey)).status).toBe(403);
  });

  it('revokes a terminal key at once, and rekeys a terminal in place', async () => {
    const t = await startTestServer();
    const merchant = await t.merchant();
    const terminal = await t.terminal(merchant);
    const key = Buffer.from(terminal.terminalKey, 'base64url');
    const path = (action: string) =>
      `/v1/merchants/${merchant.merchantId}/terminals/${terminal.terminalId}/${action}`;

    // Another merchant cannot touch the terminal.
    const other = await t.merchant('Elsewhere');
    expect((await t.http('POST', path('revoke'), {}, other.apiKey)).status).toBe(403);

    // A rekey: the old key works until the new code is used; then its sessions end.
    const old = await posHandshake(t.server.url, terminal.terminalId, key);
    expect(old.answer.type).toBe('welcome');
    const rekey = await t.http('POST', path('rekey'), {}, merchant.apiKey);
    expect(rekey.status).toBe(201);
    expect((await posHandshake(t.server.url, terminal.terminalId, key)).answer.type).toBe('welcome');
    const activated = await t.http('POST', '/v1/terminals/activate', {
      activationCode: rekey.body.activationCode,
    });
    expect(activated.body).toMatchObject({
      terminalId: terminal.terminalId,
      merchantId: merchant.merchantId,
    });
    expect(await old.socket.next((frame) => frame.type === 'error')).toEqual({
      type: 'error',
      status: 'unauthorized',
    });
    expect(await old.socket.closed).toBe(4001);
    expect((await posHandshake(t.server.url, terminal.terminalId, key)).answer.status).toBe('unauthorized');
    const newKey = Buffer.from(activated.body.terminalKey, 'base64url');
    const current = await posHandshake(t.server.url, terminal.terminalId, newKey);
    expect(current.answer.type).toBe('welcome');

    // A revoke: sessions close, no handshake works, an unused activation code is void; a rekey brings it back.
    const unused = await t.http('POST', path('rekey'), {}, merchant.apiKey);
    expect(await t.http('POST', path('revoke'), {}, merchant.apiKey)).toEqual({
      status: 200,
      body: { terminalId: terminal.terminalId, revoked: true },
    });
    expect(await current.socket.closed).toBe(4001);
    expect((await posHandshake(t.server.url, terminal.terminalId, newKey)).answer.status).toBe(
      'unauthorized',
    );
    const stale = await t.http('POST', '/v1/terminals/activate', {
      activationCode: unused.body.activationCode,
    });
    expect(stale.status).toBe(404);
    // Only the latest code of a terminal activates it.
    const replaced = await t.http('POST', path('rekey'), {}, merchant.apiKey);
    const back = await t.http('POST', path('rekey'), {}, merchant.apiKey);
    const superseded = await t.http('POST', '/v1/terminals/activate', {
      activationCode: replaced.body.activationCode,
    });
    expect(superseded.status).toBe(404);
    const reactivated = await t.http('POST', '/v1/terminals/activate', {
      activationCode: back.body.activationCode,
    });
    const pos = await t.pos({ terminalId: terminal.terminalId, terminalKey: reactivated.body.terminalKey });
    expect((await pos.ping()).status).toBe('approved');
  });
});
