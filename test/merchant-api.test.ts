/**
 * The merchant dashboard's endpoints against a real server: who a token is (`/v1/me`), the terminal
 * list and its states, the transactions page (newest first, amounts as they count for the merchant,
 * cursors, the scan bound), the activity report after real POS redemptions (settled days read from the
 * statements, the rest from the journal, nothing counted twice), the list of settled days after an
 * operator's settlement, the caller checks, bad query values, and that no phone number or consumer id
 * reaches a merchant.
 */
import { describe, expect, it } from 'vitest';
import type { PosClient } from '../sdk/pos-client.ts';
import { OPERATOR_TOKEN, startTestServer, type TestServer } from './server-helpers.ts';

const PHONE = '+15555550170';
const DAY_MS = 86_400_000;
const HOUR_MS = 3_600_000;
const error = (code: string) => ({ error: { code, message: expect.any(String) } });

/** A redemption through a real POS session: a fresh code from the consumer's wallet, then `redeem`. */
async function sale(t: TestServer, pos: PosClient, deviceToken: string, merchantId: string, cents: number) {
  const code = await t.http('POST', '/v1/wallet/codes', { merchantId }, deviceToken);
  expect(code.status).toBe(201);
  const answer = await pos.redeem({ code: code.body.code, amountCents: cents });
  expect(answer.status).toBe('approved');
  return answer.authId as string;
}

/** A merchant with a till, and a consumer holding `cents` of its gift value. */
async function shop(t: TestServer, cents = 10_000) {
  const merchant = await t.merchant('Corner Cafe');
  const pos = await t.pos(await t.terminal(merchant));
  const consumer = await t.consumer(PHONE);
  await t.load(merchant, PHONE, cents);
  return { merchant, pos, consumer };
}

