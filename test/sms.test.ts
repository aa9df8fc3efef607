/**
 * Texts over SMPP against an SMSC simulator (a real SMPP peer on loopback): the verification code, a
 * confirmation after every redemption, void and refund, the SMS-only channel (PAY, CANCEL, BAL, HIST, GIFT
 * with its YES, STOP, HELP),
 * delivery receipts, and the transactional outbox: a text queued while the SMSC is down or refusing is
 * delivered once it is back, also across a server restart, and never twice.
 */
import { readFileSync } from 'node:fs';
import { afterEach, describe, expect, it } from 'vitest';
import type { ConsumerId, MerchantId } from '../core/ids.ts';
import type { Limits } from '../core/limits.ts';
import { SmsGifts } from '../gateway/sms-gifts.ts';
import { smsParts } from '../notify/sms-parts.ts';
import { selfSignedCertificate } from './helpers.ts';
import { OPERATOR_TOKEN, startTestServer, type TestServer, waitFor } from './server-helpers.ts';
import { SmscSimulator } from './smsc-simulator.ts';

const PHONE = '+15555550180';
let smsc: SmscSimulator;

afterEach(async () => {
  // The pure tests below start none.
  await smsc?.stop();
});

async function smppServer(limits: Partial<Limits> = {}): Promise<TestServer> {
  smsc = new SmscSimulator();
  await smsc.start();
  const t = await startTestServer({ env: { PAYCODE_SMS: smsc.url }, limits });
  await waitFor(() => (smsc.binds.length > 0 ? true : undefined));
  return t;
}

const textsTo = (phone: string) =>
  smsc.submitted.filter((text) => text.to === phone).map((text) => text.text);

/** Signs a phone in, reading the verification code from the text the SMSC received. */
async function signIn(t: TestServer, phone: string): Promise<string> {
  expect((await t.http('POST', '/v1/consumers', { phone })).status).toBe(202);
  const text = await waitFor(() => textsTo(phone).find((body) => body.includes('verification')));
  const otp = /([0-9]{6})/.exec(text)?.[1];
  const verified = await t.http('POST', '/v1/consumers/verify', { phone, otp });
  expect(verified.status).toBe(200);
  return verified.body.deviceToken;
}

