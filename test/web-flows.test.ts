import type { Page } from 'playwright-core';
import { afterAll, beforeAll, expect, test } from 'vitest';
import { launchBrowser, newContext, openPage, screenshot, walletSignIn } from './browser.ts';
import { startTestServer } from './server-helpers.ts';

/**
 * The three web apps together, each in its own browser context as on three devices: the merchant issues
 * a card on the dashboard and it appears live in the wallet; the dashboard makes a till, the POS page
 * activates with its code; the phone shows a code, the till charges it, and the phone shows the fate and
 * the new balance without a reload; then a declined and a partial charge.
 */
let browser: Awaited<ReturnType<typeof launchBrowser>>;
beforeAll(async () => {
  browser = await launchBrowser();
});
afterAll(async () => {
  await browser?.close();
});

test('dashboard, wallet and POS page: issue, activate, pay, decline, split tender', async () => {
  const t = await startTestServer();
  const merchant = await t.merchant('Harbor Books');
  const phone = '+15555550140';

  const phoneContext = await newContext(browser, 'phone');
  const wallet = await walletSignIn(phoneContext, t.server.url, phone);
  await wallet.page.getByText('No cards yet').waitFor();

  // The merchant issues a gift card on the dashboard; the phone shows it at once.
  const office = await openPage(await newContext(browser, 'desktop'), `${t.server.url}/merchant/`);
  await office.page.getByLabel('API key').fill(merchant.apiKey);
  await office.page.getByRole('button', { name: 'Sign in' }).click();
  await office.page.getByRole('heading', { name: 'Harbor Books' }).waitFor();
  await office.page.getByLabel('Phone number').fill(phone);
  await office.page.getByLabel('Amount in dollars').fill('40');
  await office.page.getByRole('button', { name: 'Issue card' }).click();
  await office.page.getByText('Issued a $40.00 gift card').waitFor();
  const card = wallet.page.getByRole('article', { name: 'Harbor Books gift card' });
  await card.getByText('$40.00').waitFor();

  // The dashboard makes a till; the POS page activates with the code it shows.
  await office.page.getByRole('tab', { name: 'Terminals' }).click();
  await office.page.getByLabel('Terminal label').fill('Front desk');
  await office.page.getByRole('button', { name: 'Create terminal' }).click();
  const activationCode =
    (await office.page.getByRole('status').getByLabel('Activation code').textContent()) ?? '';
  const till = await openPage(await newContext(browser, 'desktop'), `${t.server.url}/pos/`);
  await till.page.getByLabel('Activation code', { exact: true }).fill(activationCode);
  await till.page.getByRole('button', { name: 'Activate', exact: true }).click();
  await till.page.locator('.status-dot[data-state="online"]').waitFor();

  // Pay: the phone shows a code, the till charges it, the phone shows the fate and the balance.
  let code = await showCode(wallet.page);
  await charge(till.page, code, '12.50');
  await result(till.page, 'approved');
  await wallet.page.getByText('Paid $12.50').waitFor();
  await card.getByText('$27.50').waitFor();
  await expect(wallet.page.locator('[data-code]').count()).resolves.toBe(0);
  await screenshot(wallet.page, 'flow-wallet-paid');
  await wallet.page.getByRole('button', { name: 'Done' }).click();

  // Declined: above the code's limit. The phone still shows the code, and nothing moved.
  code = await showCode(wallet.page, '5');
  await charge(till.page, code, '10.00');
  const declined = await result(till.page, 'declined');
  expect(declined).toMatch(/limit/i);
  await expect(wallet.page.locator('[data-code]').getAttribute('data-code')).resolves.toBe(code);
  await expect(card.textContent()).resolves.toContain('$27.50');

  // Split tender: the same code approves what it may, and the till says what is still due.
  await charge(till.page, code, '10.00', true);
  const partial = await result(till.page, 'partial');
  expect(partial).toContain('$5.00 approved, $5.00 still due');
  await wallet.page.getByText('Paid $5.00').waitFor();
  await card.getByText('$22.50').waitFor();
  const wallets = await t.http('GET', '/v1/wallet', undefined, await token(wallet.page));
  expect(wallets.body.cards.map((c: { balanceCents: number }) => c.balanceCents)).toEqual([2250]);

  // The dashboard's transactions show both sales.
  await office.page.getByRole('tab', { name: 'Transactions' }).click();
  await office.page.getByRole('cell', { name: '+$12.50' }).waitFor();
  await office.page.getByRole('cell', { name: '+$5.00' }).waitFor();
  await screenshot(office.page, 'flow-merchant-transactions');

  for (const page of [wallet, office, till]) expect(page.errors).toEqual([]);
});

