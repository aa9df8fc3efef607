/**
 * docs/openapi.json against the server: it is exactly what the route declarations build (regenerate with
 * `npm run openapi`), it names exactly the routes the server registers, and for a corpus of requests,
 * each valid body of every route with one field replaced by a tricky value, the document (read by a
 * fresh validator) and the server give the same verdict. The server helper checks every answer against
 * the document (server-helpers.ts `expectDocumented`); here the corpus makes sure both verdicts occur.
 */
import { describe, expect, it } from 'vitest';
import { openApiDocument } from '../gateway/openapi.ts';
import { DOCUMENT, verdict } from './documented.ts';
import { OPERATOR_TOKEN, ROUTING, startTestServer } from './server-helpers.ts';

/** Values that break some rule of some field, or keep to it by a hair. */
const TRICKY: unknown[] = [
  null,
  0,
  -1,
  1,
  1.5,
  2 ** 53,
  2 ** 53 - 1,
  '',
  ' ',
  '\t',
  'ok',
  'a|b',
  'x\u0001',
  'x'.repeat(100),
  'x'.repeat(101),
  'é'.repeat(3),
  true,
  {},
  [],
  '+15555550123',
  '+4407911123456',
  '+10000000',
  '123456',
  '12345',
  '021000021',
  '000000000',
  '2026-01-05',
  '2026-02-30',
  'gift',
  'reward',
  'checking',
  'AB',
  'key-1',
];

