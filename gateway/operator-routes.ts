import { CODE_DIGITS_MAX, CODE_DIGITS_MIN, codeDigitsMinOf, isCodeDigits } from '../core/codes.ts';
import type { MerchantId } from '../core/ids.ts';
import { deadTexts, resendDeadText } from '../notify/dead-texts.ts';
import { isAccountNumber, isAccountType, isRoutingNumber } from '../settlement/bank.ts';
import { parseDate } from '../settlement/calendar.ts';
import { fail, ok } from './http.ts';
import { isKeyword } from './merchants.ts';
import { isInt, isObject, isText, type RouteKit } from './route-kit.ts';

const CODE_DIGITS_MESSAGE = `codeDigitsMin must be an integer from ${CODE_DIGITS_MIN} to ${CODE_DIGITS_MAX}`;

/**
 * The operator's routes (docs/http-api.md): making merchants and setting their code length, the daily
 * settlement with its ACH file, and the texts the SMS provider refused for good.
 *
 * @module
 */
export function operatorRoutes(kit: RouteKit): void {
  const { registry, settlements, limits } = kit.deps;

  kit.operator('post', '/v1/merchants', 'only the operator creates merchants', async (request) => {
    const body = request.body;
    if (!isObject(body)) return fail('bad_request', 'the body must be a JSON object');
    const {
      name,
      routingNumber,
      accountNumber,
      accountType,
      keyword = null,
      feeBps = 0,
      feeFixedCents = 0,
      codeDigitsMin = CODE_DIGITS_MIN,
    } = body;
    if (!isText(name, limits.nameLengthMax))
      return fail('bad_request', `name must be 1-${limits.nameLengthMax} characters`);
    if (!isRoutingNumber(routingNumber))
      return fail('bad_request', 'routingNumber must be 9 digits with a valid ABA check digit');
    if (!isAccountNumber(accountNumber)) return fail('bad_request', 'accountNumber must be 4-17 digits');
    if (!isAccountType(accountType))
      return fail('bad_request', 'accountType must be "checking" or "savings"');
    if (keyword !== null && !isKeyword(keyword))
      return fail('bad_request', 'keyword must be 2-16 letters or digits');
    if (!isInt(feeBps, 0, 10_000)) return fail('bad_request', 'feeBps must be an integer from 0 to 10000');
    if (!isInt(feeFixedCents, 0, 100_000))
      return fail('bad_request', 'feeFixedCents must be an integer from 0 to 100000');
    if (!isCodeDigits(codeDigitsMin)) return fail('bad_request', CODE_DIGITS_MESSAGE);
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
  kit.operator(
    'post',
    '/v1/merchants/:merchantId/code-digits',
    'only the operator sets the code length',
    async (request) => {
      const codeDigitsMin = isObject(request.body) ? request.body.codeDigitsMin : undefined;
      if (!isCodeDigits(codeDigitsMin)) return fail('bad_request', CODE_DIGITS_MESSAGE);
      const merchant = await registry.merchants.setCodeDigitsMin(
        request.params[0] as MerchantId,
        codeDigitsMin,
      );
      if (!merchant) return fail('not_found', 'no such merchant');
      return ok(200, { merchantId: merchant.merchantId, codeDigitsMin: codeDigitsMinOf(merchant) });
    },
  );

  const forbidden = 'settlement is for the operator';

  kit.operator('post', '/v1/settlements', forbidden, async (request) => {
    const businessDate = isObject(request.body) ? request.body.businessDate : undefined;
    if (!parseDate(businessDate)) return fail('bad_request', 'businessDate must be a date YYYY-MM-DD');
    const outcome = await settlements.settle(businessDate as string);
    if (!outcome.ok) return fail(outcome.status, outcome.message);
    const { record } = outcome;
    return ok(200, {
      businessDate: record.businessDate,
      merchants: record.merchants.map(({ merchantId, netCents }) => ({ merchantId, netCents })),
      achFileId: record.achFileId,
    });
  });

  kit.operator('get', '/v1/settlements/:businessDate', forbidden, (request) => {
    const record = settlements.record(request.params[0] as string);
    return record ? ok(200, record.summary) : fail('not_found', 'this business day is not settled');
  });

  kit.operator('get', '/v1/texts/dead', 'dead texts are for the operator', () =>
    ok(200, { texts: deadTexts(kit.deps.store, limits.reportPageEntriesMax) }),
  );

  kit.operator('post', '/v1/texts/dead/:id/resend', 'dead texts are for the operator', async (request) =>
    (await resendDeadText(kit.deps.store, request.params[0] as string))
      ? ok(200, { resent: true })
      : fail('not_found', 'no dead text has this id'),
  );

  kit.operator('get', '/v1/settlements/:businessDate/ach', forbidden, (request) => {
    const record = settlements.record(request.params[0] as string);
    if (!record) return fail('not_found', 'this business day is not settled');
    return { status: 200, body: settlements.ach(record), contentType: 'text/plain; charset=us-ascii' };
  });
}
