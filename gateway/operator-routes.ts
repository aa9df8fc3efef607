import { codeDigitsMinOf } from '../core/codes.ts';
import type { MerchantId } from '../core/ids.ts';
import { deadTexts, resendDeadText } from '../notify/dead-texts.ts';
import { ROUTES } from './api.ts';
import { fail, ok } from './http.ts';
import type { RouteKit } from './route-kit.ts';

/**
 * The operator's routes (docs/http-api.md): making merchants and setting their code length, the daily
 * settlement with its ACH file, and the texts the SMS provider refused for good.
 *
 * @module
 */
export function operatorRoutes(kit: RouteKit): void {
  const { registry, settlements, limits } = kit.deps;

  kit.route(ROUTES.createMerchant, async ({ body }) => {
    const { name, routingNumber, accountNumber, accountType, keyword, feeBps, feeFixedCents, codeDigitsMin } =
      body;
    const created = await registry.merchants.create({
      name: name.trim(),
      keyword,
      feeBps,
      feeFixedCents,
      codeDigitsMin,
      bank: { routingNumber, accountNumber, accountType },
    });
    return 'status' in created ? fail(created.status, created.message) : ok(201, created);
  });

  // How many digits a merchant's codes have at least (so its cashiers always type as many).
  kit.route(ROUTES.setCodeDigits, async ({ request, body }) => {
    const merchant = await registry.merchants.setCodeDigitsMin(
      request.params[0] as MerchantId,
      body.codeDigitsMin,
    );
    if (!merchant) return fail('not_found', 'no such merchant');
    return ok(200, { merchantId: merchant.merchantId, codeDigitsMin: codeDigitsMinOf(merchant) });
  });

  kit.route(ROUTES.settle, async ({ body }) => {
    const outcome = await settlements.settle(body.businessDate);
    if (!outcome.ok) return fail(outcome.status, outcome.message);
    const { record } = outcome;
    return ok(200, {
      businessDate: record.businessDate,
      merchants: record.merchants.map(({ merchantId, netCents }) => ({ merchantId, netCents })),
      achFileId: record.achFileId,
    });
  });

  kit.route(ROUTES.settlement, ({ request }) => {
    const record = settlements.record(request.params[0] as string);
    return record ? ok(200, record.summary) : fail('not_found', 'this business day is not settled');
  });

  kit.route(ROUTES.deadTexts, () =>
    ok(200, { texts: deadTexts(kit.deps.store, limits.reportPageEntriesMax) }),
  );

  kit.route(ROUTES.resendDeadText, async ({ request }) =>
    (await resendDeadText(kit.deps.store, request.params[0] as string))
      ? ok(200, { resent: true })
      : fail('not_found', 'no dead text has this id'),
  );

  kit.route(ROUTES.achFile, ({ request }) => {
    const record = settlements.record(request.params[0] as string);
    if (!record) return fail('not_found', 'this business day is not settled');
    return { status: 200, body: settlements.ach(record), contentType: 'text/plain; charset=us-ascii' };
  });
}