describe('SMS over SMPP', () => {
  it('sends the verification code and a confirmation for every redemption, void and refund', async () => {
    const t = await smppServer();
    const merchant = await t.merchant('Tea House');
    const deviceToken = await signIn(t, PHONE);
    expect(smsc.submitted[0]).toMatchObject({ to: PHONE, dataCoding: 0, registeredDelivery: 1 });
    await t.load(merchant, PHONE, 5_000);
    const pos = await t.pos(await t.terminal(merchant));
    const code = await t.http('POST', '/v1/wallet/codes', { merchantId: merchant.merchantId }, deviceToken);
    const sale = await pos.redeem({ code: code.body.code, amountCents: 1_250 });
    await pos.refund(sale.authId as string, 250);
    await pos.void(sale.authId as string);
    const texts = await waitFor(() => (textsTo(PHONE).length >= 4 ? textsTo(PHONE) : undefined));
    expect(texts.slice(1)).toEqual([
      `paycode: $12.50 paid at Tea House. New balance there $37.50. Ref ${sale.authId}`,
      expect.stringMatching(/^paycode: Tea House refunded \$2\.50\. New balance there \$40\.00\. Ref rf_/),
      `paycode: Your $10.00 payment at Tea House was voided. New balance there $50.00. Ref ${sale.authId}`,
    ]);
    // Each accepted text came back with a delivery receipt.
    await waitFor(async () => {
      const metrics = (await t.http('GET', '/metrics')).body as string;
      return /paycode_sms_delivery_receipts_total\{state="DELIVRD"\} 4/.test(metrics) ? true : undefined;
    });
    // Codes and texts never reach the server's own output.
    expect(t.lines.join('\n')).not.toContain(code.body.code);
  });

  it('answers PAY, CANCEL, BAL, STOP and HELP texts', async () => {
    const t = await smppServer();
    const merchant = await t.merchant('Corner Cafe', 'CAFE');
    await t.load(merchant, PHONE, 3_000);
    const deviceToken = await signIn(t, PHONE);

    smsc.deliver(PHONE, 'pay cafe 12.50');
    const payText = await waitFor(() => textsTo(PHONE).find((text) => text.includes('your code')));
    const code = /is ([0-9]{6})/.exec(payText)?.[1];
    expect(payText).toContain('Corner Cafe');
    expect(payText).toContain('up to $12.50');
    const wallet = await t.http('GET', '/v1/wallet', undefined, deviceToken);
    expect(wallet.body.activeCode).toMatchObject({ code, capCents: 1_250, merchantId: merchant.merchantId });

    smsc.deliver(PHONE, 'cancel');
    await waitFor(() => textsTo(PHONE).find((text) => text.includes('code is cancelled')));
    expect((await t.http('GET', '/v1/wallet', undefined, deviceToken)).body.activeCode).toBeNull();
    smsc.deliver(PHONE, 'CANCEL');
    await waitFor(() => textsTo(PHONE).find((text) => text.includes('no live payment code')));
    smsc.deliver(PHONE, 'PAY CAFE');
    await waitFor(
      () => textsTo(PHONE).filter((text) => text.includes('your code')).length === 2 || undefined,
    );
    // A store that chose longer codes texts them whole.
    const set = { codeDigitsMin: 8 };
    expect(
      (await t.http('POST', `/v1/merchants/${merchant.merchantId}/code-digits`, set, OPERATOR_TOKEN)).status,
    ).toBe(200);
    smsc.deliver(PHONE, 'PAY CAFE');
    const longText = await waitFor(() => textsTo(PHONE).filter((text) => text.includes('your code'))[2]);
    const longCode = /is ([0-9]+),/.exec(longText)?.[1];
    expect(longCode).toMatch(/^[0-9]{8}$/);
    expect((await t.http('GET', '/v1/wallet', undefined, deviceToken)).body.activeCode.code).toBe(longCode);

    smsc.deliver(PHONE, 'BAL');
    expect(await waitFor(() => textsTo(PHONE).find((text) => text.includes('gift $30.00')))).toBe(
      'paycode: Corner Cafe gift $30.00.',
    );
    smsc.deliver(PHONE, 'PAY NOWHERE');
    await waitFor(() => textsTo(PHONE).find((text) => text.includes('no store uses the keyword NOWHERE')));
    smsc.deliver(PHONE, 'what?');
    await waitFor(() => textsTo(PHONE).find((text) => text.startsWith('paycode: text PAY')));
    smsc.deliver(PHONE, 'STOP');
    await waitFor(() => textsTo(PHONE).find((text) => text.includes('frozen')));
    const frozen = await t.http('GET', '/v1/wallet', undefined, deviceToken);
    expect(frozen.body).toMatchObject({ frozen: true, activeCode: null });
  });

  it('gives gift value by GIFT once the giver confirms with the code texted back, and answers HIST', async () => {
    const t = await smppServer();
    const merchant = await t.merchant('Corner Cafe', 'CAFE');
    await t.load(merchant, PHONE, 3_000);
    const FRIEND = '+15555550181';

    smsc.deliver(PHONE, 'GIFT CAFE +15555550181 12.50');
    const ask = await waitFor(() => textsTo(PHONE).find((text) => text.includes('reply YES')));
    expect(ask).toMatch(
      /to give \$12\.50 of your Corner Cafe gift card to \+15555550181, reply YES [0-9]{6} within 10 min/,
    );
    const code = /YES ([0-9]{6})/.exec(ask)?.[1] as string;
    // Nothing moves before the confirmation, and a wrong code moves nothing either.
    smsc.deliver(PHONE, `YES ${code === '000000' ? '111111' : '000000'}`);
    await waitFor(() => textsTo(PHONE).find((text) => text.includes('does not match')));
    smsc.deliver(PHONE, 'BAL');
    await waitFor(() => textsTo(PHONE).find((text) => text === 'paycode: Corner Cafe gift $30.00.'));
    expect(textsTo(FRIEND)).toEqual([]);

    smsc.deliver(PHONE, `yes ${code}`);
    expect(await waitFor(() => textsTo(PHONE).find((text) => text.includes('You gave')))).toMatch(
      /You gave \$12\.50 of your Corner Cafe gift card\. New balance there \$17\.50\./,
    );
    expect(await waitFor(() => textsTo(FRIEND).find((text) => text.includes('given')))).toMatch(
      /You were given a \$12\.50 gift card for Corner Cafe/,
    );
    // The same confirmation again gives nothing more.
    smsc.deliver(PHONE, `YES ${code}`);
    await waitFor(() => textsTo(PHONE).find((text) => text.includes('no gift is waiting')));
    smsc.deliver(PHONE, 'GIFT CAFE +15555550181 100');
    const second = await waitFor(() => textsTo(PHONE).filter((text) => text.includes('reply YES'))[1]);
    smsc.deliver(PHONE, `YES ${/YES ([0-9]{6})/.exec(second)?.[1]}`);
    await waitFor(() =>
      textsTo(PHONE).find((text) => text.includes('do not have $100.00 of gift card value')),
    );
    smsc.deliver(PHONE, 'GIFT CAFE 5555550181 5');
    await waitFor(() => textsTo(PHONE).find((text) => text.includes('with + and its country code')));

    smsc.deliver(PHONE, 'HIST');
    expect(await waitFor(() => textsTo(PHONE).find((text) => text.includes(' gift Corner Cafe')))).toMatch(
      /^paycode: -\$12\.50 gift Corner Cafe [A-Z][a-z]{2} [0-9]{1,2}; \+\$30\.00 added Corner Cafe [A-Z][a-z]{2} [0-9]{1,2}\.$/,
    );
  });

  it('turns GIFT by text off for the day after too many wrong codes, so codes cannot be guessed', async () => {
    const t = await smppServer({ smsGiftWrongCodesPerDayMax: 2 });
    const merchant = await t.merchant('Corner Cafe', 'CAFE');
    await t.load(merchant, PHONE, 3_000);
    smsc.deliver(PHONE, 'GIFT CAFE +15555550181 10');
    const ask = await waitFor(() => textsTo(PHONE).find((text) => text.includes('reply YES')));
    const code = /YES ([0-9]{6})/.exec(ask)?.[1] as string;
    const wrong = code === '000000' ? '111111' : '000000';
    smsc.deliver(PHONE, `YES ${wrong}`);
    await waitFor(() => textsTo(PHONE).find((text) => text.includes('does not match')));
    smsc.deliver(PHONE, `YES ${wrong}`);
    await waitFor(() => textsTo(PHONE).find((text) => text.includes('too many wrong codes')));
    // The right code is no use now, and a new GIFT is refused until tomorrow.
    smsc.deliver(PHONE, `YES ${code}`);
    await waitFor(() => textsTo(PHONE).find((text) => text.includes('no gift is waiting')));
    smsc.deliver(PHONE, 'GIFT CAFE +15555550181 10');
    await waitFor(
      () => textsTo(PHONE).filter((text) => text.includes('too many wrong codes')).length === 2 || undefined,
    );
    expect(textsTo('+15555550181')).toEqual([]);
    smsc.deliver(PHONE, 'BAL');
    await waitFor(() => textsTo(PHONE).find((text) => text === 'paycode: Corner Cafe gift $30.00.'));
  });

  it('sends every character as written, in GSM 7-bit when it can and UCS-2 otherwise, long texts in parts', async () => {
    const t = await smppServer();
    const deviceToken = await signIn(t, PHONE);
    // Every character of the GSM alphabet and its extension table: one GSM 7-bit SMS.
    const gsm = await t.merchant('Café €uro [Ñ] {ü}');
    // A curly apostrophe and an emoji need UCS-2; 100 characters make the text three parts of it.
    const name = `Joe’s ☕ ${'Roastery '.repeat(10)}Inc`.slice(0, 100);
    const ucs2 = await t.merchant(name);
    const pos = await t.pos(await t.terminal(gsm));
    const otherPos = await t.pos(await t.terminal(ucs2));
    await t.load(gsm, PHONE, 1_000);
    await t.load(ucs2, PHONE, 1_000);
    for (const [merchant, till] of [
      [gsm, pos],
      [ucs2, otherPos],
    ] as const) {
      const code = await t.http('POST', '/v1/wallet/codes', { merchantId: merchant.merchantId }, deviceToken);
      expect((await till.redeem({ code: code.body.code, amountCents: 100 })).status).toBe('approved');
    }
    const sent = (merchantName: string) =>
      waitFor(() => smsc.submitted.find((text) => text.to === PHONE && text.text.includes(merchantName)));
    expect(await sent('Café €uro [Ñ] {ü}')).toMatchObject({ dataCoding: 0, parts: 1 });
    const long = await sent(name);
    expect(long.text).toMatch(
      new RegExp(`^paycode: \\$1\\.00 paid at ${name.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}\\.`),
    );
    expect(long).toMatchObject({ dataCoding: 8, parts: Math.ceil(long.text.length / 67) });
  });

  it('keeps a text the SMSC refuses for good with the dead texts, sends the next, and resends it on request', async () => {
    const t = await smppServer();
    smsc.refuseWith = 0x0b; // ESME_RINVDSTADR: no retry can change it
    expect((await t.http('POST', '/v1/consumers', { phone: PHONE })).status).toBe(202);
    const listed = await waitFor(async () => {
      const answer = await t.http('GET', '/v1/texts/dead', undefined, OPERATOR_TOKEN);
      return answer.body.texts?.length === 1 ? answer.body.texts : undefined;
    });
    expect(listed[0]).toEqual({
      id: expect.stringMatching(/^[0-9]+-[0-9]+-[0-9]+$/),
      kind: 'text',
      consumerId: expect.stringMatching(/^cu_/),
      queuedAtMs: expect.any(Number),
      failedAtMs: expect.any(Number),
      reason: 'submit_sm refused with status 11',
    });
    expect(t.server.outbox.pending()).toBe(0);
    const metrics = (await t.http('GET', '/metrics')).body as string;
    expect(metrics).toContain('paycode_sms_sent_total{result="refused"} 1');
    // Not retried: the SMSC sees no second attempt, and the next text is not held up behind it.
    smsc.refuseWith = null;
    const other = '+15555550181';
    expect((await t.http('POST', '/v1/consumers', { phone: other })).status).toBe(202);
    await waitFor(() => textsTo(other).find((text) => text.includes('verification')));
    expect(textsTo(PHONE)).toEqual([]);
    // Only the operator lists or resends them.
    const merchant = await t.merchant('Kiosk');
    expect((await t.http('GET', '/v1/texts/dead', undefined, merchant.apiKey)).status).toBe(403);
    const path = `/v1/texts/dead/${listed[0].id}/resend`;
    expect((await t.http('POST', path, {}, merchant.apiKey)).status).toBe(403);
    expect((await t.http('POST', path, {}, OPERATOR_TOKEN)).body).toEqual({ resent: true });
    await waitFor(() => textsTo(PHONE).find((text) => text.includes('verification')));
    expect((await t.http('GET', '/v1/texts/dead', undefined, OPERATOR_TOKEN)).body).toEqual({ texts: [] });
    expect((await t.http('POST', path, {}, OPERATOR_TOKEN)).status).toBe(404);
    expect((await t.http('POST', '/v1/texts/dead/nonsense/resend', {}, OPERATOR_TOKEN)).status).toBe(404);
  });

  it('talks to an SMSC over TLS (ssmpp://), trusting only a certificate it can check', async () => {
    const { certFile, keyFile, cert } = selfSignedCertificate();
    smsc = new SmscSimulator('paycode', 'secret', { cert, key: readFileSync(keyFile, 'utf8') });
    await smsc.start();
    // Without the private CA the certificate cannot be checked, so the link never binds.
    const untrusting = await startTestServer({ env: { PAYCODE_SMS: smsc.url } });
    await new Promise((resolve) => setTimeout(resolve, 500));
    expect(smsc.binds).toEqual([]);
    await untrusting.server.close();
    const t = await startTestServer({ env: { PAYCODE_SMS: smsc.url, PAYCODE_SMS_CA_FILE: certFile } });
    await waitFor(() => (smsc.binds.length > 0 ? true : undefined));
    expect((await t.http('POST', '/v1/consumers', { phone: PHONE })).status).toBe(202);
    expect(await waitFor(() => textsTo(PHONE).find((text) => text.includes('verification')))).toMatch(
      /^Your paycode verification code is [0-9]{6}\./,
    );
  });

  it('answers nothing to a sender whose number no phone can have, and changes nothing for it', async () => {
    const t = await smppServer();
    smsc.deliver('+10000000', 'BAL');
    await waitFor(async () => {
      const metrics = (await t.http('GET', '/metrics')).body as string;
      return metrics.includes('paycode_sms_inbound_total{command="NOT_A_PHONE"} 1') ? true : undefined;
    });
    await new Promise((resolve) => setTimeout(resolve, 300));
    expect(smsc.submitted).toEqual([]);
  });

  it('retries a text whose submission the SMSC never answered', async () => {
    const t = await smppServer({ smsSubmitTimeoutMs: 300 });
    smsc.silent = true;
    expect((await t.http('POST', '/v1/consumers', { phone: PHONE })).status).toBe(202);
    await new Promise((resolve) => setTimeout(resolve, 500));
    expect(t.server.outbox.pending()).toBe(1);
    const outboxGauge = async () =>
      /^paycode_sms_outbox_pending (\d+)$/m.exec(await (await fetch(`${t.server.url}/metrics`)).text())?.[1];
    expect(await outboxGauge()).toBe('1');
    smsc.silent = false;
    await waitFor(() => textsTo(PHONE).find((text) => text.includes('verification')), 10_000);
    await waitFor(() => (t.server.outbox.pending() === 0 ? true : undefined));
    expect(await outboxGauge()).toBe('0');
  });

  it('delivers a text queued while the SMSC was down once it is back, and after a restart, exactly once', async () => {
    const t = await smppServer();
    const merchant = await t.merchant('Night Owl');
    const deviceToken = await signIn(t, PHONE);
    await t.load(merchant, PHONE, 2_000);
    const pos = await t.pos(await t.terminal(merchant));

    const port = smsc.port;
    await smsc.stop();
    let code = await t.http('POST', '/v1/wallet/codes', { merchantId: merchant.merchantId }, deviceToken);
    const first = await pos.redeem({ code: code.body.code, amountCents: 100 });
    expect(first.status).toBe('approved');
    await new Promise((resolve) => setTimeout(resolve, 300));
    await smsc.start(port);
    await waitFor(() => textsTo(PHONE).find((text) => text.includes(first.authId as string)), 10_000);

    // The SMSC refuses; the server goes down with the text still queued; it is delivered after the restart.
    smsc.refuseWith = 0x58;
    code = await t.http('POST', '/v1/wallet/codes', { merchantId: merchant.merchantId }, deviceToken);
    const second = await pos.redeem({ code: code.body.code, amountCents: 200 });
    await waitFor(() => (t.server.outbox.pending() === 1 ? true : undefined));
    await t.restart();
    smsc.refuseWith = null;
    await waitFor(() => textsTo(PHONE).find((text) => text.includes(second.authId as string)), 10_000);
    await new Promise((resolve) => setTimeout(resolve, 500));
    for (const authId of [first.authId, second.authId]) {
      expect(textsTo(PHONE).filter((text) => text.includes(authId as string))).toHaveLength(1);
    }
    expect(t.server.outbox.pending()).toBe(0);
  });

  it('answers an unknown number once a day and any number a few times an hour, so no reply loop runs', async () => {
    const t = await smppServer({ smsRepliesPerNumberPerHourMax: 4 });
    const stranger = '+15555550190';
    // An auto-responder that answers every text: one reply, then silence.
    for (let i = 0; i < 6; i++) smsc.deliver(stranger, `Thanks for your message ${i}`);
    await waitFor(() => (textsTo(stranger).length === 1 ? true : undefined));
    // A consumer who holds value gets answers, up to the hourly budget.
    const merchant = await t.merchant('Corner Cafe', 'CAFE');
    await t.load(merchant, PHONE, 1_000);
    for (let i = 0; i < 6; i++) smsc.deliver(PHONE, 'BAL');
    await waitFor(() =>
      textsTo(PHONE).filter((text) => text.includes('gift $10.00')).length === 4 ? true : undefined,
    );
    // Give the dropped texts time to show if they were answered after all.
    await new Promise((resolve) => setTimeout(resolve, 500));
    expect(textsTo(stranger)).toHaveLength(1);
    expect(textsTo(PHONE).filter((text) => text.includes('gift $10.00'))).toHaveLength(4);
    // Past the budget a STOP is still acted on, unanswered: a consumer can always stop a code.
    const consumerId = t.server.engine.consumerIdFor(PHONE);
    smsc.deliver(PHONE, 'STOP');
    await waitFor(async () => ((await t.server.engine.wallet(consumerId))?.frozen ? true : undefined));
    expect(textsTo(PHONE).filter((text) => text.includes('frozen'))).toEqual([]);
    const metrics = await (await fetch(`${t.server.url}/metrics`)).text();
    expect(metrics).toMatch(/paycode_sms_inbound_total\{command="THROTTLED"\} 8/);
  });
});

