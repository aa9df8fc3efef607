/**
 * Gifts between phones end to end on a real server: `POST /v1/wallet/gifts` with its refusals and
 * replays, a gift to a phone that registers later, both texts, the receiver's `gift` push, the day's
 * spending shared with payments, and the SMS channel's `GIFT` confirmed by a reply code.
 */
import { describe, expect, it } from 'vitest';
import { LIMITS } from '../core/limits.ts';
import { openSocket, startTestServer, waitFor } from './server-helpers.ts';

const GIVER = '+15555550171';
const FRIEND = '+15555550172';

describe('gifts between phones', () => {
  it('gives gift value to a phone that registers later, once, with a text to each phone', async () => {
    const t = await startTestServer();
    const merchant = await t.merchant('Corner Cafe');
    const other = await t.merchant('Book Nook');
    const { deviceToken } = await t.consumer(GIVER);
    await t.load(merchant, GIVER, 5_000);
    await t.load(merchant, GIVER, 3_000, 'reward');
    // A card issued above what one load may move is a limit, not a malformed request.
    const tooMuch = {
      phone: GIVER,
      amountCents: LIMITS.loadMaxCents + 1,
      kind: 'gift',
      idempotencyKey: 'big',
    };
    const refused = await t.http(
      'POST',
      `/v1/merchants/${merchant.merchantId}/cards`,
      tooMuch,
      merchant.apiKey,
    );
    expect(refused).toMatchObject({ status: 422, body: { error: { code: 'limit_exceeded' } } });
    await t.load(other, GIVER, 1_000, 'reward');
    const give = (fields: object) =>
      t.http(
        'POST',
        '/v1/wallet/gifts',
        {
          merchantId: merchant.merchantId,
          toPhone: FRIEND,
          amountCents: 2_000,
          idempotencyKey: 'g1',
          ...fields,
        },
        deviceToken,
      );

    const given = await give({});
    expect(given).toEqual({ status: 201, body: { giftId: expect.any(String), balanceCents: 3_000 } });
    // A replay gets the same answer and moves nothing; the same key with other fields is refused.
    expect(await give({})).toEqual(given);
    expect((await give({ amountCents: 1_000 })).body.error.code).toBe('idempotency_mismatch');
    // Only gift value is given: the reward card stays, and a merchant where the giver holds only a
    // reward has nothing to give.
    expect((await give({ amountCents: 3_001, idempotencyKey: 'g2' })).body.error.code).toBe(
      'insufficient_funds',
    );
    expect(
      (await give({ merchantId: other.merchantId, amountCents: 100, idempotencyKey: 'g3' })).status,
    ).toBe(422);
    expect((await give({ toPhone: GIVER, idempotencyKey: 'g4' })).status).toBe(400);
    expect((await give({ amountCents: 99, idempotencyKey: 'g6' })).status).toBe(400);
    // A refused gift stores nothing of the phone it was meant for.
    const stranger = '+15555550179';
    expect((await give({ toPhone: stranger, amountCents: 9_999, idempotencyKey: 'g7' })).status).toBe(422);
    expect(t.server.registry.phones.of(t.server.engine.consumerIdFor(stranger))).toBeNull();
    expect((await give({ merchantId: 'mc_nobody', idempotencyKey: 'g5' })).status).toBe(404);

    const giverTexts = await waitFor(() => {
      const texts = t.textsTo(GIVER).filter((text) => /You gave/.test(text));
      return texts.length > 0 ? texts : undefined;
    });
    expect(giverTexts).toEqual([
      expect.stringMatching(/You gave \$20\.00 of your Corner Cafe gift card\. New balance there \$60\.00\./),
    ]);
    const friendTexts = await waitFor(() => {
      const texts = t.textsTo(FRIEND);
      return texts.length > 0 ? texts : undefined;
    });
    expect(friendTexts).toEqual([
      expect.stringMatching(
        /You were given a \$20\.00 gift card for Corner Cafe\. New balance there \$20\.00\./,
      ),
    ]);

    // The friend registers afterwards and finds the card waiting.
    const friend = await t.consumer(FRIEND);
    const wallet = await t.http('GET', '/v1/wallet', undefined, friend.deviceToken);
    expect(wallet.body.cards).toEqual([
      expect.objectContaining({ merchantId: merchant.merchantId, kind: 'gift', balanceCents: 2_000 }),
    ]);
    const giver = await t.http('GET', '/v1/wallet', undefined, deviceToken);
    expect(giver.body.cards).toEqual(
      expect.arrayContaining([
        expect.objectContaining({ merchantId: merchant.merchantId, kind: 'gift', balanceCents: 3_000 }),
        expect.objectContaining({ merchantId: merchant.merchantId, kind: 'reward', balanceCents: 3_000 }),
      ]),
    );
    const history = await t.http('GET', '/v1/wallet/history', undefined, friend.deviceToken);
    expect(history.body.entries).toEqual([
      expect.objectContaining({ kind: 'gift', amountCents: 2_000, ref: given.body.giftId }),
    ]);
  });

  it("pushes the gift to the receiver's open wallet and counts it in the giver's day", async () => {
    const t = await startTestServer({ limits: { consumerSpendPerDayMaxCents: 2_500 } });
    const merchant = await t.merchant('Corner Cafe');
    const giver = await t.consumer(GIVER);
    const friend = await t.consumer(FRIEND);
    await t.load(merchant, GIVER, 5_000);
    const wallet = await openSocket(t.server.url, '/v1/wallet');
    wallet.send({ type: 'auth', token: friend.deviceToken });
    expect(await wallet.next()).toMatchObject({ type: 'snapshot', cards: [] });

    // A payment of $15 leaves $10 of the day: a gift of $10.01 is refused, one of $10 goes.
    const pos = await t.pos(await t.terminal(merchant));
    const code = await t.code(merchant, giver.deviceToken);
    expect((await pos.redeem({ code, amountCents: 1_500 })).status).toBe('approved');
    const give = (amountCents: number, idempotencyKey: string) =>
      t.http(
        'POST',
        '/v1/wallet/gifts',
        { merchantId: merchant.merchantId, toPhone: FRIEND, amountCents, idempotencyKey },
        giver.deviceToken,
      );
    expect((await give(1_001, 'over')).body.error.code).toBe('limit_exceeded');
    expect((await give(1_000, 'fits')).status).toBe(201);
    expect(await wallet.next((frame) => frame.type === 'balance')).toMatchObject({
      merchantId: merchant.merchantId,
      balanceCents: 1_000,
      cause: 'gift',
    });
    expect((await give(100, 'spent')).body.error.code).toBe('limit_exceeded');
    // A replay is answered from its stored result, not counted again.
    expect((await give(1_000, 'fits')).status).toBe(201);
  });

  it('lets a giver make a bounded number of gifts a day, each texting a phone', async () => {
    const t = await startTestServer({ limits: { giftsPerDayMax: 2 } });
    const merchant = await t.merchant('Corner Cafe');
    const giver = await t.consumer(GIVER);
    await t.load(merchant, GIVER, 5_000);
    const give = (idempotencyKey: string) =>
      t.http(
        'POST',
        '/v1/wallet/gifts',
        { merchantId: merchant.merchantId, toPhone: FRIEND, amountCents: 100, idempotencyKey },
        giver.deviceToken,
      );
    // A gift refused takes no room of the day.
    const tooMuch = {
      merchantId: merchant.merchantId,
      toPhone: FRIEND,
      amountCents: 9_999,
      idempotencyKey: 'x',
    };
    expect((await t.http('POST', '/v1/wallet/gifts', tooMuch, giver.deviceToken)).status).toBe(422);
    // One gift sent twice at once (a retry racing the first try) is one gift and takes one room.
    const twice = await Promise.all([give('same'), give('same')]);
    expect(twice.map((answer) => answer.status)).toEqual([201, 201]);
    expect(twice[1]?.body).toEqual(twice[0]?.body);
    // Sent at once, no more than the day's count get through.
    const answers = await Promise.all(['a', 'b', 'c', 'd', 'e'].map((key) => give(key)));
    expect(answers.filter((answer) => answer.status === 201)).toHaveLength(1);
    expect(answers.filter((answer) => answer.body.error?.code === 'rate_limited')).toHaveLength(4);
    // A replay of a given one is answered from its result; a refused gift gives its room back.
    const given = ['a', 'b', 'c', 'd', 'e'].find((_, i) => answers[i]?.status === 201) as string;
    expect((await give(given)).status).toBe(201);
  });
});
