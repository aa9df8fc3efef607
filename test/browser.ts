import { existsSync, mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { type Browser, type BrowserContext, chromium, type Page } from 'playwright-core';

/**
 * Headless Chromium for the web app tests: Debian's `chromium` package (CI installs it), driven by
 * playwright-core; nothing is downloaded. Screenshots of every page go to `.tmp/screenshots/` as test
 * artifacts. Each page records its console errors (a content security policy violation is one) and its
 * uncaught exceptions, and a test expects none.
 */
export const CHROMIUM = process.env.PAYCODE_CHROMIUM ?? '/usr/bin/chromium';
export const SCREENSHOTS = join(import.meta.dirname, '..', '.tmp', 'screenshots');

export async function launchBrowser(): Promise<Browser> {
  if (!existsSync(CHROMIUM))
    throw new Error(
      `the browser tests need Chromium at ${CHROMIUM}: apt-get install chromium, or set PAYCODE_CHROMIUM`,
    );
  return chromium.launch({
    executablePath: CHROMIUM,
    args: [
      '--no-sandbox',
      '--disable-gpu',
      '--disable-quic',
      '--no-first-run',
      '--disable-background-networking',
      '--disable-component-update',
      '--disable-sync',
    ],
  });
}

/** A phone-sized context (the wallet is phone-first) or a desktop one. */
export function newContext(browser: Browser, kind: 'phone' | 'desktop'): Promise<BrowserContext> {
  return kind === 'phone'
    ? browser.newContext({
        viewport: { width: 390, height: 844 },
        deviceScaleFactor: 2,
        isMobile: true,
        hasTouch: true,
      })
    : browser.newContext({ viewport: { width: 1280, height: 860 } });
}

/** A new page whose errors are collected in `errors`. */
export async function openPage(
  context: BrowserContext,
  url: string,
): Promise<{ page: Page; errors: string[] }> {
  const page = await context.newPage();
  const errors: string[] = [];
  page.on('console', (message) => {
    // A 4xx answer is the API saying no (a decline, a wrong code), which the page shows; Chromium logs it
    // as an error all the same.
    const refusal = /^Failed to load resource: the server responded with a status of 4\d\d/;
    if (message.type() === 'error' && !refusal.test(message.text())) errors.push(message.text());
  });
  page.on('pageerror', (error) => errors.push(error.message));
  await page.goto(url);
  return { page, errors };
}

export async function screenshot(page: Page, name: string): Promise<string> {
  mkdirSync(SCREENSHOTS, { recursive: true });
  const path = join(SCREENSHOTS, `${name}.png`);
  await page.screenshot({ path, fullPage: true });
  return path;
}

/**
 * Signs a phone in on the wallet page as a person would: the number, "Send code", the code read from
 * the development inbox page, "Sign in". Returns when the wallet is live.
 */
export async function walletSignIn(context: BrowserContext, url: string, phone: string) {
  const wallet = await openPage(context, `${url}/wallet/`);
  const { page } = wallet;
  await page.getByLabel('Phone number').fill(phone);
  await page.getByRole('button', { name: 'Send code' }).click();
  await page.getByLabel('Verification code').waitFor();
  const inbox = await context.newPage();
  await inbox.goto(`${url}/dev/inbox/`);
  await inbox.getByLabel('Phone number').fill(phone);
  const otp = inbox.locator('.sms', { hasText: 'verification' }).first().locator('mark.otp');
  const code = (await otp.textContent({ timeout: 10_000 })) ?? '';
  await inbox.close();
  await page.getByLabel('Verification code').fill(code);
  await page.getByRole('button', { name: 'Sign in' }).click();
  await page.getByRole('status').filter({ hasText: 'Live' }).waitFor();
  return wallet;
}
