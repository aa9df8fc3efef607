/**
 * Daily settlement against a real server: a day of issuance, redemptions, a refund, a void, a purchase
 * and a reward is settled through the HTTP API; each merchant's net follows docs/settlement.md to the cent
 * (fees included), the ACH file passes achkit and the strict checks, the summary reconciles, statements
 * list every posting, a second run (also after a restart) returns the byte-identical file, voids of
 * settled sales are refused, and what happens after the run belongs to the next day. The CLI writes the
 * same file and reports to a directory.
 */
import { execFile } from 'node:child_process';
import { mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { describe, expect, it, onTestFinished } from 'vitest';
import type { MerchantRecord } from '../persistence/store.ts';
import { readAchEntries } from '../settlement/nacha.ts';
import { achProblems } from './ach-checks.ts';
import { OPERATOR_TOKEN, ROUTING, startTestServer, type TestServer } from './server-helpers.ts';

const DAY_MS = 86_400_000;
const ODFI = '121042882';

async function merchant(t: TestServer, name: string, extra: Record<string, unknown> = {}) {
  const created = await t.http(
    'POST',
    '/v1/merchants',
    { name, routingNumber: ROUTING, accountNumber: '55500011', accountType: 'checking', ...extra },
    OPERATOR_TOKEN,
  );
  expect(created.status).toBe(201);
  return created.body as { merchantId: string; apiKey: string };
}

describe('settlement', () => {
  it('settles a day to the cent, once, with a valid NACHA file and reconciled reports', async () => {
    let shiftMs = 0;
    const t = await startTestServer({ now: () => Date.now() + shiftMs });
    const today = new Date().toISOString().slice(0, 10);
    if (Date.now() % DAY_MS > DAY_MS - 60_000) await new Promise((resolve) => setTimeout(resolve, 61_000));

    const cafe = await merchant(t, 'Cafe', { feeBps: 250, feeFixedCents: 10 });
    const books = await merchant(t, 'Books', { accountType: 'savings' });
    const gifts = await merchant(t, 'Gift Shop');
    const [alice, bob] = ['+15555550201', '+15555550202'];
    await t.load(cafe, alice, 5_000);
    const aliceToken = (await t.consumer(alice)).deviceToken;
    const bobToken = (await t.consumer(bob)).deviceToken;
    const cafePos = await t.pos(await t.terminal(cafe));
    const code = async (token: string, merchantId: string) =>
      (await t.http('POST', '/v1/wallet/codes', { merchantId }, token)).body.code as string;
    const sale = await cafePos.redeem({ code: await code(aliceToken, cafe.merchantId), amountCents: 2_000 });
    expect((await cafePos.refund(sale.authId as string, 500)).status).toBe('approved');
    const voided = await cafePos.redeem({
      code: await code(aliceToken, cafe.merchantId),
      amountCents: 1_000,
    });
    expect((await cafePos.void(voided.authId as string)).status).toBe('approved');
    await t.purchase(books, bobToken, 3_000);
    const booksPos = await t.pos(await t.terminal(books));
    expect(
      (await booksPos.redeem({ code: await code(bobToken, books.merchantId), amountCents: 1_200 })).status,
    ).toBe('approved');
    await t.load(gifts, bob, 1_500, 'reward');

    // A date after today cannot be settled (today could be, before its cut-off: see below).
    const dayAfter = new Date(Date.now() + DAY_MS).toISOString().slice(0, 10);
    expect((await t.http('POST', '/v1/settlements', { businessDate: dayAfter }, OPERATOR_TOKEN)).status).toBe(
      400,
    );
    // A minute after midnight: the day is over, and its sales are still inside the 24-hour void window.
    shiftMs = DAY_MS - (Date.now() % DAY_MS) + 60_000;
    expect((await t.http('POST', '/v1/settlements', { businessDate: today }, cafe.apiKey)).status).toBe(403);
    expect(
      (await t.http('POST', '/v1/settlements', { businessDate: '2026-02-30' }, OPERATOR_TOKEN)).status,
    ).toBe(400);
    expect((await t.http('GET', `/v1/settlements/${today}/ach`, undefined, OPERATOR_TOKEN)).status).toBe(404);

    const settled = await t.http('POST', '/v1/settlements', { businessDate: today }, OPERATOR_TOKEN);
    expect(settled.status).toBe(200);
    // Cafe: −5000 issued + 2000 − 500 refunded + 1000 − 1000 voided; fees on the sales that stood:
    // 2.5% of 2000 + 1 × 10 (the voided sale costs no fee, the refund keeps it).
    const nets = Object.fromEntries(
      settled.body.merchants.map((m: { merchantId: string; netCents: number }) => [m.merchantId, m.netCents]),
    );
    expect(nets).toEqual({
      [cafe.merchantId]: -3_560,
      [books.merchantId]: 1_200,
      [gifts.merchantId]: -1_500,
    });
    expect(settled.body).toMatchObject({
      businessDate: today,
      achFileId: `ach_${today.replaceAll('-', '')}`,
    });

    const ach = await t.http('GET', `/v1/settlements/${today}/ach`, undefined, OPERATOR_TOKEN);
    expect(ach.status).toBe(200);
    expect(achProblems(ach.body, ODFI)).toEqual([]);
    const entries = readAchEntries(ach.body);
    // Credits first, then debits in merchant id order: compare by name.
    expect(entries.map((entry) => [entry.name, entry.transactionCode, entry.amountCents]).sort()).toEqual([
      ['BOOKS', '32', 1_200],
      ['CAFE', '27', 3_560],
      ['GIFT SHOP', '27', 1_500],
    ]);
    expect(entries[0]?.name).toBe('BOOKS');

    const summary = (await t.http('GET', `/v1/settlements/${today}`, undefined, OPERATOR_TOKEN)).body;
    expect(summary).toMatchObject({
      reconciled: true,
      problems: [],
      unpaid: [],
      file: { creditCents: 1_200, debitCents: 5_060 },
    });
    expect(summary.totals).toMatchObject({
      redeemedCents: 4_200,
      voidedCents: 1_000,
      refundedCents: 500,
      issuedCents: 6_500,
      feeCents: 60,
      netCents: -3_860,
    });

    const statement = await t.http(
      'GET',
      `/v1/merchants/${cafe.merchantId}/statements/${today}`,
      undefined,
      cafe.apiKey,
    );
    const cafeEntry = entries.find((entry) => entry.name === 'CAFE');
    expect(statement.body).toMatchObject({
      netCents: -3_560,
      feeCents: 60,
      direction: 'debit',
      traceNumber: cafeEntry?.traceNumber,
      // The entry names the merchant as its statement does: a bank line and a statement match.
      achReference: cafeEntry?.id,
    });
    expect(cafeEntry?.id).toMatch(/^P[A-Z2-7]{14}$/);
    expect(new Set(entries.map((entry) => entry.id)).size).toBe(3);
    // The file's immediate origin is the ODFI's routing number unless the operator names another.
    expect(ach.body.slice(13, 23)).toBe(` ${ODFI}`);
    expect(statement.body.lines.map((line: { kind: string }) => line.kind)).toEqual([
      'load',
      'redeem',
      'refund',
      'redeem',
      'void',
    ]);
    // A posting's reference is the same on the statement as in the transactions list, and opaque: no
    // journal sequence whose gaps would show other merchants' volume.
    const listed = await t.http(
      'GET',
      `/v1/merchants/${cafe.merchantId}/transactions`,
      undefined,
      cafe.apiKey,
    );
    const refs = (rows: { journalKey: string }[]) => rows.map((row) => row.journalKey).sort();
    expect(refs(statement.body.lines)).toEqual(refs(listed.body.transactions));
    for (const ref of refs(statement.body.lines)) expect(ref).toMatch(/^[A-Za-z0-9_-]{16}$/);
    const csv = await t.http(
      'GET',
      `/v1/merchants/${cafe.merchantId}/statements/${today}?format=csv`,
      undefined,
      cafe.apiKey,
    );
    expect(csv.body.split('\r\n').filter(Boolean)).toHaveLength(1 + 5 + 2);
    expect(csv.body).toContain(`,net,,-3560,${cafeEntry?.id}\r\n`);
    expect(
      (await t.http('GET', `/v1/merchants/${cafe.merchantId}/statements/${today}`, undefined, books.apiKey))
        .status,
    ).toBe(403);

    // Settled: a void of the day's sale is refused (a refund is still possible, below).
    expect((await cafePos.void(sale.authId as string)).status).toBe('void_window_closed');
    // The stored file is sealed: the database alone shows no bank account.
    expect(JSON.stringify(t.server.engine.store.settlements.get(today))).not.toContain('55500011');
    const again = await t.http('POST', '/v1/settlements', { businessDate: today }, OPERATOR_TOKEN);
    expect(again).toEqual(settled);
    await t.restart();
    expect((await t.http('GET', `/v1/settlements/${today}/ach`, undefined, OPERATOR_TOKEN)).body).toBe(
      ach.body,
    );

    // After the run: a refund stamped on the next day is paid by the next day's settlement only.
    const pos = await t.pos(await t.terminal(cafe));
    expect((await pos.refund(sale.authId as string, 300)).status).toBe('approved');
    const tomorrow = new Date(Date.now() + shiftMs).toISOString().slice(0, 10);
    shiftMs += DAY_MS;
    const next = await t.http('POST', '/v1/settlements', { businessDate: tomorrow }, OPERATOR_TOKEN);
    expect(next.body.merchants).toEqual([{ merchantId: cafe.merchantId, netCents: -300 }]);

    const out = mkdtempSync(join(tmpdir(), 'paycode-settle-'));
    onTestFinished(() => rmSync(out, { recursive: true, force: true }));
    const cli = join(import.meta.dirname, '..', 'cli', 'paycode.mjs');
    await promisify(execFile)(
      process.execPath,
      [cli, 'settle', '--url', t.server.url, '--date', today, '--out', out],
      {
        env: { ...process.env, PAYCODE_ADMIN_TOKEN: OPERATOR_TOKEN },
      },
    );
    expect(readFileSync(join(out, `ach_${today.replaceAll('-', '')}.ach`), 'utf8')).toBe(ach.body);
    expect(readdirSync(out).filter((name) => name.startsWith('statement-'))).toHaveLength(6);
  });

  it('closes a day before its cut-off: it pays what was posted so far, later postings go to the next day', async () => {
    let shiftMs = 0;
    const t = await startTestServer({ now: () => Date.now() + shiftMs });
    if (Date.now() % DAY_MS > DAY_MS - 60_000) await new Promise((resolve) => setTimeout(resolve, 61_000));
    const day = (offset: number) => new Date(Date.now() + offset * DAY_MS).toISOString().slice(0, 10);
    const settle = (businessDate: string) =>
      t.http('POST', '/v1/settlements', { businessDate }, OPERATOR_TOKEN);
    const shop = await merchant(t, 'Early Close');
    await t.load(shop, '+15555550401', 700);
    // A day that has not begun cannot be settled.
    const tomorrow = await settle(day(1));
    expect(tomorrow.status).toBe(400);
    expect(tomorrow.body.error.message).toMatch(/has not begun/);
    const early = await settle(day(0));
    expect(early.status).toBe(200);
    expect(early.body.merchants).toEqual([{ merchantId: shop.merchantId, netCents: -700 }]);
    // Value issued after the close, the same day: not in today's run, which answers as before.
    await t.load(shop, '+15555550402', 300);
    expect(await settle(day(0))).toEqual(early);
    const ach = (date: string) => t.http('GET', `/v1/settlements/${date}/ach`, undefined, OPERATOR_TOKEN);
    expect(readAchEntries((await ach(day(0))).body).map((entry) => entry.amountCents)).toEqual([700]);
    // The next business day pays it.
    shiftMs = DAY_MS;
    const next = await settle(day(1));
    expect(next.body.merchants).toEqual([{ merchantId: shop.merchantId, netCents: -300 }]);
    expect(readAchEntries((await ach(day(1))).body).map((entry) => entry.amountCents)).toEqual([300]);
    expect(achProblems((await ach(day(1))).body, ODFI)).toEqual([]);
  });

  it('settles days in any order, each posting once, and reports a merchant it cannot pay', async () => {
    let shiftMs = 0;
    const t = await startTestServer({ now: () => Date.now() + shiftMs });
    if (Date.now() % DAY_MS > DAY_MS - 60_000) await new Promise((resolve) => setTimeout(resolve, 61_000));
    const day = (offset: number) => new Date(Date.now() + offset * DAY_MS).toISOString().slice(0, 10);
    const shop = await merchant(t, 'Shop');
    // A merchant whose bank details went bad after creation (written past the API's checks).
    const broken = await t.server.registry.merchants.create({
      name: 'Broken Bank',
      keyword: null,
      feeBps: 0,
      feeFixedCents: 0,
      bank: { routingNumber: '021000022', accountNumber: '12345678', accountType: 'checking' },
    });
    if ('status' in broken) throw new Error(broken.message);
    await t.load(shop, '+15555550301', 700);
    await t.load({ merchantId: broken.merchantId, apiKey: broken.apiKey }, '+15555550302', 400);
    shiftMs = DAY_MS;
    await t.load(shop, '+15555550301', 900);
    shiftMs = 2 * DAY_MS;
    const [first, second] = [day(0), day(1)];
    const later = await t.http('POST', '/v1/settlements', { businessDate: second }, OPERATOR_TOKEN);
    expect(later.body.merchants).toEqual([{ merchantId: shop.merchantId, netCents: -900 }]);
    const earlier = await t.http('POST', '/v1/settlements', { businessDate: first }, OPERATOR_TOKEN);
    expect(earlier.body.merchants).toHaveLength(2);
    const summary = (await t.http('GET', `/v1/settlements/${first}`, undefined, OPERATOR_TOKEN)).body;
    expect(summary.unpaid).toEqual([
      { merchantId: broken.merchantId, netCents: -400, reason: 'the routing number fails the ABA check' },
    ]);
    expect(summary.reconciled).toBe(false);
    const ach = await t.http('GET', `/v1/settlements/${first}/ach`, undefined, OPERATOR_TOKEN);
    expect(readAchEntries(ach.body).map((entry) => entry.amountCents)).toEqual([700]);
    expect(achProblems(ach.body, ODFI)).toEqual([]);
  });

  it('pays no merchant whose bank details were copied from another merchant’s record', async () => {
    let shiftMs = 0;
    const t = await startTestServer({ now: () => Date.now() + shiftMs });
    if (Date.now() % DAY_MS > DAY_MS - 60_000) await new Promise((resolve) => setTimeout(resolve, 61_000));
    const today = new Date().toISOString().slice(0, 10);
    const honest = await merchant(t, 'Honest');
    const thief = await merchant(t, 'Thief');
    await t.load(honest, '+15555550311', 500);
    await t.load(thief, '+15555550312', 300);
    // Someone who can write the database but not read the keys copies the thief's sealed account into
    // the honest merchant's record, to be paid what is owed to it.
    const { merchants } = t.server.engine.store;
    const honestRecord = merchants.get(honest.merchantId) as MerchantRecord;
    const thiefRecord = merchants.get(thief.merchantId) as MerchantRecord;
    await merchants.put(honest.merchantId, { ...honestRecord, sealedBank: thiefRecord.sealedBank });
    await t.restart();
    shiftMs = DAY_MS - (Date.now() % DAY_MS) + 60_000;
    const settled = await t.http('POST', '/v1/settlements', { businessDate: today }, OPERATOR_TOKEN);
    expect(settled.status).toBe(200);
    const summary = (await t.http('GET', `/v1/settlements/${today}`, undefined, OPERATOR_TOKEN)).body;
    expect(summary.unpaid).toEqual([
      {
        merchantId: honest.merchantId,
        netCents: -500,
        reason: 'its bank details do not open: altered, or sealed for another merchant',
      },
    ]);
    const ach = await t.http('GET', `/v1/settlements/${today}/ach`, undefined, OPERATOR_TOKEN);
    expect(readAchEntries(ach.body).map((entry) => entry.amountCents)).toEqual([300]);
  });
});