describe('SMS parts', () => {
  const body = (part: Buffer) => part.subarray(6);

  it('fits 160 GSM or 70 UCS-2 characters in one SMS, and cuts longer texts into 153 or 67 a part', () => {
    expect(smsParts('a'.repeat(160), 1)?.parts).toHaveLength(1);
    const gsm = smsParts('a'.repeat(161), 7);
    expect(gsm?.parts.map((part) => body(part).length)).toEqual([153, 8]);
    expect([...(gsm?.parts[1]?.subarray(0, 6) ?? [])]).toEqual([0x05, 0x00, 0x03, 7, 2, 2]);
    expect(smsParts('é'.repeat(160), 1)?.dataCoding).toBe(0);
    expect(smsParts('’'.repeat(70), 1)?.parts).toHaveLength(1);
    expect(smsParts('’'.repeat(71), 1)?.parts.map((part) => body(part).length)).toEqual([134, 8]);
  });

  it('never cuts a GSM escape pair or a surrogate pair in two', () => {
    // 152 plain characters, then € (an escape pair): the pair starts the second part.
    const gsm = smsParts(`${'a'.repeat(152)}€${'b'.repeat(10)}`, 1);
    expect(gsm?.parts.map((part) => body(part).length)).toEqual([152, 12]);
    expect(body(gsm?.parts[1] as Buffer)[0]).toBe(0x1b);
    // 66 UTF-16 units, then an emoji (two): it starts the second part whole.
    const ucs2 = smsParts(`${'’'.repeat(66)}☕😀${'’'.repeat(5)}`, 1);
    expect(ucs2?.parts.map((part) => body(part).length / 2)).toEqual([67, 7]);
    const joined = Buffer.concat(ucs2?.parts.map(body) ?? []);
    expect(new TextDecoder('utf-16be').decode(joined)).toBe(`${'’'.repeat(66)}☕😀${'’'.repeat(5)}`);
  });

  it('refuses a text that would need more than 255 parts', () => {
    expect(smsParts('a'.repeat(153 * 255), 1)?.parts).toHaveLength(255);
    expect(smsParts('a'.repeat(153 * 255 + 1), 1)).toBeNull();
  });
});

