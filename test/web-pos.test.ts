/**
 * The browser POS terminal (`/pos/`) end to end, in headless Chromium against a real server: activation
 * through the page, with the key kept as a non-extractable CryptoKey that survives a reload; approved,
 * declined and partial sales checked on the page and through the wallet API; input refused before
 * anything is sent; void and refund; the receipt; a server restart the page recovers from by itself; and
 * a redeem whose answer is lost (dropped by a WebSocket route in the middle), which the page reverses, in
 * the same page after reconnecting and after a reload, leaving the customer's balance as it was.
 */

import type { Browser, Page, WebSocketRoute } from 'playwright-core';
import { afterAll, beforeAll, expect, onTestFinished, test } from 'vitest';
import { freePort } from '../bench/baselines/services.ts';
import { launchBrowser, newContext, openPage, screenshot } from './browser.ts';
import { startTestServer, type TestServer } from './server-helpers.ts';

type Merchant = { merchantId: string; apiKey: string };
type Consumer = { consumerId: string; deviceToken: string };

let browser: Browser;
beforeAll(async () => {
  browser = await launchBrowser();
});
afterAll(async () => {
  await browser?.close();
});

async function openTill(t: TestServer): Promise<{ page: Page; errors: string[] }> {
  const context = await newContext(browser, 'desktop');
  onTestFinished(() => context.close());
  return openPage(context, `${t.server.url}/pos/`);
}

async function activate(t: TestServer, page: Page, merchant: Merchant, shot?: string): Promise<string> {
  const created = await t.http(
    'POST',
    `/v1/merchants/${merchant.merchantId}/terminals`,
    { label: 'front till' },
    merchant.apiKey,
  );
  expect(created.status).toBe(201);
  await page.getByLabel('Activation code', { exact: true }).fill(created.body.activationCode);
  if (shot) await screenshot(page, shot);
  await page.getByRole('button', { name: 'Activate', exact: true }).click();
  await online(page);
  return created.body.terminalId;
}

function online(page: Page, timeoutMs = 20_000): Promise<void> {
  return page.locator('.status-dot[data-state="online"]').waitFor({ timeout: timeoutMs });
}

async function newCode(t: TestServer, merchant: Merchant, consumer: Consumer): Promise<string> {
  const issued = await t.http(
    'POST',
    '/v1/wallet/codes',
    { merchantId: merchant.merchantId },
    consumer.deviceToken,
  );
  expect(issued.status).toBe(201);
  return issued.body.code;
}

/** The consumer's balance at the merchant, through the wallet API. */
async function balanceCents(t: TestServer, consumer: Consumer): Promise<number> {
  const wallet = await t.http('GET', '/v1/wallet', undefined, consumer.deviceToken);
  expect(wallet.status).toBe(200);
  return (wallet.body.cards as { balanceCents: number }[]).reduce((sum, card) => sum + card.balanceCents, 0);
}

async function charge(page: Page, code: string, dollars: string, partial = false): Promise<void> {
  await page.getByLabel('Payment code', { exact: true }).fill(code);
  await page.getByLabel('Amount', { exact: true }).fill(dollars);
  await page.getByLabel('Allow partial approval (split tender)').setChecked(partial);
  await page.getByRole('button', { name: 'Charge', exact: true }).click();
}

/** Waits for the result panel to show `outcome` and returns its text. */
async function outcome(page: Page, kind: string, timeoutMs = 15_000): Promise<string> {
  const panel = page.locator(`.pos-result[data-outcome="${kind}"]`);
  await panel.waitFor({ timeout: timeoutMs });
  return (await panel.textContent()) ?? '';
}