describe('merchant dashboard API', () => {
  it('tells a token whose it is, and keeps every report to its merchant', async () => {
    const t = await startTestServer();
    const a = await t.merchant('Alpha');
    const b = await t.merchant('Beta');
    const { deviceToken } = await t.consumer(PHONE);
    expect(await t.http('GET', '/v1/me', undefined, a.apiKey)).toEqual({
      status: 200,
      body: { kind: 'merchant', merchantId: a.merchantId, name: 'Alpha' },
    });
    expect(await t.http('GET', '/v1/me', undefined, OPERATOR_TOKEN)).toEqual({
      status: 200,
      body: { kind: 'operator' },
    });
    const device = await t.http('GET', '/v1/me', undefined, deviceToken);
    expect(device).toEqual({ status: 200, body: { kind: 'device', expiresAtMs: expect.any(Number) } });
    expect(await t.http('GET', '/v1/me')).toEqual({ status: 401, body: error('unauthorized') });
    expect(await t.http('GET', '/v1/me', undefined, 'pk_forged')).toEqual({
      status: 401,
      body: error('unauthorized'),
    });

    for (const report of ['terminals', 'transactions', 'activity', 'statements']) {
      const path = `/v1/merchants/${a.merchantId}/${report}`;
      expect(await t.http('GET', path)).toEqual({ status: 401, body: error('unauthorized') });
      expect(await t.http('GET', path, undefined, b.apiKey)).toEqual({
        status: 403,
        body: error('forbidden'),
      });
      expect(await t.http('GET', path, undefined, deviceToken)).toEqual({
        status: 403,
        body: error('forbidden'),
      });
      expect((await t.http('GET', path, undefined, a.apiKey)).status).toBe(200);
      expect((await t.http('GET', path, undefined, OPERATOR_TOKEN)).status).toBe(200);
      expect(
        (await t.http('GET', `/v1/merchants/mc_missing/${report}`, undefined, OPERATOR_TOKEN)).status,
      ).toBe(404);
    }
  });

  it('lists terminals with their states, never a key or an activation code', async () => {
    const t = await startTestServer();
    const merchant = await t.merchant();
    const other = await t.merchant('Other');
    await t.terminal(other);
    const create = async (label: string) =>
      (await t.http('POST', `/v1/merchants/${merchant.merchantId}/terminals`, { label }, merchant.apiKey))
        .body;
    const active = await create('Front till');
    const activated = await t.http('POST', '/v1/terminals/activate', {
      activationCode: active.activationCode,
    });
    const pending = await create('Patio');
    const locked = await t.terminal(merchant);
    const revoked = await t.terminal(merchant);
    const path = (terminalId: string, action: string) =>
      `/v1/merchants/${merchant.merchantId}/terminals/${terminalId}/${action}`;
    expect((await t.http('POST', path(locked.terminalId, 'lock'), {}, merchant.apiKey)).status).toBe(200);
    expect((await t.http('POST', path(revoked.terminalId, 'revoke'), {}, merchant.apiKey)).status).toBe(200);

    const listed = await t.http(
      'GET',
      `/v1/merchants/${merchant.merchantId}/terminals`,
      undefined,
      merchant.apiKey,
    );
    expect(listed.status).toBe(200);
    const view = (terminalId: string, label: string, state: string, extra = {}) => ({
      terminalId,
      label,
      state,
      locked: state === 'locked',
      failedCodesToday: 0,
      activationExpiresAtMs: null,
      createdAtMs: expect.any(Number),
      ...extra,
    });
    expect(listed.body.terminals).toEqual([
      view(active.terminalId, 'Front till', 'active'),
      view(pending.terminalId, 'Patio', 'pending', { activationExpiresAtMs: expect.any(Number) }),
      view(locked.terminalId, 'till', 'locked'),
      view(revoked.terminalId, 'till', 'revoked'),
    ]);
    const text = JSON.stringify(listed.body);
    for (const secret of [
      active.activationCode,
      pending.activationCode,
      activated.body.terminalKey,
      locked.terminalKey,
    ])
      expect(text).not.toContain(secret);

    // A rekeyed terminal keeps working and says a code is outstanding; unlocking shows at once.
    await t.http('POST', path(active.terminalId, 'rekey'), {}, merchant.apiKey);
    await t.http('POST', path(locked.terminalId, 'unlock'), {}, merchant.apiKey);
    const again = (
      await t.http('GET', `/v1/merchants/${merchant.merchantId}/terminals`, undefined, merchant.apiKey)
    ).body.terminals;
    expect(again[0]).toMatchObject({ state: 'active', activationExpiresAtMs: expect.any(Number) });
    expect(again[2]).toMatchObject({ state: 'active', locked: false });
  });

  it('pages transactions newest first, as they count for the merchant, with no personal data', async () => {
    const t = await startTestServer();
    const { merchant, pos, consumer } = await shop(t);
    const first = await sale(t, pos, consumer.deviceToken, merchant.merchantId, 1_250);
    expect((await pos.refund(first, 250)).status).toBe('approved');
    const second = await sale(t, pos, consumer.deviceToken, merchant.merchantId, 700);
    expect((await pos.void(second)).status).toBe('approved');
    // A gift card the consumer buys is paid to the platform: it moves nothing of the merchant's.
    const bought = await t.http(
      'POST',
      '/v1/wallet/purchases',
      {
        merchantId: merchant.merchantId,
        amountCents: 900,
        paymentToken: 'tok_sandbox_ok',
        idempotencyKey: 'b1',
      },
      consumer.deviceToken,
    );
    expect(bought.status).toBe(201);

    const path = `/v1/merchants/${merchant.merchantId}/transactions`;
    const all = await t.http('GET', path, undefined, merchant.apiKey);
    expect(all.status).toBe(200);
    expect(all.body).toMatchObject({ next: null, scanLimited: false, scanned: expect.any(Number) });
    const rows = all.body.transactions as { kind: string; amountCents: number; ref: string; atMs: number }[];
    expect(rows.map((row) => [row.kind, row.amountCents])).toEqual([
      ['void', -700],
      ['redeem', 700],
      ['refund', -250],
      ['redeem', 1_250],
      ['load', -10_000],
    ]);
    expect(rows[0]).toEqual({
      journalKey: expect.stringMatching(/^[0-9]+\.[0-9]+\.[0-9]+$/),
      atMs: expect.any(Number),
      kind: 'void',
      ref: second,
      amountCents: -700,
    });
    expect(rows[3]?.ref).toBe(first);
    for (let i = 1; i < rows.length; i++)
      expect(rows[i - 1]?.atMs).toBeGreaterThanOrEqual(rows[i]?.atMs ?? 0);
    const text = JSON.stringify(all.body);
    expect(text).not.toContain(PHONE);
    expect(text).not.toContain(PHONE.slice(2));
    expect(text).not.toContain(consumer.consumerId);
    expect(text).not.toContain('cu_');

    // Pages of two follow each other through `next` and add up to the whole list.
    const paged: unknown[] = [];
    let before: string | null = null;
    for (let pages = 0; pages < 5; pages++) {
      const query: string = before ? `?limit=2&before=${before}` : '?limit=2';
      const page = await t.http('GET', `${path}${query}`, undefined, merchant.apiKey);
      expect(page.body.transactions.length).toBeLessThanOrEqual(2);
      paged.push(...page.body.transactions);
      before = page.body.next;
      if (!before) break;
    }
    expect(paged).toEqual(all.body.transactions);
    // `beforeMs` starts below a time.
    const older = await t.http('GET', `${path}?beforeMs=${rows[3]?.atMs}`, undefined, merchant.apiKey);
    expect(older.body.transactions.every((row: { atMs: number }) => row.atMs < (rows[3]?.atMs ?? 0))).toBe(
      true,
    );
    expect(older.body.transactions.at(-1)).toMatchObject({ kind: 'load' });

    for (const bad of [
      '?limit=0',
      '?limit=201',
      '?limit=abc',
      '?limit=1.5',
      '?limit=-1',
      '?beforeMs=soon',
      '?before=1.2',
      '?before=abc',
      `?before=${rows[1]?.atMs}.0.1&beforeMs=5`,
    ])
      expect(await t.http('GET', `${path}${bad}`, undefined, merchant.apiKey)).toEqual({
        status: 400,
        body: error('bad_request'),
      });
  });

  it('stops a scan at its bound, says so, and goes on from there', async () => {
    const t = await startTestServer({ limits: { reportScanEntriesMax: 3, reportScanChunkEntries: 2 } });
    const { merchant, pos, consumer } = await shop(t);
    const other = await t.merchant('Other');
    for (let i = 0; i < 3; i++) await t.load(other, '+15555550171', 100 + i);
    for (let i = 0; i < 2; i++) await sale(t, pos, consumer.deviceToken, merchant.merchantId, 100 + i);
    for (let i = 0; i < 3; i++) await t.load(other, '+15555550171', 200 + i);

    const path = `/v1/merchants/${merchant.merchantId}/transactions`;
    const first = await t.http('GET', path, undefined, merchant.apiKey);
    expect(first.body).toMatchObject({ transactions: [], scanned: 3, scanLimited: true });
    const found: number[] = [];
    let page = first.body;
    for (let pages = 0; page.next && pages < 10; pages++) {
      page = (await t.http('GET', `${path}?before=${page.next}`, undefined, merchant.apiKey)).body;
      found.push(...page.transactions.map((row: { amountCents: number }) => row.amountCents));
    }
    expect(found).toEqual([101, 100, -10_000]);
    expect(page).toMatchObject({ next: null, scanLimited: false });

    const activity = await t.http(
      'GET',
      `/v1/merchants/${merchant.merchantId}/activity`,
      undefined,
      merchant.apiKey,
    );
    expect(activity.body).toMatchObject({
      scanned: 3,
      scanLimited: true,
      unread: { fromMs: expect.any(Number), toMs: expect.any(Number) },
    });
  });

  it('refuses a report beyond the ones that may read at once', async () => {
    const t = await startTestServer({ limits: { reportScansMax: 1, reportScanChunkEntries: 1 } });
    const merchant = await t.merchant();
    // Enough postings that one report takes hundreds of turns of the event loop, one entry a turn.
    for (let batch = 0; batch < 10; batch++)
      await Promise.all(
        Array.from({ length: 30 }, (_, i) =>
          t.load(merchant, `+1555555${String(batch * 30 + i).padStart(4, '0')}`, 100),
        ),
      );
    const path = `/v1/merchants/${merchant.merchantId}/activity`;
    const answers = await Promise.all(
      Array.from({ length: 6 }, () => t.http('GET', path, undefined, merchant.apiKey)),
    );
    const statuses = answers.map((answer) => answer.status);
    expect(statuses).toContain(200);
    expect(statuses).toContain(503);
    expect(answers.find((answer) => answer.status === 503)?.body).toEqual(error('overloaded'));
  });

  it('counts redemptions per day and per hour, settled days from their statements, once', async () => {
    // Business days in UTC. The day is played at fixed times: 10:00 and 23:30, then just past midnight.
    const todayStartMs = Math.floor(Date.now() / DAY_MS) * DAY_MS;
    const today = new Date(todayStartMs).toISOString().slice(0, 10);
    let atMs = todayStartMs + 10 * HOUR_MS;
    const t = await startTestServer({ now: () => atMs });
    const { merchant, pos, consumer } = await shop(t);
    const activity = async (days?: number) =>
      (
        await t.http(
          'GET',
          `/v1/merchants/${merchant.merchantId}/activity${days ? `?days=${days}` : ''}`,
          undefined,
          merchant.apiKey,
        )
      ).body;

    const refunded = await sale(t, pos, consumer.deviceToken, merchant.merchantId, 2_000);
    expect((await pos.refund(refunded, 500)).status).toBe('approved');
    atMs = todayStartMs + 23.5 * HOUR_MS;
    await sale(t, pos, consumer.deviceToken, merchant.merchantId, 1_000);

    const before = await activity();
    expect(before).toMatchObject({ timeZone: 'UTC', cutoff: '00:00', scanLimited: false, unread: null });
    expect(before.days).toHaveLength(7);
    expect(before.days.at(-1)).toEqual({
      date: today,
      startMs: todayStartMs,
      endMs: todayStartMs + DAY_MS,
      redemptions: 2,
      redeemedCents: 3_000,
      returnedCents: 500,
      netCents: 2_500,
      issuedCents: 10_000,
    });
    expect(before.hours).toHaveLength(24);
    expect(before.hours.at(-1)).toMatchObject({ startMs: todayStartMs + 23 * HOUR_MS, redemptions: 1 });
    const tenOClock = before.hours.find(
      (hour: { startMs: number }) => hour.startMs === todayStartMs + 10 * HOUR_MS,
    );
    expect(tenOClock).toMatchObject({
      redemptions: 1,
      redeemedCents: 2_000,
      returnedCents: 500,
      netCents: 1_500,
    });

    // Past midnight the operator settles the day; the new day's sale comes from the journal.
    atMs = todayStartMs + DAY_MS + 60_000;
    expect((await t.http('POST', '/v1/settlements', { businessDate: today }, OPERATOR_TOKEN)).status).toBe(
      200,
    );
    await sale(t, pos, consumer.deviceToken, merchant.merchantId, 300);
    const after = await activity(2);
    expect(
      after.days.map((day: { date: string; redemptions: number; netCents: number }) => [
        day.date,
        day.redemptions,
        day.netCents,
      ]),
    ).toEqual([
      [today, 2, 2_500],
      [new Date(todayStartMs + DAY_MS).toISOString().slice(0, 10), 1, 300],
    ]);
    const hourly = after.hours.reduce(
      (sum: number, hour: { redemptions: number }) => sum + hour.redemptions,
      0,
    );
    // 10:00 from the statement alone, 23:30 from the statement and again from the journal (inside the
    // straggler window before the unsettled day), 00:01 from the journal: each once.
    expect(hourly).toBe(3);
    expect(JSON.stringify(after)).not.toContain(consumer.consumerId);

    for (const bad of ['0', '32', '1.5', 'week', '-3'])
      expect(
        (
          await t.http(
            'GET',
            `/v1/merchants/${merchant.merchantId}/activity?days=${bad}`,
            undefined,
            merchant.apiKey,
          )
        ).status,
      ).toBe(400);
  });

  it('lists settled days with the net of each, newest first, after the operator settles', async () => {
    const todayStartMs = Math.floor(Date.now() / DAY_MS) * DAY_MS;
    const day = (offset: number) => new Date(todayStartMs + offset * DAY_MS).toISOString().slice(0, 10);
    let atMs = todayStartMs + 12 * HOUR_MS;
    const t = await startTestServer({ now: () => atMs });
    const { merchant, pos, consumer } = await shop(t);
    const other = await t.merchant('Other');
    await t.load(other, '+15555550173', 400);
    const path = `/v1/merchants/${merchant.merchantId}/statements`;
    expect(await t.http('GET', path, undefined, merchant.apiKey)).toEqual({
      status: 200,
      body: { statements: [], next: null },
    });

    await sale(t, pos, consumer.deviceToken, merchant.merchantId, 1_500);
    atMs += DAY_MS;
    await sale(t, pos, consumer.deviceToken, merchant.merchantId, 800);
    atMs += DAY_MS;
    for (const date of [day(0), day(1)])
      expect((await t.http('POST', '/v1/settlements', { businessDate: date }, OPERATOR_TOKEN)).status).toBe(
        200,
      );

    const listed = await t.http('GET', path, undefined, merchant.apiKey);
    expect(listed.status).toBe(200);
    expect(listed.body.next).toBeNull();
    expect(
      listed.body.statements.map((s: { businessDate: string; netCents: number }) => [
        s.businessDate,
        s.netCents,
      ]),
    ).toEqual([
      [day(1), 800],
      [day(0), 1_500 - 10_000],
    ]);
    expect(listed.body.statements[0]).toMatchObject({
      settlementId: expect.any(String),
      achFileId: expect.any(String),
      effectiveDate: expect.any(String),
      direction: 'credit',
      redemptions: 1,
      redeemedCents: 800,
      feeCents: 0,
      traceNumber: expect.any(String),
    });
    expect(listed.body.statements[1]).toMatchObject({ direction: 'debit', issuedCents: 10_000 });
    // Each day's figures are those of its statement.
    const detail = await t.http('GET', `${path}/${day(0)}`, undefined, merchant.apiKey);
    expect(detail.body.netCents).toBe(listed.body.statements[1].netCents);
    const text = JSON.stringify(listed.body);
    expect(text).not.toContain(PHONE);
    expect(text).not.toContain(consumer.consumerId);
    expect(text).not.toContain('Other');

    const first = await t.http('GET', `${path}?limit=1`, undefined, merchant.apiKey);
    expect(first.body).toMatchObject({ statements: [{ businessDate: day(1) }], next: day(1) });
    const second = await t.http('GET', `${path}?limit=1&before=${day(1)}`, undefined, merchant.apiKey);
    expect(second.body.statements.map((s: { businessDate: string }) => s.businessDate)).toEqual([day(0)]);
    for (const bad of ['?limit=0', '?limit=x', '?before=2026-13-01', '?before=yesterday'])
      expect((await t.http('GET', `${path}${bad}`, undefined, merchant.apiKey)).status).toBe(400);
  });
});
