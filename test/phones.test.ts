// One phone is one consumer however its number is written: numbers are canonicalized (libphonenumber's
// possible numbers, canonical E.164) before they are hashed into consumer ids; and a consumer registered
// under another form of the number before keeps the account.
import { describe, expect, it } from 'vitest';
import type { ConsumerId } from '../core/ids.ts';
import { canonicalPhone } from '../core/phone.ts';
import { META } from '../persistence/store.ts';
import { startTestServer, waitFor } from './server-helpers.ts';

describe('phone numbers', () => {
  it('have one canonical form, and a number no phone can have is none', () => {
    expect(canonicalPhone('+4407911123456')).toBe('+447911123456');
    expect(canonicalPhone('+447911123456')).toBe('+447911123456');
    expect(canonicalPhone('+330612345678')).toBe('+33612345678');
    expect(canonicalPhone('+15555550100')).toBe('+15555550100');
    // One trunk prefix is taken off, not two: a canonical form must be canonical itself.
    expect(canonicalPhone('+490301234567')).toBe('+49301234567');
    expect(canonicalPhone('+4900301234567')).toBeNull();
    for (const none of [
      '+10000000',
      '+999123456789',
      '447911123456',
      '+44 7911 123456',
      '',
      15555550100,
      null,
    ])
      expect(canonicalPhone(none), String(none)).toBeNull();
  });

  it('make one consumer of two ways of writing a number, and refuse one that cannot be a phone', async () => {
    const t = await startTestServer();
    const merchant = await t.merchant('Tea Room');
    await t.load(merchant, '+4407911123456', 2_000);
    // Signing up with the other form reaches the same consumer, and the code goes to the canonical number.
    expect((await t.http('POST', '/v1/consumers', { phone: '+447911123456' })).status).toBe(202);
    const otp = await waitFor(() => {
      const text = t.server.devInbox?.inbox.findLast((entry) => /verification/.test(entry.text));
      return text?.phone === '+447911123456' ? /([0-9]{6})/.exec(text.text)?.[1] : undefined;
    });
    const verified = await t.http('POST', '/v1/consumers/verify', { phone: '+4407911123456', otp });
    expect(verified.status).toBe(200);
    const wallet = await t.http('GET', '/v1/wallet', undefined, verified.body.deviceToken);
    expect(wallet.body.cards.map((card: { balanceCents: number }) => card.balanceCents)).toEqual([2_000]);
    for (const phone of ['+10000000', '+4407911', '+44 7911 123456']) {
      const refused = await t.http('POST', '/v1/consumers', { phone });
      expect(refused.status, phone).toBe(400);
      expect(refused.body.error.message).toBe(
        'phone must be an E.164 number like +15555550123, of a phone that can exist',
      );
    }
    expect(
      (
        await t.http(
          'POST',
          `/v1/merchants/${merchant.merchantId}/cards`,
          { phone: '+10000000', amountCents: 100, kind: 'gift', idempotencyKey: 'not-a-phone' },
          merchant.apiKey,
        )
      ).status,
    ).toBe(400);
  });

  it('links a number kept in another form to its canonical form once, keeping the account', async () => {
    const t = await startTestServer();
    const merchant = await t.merchant('Old Shop');
    // An account made before numbers were canonicalized, under the id of a non-canonical form: made
    // here as an account of another number whose kept number is then set to that form.
    await t.load(merchant, '+15555550142', 3_000);
    const accountId = t.server.engine.consumerIdFor('+15555550142') as ConsumerId;
    await t.server.registry.phones.replace(accountId, '+4407911123456');
    await t.server.engine.store.meta.remove(META.phoneIdsLinked);
    await t.restart();

    expect(t.server.registry.phones.of(accountId)).toBe('+447911123456');
    expect(t.server.engine.consumerIdFor('+447911123456')).toBe(accountId);
    const { deviceToken } = await t.consumer('+447911123456');
    const wallet = await t.http('GET', '/v1/wallet', undefined, deviceToken);
    expect(wallet.body.cards.map((card: { balanceCents: number }) => card.balanceCents)).toEqual([3_000]);
    // Once: a restart links nothing again, and the link stays.
    await t.restart();
    expect(t.server.engine.consumerIdFor('+447911123456')).toBe(accountId);
    expect((await t.http('GET', '/v1/wallet', undefined, deviceToken)).status).toBe(200);
  });
});