describe('OpenAPI document', () => {
  it('is what the route declarations build', () => {
    // On a difference: `npm run openapi` writes the document from gateway/api.ts.
    expect(DOCUMENT).toEqual(JSON.parse(JSON.stringify(openApiDocument())));
  });

  it('describes exactly the routes the server registers', async () => {
    const t = await startTestServer();
    const served = t.server.routes.map(
      ([method, pattern]) => `${method} ${pattern.replace(/:([A-Za-z]+)/g, '{$1}')}`,
    );
    const documented = Object.entries(DOCUMENT.paths as Record<string, object>).flatMap(([path, methods]) =>
      Object.keys(methods).map((method) => `${method} ${path}`),
    );
    expect(served.sort()).toEqual(documented.sort());
  });

  it('gives every request the verdict the server gives it', async () => {
    const t = await startTestServer();
    const merchant = await t.merchant('Corner Cafe', 'CORNER');
    let { deviceToken } = await t.consumer('+15555550161');
    // The device's current token: a freeze with revokeOtherDevices gives it a new one.
    const DEVICE = 'device';
    const m = merchant.merchantId;
    const bodies: [string, string, Record<string, unknown>][] = [
      [
        '/v1/merchants',
        OPERATOR_TOKEN,
        { name: 'Deli', routingNumber: ROUTING, accountNumber: '987654321', accountType: 'savings' },
      ],
      [`/v1/merchants/${m}/code-digits`, OPERATOR_TOKEN, { codeDigitsMin: 6 }],
      ['/v1/settlements', OPERATOR_TOKEN, { businessDate: '2026-01-05' }],
      [`/v1/merchants/${m}/terminals`, merchant.apiKey, { label: 'till' }],
      [
        `/v1/merchants/${m}/cards`,
        merchant.apiKey,
        { phone: '+15555550162', amountCents: 100, kind: 'reward', idempotencyKey: 'k1' },
      ],
      ['/v1/terminals/activate', '', { activationCode: 'ABCD-EFGH' }],
      ['/v1/consumers', OPERATOR_TOKEN, { phone: '+15555550163' }],
      ['/v1/consumers/verify', '', { phone: '+15555550163', otp: '000000' }],
      [
        '/v1/wallet/purchases',
        DEVICE,
        { merchantId: m, amountCents: 100, paymentToken: 'tok_visa', idempotencyKey: 'p1' },
      ],
      ['/v1/wallet/codes', DEVICE, { merchantId: m }],
      [
        '/v1/wallet/gifts',
        DEVICE,
        { merchantId: m, toPhone: '+15555550166', amountCents: 100, idempotencyKey: 'gf1' },
      ],
      ['/v1/wallet/cards/cd_0_none/alert', DEVICE, { belowCents: 100 }],
      ['/v1/wallet/freeze', DEVICE, {}],
      ['/v1/wallet/unfreeze', DEVICE, { otp: '000000' }],
    ];
    const seen = { valid: 0, invalid: 0 };
    const count = (method: string, url: string, body?: unknown) => {
      const said = verdict(method, url, body);
      if (said !== 'undocumented') seen[said]++;
      return said;
    };
    for (const [url, token, base] of bodies) {
      const variants: unknown[] = [base, undefined, 'a string', [base]];
      for (const field of [...Object.keys(base), 'expiresAtMs', 'keyword', 'capCents', 'revokeOtherDevices'])
        for (const value of TRICKY) variants.push({ ...base, [field]: value });
      for (const body of variants) {
        // The helper compares the document's verdict with the answer (server-helpers.ts); with the
        // caller's credentials right, a request the document refuses must be refused for its input.
        const answer = await t.http(
          'POST',
          url,
          body === undefined ? undefined : JSON.stringify(body),
          token === DEVICE ? deviceToken : token || undefined,
        );
        if (typeof answer.body?.deviceToken === 'string' && url === '/v1/wallet/freeze')
          deviceToken = answer.body.deviceToken;
        if (count('POST', url, body) === 'invalid') expect(answer.status, JSON.stringify(body)).toBe(400);
      }
    }
    const queries = [
      `/v1/merchants/${m}/transactions?limit=`,
      `/v1/merchants/${m}/transactions?beforeMs=`,
      `/v1/merchants/${m}/transactions?before=`,
      `/v1/merchants/${m}/activity?days=`,
      `/v1/merchants/${m}/liability?days=`,
      `/v1/merchants/${m}/liability?format=`,
      `/v1/merchants/${m}/statements?limit=`,
      `/v1/merchants/${m}/statements?before=`,
      `/v1/merchants/${m}/statements/2026-01-05?format=`,
      '/v1/settlements/',
    ];
    const texts = [
      '0',
      '1',
      '007',
      '31',
      '32',
      '200',
      '201',
      '-1',
      '1.5',
      '1e3',
      'abc',
      '',
      '2026-01-05',
      'csv',
    ];
    for (const url of queries)
      for (const text of texts) {
        const token = url.startsWith('/v1/settlements') ? OPERATOR_TOKEN : merchant.apiKey;
        const answer = await t.http('GET', `${url}${encodeURIComponent(text)}`, undefined, token);
        if (count('GET', `${url}${encodeURIComponent(text)}`) === 'invalid') expect(answer.status).toBe(400);
      }
    expect(seen.valid).toBeGreaterThan(100);
    expect(seen.invalid).toBeGreaterThan(500);
  });

  it('judges blank names, null keyword and cap, and out-of-range expiries as the document does', async () => {
    const t = await startTestServer();
    const merchant = await t.merchant();
    const { deviceToken } = await t.consumer('+15555550164');
    await t.load(merchant, '+15555550164', 1_000);
    const good = { name: 'Deli', routingNumber: ROUTING, accountNumber: '987654321', accountType: 'savings' };
    const create = (fields: object) =>
      t.http('POST', '/v1/merchants', { ...good, ...fields }, OPERATOR_TOKEN);
    for (const name of ['   ', 'tab\there', 'bell\u0007', 'pipe|name'])
      expect((await create({ name })).status).toBe(400);
    expect((await create({ keyword: null })).status).toBe(201);
    const label = (value: string) =>
      t.http('POST', `/v1/merchants/${merchant.merchantId}/terminals`, { label: value }, merchant.apiKey);
    expect((await label(' \n ')).status).toBe(400);
    const code = await t.http(
      'POST',
      '/v1/wallet/codes',
      { merchantId: merchant.merchantId, capCents: null },
      deviceToken,
    );
    expect(code.status).toBe(201);
    for (const expiresAtMs of [0, -1, 2 ** 53]) {
      const card = {
        phone: '+15555550165',
        amountCents: 100,
        kind: 'reward',
        idempotencyKey: 'r1',
        expiresAtMs,
      };
      const answer = await t.http(
        'POST',
        `/v1/merchants/${merchant.merchantId}/cards`,
        card,
        merchant.apiKey,
      );
      expect(answer).toMatchObject({ status: 400, body: { error: { message: /^expiresAtMs must be/ } } });
    }
  });
});