test('a store whose codes have 8 digits: the phone shows 4-4, the till reads and charges it', async () => {
  const t = await startTestServer();
  const merchant = await t.merchant('Long Codes Deli', undefined, { codeDigitsMin: 8 });
  const read = await t.http('GET', `/v1/merchants/${merchant.merchantId}`, undefined, merchant.apiKey);
  expect(read.body.codeDigitsMin).toBe(8);
  const phone = '+15555550142';
  await t.load(merchant, phone, 3_000);

  // The phone shows the code in two groups of four, and names it digit by digit for a screen reader.
  const wallet = await walletSignIn(await newContext(browser, 'phone'), t.server.url, phone);
  const card = wallet.page.getByRole('article', { name: 'Long Codes Deli gift card' });
  await card.getByText('$30.00').waitFor();
  const code = await showCode(wallet.page);
  expect(code).toMatch(/^\d{8}$/);
  const issued = await t.http('GET', '/v1/wallet', undefined, await token(wallet.page));
  expect(issued.body.activeCode.code).toBe(code);
  const shown = wallet.page.locator('[data-code]');
  await expect(shown.locator('span').allTextContents()).resolves.toEqual([code.slice(0, 4), code.slice(4)]);
  const spoken = `Payment code ${code.slice(0, 4).split('').join(' ')}, ${code.slice(4).split('').join(' ')}`;
  await expect(wallet.page.getByRole('img', { name: spoken, exact: true }).count()).resolves.toBe(1);
  // What assistive technology gets: the name, not the grouped digits as text.
  const tree = await wallet.page.locator('.code-panel').ariaSnapshot();
  expect(tree).toContain(`img "${spoken}"`);
  expect(tree).not.toContain(code.slice(0, 4));
  // Both groups sit on one line of a phone-sized screen.
  const [first, second] = await shown
    .locator('span')
    .evaluateAll((spans) => spans.map((span) => span.getBoundingClientRect().top));
  expect(first).toBe(second);
  await screenshot(wallet.page, 'flow-wallet-code-8-digits');

  // The till: typed on the keyboard, the entry is grouped and counted as it grows.
  const created2 = await t.http(
    'POST',
    `/v1/merchants/${merchant.merchantId}/terminals`,
    { label: 'deli till' },
    merchant.apiKey,
  );
  expect(created2.status).toBe(201);
  const till = await openPage(await newContext(browser, 'desktop'), `${t.server.url}/pos/`);
  await till.page.getByLabel('Activation code', { exact: true }).fill(created2.body.activationCode);
  await till.page.getByRole('button', { name: 'Activate', exact: true }).click();
  await till.page.locator('.status-dot[data-state="online"]').waitFor();
  const field = till.page.getByLabel('Payment code', { exact: true });
  const hint = till.page.locator('#sale-code-hint');
  await expect(hint.textContent()).resolves.toBe('The 6 to 10 digits on the customer’s phone');
  await field.click();
  await field.pressSequentially('12345');
  await expect(field.inputValue()).resolves.toBe('123 45');
  await expect(hint.textContent()).resolves.toBe('5 digits so far: codes have 6 to 10');
  await field.pressSequentially('67');
  await expect(field.inputValue()).resolves.toBe('1234 567');
  await expect(hint.textContent()).resolves.toBe('7 digits');
  // Backspace just after the space between the groups takes the digit before it.
  await field.press('ArrowLeft');
  await field.press('ArrowLeft');
  await field.press('ArrowLeft');
  await field.press('Backspace');
  await expect(field.inputValue()).resolves.toBe('123 567');
  await field.press('End');
  await field.pressSequentially('89a01');
  await expect(field.inputValue()).resolves.toBe('1235 678 901');
  await expect(hint.textContent()).resolves.toBe('10 digits');
  // Ten digits is the most a code has: the entry stops there and moves on to the amount.
  await expect(till.page.evaluate(() => document.activeElement?.id)).resolves.toBe('sale-amount');
  await field.click();
  await field.press('End');
  await field.press('5');
  await expect(field.inputValue()).resolves.toBe('1235 678 901');
  await field.fill('');
  await expect(hint.textContent()).resolves.toBe('The 6 to 10 digits on the customer’s phone');

  // The customer's code on the keypad: shown as 4-4 and "8 digits", sent as its plain digits.
  const keypad = till.page.getByRole('group', { name: 'Keypad' });
  await field.click();
  for (const digit of code) await keypad.getByRole('button', { name: digit, exact: true }).click();
  await expect(field.inputValue()).resolves.toBe(`${code.slice(0, 4)} ${code.slice(4)}`);
  await till.page.getByText('8 digits', { exact: true }).waitFor();
  await keypad.getByRole('button', { name: 'Delete last digit' }).click();
  await expect(hint.textContent()).resolves.toBe('7 digits');
  await keypad.getByRole('button', { name: code.at(-1) as string, exact: true }).click();
  await expect(field.inputValue()).resolves.toBe(`${code.slice(0, 4)} ${code.slice(4)}`);
  await screenshot(till.page, 'flow-pos-code-8-digits');
  await till.page.getByLabel('Amount', { exact: true }).click();
  for (const key of ['1', '2', '.', '5', '0'])
    await keypad.getByRole('button', { name: key, exact: true }).click();
  await till.page.getByText('Charging $12.50').waitFor();
  await till.page.getByRole('button', { name: 'Charge', exact: true }).click();
  const approved = await result(till.page, 'approved');
  expect(approved).toContain('$12.50');
  await expect(field.inputValue()).resolves.toBe('');

  // The phone hears the sale at once.
  await wallet.page.getByText('Paid $12.50').waitFor();
  await card.getByText('$17.50').waitFor();
  await expect(shown.count()).resolves.toBe(0);
  const after = await t.http('GET', '/v1/wallet', undefined, await token(wallet.page));
  expect(after.body.cards.map((c: { balanceCents: number }) => c.balanceCents)).toEqual([1750]);
  expect(after.body.activeCode).toBeNull();

  for (const page of [wallet, till]) expect(page.errors).toEqual([]);
});

