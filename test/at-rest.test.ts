/**
 * A copy of the database files alone reveals no secret: after a real server created a merchant with bank
 * details, activated a terminal, verified a phone, issued value and a live payment code, and started a
 * second verification that is still pending, the raw bytes of every file in the data directory hold none
 * of the codes, keys, tokens, phone numbers or the bank account number (in text, base64url or raw form).
 * The keys live outside the data directory (here: given to the server, as from a secrets file).
 */

import { createCipheriv, randomBytes } from 'node:crypto';
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { sealCode, unsealCode } from '../core/codes.ts';
import { isBound, SEALED_FOR, seal, unseal } from '../core/seal.ts';
import { OPERATOR_TOKEN, startTestServer, waitFor } from './server-helpers.ts';

const PHONE = '+15555550142';
const PENDING_PHONE = '+15555550143';
const ACCOUNT_NUMBER = '98765432101';

function filesUnder(dir: string): string[] {
  return readdirSync(dir).flatMap((name) => {
    const path = join(dir, name);
    return statSync(path).isDirectory() ? filesUnder(path) : [path];
  });
}

describe('data at rest', () => {
  it('keeps no code, key, token, phone number or bank account in the database files', async () => {
    const t = await startTestServer();
    const merchant = await t.http(
      'POST',
      '/v1/merchants',
      {
        name: 'Corner Cafe',
        routingNumber: '021000021',
        accountNumber: ACCOUNT_NUMBER,
        accountType: 'checking',
      },
      OPERATOR_TOKEN,
    );
    expect(merchant.status).toBe(201);
    const { merchantId, apiKey } = merchant.body;
    const created = await t.http('POST', `/v1/merchants/${merchantId}/terminals`, { label: 'till' }, apiKey);
    const pendingActivation = await t.http(
      'POST',
      `/v1/merchants/${merchantId}/terminals`,
      { label: 'spare' },
      apiKey,
    );
    const activated = await t.http('POST', '/v1/terminals/activate', {
      activationCode: created.body.activationCode,
    });
    expect(activated.status).toBe(200);
    const { deviceToken } = await t.consumer(PHONE);
    await t.load({ merchantId, apiKey }, PHONE, 5_000);
    const code = await t.http('POST', '/v1/wallet/codes', { merchantId, capCents: 2_000 }, deviceToken);
    expect(code.status).toBe(201);
    expect((await t.http('POST', '/v1/consumers', { phone: PENDING_PHONE })).status).toBe(202);
    const pendingOtp = await waitFor(() => {
      const text = t.server.devInbox?.inbox.findLast((entry) => entry.phone === PENDING_PHONE);
      return text ? /([0-9]{6})/.exec(text.text)?.[1] : undefined;
    });
    // The live code is in the database (sealed and hashed): a restart still shows it in the wallet.
    await t.restart();
    const wallet = await t.http('GET', '/v1/wallet', undefined, deviceToken);
    expect(wallet.body.activeCode?.code).toBe(code.body.code);

    const terminalKey: string = activated.body.terminalKey;
    const secrets: [string, Buffer][] = [
      ['payment code', Buffer.from(code.body.code)],
      ['pending verification code', Buffer.from(pendingOtp)],
      ['terminal key', Buffer.from(terminalKey)],
      ['terminal key bytes', Buffer.from(terminalKey, 'base64url')],
      ['unused activation code', Buffer.from(pendingActivation.body.activationCode.replace('-', ''))],
      ['merchant API key', Buffer.from(apiKey)],
      ['device token', Buffer.from(deviceToken)],
      ['operator token', Buffer.from(OPERATOR_TOKEN)],
      ['phone number', Buffer.from(PHONE.slice(2))],
      ['pending phone number', Buffer.from(PENDING_PHONE.slice(2))],
      ['bank account number', Buffer.from(ACCOUNT_NUMBER)],
    ];
    const files = filesUnder(t.dataDir);
    expect(files.some((file) => file.endsWith('.mdb'))).toBe(true);
    const bytes = Buffer.concat(files.map((file) => readFileSync(file)));
    expect(bytes.length).toBeGreaterThan(100_000);
    // The check can fail: the merchant's name, stored in the clear, is found.
    expect(bytes.includes(Buffer.from('Corner Cafe'))).toBe(true);
    for (const [what, secret] of secrets) expect(bytes.includes(secret), what).toBe(false);
  });
});

describe('sealed values', () => {
  it('open only whole, with the full 16-byte tag: a value cut short is refused, however it was cut', () => {
    const key = randomBytes(32);
    const sealed = seal(key, '+15555550100');
    expect(unseal(key, sealed)).toBe('+15555550100');
    const bytes = Buffer.from(sealed, 'base64url');
    // The last 12 bytes dropped leave a 4-byte tag that GCM alone would check against a shorter one.
    for (const cut of [1, 12, bytes.length - 27, bytes.length])
      expect(() => unseal(key, bytes.subarray(0, bytes.length - cut).toString('base64url'))).toThrow();
    expect(() => unseal(randomBytes(32), sealed)).toThrow();
    // Shorter than an IV and a full tag: refused as such, before GCM could check a short tag.
    for (const length of [8, 12, 16, 27])
      expect(() => unseal(key, randomBytes(length).toString('base64url'))).toThrow(/too short/);
    // Sealed right, but with a 4-byte tag.
    const iv = randomBytes(12);
    const cipher = createCipheriv('aes-256-gcm', key, iv, { authTagLength: 4 });
    const short = Buffer.concat([iv, cipher.update('+1555', 'utf8'), cipher.final(), cipher.getAuthTag()]);
    expect(() => unseal(key, short.toString('base64url'))).toThrow();
  });

  it('open only for the record they were sealed for, whose name cannot be swapped either', () => {
    const key = randomBytes(32);
    const sealed = seal(key, '021000021/12345678', SEALED_FOR.bank('mc_honest'));
    expect(unseal(key, sealed, SEALED_FOR.bank('mc_honest'))).toBe('021000021/12345678');
    expect(() => unseal(key, sealed, SEALED_FOR.bank('mc_thief'))).toThrow(/another record/);
    // An audit that opens every value opens it for the record it names.
    expect(unseal(key, sealed)).toBe('021000021/12345678');
    // Renaming the record in the value breaks its authentication.
    const [, , body] = sealed.split('.');
    const renamed = `2.${Buffer.from(SEALED_FOR.bank('mc_thief')).toString('base64url')}.${body}`;
    expect(() => unseal(key, renamed, SEALED_FOR.bank('mc_thief'))).toThrow();
    // A value sealed before records were bound still opens, for any record, until a rotation binds it.
    const unbound = seal(key, 'legacy');
    expect(isBound(unbound)).toBe(false);
    expect(unseal(key, unbound, SEALED_FOR.phone('cu_1'))).toBe('legacy');
    // A payment code in a wallet opens for its holder only.
    const codeKeys = { hashKey: randomBytes(32), sealKey: randomBytes(32) };
    const code = sealCode(codeKeys, '493817', 'cu_3_alice');
    expect(unsealCode(codeKeys, code, 'cu_3_alice')).toBe('493817');
    expect(() => unsealCode(codeKeys, code, 'cu_9_mallory')).toThrow();
  });
});
