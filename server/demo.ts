import type { Engine } from '../engine/engine.ts';
import type { Registry } from '../gateway/registry.ts';

/**
 * Demo data for a fresh data directory (`PAYCODE_DEMO=1`, the default): a merchant, an activated
 * terminal, a terminal waiting for the browser POS page, and a consumer with a funded gift card, so a newcomer can try a payment at once. Returns the
 * lines to print; they hold the demo's keys, which is the point of a demo and never done otherwise.
 *
 * @module
 */

export const DEMO_PHONE = '+15555550100';

export async function createDemo(engine: Engine, registry: Registry, url: string): Promise<string[]> {
  const created = await registry.merchants.create({
    name: 'Demo Coffee',
    keyword: 'COFFEE',
    feeBps: 0,
    feeFixedCents: 0,
    bank: { routingNumber: '021000021', accountNumber: '000123456789', accountType: 'checking' },
  });
  if ('status' in created) throw new Error(`demo merchant: ${created.message}`);
  const { merchantId, apiKey } = created;
  const { activationCode } = await registry.terminals.create(merchantId, 'Demo till');
  const terminal = await registry.terminals.activate(activationCode);
  if (!terminal) throw new Error('demo terminal could not be activated');
  // A second till left for the browser POS page to activate.
  const browserTill = await registry.terminals.create(merchantId, 'Browser till');
  await registry.phones.remember(engine.consumerIdFor(DEMO_PHONE), DEMO_PHONE);
  const loaded = await engine.loadValue({
    merchantId,
    phone: DEMO_PHONE,
    kind: 'gift',
    funding: 'merchant',
    amountCents: 5_000,
    idempotencyKey: 'demo-gift',
  });
  if (loaded.status !== 'approved') throw new Error(`demo card: ${loaded.status}`);
  return [
    `demo: merchant "Demo Coffee" ${merchantId} (SMS keyword COFFEE), API key ${apiKey}`,
    `demo: terminal ${terminal.terminalId}, terminal key ${terminal.terminalKey}`,
    `demo: consumer ${DEMO_PHONE} holds a $50.00 Demo Coffee gift card`,
    `demo: sign in with  curl -X POST ${url}/v1/consumers -d '{"phone":"${DEMO_PHONE}"}'  (the code is printed below)`,
    `demo: in a browser: the wallet ${url}/wallet/ (sign in as ${DEMO_PHONE}; texts show at ${url}/dev/inbox/),`,
    `demo:   the POS ${url}/pos/ (activation code ${browserTill.activationCode}, valid 24 h),`,
    `demo:   the merchant dashboard ${url}/merchant/ (the API key above)`,
    `demo: or try a payment with  npm run pos -- --url ${url} --terminal ${terminal.terminalId} --key=${terminal.terminalKey} redeem <code> <cents>`,
  ];
}