async function showCode(wallet: Page, limitDollars?: string): Promise<string> {
  if (limitDollars) await wallet.getByLabel('Limit (optional)').fill(limitDollars);
  await wallet.getByRole('button', { name: 'Pay' }).click();
  return (await wallet.locator('[data-code]').getAttribute('data-code')) as string;
}

async function charge(till: Page, code: string, dollars: string, partial = false): Promise<void> {
  await till.getByLabel('Payment code', { exact: true }).fill(code);
  await till.getByLabel('Amount', { exact: true }).fill(dollars);
  await till.getByLabel('Allow partial approval (split tender)').setChecked(partial);
  await till.getByRole('button', { name: 'Charge', exact: true }).click();
}

/** The till's result panel once it shows `outcome`, as text (and a screenshot); then a new sale. */
async function result(till: Page, outcome: string): Promise<string> {
  const panel = till.locator(`.pos-result[data-outcome="${outcome}"]`);
  await panel.waitFor();
  const text = (await panel.textContent()) ?? '';
  await screenshot(till, `flow-pos-${outcome}`);
  await till.getByRole('button', { name: 'New sale' }).click();
  return text;
}

function token(page: Page): Promise<string> {
  return page.evaluate(() => localStorage.getItem('paycode.wallet.token') as string);
}