test('activate, charge, decline, partial, void, refund, receipt, reload', { timeout: 120_000 }, async () => {
  const t = await startTestServer();
  const merchant = await t.merchant('Corner Cafe');
  const phone = '+15555550101';
  const consumer = await t.consumer(phone);
  await t.load(merchant, phone, 5_000);
  const { page, errors } = await openTill(t);

  await page.getByRole('heading', { name: 'Activate this terminal' }).waitFor();
  const terminalId = await activate(t, page, merchant, 'pos-activation');
  await outcome(page, 'idle');
  await screenshot(page, 'pos-sale-ready');

  // The key is in IndexedDB as a CryptoKey that no script can export.
  const stored = await page.evaluate(async () => {
    const db = await new Promise<IDBDatabase>((resolve, reject) => {
      const request = indexedDB.open('paycode-pos');
      request.onsuccess = () => resolve(request.result);
      request.onerror = () => reject(request.error);
    });
    const record = await new Promise<{ key: CryptoKey; terminalId: string }>((resolve, reject) => {
      const request = db.transaction('terminal').objectStore('terminal').get('current');
      request.onsuccess = () => resolve(request.result);
      request.onerror = () => reject(request.error);
    });
    db.close();
    const exported = await crypto.subtle.exportKey('raw', record.key).then(
      () => 'exported',
      (error: Error) => error.name,
    );
    return { type: record.key.type, extractable: record.key.extractable, exported, id: record.terminalId };
  });
  expect(stored).toEqual({
    type: 'secret',
    extractable: false,
    exported: 'InvalidAccessError',
    id: terminalId,
  });

  // Input is checked before anything is sent.
  const code1 = await newCode(t, merchant, consumer);
  await charge(page, code1.slice(0, 5), '12.50');
  expect(await page.locator('.pos-problem').textContent()).toContain(
    'Enter the whole payment code shown on the customer’s phone: 6 to 10 digits.',
  );
  expect(await page.locator('#sale-code-hint').textContent()).toBe('5 digits so far: codes have 6 to 10');
  await charge(page, code1, '12.505');
  expect(await page.locator('.pos-problem').textContent()).toContain('amount in dollars');
  await outcome(page, 'idle');

  // Above the code's cap without partial approval: declined with its reason, the code stays usable.
  await charge(page, code1, '80.00');
  const declined = await outcome(page, 'declined');
  expect(declined).toContain('Above the code’s limit');
  expect(declined).toContain('still valid');
  expect(await page.locator('.pos-result').getAttribute('data-status')).toBe('over_cap');
  await screenshot(page, 'pos-declined');
  expect(await balanceCents(t, consumer)).toBe(5_000);
  // The code stays for another try, shown in its reading groups.
  expect(code1).toMatch(/^\d{6}$/);
  expect(await page.getByLabel('Payment code', { exact: true }).inputValue()).toBe(
    `${code1.slice(0, 3)} ${code1.slice(3)}`,
  );

  await charge(page, code1, '12.50');
  const approved = await outcome(page, 'approved');
  expect(approved).toContain('$12.50');
  expect(approved).toContain('Balance left at this store$37.50');
  await screenshot(page, 'pos-approved');
  await page.setViewportSize({ width: 820, height: 1180 });
  await screenshot(page, 'pos-approved-tablet');
  await page.setViewportSize({ width: 1280, height: 860 });
  expect(await balanceCents(t, consumer)).toBe(3_750);
  expect(await page.getByLabel('Payment code', { exact: true }).inputValue()).toBe('');

  // Partial approval: the code holds $37.50 of the $60.00 asked.
  const code2 = await newCode(t, merchant, consumer);
  await charge(page, code2, '60', true);
  const partial = await outcome(page, 'partial');
  expect(partial).toContain('$37.50 approved, $22.50 still due');
  expect(partial).toContain('Take the rest by another tender');
  await screenshot(page, 'pos-partial');
  expect(await balanceCents(t, consumer)).toBe(0);

  // Void the partial sale (newest first), refund $5.00 of the first one.
  const rows = page.locator('.sale-row');
  expect(await rows.count()).toBe(2);
  await rows.nth(0).getByRole('button', { name: 'Void', exact: true }).click();
  await rows.nth(0).getByRole('button', { name: 'Confirm void' }).click();
  await rows.nth(0).getByText('Voided: $37.50 went back to the customer.').waitFor();
  expect(await balanceCents(t, consumer)).toBe(3_750);
  await rows.nth(1).getByRole('button', { name: 'Refund', exact: true }).click();
  await rows.nth(1).getByLabel('Refund amount').fill('5.00');
  await screenshot(page, 'pos-refund-form');
  await rows.nth(1).getByRole('button', { name: 'Confirm refund' }).click();
  await rows.nth(1).getByText('Refunded $5.00 to the customer.').waitFor();
  expect(await balanceCents(t, consumer)).toBe(4_250);
  await screenshot(page, 'pos-recent');

  // The receipt of the first sale, on screen and as printed.
  await rows.nth(1).getByRole('button', { name: 'Receipt' }).click();
  const receipt = page.locator('.receipt');
  await receipt.waitFor();
  expect(await receipt.textContent()).toContain('Paid with paycode$12.50');
  expect(await receipt.textContent()).toContain('Refunded−$5.00');
  await screenshot(page, 'pos-receipt');
  await page.evaluate(() => {
    window.print = () => document.body.setAttribute('data-printed', 'yes');
  });
  await page.getByRole('button', { name: 'Print' }).click();
  expect(await page.locator('body').getAttribute('data-printed')).toBe('yes');
  await page.emulateMedia({ media: 'print' });
  await screenshot(page, 'pos-receipt-print');
  await page.emulateMedia({ media: 'screen' });
  await page.getByRole('button', { name: 'Back to sale' }).click();

  // A reload keeps the terminal and its recent sales.
  await page.reload();
  await online(page);
  expect(await page.locator('.sale-row').count()).toBe(2);
  expect(await page.locator('.pos-terminal-id').textContent()).toBe(terminalId);

  // Nothing about the customer, and no payment code, is kept in the browser.
  const kept = await page.evaluate(() => JSON.stringify({ ...localStorage }));
  for (const secret of [phone, consumer.consumerId, code1, code2]) expect(kept).not.toContain(secret);

  // A second tab of the same browser does not act as the till while the first one does.
  const second = await page.context().newPage();
  await second.goto(`${t.server.url}/pos/`);
  await second.getByRole('heading', { name: 'Open in another tab' }).waitFor();
  expect(await second.getByRole('button', { name: 'Charge', exact: true }).count()).toBe(0);
  await second.close();

  // The merchant revokes the key: the page says so and takes no more sales.
  const revoked = await t.http(
    'POST',
    `/v1/merchants/${merchant.merchantId}/terminals/${terminalId}/revoke`,
    {},
    merchant.apiKey,
  );
  expect(revoked.status).toBe(200);
  await page.locator('.status-dot[data-state="revoked"]').waitFor();
  await page.getByText('key was revoked or replaced').waitFor();
  expect(await page.getByRole('button', { name: 'Charge', exact: true }).isDisabled()).toBe(true);

  // Forgetting the terminal, with nothing pending, leaves nothing of it in this browser.
  await page.getByRole('button', { name: 'Terminal', exact: true }).click();
  await screenshot(page, 'pos-terminal');
  await page.getByRole('button', { name: 'Forget this terminal' }).click();
  await page.getByRole('button', { name: 'Yes, forget it' }).click();
  await page.getByRole('heading', { name: 'Activate this terminal' }).waitFor();
  expect(await page.evaluate(() => localStorage.length)).toBe(0);
  await page.reload();
  await page.getByRole('heading', { name: 'Activate this terminal' }).waitFor();
  expect(errors).toEqual([]);
});

