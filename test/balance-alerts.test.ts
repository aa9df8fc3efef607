/**
 * Low-balance alerts end to end: off by default, set per card from the wallet API, told in the
 * confirmation text of the redemption or gift that crosses them (once per crossing), kept across a restart,
 * shown in the wallet, and cleared again.
 */
import { describe, expect, it } from 'vitest';
import { startTestServer, type TestServer, waitFor } from './server-helpers.ts';

const PHONE = '+15555550191';

/** The confirmation text of a redemption, by its authorization. */
const receiptOf = (t: TestServer, authId: string) =>
  waitFor(() => t.textsTo(PHONE).find((text) => text.endsWith(authId)));

describe('low-balance alerts', () => {
  it('tells the crossing of a card alert once, in the confirmation text, until the balance is back above it', async () => {
    const t = await startTestServer();
    const merchant = await t.merchant('Corner Cafe');
    const { deviceToken } = await t.consumer(PHONE);
    await t.load(merchant, PHONE, 5_000);
    const pos = await t.pos(await t.terminal(merchant));
    const pay = async (amountCents: number) => {
      const sale = await pos.redeem({ code: await t.code(merchant, deviceToken), amountCents });
      expect(sale.status).toBe('approved');
      return receiptOf(t, sale.authId as string);
    };
    const wallet = async () => (await t.http('GET', '/v1/wallet', undefined, deviceToken)).body.cards[0];

    // Off by default: no sale says anything of a low balance.
    expect(await pay(3_500)).not.toMatch(/Low balance/);
    const { cardId } = await wallet();
    const setAlert = (belowCents: unknown) =>
      t.http('POST', `/v1/wallet/cards/${cardId}/alert`, { belowCents }, deviceToken);
    expect(await setAlert(1_000)).toEqual({ status: 200, body: { cardId, alertBelowCents: 1_000 } });
    expect(await wallet()).toMatchObject({ balanceCents: 1_500, alertBelowCents: 1_000 });
    expect((await setAlert(0)).status).toBe(400);
    // Another consumer's device cannot touch this card.
    const other = await t.consumer('+15555550193');
    const theirs = await t.http(
      'POST',
      `/v1/wallet/cards/${cardId}/alert`,
      { belowCents: 1 },
      other.deviceToken,
    );
    expect(theirs.status).toBe(404);
    expect(await wallet()).toMatchObject({ alertBelowCents: 1_000 });
    expect(
      (await t.http('POST', '/v1/wallet/cards/cd_0_nothing/alert', { belowCents: 1 }, deviceToken)).status,
    ).toBe(404);

    await t.restart();
    const again = await t.pos(await t.terminal(merchant));
    const payAgain = async (amountCents: number) => {
      const sale = await again.redeem({ code: await t.code(merchant, deviceToken), amountCents });
      expect(sale.status).toBe('approved');
      return receiptOf(t, sale.authId as string);
    };
    expect(await payAgain(400)).not.toMatch(/Low balance/);
    expect(await payAgain(200)).toMatch(
      /New balance there \$9\.00\. Low balance: your Corner Cafe gift card is at \$9\.00, below your alert of \$10\.00\. Ref /,
    );
    // Already below: the next sale says nothing more.
    expect(await payAgain(100)).not.toMatch(/Low balance/);
    // Back above it, then across it again: told again.
    await t.load(merchant, PHONE, 1_000);
    expect(await payAgain(900)).toMatch(/is at \$9\.00, below your alert of \$10\.00/);

    // A gift sent that crosses it says so too.
    await t.load(merchant, PHONE, 1_000);
    const gift = {
      merchantId: merchant.merchantId,
      toPhone: '+15555550192',
      amountCents: 1_000,
      idempotencyKey: 'g',
    };
    const given = await t.http('POST', '/v1/wallet/gifts', gift, deviceToken);
    expect(await receiptOf(t, given.body.giftId)).toMatch(
      /You gave \$10\.00 .* is at \$9\.00, below your alert of \$10\.00/,
    );

    expect(await setAlert(null)).toEqual({ status: 200, body: { cardId, alertBelowCents: null } });
    expect(await wallet()).not.toHaveProperty('alertBelowCents');
    await t.load(merchant, PHONE, 2_000);
    expect(await payAgain(2_000)).not.toMatch(/Low balance/);
  });
});
