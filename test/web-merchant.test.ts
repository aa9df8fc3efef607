/**
 * The merchant dashboard in a real headless Chromium against a real server: sign-in with the API key,
 * sales made on a real POS client in the tiles, the chart (by day and by hour, with its table) and the
 * transactions; a gift card and a reward issued to a phone and seen in that phone's wallet through the
 * API, once even when the first answer is lost; a terminal created, its activation code shown once and
 * usable, locked, unlocked and revoked as the API sees it; a settled day's statement and its CSV;
 * older pages of transactions and statements that a periodic refresh keeps, a late answer of a
 * superseded load that is dropped, an expired cursor that starts the list again; the hourly chart in
 * the settlement time zone, whatever the browser's; and no console error on the way.
 */
import { readFileSync } from 'node:fs';
import type { Browser, Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { dollars as money } from '../core/money.ts';
import type { PosClient } from '../sdk/pos-client.ts';
import { launchBrowser, newContext, openPage, screenshot } from './browser.ts';
import { OPERATOR_TOKEN, startTestServer, type TestServer } from './server-helpers.ts';

let browser: Browser;
beforeAll(async () => {
  browser = await launchBrowser();
});
afterAll(async () => {
  await browser?.close();
});

const DAY_MS = 86_400_000;
const BUYER = '+15555550140';

async function sale(t: TestServer, pos: PosClient, deviceToken: string, merchantId: string, cents: number) {
  const code = await t.http('POST', '/v1/wallet/codes', { merchantId }, deviceToken);
  const answer = await pos.redeem({ code: code.body.code, amountCents: cents });
  expect(answer.status).toBe('approved');
  return answer;
}

async function terminalState(t: TestServer, merchant: { merchantId: string; apiKey: string }, label: string) {
  const listed = await t.http(
    'GET',
    `/v1/merchants/${merchant.merchantId}/terminals`,
    undefined,
    merchant.apiKey,
  );
  return listed.body.terminals.find((terminal: { label: string }) => terminal.label === label)?.state;
}

async function tab(page: Page, name: string) {
  await page.getByRole('tab', { name }).click();
}

describe('merchant dashboard', () => {
  test('sign in, read sales, issue cards, run terminals, read statements', async () => {
    // The server's day is played from noon UTC, so that nothing here crosses a midnight by accident.
    const startedMs = Date.now();
    const noonMs = Math.floor(startedMs / DAY_MS) * DAY_MS + DAY_MS / 2;
    let shiftMs = 0;
    const t = await startTestServer({ now: () => noonMs + (Date.now() - startedMs) + shiftMs });
    const today = new Date(noonMs).toISOString().slice(0, 10);
    // A few days of trade: a card and a sale three days ago, a sale yesterday, three sales today.
    shiftMs = -3 * DAY_MS;
    const merchant = await t.merchant('Blue Bottle Coffee');
    await t.load(merchant, BUYER, 10_000);
    const buyer = await t.consumer(BUYER);
    const pos = await t.pos(await t.terminal(merchant));
    await sale(t, pos, buyer.deviceToken, merchant.merchantId, 640);
    shiftMs = -DAY_MS;
    await sale(t, pos, buyer.deviceToken, merchant.merchantId, 1_890);
    shiftMs = 0;
    for (const cents of [1_250, 480, 2_200])
      await sale(t, pos, buyer.deviceToken, merchant.merchantId, cents);

    const context = await newContext(browser, 'desktop');
    // A key that is not valid is refused, and nothing is kept.
    const first = await openPage(context, `${t.server.url}/merchant/`);
    await first.page.getByRole('button', { name: 'Sign in' }).waitFor();
    await screenshot(first.page, 'merchant-sign-in');
    await first.page.getByLabel('API key').fill('pk_not_a_real_key');
    await first.page.getByRole('button', { name: 'Sign in' }).click();
    await first.page.getByText('This API key is not valid').waitFor();
    await first.page.getByLabel('API key').fill(OPERATOR_TOKEN);
    await first.page.getByRole('button', { name: 'Sign in' }).click();
    await first.page.getByText('This is not a merchant API key').waitFor();
    // The browser reports the refused key's 401 itself; nothing else may go wrong.
    expect(first.errors.filter((text) => !/status of 401/.test(text))).toEqual([]);
    await first.page.close();

    const { page, errors } = await openPage(context, `${t.server.url}/merchant/`);
    await page.getByLabel('API key').fill(merchant.apiKey);
    await page.getByRole('button', { name: 'Sign in' }).click();
    await page.getByRole('heading', { name: 'Blue Bottle Coffee' }).waitFor();
    expect(await page.evaluate(() => Object.keys(localStorage))).toEqual([]);

    // Today's tiles and the chart count the three sales.
    const tile = (label: string) => page.locator('.stat', { hasText: label }).locator('.value');
    await expect.poll(() => tile("Today's sales").textContent()).toBe('$39.30');
    expect(await tile('Redemptions today').textContent()).toBe('3');
    expect(await tile('Average sale').textContent()).toBe('$13.10');
    expect(await page.locator('.stat', { hasText: "Today's sales" }).textContent()).toContain(
      'Yesterday $18.90',
    );
    expect(await tile('Cards issued today').textContent()).toBe('$0.00');
    const chart = page.getByRole('img', { name: /Sales per day/ });
    await chart.waitFor();
    expect(await chart.locator('rect.chart-bar').count()).toBe(3);
    expect(await chart.locator('rect.chart-bar.current').count()).toBe(1);
    await screenshot(page, 'merchant-overview');
    await page.getByText('Show the figures as a table').click();
    const todayRow = page.locator('.chart-table tr').last();
    expect(await todayRow.textContent()).toContain('$39.30');
    expect(await todayRow.locator('td').first().textContent()).toBe('3');
    const latest = page.getByRole('table', { name: 'Latest transactions' });
    expect(await latest.locator('tbody tr').count()).toBe(6);
    expect(await latest.locator('tbody tr').first().textContent()).toContain('+$22.00');
    await page.getByRole('tab', { name: 'By hour (24 h)' }).click();
    const hourly = page.getByRole('img', { name: /Sales per hour/ });
    await hourly.waitFor();
    expect(await hourly.locator('rect.chart-bar.current').count()).toBe(1);
    await screenshot(page, 'merchant-overview-hourly');

    // A gift card to a phone, checked in that phone's wallet.
    const phone = '+15555550188';
    await page.getByLabel('Phone number').fill('(555) 555-0188');
    await page.getByLabel('Amount in dollars').fill('25');
    await page.getByRole('button', { name: 'Issue card' }).click();
    await page.getByText('Issued a $25.00 gift card').waitFor();
    const holder = await t.consumer(phone);
    const wallet = async () => (await t.http('GET', '/v1/wallet', undefined, holder.deviceToken)).body.cards;
    expect(await wallet()).toEqual([
      expect.objectContaining({ merchantName: 'Blue Bottle Coffee', kind: 'gift', balanceCents: 2_500 }),
    ]);
    expect(await page.getByLabel('Phone number').inputValue()).toBe('');
    await expect.poll(() => tile('Cards issued today').textContent()).toBe('$25.00');

    // A reward whose first answer is lost: the retry carries the same key, and it is issued once.
    await page.getByLabel('Phone number').fill(phone);
    await page.getByLabel('Amount in dollars').fill('5.50');
    await page.getByLabel('Card type').selectOption('reward');
    await page
      .getByLabel('Reward expiry (optional)')
      .fill(new Date(startedMs + 30 * DAY_MS).toISOString().slice(0, 10));
    const keys: string[] = [];
    await page.route('**/cards', async (route) => {
      keys.push(JSON.parse(route.request().postData() ?? '{}').idempotencyKey);
      await route.fetch();
      await route.abort('connectionreset');
    });
    await page.getByRole('button', { name: 'Issue card' }).click();
    await page.getByText('it will not be issued twice').waitFor();
    await page.unroute('**/cards');
    page.on('request', (request) => {
      if (request.url().endsWith('/cards')) keys.push(JSON.parse(request.postData() ?? '{}').idempotencyKey);
    });
    await page.getByRole('button', { name: 'Issue card' }).click();
    await page.getByText('Issued a $5.50 reward').waitFor();
    expect(keys).toHaveLength(2);
    expect(keys[1]).toBe(keys[0]);
    expect(await wallet()).toContainEqual(expect.objectContaining({ kind: 'reward', balanceCents: 550 }));
    // The lost answer shows as the browser's own report of the reset connection, and only that.
    expect(errors.splice(0).filter((text) => !/ERR_CONNECTION_RESET|ERR_FAILED/.test(text))).toEqual([]);

    // A terminal: its activation code is shown once and works on a till. The page says how many digits
    // the cashiers type.
    await tab(page, 'Terminals');
    await page.getByText('Payment codes have 6 digits, more while the store is busy (up to 10)').waitFor();
    await page.getByLabel('Terminal label').fill('Patio');
    await page.getByRole('button', { name: 'Create terminal' }).click();
    const code = page.getByRole('status').getByLabel('Activation code');
    await code.waitFor();
    const activationCode = (await code.textContent()) ?? '';
    expect(activationCode).toMatch(/^[A-Z0-9]{5}-[A-Z0-9]{5}$/);
    const row = page.locator('tr', { hasText: 'Patio' });
    await row.getByText('Awaiting activation', { exact: true }).waitFor();
    await screenshot(page, 'merchant-terminals');
    const activated = await t.http('POST', '/v1/terminals/activate', { activationCode });
    expect(activated.status).toBe(200);
    await page.getByRole('button', { name: 'Done' }).click();
    await expect(code.count()).resolves.toBe(0);
    await tab(page, 'Overview');
    await tab(page, 'Terminals');
    await row.getByText('Active', { exact: true }).waitFor();

    await page.getByRole('button', { name: 'Lock Patio' }).click();
    await row.getByText('Locked', { exact: true }).waitFor();
    expect(await terminalState(t, merchant, 'Patio')).toBe('locked');
    await page.getByRole('button', { name: 'Unlock Patio' }).click();
    await row.getByText('Active', { exact: true }).waitFor();
    expect(await terminalState(t, merchant, 'Patio')).toBe('active');
    await page.getByRole('button', { name: 'Revoke Patio' }).click();
    await row.getByText('Revoke this terminal?').waitFor();
    await page.getByRole('button', { name: 'Revoke Patio' }).click();
    await row.getByText('Revoked', { exact: true }).waitFor();
    expect(await terminalState(t, merchant, 'Patio')).toBe('revoked');
    await screenshot(page, 'merchant-terminals-after');

    // A sale made now shows in the transactions.
    const late = await sale(t, pos, buyer.deviceToken, merchant.merchantId, 905);
    await tab(page, 'Transactions');
    const transactions = page.getByRole('table', { name: 'Transactions, newest first' });
    await transactions.locator('tbody tr').first().getByText('+$9.05').waitFor();
    expect(await transactions.locator('tbody tr').first().textContent()).toContain(late.authId as string);
    expect(await transactions.locator('tbody tr').count()).toBe(9);
    expect(await transactions.textContent()).not.toContain(BUYER);
    await screenshot(page, 'merchant-transactions');

    // After midnight the operator settles the day; the statement is there, and its CSV.
    await tab(page, 'Statements');
    await page.getByText('No settled days yet').waitFor();
    shiftMs = DAY_MS;
    const settled = await t.http('POST', '/v1/settlements', { businessDate: today }, OPERATOR_TOKEN);
    expect(settled.status).toBe(200);
    const netCents = settled.body.merchants[0].netCents as number;
    // The day's sales less the two cards issued today; the earlier days are not settled.
    expect(netCents).toBe(1_250 + 480 + 2_200 + 905 - 2_500 - 550);
    await tab(page, 'Overview');
    await tab(page, 'Statements');
    await page.getByRole('heading', { name: /Statement for/ }).waitFor();
    const statement = page.locator('.statement');
    expect(await statement.textContent()).toContain('+$17.85');
    expect(await statement.textContent()).toContain('Paid to you');
    // The reference the merchant's bank shows beside the credit.
    expect(await statement.textContent()).toMatch(/ACH reference P[A-Z2-7]{14}/);
    expect(await statement.locator('tbody tr').count()).toBe(8); // 6 postings, fees, net
    await screenshot(page, 'merchant-statements');
    const [download] = await Promise.all([
      page.waitForEvent('download'),
      page.getByRole('button', { name: 'Download CSV' }).click(),
    ]);
    expect(download.suggestedFilename()).toBe(`paycode-statement-${today}.csv`);
    const csv = readFileSync((await download.path()) as string, 'utf8');
    expect(csv.split('\r\n')[0]).toBe(
      'businessDate,merchantId,achFileId,traceNumber,journalKey,at,kind,ref,amountCents,achReference',
    );
    expect(csv).toContain(`,net,,${netCents}`);

    // What the cards still owe, per day and kind, reconciled; and its CSV.
    await tab(page, 'Outstanding');
    const owed = page.getByRole('table', { name: 'Outstanding value per business day' });
    await owed.waitFor();
    // 14 days, each with its gift cards, the part of them bought, and its rewards.
    expect(await owed.locator('tbody tr').count()).toBe(42);
    const report = await t.http(
      'GET',
      `/v1/merchants/${merchant.merchantId}/liability?days=14`,
      undefined,
      merchant.apiKey,
    );
    const newest = report.body.days.at(-1);
    const total = newest.gift.closingCents + newest.reward.closingCents;
    await page.getByText(`${money(total)} outstanding`).waitFor();
    expect(await page.getByText('in none of these figures').count()).toBe(0);
    await screenshot(page, 'merchant-outstanding');
    const [owedCsv] = await Promise.all([
      page.waitForEvent('download'),
      page.getByRole('button', { name: 'Download CSV' }).click(),
    ]);
    expect(owedCsv.suggestedFilename()).toBe('paycode-outstanding-value.csv');
    const owedRows = readFileSync((await owedCsv.path()) as string, 'utf8')
      .trim()
      .split('\r\n');
    expect(owedRows).toHaveLength(43);

    // Signing out forgets the key.
    await page.getByRole('button', { name: 'Sign out' }).click();
    await page.getByLabel('API key').waitFor();
    expect(await page.evaluate(() => sessionStorage.length)).toBe(0);
    expect(errors).toEqual([]);
  });

  test('older pages stay open through refreshes, a superseded answer is dropped, hours are the settlement zone', async () => {
    // A scan bound of four entries: every page of transactions holds at most four, and "Show older" goes
    // on from where the scan stopped. The browser is in India, the server settles in UTC.
    const t = await startTestServer({ limits: { reportScanEntriesMax: 4, reportScanChunkEntries: 2 } });
    const merchant = await t.merchant('Paging Pies');
    for (let i = 1; i <= 10; i++) await t.load(merchant, BUYER, 100 * i);
    const context = await browser.newContext({
      viewport: { width: 1280, height: 860 },
      timezoneId: 'Asia/Kolkata',
    });
    const { page, errors } = await openPage(context, `${t.server.url}/merchant/#transactions`);
    await page.getByLabel('API key').fill(merchant.apiKey);
    await page.getByRole('button', { name: 'Sign in' }).click();
    const table = page.getByRole('table', { name: 'Transactions, newest first' });
    const rows = table.locator('tbody tr');
    const amounts = async () => (await rows.locator('td.amount').allTextContents()).join(' ');
    await expect.poll(() => rows.count()).toBe(4);
    expect(await amounts()).toBe('−$10.00 −$9.00 −$8.00 −$7.00');
    await page.getByText('The search stopped early').waitFor();
    expect(await page.locator('#panel-transactions').textContent()).not.toMatch(/merchants|postings/);

    await page.getByRole('button', { name: 'Show older' }).click();
    await expect.poll(() => rows.count()).toBe(8);
    // A refresh of the section (here by leaving and coming back, as the 30-second timer would) keeps
    // the older page.
    await tab(page, 'Overview');
    await tab(page, 'Transactions');
    await page.evaluate(() => document.dispatchEvent(new Event('visibilitychange')));
    await page.getByText('Older pages are open').waitFor();
    expect(await rows.count()).toBe(8);
    await screenshot(page, 'merchant-transactions-older');
    await page.getByRole('button', { name: 'Refresh', exact: true }).click();
    await expect.poll(() => rows.count()).toBe(4);
    expect(await page.getByText('Older pages are open').count()).toBe(0);

    // "Show older" is still on its way when Refresh is clicked: its late answer is dropped, not mixed in.
    let release = () => {};
    const held = new Promise<void>((resolve) => {
      release = resolve;
    });
    await page.route('**/transactions?*before=*', async (route) => {
      await held;
      await route.continue();
    });
    await page.getByRole('button', { name: 'Show older' }).click();
    await page.getByRole('button', { name: 'Refresh', exact: true }).click();
    await expect
      .poll(() => page.getByRole('button', { name: 'Refresh', exact: true }).isEnabled())
      .toBe(true);
    const late = page.waitForResponse((response) => response.url().includes('before='));
    release();
    await late;
    await page.evaluate(() => new Promise((resolve) => setTimeout(resolve, 100)));
    expect(await rows.count()).toBe(4);
    expect(await amounts()).toBe('−$10.00 −$9.00 −$8.00 −$7.00');
    await page.unroute('**/transactions?*before=*');

    // A cursor from before a restart of the server is refused: the list starts again from the newest.
    await page.route('**/transactions?*before=*', (route) => {
      const url = new URL(route.request().url());
      const cursor = url.searchParams.get('before') ?? '';
      url.searchParams.set(
        'before',
        `${cursor.slice(0, 30)}${cursor[30] === 'A' ? 'B' : 'A'}${cursor.slice(31)}`,
      );
      return route.continue({ url: url.toString() });
    });
    await page.getByRole('button', { name: 'Show older' }).click();
    await page.getByText('The server was restarted since the list was read').waitFor();
    expect(await rows.count()).toBe(4);
    await page.unroute('**/transactions?*before=*');

    // The chart's hours are the server's (UTC) hours, labelled in that zone, not the browser's.
    await tab(page, 'Overview');
    await page.getByRole('tab', { name: 'By hour (24 h)' }).click();
    const hourly = page.getByRole('img', { name: /Sales per hour/ });
    await hourly.waitFor();
    const utcHour = new Intl.DateTimeFormat('en-US', { hour: 'numeric', timeZone: 'UTC' }).format(Date.now());
    expect(await hourly.locator('text.chart-label').last().textContent()).toBe(utcHour);
    await page.getByText('(hours of UTC)').waitFor();
    await page.getByText(/Figures before .* UTC may be low/).waitFor();
    await screenshot(page, 'merchant-overview-hourly-zone');
    expect(errors).toEqual([]);
  });

  test('statements page back past the first month with "Show older", and a refresh keeps them', async () => {
    // A card issued on each of 33 days, each day settled: one more than a page of 31.
    const startedMs = Date.now();
    const noonMs = Math.floor(startedMs / DAY_MS) * DAY_MS + DAY_MS / 2;
    let shiftMs = 0;
    const t = await startTestServer({ now: () => noonMs + (Date.now() - startedMs) + shiftMs });
    const merchant = await t.merchant('Old Books');
    const day = (offset: number) => new Date(noonMs + offset * DAY_MS).toISOString().slice(0, 10);
    for (let offset = -33; offset < 0; offset++) {
      shiftMs = offset * DAY_MS;
      await t.load(merchant, BUYER, 100);
    }
    shiftMs = 0;
    for (let offset = -33; offset < 0; offset++)
      expect(
        (await t.http('POST', '/v1/settlements', { businessDate: day(offset) }, OPERATOR_TOKEN)).status,
      ).toBe(200);

    const context = await newContext(browser, 'desktop');
    const { page, errors } = await openPage(context, `${t.server.url}/merchant/#statements`);
    await page.getByLabel('API key').fill(merchant.apiKey);
    await page.getByRole('button', { name: 'Sign in' }).click();
    const rows = page.getByRole('table', { name: 'Settled business days' }).locator('tbody tr');
    await expect.poll(() => rows.count()).toBe(31);
    await page.getByRole('heading', { name: /Statement for/ }).waitFor();
    await screenshot(page, 'merchant-statements-month');
    await page.getByRole('button', { name: 'Show older' }).click();
    await expect.poll(() => rows.count()).toBe(33);
    expect(await page.getByRole('button', { name: 'Show older' }).isHidden()).toBe(true);
    expect(await rows.last().textContent()).toContain(
      new Intl.DateTimeFormat('en-US', { month: 'short', day: 'numeric', timeZone: 'UTC' }).format(
        Date.parse(`${day(-33)}T00:00:00Z`),
      ),
    );
    await tab(page, 'Overview');
    await tab(page, 'Statements');
    await page.evaluate(() => new Promise((resolve) => setTimeout(resolve, 300)));
    expect(await rows.count()).toBe(33);
    await page.getByRole('button', { name: 'Refresh', exact: true }).click();
    await expect.poll(() => rows.count()).toBe(31);
    expect(errors).toEqual([]);
  });

  test('says when wrong codes stop payment codes at the store, and which terminal made them', async () => {
    const t = await startTestServer({ limits: { merchantCodeFailuresPerWindowMax: 1 } });
    const merchant = await t.merchant('Busy Bagels');
    const pos = await t.pos(await t.terminal(merchant));
    expect((await pos.inquire('123456')).status).toBe('invalid_code');
    expect((await pos.inquire('123457')).status).toBe('rate_limited');
    const { page, errors } = await openPage(
      await newContext(browser, 'desktop'),
      `${t.server.url}/merchant/`,
    );
    await page.getByLabel('API key').fill(merchant.apiKey);
    await page.getByRole('button', { name: 'Sign in' }).click();
    await page.getByRole('heading', { name: 'Busy Bagels' }).waitFor();
    await tab(page, 'Terminals');
    await page
      .getByText(/Payment codes are refused at this store until .+ \(merchant, per minute\)/)
      .waitFor();
    await page.getByText('1 wrong code in 24 h').waitFor();
    await screenshot(page, 'merchant-codes-refused');
    expect(errors).toEqual([]);
  });

  test('works on a tablet, and a revoked key signs the page out', async () => {
    const t = await startTestServer();
    const merchant = await t.merchant('Tiny Tacos');
    const context = await browser.newContext({ viewport: { width: 820, height: 1180 }, hasTouch: true });
    const { page } = await openPage(context, `${t.server.url}/merchant/`);
    await page.getByLabel('API key').fill(merchant.apiKey);
    await page.getByRole('button', { name: 'Sign in' }).click();
    await page.getByRole('heading', { name: 'Tiny Tacos' }).waitFor();
    await page.getByText('No sales in this period yet').waitFor();
    // Nothing is wider than the screen.
    expect(await page.evaluate(() => document.documentElement.scrollWidth)).toBeLessThanOrEqual(820);
    await screenshot(page, 'merchant-tablet');
    // A reload keeps the session of this tab and the open section.
    await tab(page, 'Terminals');
    await page.reload();
    await page.getByText('No terminals yet').waitFor();

    await t.http('POST', `/v1/merchants/${merchant.merchantId}/api-key`, {}, OPERATOR_TOKEN);
    await tab(page, 'Overview');
    await page.getByText('Your API key is no longer valid').waitFor();
    await page.getByLabel('API key').waitFor();
  });
});
