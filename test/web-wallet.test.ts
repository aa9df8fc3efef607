import type { Browser } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { paymentCodeText } from '../notify/texts.ts';
import { launchBrowser, newContext, openPage, screenshot, walletSignIn } from './browser.ts';
import { startTestServer, waitFor } from './server-helpers.ts';

/**
 * The wallet in a real headless Chromium against a real server: sign-in with the texted code (read from
 * the development inbox page), cards and pushes live, a payment code with its countdown and fate, cancel,
 * freeze, history, sign-out, a gift to another phone, and what the phone keeps.
 */
let browser: Browser;
beforeAll(async () => {
  browser = await launchBrowser();
});
afterAll(async () => {
  await browser?.close();
});

describe('wallet', () => {
  test('sends part of a gift card to another phone, once, from the card it is on', async () => {
    const t = await startTestServer();
    const merchant = await t.merchant('Blue Bottle');
    const phone = '+15555550112';
    const friend = '+15555550113';
    await t.load(merchant, phone, 5_000);
    await t.load(merchant, phone, 900, 'reward');
    const context = await newContext(browser, 'phone');
    const { page, errors } = await walletSignIn(context, t.server.url, phone);
    const card = page.getByRole('article', { name: 'Blue Bottle gift card' });
    await expect(card.textContent()).resolves.toContain('$50.00');
    // The reward card has no Send: only gift value is given.
    await expect(
      page.getByRole('article', { name: 'Blue Bottle reward card' }).getByRole('button').count(),
    ).resolves.toBe(0);

    await page.getByRole('button', { name: 'Send from the Blue Bottle gift card' }).click();
    await page.getByLabel('To phone number').fill('(555) 555-0113');
    await page.getByLabel('Amount').fill('80');
    await page.getByRole('button', { name: 'Send gift' }).click();
    await page.getByText('You do not have that much gift card value at this store.').waitFor();
    await page.getByLabel('Amount').fill('12.50');
    await page.getByRole('button', { name: 'Send gift' }).click();
    await page.getByText('Sent $12.50').waitFor();
    await expect(card.textContent()).resolves.toContain('$37.50');
    await page.getByText('Gift · Blue Bottle').waitFor();
    await screenshot(page, 'wallet-gift-sent');

    // A low-balance alert on the card: shown on it, and below it at once here.
    await page
      .getByLabel('Card', { exact: true })
      .selectOption({ label: 'Blue Bottle gift card · no alert' });
    await page.getByLabel('Tell me when it goes below').fill('40');
    await page.getByRole('button', { name: 'Save alert' }).click();
    await page.getByText('We will tell you when it goes below $40.00.').waitFor();
    await expect(card.textContent()).resolves.toContain('Low balance: below your alert of $40.00');
    const alerted = await t.http('GET', '/v1/wallet', undefined, await deviceToken(page));
    expect(alerted.body.cards).toContainEqual(
      expect.objectContaining({ kind: 'gift', alertBelowCents: 4_000 }),
    );

    // The friend, not registered yet, finds the value waiting, and was told by text.
    const friendDevice = await t.consumer(friend);
    const wallet = await t.http('GET', '/v1/wallet', undefined, friendDevice.deviceToken);
    expect(wallet.body.cards).toEqual([expect.objectContaining({ kind: 'gift', balanceCents: 1_250 })]);
    await waitFor(() =>
      t.server.devInbox?.inbox.find((text) => text.phone === friend && text.text.includes('You were given')),
    );
    expect(errors).toEqual([]);
    await context.close();
  });

  test('sign in, see the balance, pay with a code and watch it change live, cancel, freeze, sign out', async () => {
    const t = await startTestServer();
    const merchant = await t.merchant('Blue Bottle');
    const phone = '+15555550111';
    await t.load(merchant, phone, 5000);
    const pos = await t.pos(await t.terminal(merchant));

    const context = await newContext(browser, 'phone');
    const signIn = await openPage(context, `${t.server.url}/wallet/`);
    await signIn.page.getByRole('button', { name: 'Send code' }).waitFor();
    await screenshot(signIn.page, 'wallet-sign-in');
    // A number that cannot be a phone number is refused on the page; nothing is sent.
    await signIn.page.getByLabel('Phone number').fill('12');
    await signIn.page.getByRole('button', { name: 'Send code' }).click();
    await signIn.page.getByText('country code').waitFor();
    expect(t.server.devInbox?.inbox).toEqual([]);
    await signIn.page.close();

    const { page, errors } = await walletSignIn(context, t.server.url, phone);
    const card = page.getByRole('article', { name: 'Blue Bottle gift card' });
    await expect(card.textContent()).resolves.toContain('$50.00');

    // Pay with a limit: the code is shown large with its countdown.
    await page.getByLabel('Limit (optional)').fill('20');
    await page.getByRole('button', { name: 'Pay' }).click();
    const shown = page.locator('[data-code]');
    const code = (await shown.getAttribute('data-code')) as string;
    expect(code).toMatch(/^\d{6}$/);
    // A 6-digit code reads as 3-3, and a screen reader is given its digits one by one.
    await expect(shown.locator('span').allTextContents()).resolves.toEqual([code.slice(0, 3), code.slice(3)]);
    const spoken = `Payment code ${code.slice(0, 3).split('').join(' ')}, ${code.slice(3).split('').join(' ')}`;
    await expect(page.getByRole('img', { name: spoken, exact: true }).count()).resolves.toBe(1);
    await page.getByText(/Expires in (19|20):\d\d/).waitFor();
    await page.getByText('Up to $20.00').waitFor();
    await expect(card.textContent()).resolves.toContain('$30.00 available');
    const wallet = await t.http('GET', '/v1/wallet', undefined, await deviceToken(page));
    expect(wallet.body.activeCode.code).toBe(code);
    await screenshot(page, 'wallet-code');

    // The till charges it: the page shows the fate and the new balance without a reload.
    const sale = await pos.redeem({ code, amountCents: 1250 });
    expect(sale.status).toBe('approved');
    await page.getByText('Paid $12.50').waitFor();
    await expect(card.textContent()).resolves.toContain('$37.50');
    await expect(shown.count()).resolves.toBe(0);
    await page.getByText('Payment · Blue Bottle').waitFor();
    await page.getByText('−$12.50').waitFor();
    await screenshot(page, 'wallet-paid');
    await page.getByRole('button', { name: 'Done' }).click();

    // Cancel code: the till can no longer use it.
    await page.getByRole('button', { name: 'Pay' }).click();
    const second = (await shown.getAttribute('data-code')) as string;
    await page.getByRole('button', { name: 'Cancel code' }).click();
    await page.getByText('Code cancelled').waitFor();
    expect((await pos.redeem({ code: second, amountCents: 100 })).status).toBe('invalid_code');
    await expect(card.textContent()).resolves.toContain('$37.50');

    // Value loaded by the store appears live, as a new card.
    await t.load(merchant, phone, 700, 'reward');
    await page.getByRole('article', { name: 'Blue Bottle reward card' }).getByText('$7.00').waitFor();

    // Freeze: the page says so and a code cannot be had; unfreeze restores it.
    await page.getByRole('button', { name: 'Freeze account' }).click();
    await page.getByText('Your account is frozen').first().waitFor();
    await page.getByRole('button', { name: 'Pay' }).click();
    await page.getByText('Unfreeze it to pay').waitFor();
    await screenshot(page, 'wallet-frozen');
    // Unfreezing takes a fresh code texted to the phone, asked for on the page.
    const texted = t.server.devInbox?.inbox.length ?? 0;
    await page.getByRole('button', { name: 'Unfreeze account' }).click();
    await page.getByText('We texted a verification code to your phone.').waitFor();
    const otp = await waitFor(() =>
      (t.server.devInbox?.inbox.length ?? 0) > texted
        ? /([0-9]{6})/.exec(t.server.devInbox?.inbox.at(-1)?.text ?? '')?.[1]
        : undefined,
    );
    await page.getByLabel('Verification code').fill('000000');
    await page.getByRole('button', { name: 'Unfreeze', exact: true }).click();
    await page.getByText('That code is not right').waitFor();
    await page.getByLabel('Verification code').fill(otp);
    await page.getByRole('button', { name: 'Unfreeze', exact: true }).click();
    await page.getByRole('button', { name: 'Freeze account' }).waitFor();
    expect((await t.http('GET', '/v1/wallet', undefined, await deviceToken(page))).body.frozen).toBe(false);

    // A reload keeps the session; the phone keeps the token and nothing personal.
    await page.reload();
    await page.getByRole('status').filter({ hasText: 'Live' }).waitFor();
    await expect(card.textContent()).resolves.toContain('$37.50');
    const stored = await page.evaluate(() => JSON.stringify({ ...localStorage, ...sessionStorage }));
    expect(Object.keys(JSON.parse(stored))).toEqual(['paycode.wallet.token']);
    expect(stored).not.toContain(phone.slice(2));

    // A freeze that also signs out every other device: another device's token and this page's old one stop
    // working; the page goes on with its new token, frozen.
    const other = (await t.consumer(phone)).deviceToken;
    const before = await deviceToken(page);
    await page.getByLabel('Also sign out my other devices').check();
    await page.getByRole('button', { name: 'Freeze account' }).click();
    await page.getByRole('button', { name: 'Unfreeze account' }).waitFor();
    const renewed = await deviceToken(page);
    expect(renewed).not.toBe(before);
    for (const token of [other, before])
      expect((await t.http('GET', '/v1/wallet', undefined, token)).status).toBe(401);
    expect((await t.http('GET', '/v1/wallet', undefined, renewed)).body.frozen).toBe(true);

    // Installable: a manifest and a service worker that caches the app, never the API.
    const scope = await page.evaluate(async () => (await navigator.serviceWorker.ready).scope);
    expect(scope).toBe(`${t.server.url}/wallet/`);
    const cached = await page.evaluate(async () => {
      const names = await caches.keys();
      const urls: string[] = [];
      for (const name of names)
        for (const request of await (await caches.open(name)).keys()) urls.push(request.url);
      return urls;
    });
    expect(cached.length).toBeGreaterThan(0);
    expect(cached.filter((url) => url.includes('/v1/'))).toEqual([]);
    const manifest = await t.http('GET', '/wallet/manifest.webmanifest');
    expect(manifest.body).toMatchObject({ start_url: '/wallet/', display: 'standalone' });
    // Chromium's own verdict on whether the page can be installed as an app; a test browser context is
    // a private one, where nothing installs, so that one reason is expected.
    const devtools = await context.newCDPSession(page);
    const installability = await devtools.send('Page.getInstallabilityErrors');
    expect(installability.installabilityErrors.map((error) => error.errorId)).toEqual(['in-incognito']);

    // Sign out: the token dies on the server too.
    const token = await deviceToken(page);
    await page.getByRole('button', { name: 'Sign out' }).click();
    await page.getByRole('button', { name: 'Send code' }).waitFor();
    expect((await t.http('GET', '/v1/wallet', undefined, token)).status).toBe(401);
    await expect(page.evaluate(() => localStorage.length)).resolves.toBe(0);
    expect(errors).toEqual([]);
    await context.close();
  });

  test('a code used while the phone was cut off shows as paid when it is back', async () => {
    const t = await startTestServer();
    const merchant = await t.merchant('Night Owl');
    const phone = '+15555550114';
    await t.load(merchant, phone, 2000);
    const pos = await t.pos(await t.terminal(merchant));
    const context = await newContext(browser, 'phone');
    // The wallet socket goes through the test: it can swallow the server's frames, then cut the line.
    let deaf = false;
    const lines: { close(): Promise<void> }[] = [];
    await context.routeWebSocket(/\/v1\/wallet$/, (socket) => {
      const server = socket.connectToServer();
      socket.onMessage((message) => server.send(message));
      server.onMessage((message) => {
        if (!deaf) socket.send(message);
      });
      lines.push(socket);
    });
    const { page, errors } = await walletSignIn(context, t.server.url, phone);
    await page.getByRole('button', { name: 'Pay' }).click();
    const code = (await page.locator('[data-code]').getAttribute('data-code')) as string;

    deaf = true;
    expect((await pos.redeem({ code, amountCents: 800 })).status).toBe('approved');
    await page.waitForTimeout(300);
    // Nothing reached the phone: it still shows the code.
    await expect(page.locator('[data-code]').count()).resolves.toBe(1);
    deaf = false;
    await lines.at(-1)?.close();
    await page.getByText('Paid $8.00').waitFor();
    await page.getByRole('article', { name: 'Night Owl gift card' }).getByText('$12.00').waitFor();
    expect(errors).toEqual([]);
    await context.close();
  });

  test('an unused code shows as expired when its time is up', async () => {
    const t = await startTestServer({ env: { PAYCODE_CODE_TTL_MS: '2500' } });
    const merchant = await t.merchant('Tiny Tacos');
    const phone = '+15555550112';
    await t.load(merchant, phone, 900);
    const context = await newContext(browser, 'phone');
    const { page, errors } = await walletSignIn(context, t.server.url, phone);
    await page.getByRole('button', { name: 'Pay' }).click();
    await page.locator('[data-code]').waitFor();
    await page.getByText('Code expired').waitFor({ timeout: 15_000 });
    await expect(
      page.getByRole('article', { name: 'Tiny Tacos gift card' }).textContent(),
    ).resolves.not.toContain('held');
    await screenshot(page, 'wallet-expired');
    expect(errors).toEqual([]);
    await context.close();
  });

  test('a wrong verification code is refused on the page and the inbox page shows the texts', async () => {
    const t = await startTestServer();
    const context = await newContext(browser, 'phone');
    const { page } = await openPage(context, `${t.server.url}/wallet/`);
    await page.getByLabel('Phone number').fill('(555) 555-0113');
    await page.getByRole('button', { name: 'Send code' }).click();
    await page.getByText('We sent a code to +15555550113').waitFor();
    const sent = t.server.devInbox?.inbox.at(-1)?.text ?? '';
    const wrong = sent.includes('000000') ? '111111' : '000000';
    await page.getByLabel('Verification code').fill(wrong);
    await page.getByRole('button', { name: 'Sign in' }).click();
    await page.getByText('That code is not right').waitFor();
    await expect(page.evaluate(() => localStorage.length)).resolves.toBe(0);

    const inbox = await openPage(context, `${t.server.url}/dev/inbox/`);
    await inbox.page.locator('.sms').first().waitFor();
    await expect(inbox.page.locator('mark.otp').first().textContent()).resolves.toMatch(/^\d{6}$/);
    // Payment codes of any length from 6 to 10 digits are set apart too; a longer run of digits is not.
    await t.server.devInbox?.send(
      '+15555550113',
      paymentCodeText('0012345678', 'Night Owl', 2000, 1_200_000),
    );
    await t.server.devInbox?.send('+15555550113', paymentCodeText('12345678', 'Night Owl', 2000, 1_200_000));
    await t.server.devInbox?.send('+15555550113', 'paycode: call 15555550100 or 12345678901 for help.');
    await inbox.page.getByText('for help').waitFor();
    const marks = (text: string) => inbox.page.locator('.sms', { hasText: text }).locator('mark.otp');
    await expect(marks('is 0012345678').allTextContents()).resolves.toEqual(['0012345678']);
    await expect(marks('is 12345678').allTextContents()).resolves.toEqual(['12345678']);
    await expect(marks('for help').count()).resolves.toBe(0);
    await screenshot(inbox.page, 'dev-inbox');
    expect(inbox.errors).toEqual([]);
    await context.close();
  });
});

function deviceToken(page: import('playwright-core').Page): Promise<string> {
  return page.evaluate(() => localStorage.getItem('paycode.wallet.token') as string);
}