test('reconnects after a restart and reverses a sale whose answer was lost', {
  timeout: 120_000,
}, async () => {
  const port = await freePort();
  const t = await startTestServer({ env: { PAYCODE_PORT: String(port) } });
  const merchant = await t.merchant('Corner Cafe');
  const phone = '+15555550102';
  const consumer = await t.consumer(phone);
  await t.load(merchant, phone, 10_000);
  const { page, errors } = await openTill(t);
  await activate(t, page, merchant);

  await charge(page, await newCode(t, merchant, consumer), '10.00');
  await outcome(page, 'approved');
  expect(await balanceCents(t, consumer)).toBe(9_000);

  // The server goes away and comes back on the same port: the page reconnects by itself.
  const dropped = page.locator('.status-dot:not([data-state="online"])').waitFor({ timeout: 10_000 });
  const errorsBefore = errors.length;
  await t.restart();
  await dropped;
  await online(page);
  // Chromium itself logs every refused connection while the server is away; the page cannot silence that.
  for (const error of errors.splice(errorsBefore))
    expect(error).toMatch(
      /^WebSocket connection to 'ws:\/\/[^']+\/v1\/pos' failed: .*ERR_CONNECTION_REFUSED$/,
    );
  await charge(page, await newCode(t, merchant, consumer), '5.00');
  await outcome(page, 'approved');
  expect(await balanceCents(t, consumer)).toBe(8_500);

  // A route between the page and the server drops the redeem's answer and closes the socket; with
  // `refuse` it then keeps the page from reconnecting.
  let dropNext = false;
  let refuse = false;
  let droppedAnswers = 0;
  await page.routeWebSocket(/\/v1\/pos$/, (ws: WebSocketRoute) => {
    if (refuse) {
      ws.close();
      return;
    }
    const server = ws.connectToServer();
    ws.onMessage((message) => server.send(message));
    server.onMessage((message) => {
      if (dropNext && String(message).includes('"type":"redeemResult"')) {
        dropNext = false;
        droppedAnswers++;
        ws.close();
        server.close();
        return;
      }
      ws.send(message);
    });
  });
  await page.reload();
  await online(page);

  // Lost, then reversed in the same page after it reconnects.
  dropNext = true;
  await charge(page, await newCode(t, merchant, consumer), '7.00');
  const reversed = await outcome(page, 'reversed', 30_000);
  expect(droppedAnswers).toBe(1);
  expect(reversed).toContain('The $7.00 sale was reversed');
  expect(reversed).toContain('the customer was not charged');
  await screenshot(page, 'pos-reversed');
  expect(await balanceCents(t, consumer)).toBe(8_500);
  const history = await t.http('GET', '/v1/wallet/history', undefined, consumer.deviceToken);
  expect(history.body.entries.slice(0, 2).map((entry: { kind: string }) => entry.kind)).toEqual([
    'reverse',
    'redeem',
  ]);

  // Lost while the page cannot reconnect: the reversal waits in the browser, survives a reload, and is
  // sent once the page is back online.
  dropNext = true;
  refuse = true;
  await page.getByRole('button', { name: 'New sale' }).click();
  await charge(page, await newCode(t, merchant, consumer), '6.00');
  await outcome(page, 'reversing');
  expect(await balanceCents(t, consumer)).toBe(7_900);
  await page.reload();
  await page.getByText('Reversing a $6.00 sale').waitFor();
  await screenshot(page, 'pos-reversing');
  refuse = false;
  await page.getByText('The $6.00 sale of').waitFor({ timeout: 30_000 });
  expect(await page.locator('.pos-banners').textContent()).toContain(
    'was reversed: the customer was not charged',
  );
  expect(await balanceCents(t, consumer)).toBe(8_500);
  expect(await page.locator('.pos-doubts').textContent()).toBe('');
  expect(errors).toEqual([]);
});