describe('gifts waiting for their confirmation by text', () => {
  const gift = { merchantId: 'mc_1' as MerchantId, toPhone: '+15555550181', amountCents: 1_000 };
  const giver = 'cu_1_giver' as ConsumerId;
  const limits = { smsGiftConfirmTtlMs: 10 * 60_000, smsGiftWrongCodesPerDayMax: 5 };

  it('expires a waiting gift after its time, so a late YES gives nothing', () => {
    const gifts = new SmsGifts(limits);
    const code = gifts.ask(giver, gift, 0) as string;
    expect(gifts.confirm(giver, code, 10 * 60_000)).toEqual({ status: 'none' });
    const again = gifts.ask(giver, gift, 0) as string;
    expect(gifts.confirm(giver, again, 10 * 60_000 - 1)).toMatchObject({ status: 'confirmed', code: again });
  });

  it('puts back a gift whose answer was transient, under the same key and code', () => {
    const gifts = new SmsGifts(limits);
    const code = gifts.ask(giver, gift, 0) as string;
    const first = gifts.confirm(giver, code, 1);
    if (first.status !== 'confirmed') throw new Error('not confirmed');
    expect(gifts.confirm(giver, code, 2)).toEqual({ status: 'none' });
    gifts.putBack(giver, first, 3);
    const second = gifts.confirm(giver, code, 4);
    expect(second).toEqual(first);
  });
});
