/**
 * The merchant dashboard's endpoints against a real server: who a token is (`/v1/me`), the terminal
 * list and its states (read through the registry's index of the merchant's own terminals), the
 * transactions page (newest first, amounts as they count for the merchant, opaque cursors that expire
 * with a restart, the scan bound), the activity report after real POS redemptions (settled days read
 * from the statements, the rest from the journal, nothing counted twice; hours of the settlement time
 * zone), the list of settled days after an operator's settlement, the caller checks, bad query values,
 * the limits on reports read at once (per merchant and in all), and that nothing of a consumer (phone
 * number, consumer id) or of another merchant's trade (a count, a key, a time) reaches a merchant.
 */
import { describe, expect, it, vi } from 'vitest';
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
    const list = async () =>
      (await t.http('GET', `/v1/merchants/${merchant.merchantId}/terminals`, undefined, merchant.apiKey)).body
        .terminals;
    const again = await list();
    expect(again[0]).toMatchObject({ state: 'active', activationExpiresAtMs: expect.any(Number) });
    expect(again[2]).toMatchObject({ state: 'active', locked: false });

    // The list reads the merchant's own terminals only, however many other merchants have: the
    // registry's index names them, and the table of every merchant's terminals is not scanned.
    for (let i = 0; i < 5; i++) await t.terminal(other);
    const { terminals } = t.server.engine.store;
    const scans = vi.spyOn(terminals, 'getRange');
    const reads = vi.spyOn(terminals, 'get');
    expect(await list()).toEqual(again);
    expect(scans).not.toHaveBeenCalled();
    expect(reads).toHaveBeenCalledTimes(4);
    scans.mockRestore();
    reads.mockRestore();
    // The index is built again from the table at start.
    await t.restart();
    expect(await list()).toEqual(again);
  });

  it('pages transactions newest first, as they count for the merchant, with no personal data', async () => {
    const t = await startTestServer();
    const { merchant, pos, consumer } = await shop(t);
    const first = await sale(t, pos, consumer.deviceToken, merchant.merchantId, 1_250);
    expect((await pos.refund(first, 250)).status).toBe('approved');
    const second = await sale(t, pos, consumer.deviceToken, merchant.merchantId, 700);
    expect((await pos.void(second)).status).toBe('approved');
    // A gift card the consumer buys is paid to the platform: it moves nothing of the merchant's.
    await t.purchase(merchant, consumer.deviceToken, 900);

    const path = `/v1/merchants/${merchant.merchantId}/transactions`;
    const all = await t.http('GET', path, undefined, merchant.apiKey);
    expect(all.status).toBe(200);
    expect(all.body).toEqual({ transactions: expect.any(Array), next: null, scanLimited: false });
    const rows = all.body.transactions as {
      journalKey: string;
      kind: string;
      amountCents: number;
      ref: string;
      atMs: number;
    }[];
    expect(rows.map((row) => [row.kind, row.amountCents])).toEqual([
      ['void', -700],
      ['redeem', 700],
      ['refund', -250],
      ['redeem', 1_250],
      ['load', -10_000],
    ]);
    expect(rows[0]).toEqual({
      journalKey: expect.stringMatching(/^[A-Za-z0-9_-]{16}$/),
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

    // A cursor is opaque: it says nothing of the key it stands for, and only this merchant may use it.
    const cursor = (await t.http('GET', `${path}?limit=1`, undefined, merchant.apiKey)).body.next as string;
    expect(cursor).toMatch(/^[A-Za-z0-9_-]{64}$/);
    expect(cursor).not.toContain(String(rows[0]?.atMs));
    const other = await t.merchant('Other');
    const expired = {
      status: 400,
      body: {
        error: { code: 'bad_request', message: 'the cursor has expired; start again from the newest' },
      },
    };
    expect(
      await t.http(
        'GET',
        `/v1/merchants/${other.merchantId}/transactions?before=${cursor}`,
        undefined,
        other.apiKey,
      ),
    ).toEqual(expired);
    const altered = `${cursor.slice(0, 20)}${cursor[20] === 'A' ? 'B' : 'A'}${cursor.slice(21)}`;
    expect(await t.http('GET', `${path}?before=${altered}`, undefined, merchant.apiKey)).toEqual(expired);

    for (const bad of [
      '?limit=0',
      '?limit=201',
      '?limit=abc',
      '?limit=1.5',
      '?limit=-1',
      '?beforeMs=soon',
      '?before=1.2',
      '?before=abc',
      `?before=${rows[1]?.journalKey}`,
      `?before=${cursor}&beforeMs=5`,
    ])
      expect(await t.http('GET', `${path}${bad}`, undefined, merchant.apiKey)).toEqual({
        status: 400,
        body: error('bad_request'),
      });

    // A cursor does not outlive a restart: the merchant starts again from the newest.
    await t.restart();
    expect(await t.http('GET', `${path}?before=${cursor}`, undefined, merchant.apiKey)).toEqual(expired);
    expect((await t.http('GET', path, undefined, merchant.apiKey)).body.transactions).toEqual(rows);
  });

  it("gives a merchant's answers nothing of other merchants' trade", async () => {
    const nowMs = Math.floor(Date.now() / HOUR_MS) * HOUR_MS + 30 * 60_000;
    const t = await startTestServer({ now: () => nowMs });
    const { merchant, pos, consumer } = await shop(t);
    await sale(t, pos, consumer.deviceToken, merchant.merchantId, 800);
    const other = await t.merchant('Other');
    const answers = async () => {
      const base = `/v1/merchants/${merchant.merchantId}`;
      return Promise.all(
        ['/transactions', '/activity?days=3', '/statements'].map(
          async (report) => (await t.http('GET', `${base}${report}`, undefined, merchant.apiKey)).body,
        ),
      );
    };
    const before = await answers();
    for (let i = 0; i < 20; i++) await t.load(other, '+15555550174', 100 + i);
    // The answers are the same whether the other merchant sold nothing or twenty cards: no count of
    // entries read, no posting of the other merchant, nothing that grows with its trade.
    expect(await answers()).toEqual(before);
    expect(JSON.stringify(before)).not.toMatch(/scanned/);
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
    // The scan stopped on the other merchant's postings: the cursor names none of them.
    expect(first.body).toEqual({ transactions: [], next: expect.any(String), scanLimited: true });
    // The other merchant's own keys, paged through with the same bound.
    const otherKeys: string[] = [];
    const otherTimes: number[] = [];
    let cursor: string | null = null;
    for (let pages = 0; pages < 10 && (pages === 0 || cursor); pages++) {
      const query: string = cursor ? `?before=${cursor}` : '';
      const answer = await t.http(
        'GET',
        `/v1/merchants/${other.merchantId}/transactions${query}`,
        undefined,
        other.apiKey,
      );
      otherKeys.push(...answer.body.transactions.map((row: { journalKey: string }) => row.journalKey));
      otherTimes.push(...answer.body.transactions.map((row: { atMs: number }) => row.atMs));
      cursor = answer.body.next;
    }
    expect(otherKeys).toHaveLength(6);
    for (const key of otherKeys) {
      expect(first.body.next).not.toContain(key);
    }
    for (const atMs of otherTimes) expect(first.body.next).not.toContain(String(atMs));
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
      scanLimited: true,
      unread: { fromMs: expect.any(Number), toMs: expect.any(Number) },
    });
    expect(activity.body).not.toHaveProperty('scanned');
    // Where the scan stopped (on one of the other merchant's postings) is given in whole hours only.
    const { toMs } = activity.body.unread;
    expect(toMs % HOUR_MS).toBe(0);
    expect(otherTimes).not.toContain(toMs - 1);
    expect(Math.max(...otherTimes)).toBeLessThan(toMs);
  });

  it('reads one report of a merchant at a time, and a bounded number in all', async () => {
    const t = await startTestServer({
      limits: { reportScansMax: 2, reportScansPerMerchantMax: 1, reportScanChunkEntries: 1 },
    });
    const [a, b, c] = [await t.merchant('A'), await t.merchant('B'), await t.merchant('C')];
    // Enough postings that one report takes hundreds of turns of the event loop, one entry a turn.
    for (let batch = 0; batch < 10; batch++)
      await Promise.all(
        Array.from({ length: 30 }, (_, i) =>
          t.load(a, `+1555555${String(batch * 30 + i).padStart(4, '0')}`, 100),
        ),
      );
    const read = (merchant: { merchantId: string; apiKey: string }) =>
      t.http('GET', `/v1/merchants/${merchant.merchantId}/activity`, undefined, merchant.apiKey);
    const refused = (message: string) => ({ status: 503, body: { error: { code: 'overloaded', message } } });
    const mineBusy = refused('a report of this merchant is being read; retry when it is answered');
    const allBusy = refused('too many reports are being read at once; retry in a moment');

    // One merchant repeating its request holds one slot: its others are refused, another merchant is
    // served meanwhile.
    const answers = await Promise.all([read(a), read(a), read(a), read(b)]);
    const own = answers.slice(0, 3);
    expect(own.filter((answer) => answer.status === 200)).toHaveLength(1);
    for (const answer of own.filter((answer) => answer.status !== 200)) expect(answer).toEqual(mineBusy);
    expect(answers[3]?.status).toBe(200);

    // Three merchants at once with room for two: the third is refused.
    const three = await Promise.all([read(a), read(b), read(c)]);
    expect(three.map((answer) => answer.status).sort()).toEqual([200, 200, 503]);
    expect(three.find((answer) => answer.status === 503)).toEqual(allBusy);
    // Once they are answered, every merchant is served again.
    for (const merchant of [a, b, c]) expect((await read(merchant)).status).toBe(200);
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

  it('puts the hours on whole hours of the settlement time zone, also half an hour off UTC', async () => {
    // India is UTC+5:30: its hours start at :30 UTC. The clock stands at 10:45 there.
    const todayStartMs = Math.floor(Date.now() / DAY_MS) * DAY_MS;
    const nowMs = todayStartMs + 5 * HOUR_MS + 15 * 60_000;
    const t = await startTestServer({ env: { PAYCODE_SETTLEMENT_TZ: 'Asia/Kolkata' }, now: () => nowMs });
    const { merchant, pos, consumer } = await shop(t);
    await sale(t, pos, consumer.deviceToken, merchant.merchantId, 1_200);
    const report = (
      await t.http('GET', `/v1/merchants/${merchant.merchantId}/activity`, undefined, merchant.apiKey)
    ).body;
    expect(report.timeZone).toBe('Asia/Kolkata');
    const hours = report.hours as { startMs: number; endMs: number; redemptions: number }[];
    expect(hours).toHaveLength(24);
    for (const [i, hour] of hours.entries()) {
      expect((hour.startMs - 30 * 60_000) % HOUR_MS).toBe(0);
      expect(hour.endMs - hour.startMs).toBe(HOUR_MS);
      if (i > 0) expect(hour.startMs).toBe(hours[i - 1]?.endMs);
    }
    // The current hour is 10:00-11:00 in India, 04:30-05:30 UTC, and holds the sale.
    expect(hours.at(-1)).toMatchObject({
      startMs: todayStartMs + 4.5 * HOUR_MS,
      endMs: todayStartMs + 5.5 * HOUR_MS,
      redemptions: 1,
    });
  });

  it('keeps each hour one real hour across a change of daylight saving time', async () => {
    // New York fell back on 2025-11-02 at 06:00 UTC (02:00 EDT became 01:00 EST): 01:00 came twice.
    const nowMs = Date.UTC(2025, 10, 2, 6, 40);
    const t = await startTestServer({ env: { PAYCODE_SETTLEMENT_TZ: 'America/New_York' }, now: () => nowMs });
    const merchant = await t.merchant();
    const hours = (
      await t.http('GET', `/v1/merchants/${merchant.merchantId}/activity`, undefined, merchant.apiKey)
    ).body.hours as { startMs: number; endMs: number }[];
    expect(hours.at(-1)).toMatchObject({
      startMs: Date.UTC(2025, 10, 2, 6),
      endMs: Date.UTC(2025, 10, 2, 7),
    });
    for (const [i, hour] of hours.entries()) {
      expect(hour.endMs - hour.startMs).toBe(HOUR_MS);
      if (i > 0) expect(hour.startMs).toBe(hours[i - 1]?.endMs);
    }
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
