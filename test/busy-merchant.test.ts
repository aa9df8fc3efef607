/**
 * A busy merchant on the default configuration, end to end over real HTTP and the POS WebSocket: 2,000
 * phones ask for a code at one merchant at once and none is refused; the codes take the shortest length
 * with room (12 of 6 digits, 120 of 7, 1,200 of 8, the rest 9), codes of every length are redeemed at a
 * terminal with the POS client library and shown in the wallet; once all are cancelled the next code
 * has 6 digits again. A merchant's `codeDigitsMin` is set at creation and by the operator, and its
 * codes keep to it.
 */
import { describe, expect, it } from 'vitest';
import { CODE_LENGTHS, liveCodesOfLengthMax } from '../core/codes.ts';
import { readConfig } from '../server/config.ts';
import { OPERATOR_TOKEN, ROUTING, startTestServer } from './server-helpers.ts';

const PHONES = 2_000;
/** Requests in flight at once, like a few hundred tills and phones. */
const CONCURRENCY = 64;

/** Runs `task` for every item, at most CONCURRENCY at a time; results in order. */
async function inParallel<T, R>(items: readonly T[], task: (item: T) => Promise<R>): Promise<R[]> {
  const results = new Array<R>(items.length);
  let next = 0;
  await Promise.all(
    Array.from({ length: CONCURRENCY }, async () => {
      while (next < items.length) {
        const i = next++;
        results[i] = await task(items[i] as T);
      }
    }),
  );
  return results;
}

describe('a busy merchant', () => {
  it('serves 2,000 phones at once with longer codes, and gives 6 digits again once they end', async () => {
    // The default configuration, but for the port, the data directory and the demo data.
    const { shards } = readConfig({}).config;
    const t = await startTestServer({ env: { PAYCODE_SHARDS: String(shards) } });
    const merchant = await t.merchant('Lunch Rush');
    const pos = await t.pos(await t.terminal(merchant));
    const phones = Array.from({ length: PHONES }, (_, i) => `+1555300${String(i).padStart(4, '0')}`);
    const tokens = await inParallel(phones, async (phone) => {
      await t.load(merchant, phone, 5_000);
      return (await t.consumer(phone)).deviceToken;
    });

    const issued = await inParallel(tokens, (token) =>
      t.http('POST', '/v1/wallet/codes', { merchantId: merchant.merchantId }, token),
    );
    expect(issued.filter((answer) => answer.status !== 201)).toEqual([]);
    const codes = issued.map((answer) => answer.body.code as string);
    expect(new Set(codes).size).toBe(PHONES);
    const byLength = new Map<number, string[]>();
    for (const code of codes) byLength.set(code.length, [...(byLength.get(code.length) ?? []), code]);
    // Each shard fills its share of 6, 7 and 8 digits before it takes 9 (2,000 phones spread over the
    // shards give each more than its shares of the shorter lengths together).
    const full = (digits: number) => Math.floor(liveCodesOfLengthMax(digits) / shards) * shards;
    expect(byLength.get(6)).toHaveLength(full(6));
    expect(byLength.get(7)).toHaveLength(full(7));
    expect(byLength.get(8)).toHaveLength(full(8));
    expect(byLength.get(9)).toHaveLength(PHONES - full(6) - full(7) - full(8));
    expect(byLength.has(10)).toBe(false);

    // The wallet shows its long code; a code of every length is paid at the till.
    const nineIndex = codes.findIndex((code) => code.length === 9);
    const wallet = await t.http('GET', '/v1/wallet', undefined, tokens[nineIndex]);
    expect(wallet.body.activeCode.code).toBe(codes[nineIndex]);
    for (const digits of [6, 7, 8, 9]) {
      const [code] = byLength.get(digits) ?? [];
      expect((await pos.inquire(code as string)).status).toBe('approved');
      const sale = await pos.redeem({ code: code as string, amountCents: 1_250 });
      expect(sale.status).toBe('approved');
      expect(sale.balanceCents).toBe(3_750);
      expect((await pos.redeem({ code: code as string, amountCents: 100 })).status).toBe('invalid_code');
    }

    // Everyone cancels: the lunch rush is over, and the next code is 6 digits.
    const cancelled = await inParallel(tokens, (token) =>
      t.http('DELETE', '/v1/wallet/codes', undefined, token),
    );
    expect(cancelled.filter((answer) => answer.status === 200)).toHaveLength(PHONES - 4);
    const next = await t.http('POST', '/v1/wallet/codes', { merchantId: merchant.merchantId }, tokens[0]);
    expect(next.status).toBe(201);
    expect(next.body.code).toMatch(/^[0-9]{6}$/);
    expect((await t.server.engine.audit()).liveCodes).toBe(1);
  }, 240_000);

  it('keeps to the shortest length a merchant chose, set at creation and changed by the operator', async () => {
    const t = await startTestServer();
    const merchant = await t.merchant('Eight', undefined, { codeDigitsMin: 8 });
    const details = await t.http('GET', `/v1/merchants/${merchant.merchantId}`, undefined, merchant.apiKey);
    expect(details.body.codeDigitsMin).toBe(8);
    await t.load(merchant, '+15553100001', 2_000);
    const { deviceToken } = await t.consumer('+15553100001');
    const eight = await t.code(merchant, deviceToken);
    expect(eight).toMatch(/^[0-9]{8}$/);
    const pos = await t.pos(await t.terminal(merchant));
    expect((await pos.redeem({ code: eight, amountCents: 500 })).status).toBe('approved');

    const set = (body: unknown, token = OPERATOR_TOKEN) =>
      t.http('POST', `/v1/merchants/${merchant.merchantId}/code-digits`, body, token);
    // Only the operator sets it, only to a length there is.
    expect((await set({ codeDigitsMin: 10 }, merchant.apiKey)).status).toBe(403);
    for (const bad of [5, 11, 7.5, '8', null]) expect((await set({ codeDigitsMin: bad })).status).toBe(400);
    expect(
      (await t.http('POST', '/v1/merchants/mc_none/code-digits', { codeDigitsMin: 7 }, OPERATOR_TOKEN))
        .status,
    ).toBe(404);
    for (const digits of CODE_LENGTHS) {
      expect((await set({ codeDigitsMin: digits })).body).toEqual({
        merchantId: merchant.merchantId,
        codeDigitsMin: digits,
      });
      expect(await t.code(merchant, deviceToken)).toHaveLength(digits);
    }
    // A bad value at creation is refused and creates nothing.
    const refused = await t.http(
      'POST',
      '/v1/merchants',
      {
        name: 'Bad',
        routingNumber: ROUTING,
        accountNumber: '1234567890',
        accountType: 'checking',
        codeDigitsMin: 4,
      },
      OPERATOR_TOKEN,
    );
    expect(refused.status).toBe(400);
    expect(refused.body.error.message).toMatch(/codeDigitsMin/);
  });
});
