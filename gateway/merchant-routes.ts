import { codeDigitsMinOf } from '../core/codes.ts';
import type { TerminalId } from '../core/ids.ts';
import { canonicalPhone, PHONE_MESSAGE } from '../core/phone.ts';
import { isAmountCents, isIdempotencyKey } from '../engine/engine.ts';
import { parseDate } from '../settlement/calendar.ts';
import { merchantJournalRef, statementCsv, statementJson } from '../settlement/reports.ts';
import { type Answer, fail, ok, type Request } from './http.ts';
import { MerchantReports, type ReportResult } from './merchant-reports.ts';
import {
  answerFor,
  isInt,
  isObject,
  isText,
  type MerchantCaller,
  queryInt,
  type RouteKit,
} from './route-kit.ts';

/**
 * A merchant's routes (docs/http-api.md, "Merchants"): its details and API key, its terminals, the value
 * it issues, and the reports of its dashboard. Each is called with the merchant's own API key or the
 * operator's token (route-kit.ts checks which, once).
 *
 * @module
 */
export function merchantRoutes(kit: RouteKit): void {
  const { engine, registry, limits, codeWindows, settlements, journalRefKey } = kit.deps;

  kit.merchant('get', '/v1/merchants/:merchantId', (_, { merchantId }) => {
    const merchant = registry.merchants.get(merchantId);
    if (!merchant) return fail('not_found', 'no such merchant');
    const { name, keyword, feeBps, feeFixedCents } = merchant;
    return ok(200, {
      merchantId,
      name,
      keyword,
      feeBps,
      feeFixedCents,
      codeDigitsMin: codeDigitsMinOf(merchant),
    });
  });

  // A leaked API key: the operator or the merchant makes a new one, and every earlier key stops working.
  kit.merchant('post', '/v1/merchants/:merchantId/api-key', async (_, { merchantId }) =>
    ok(201, { merchantId, apiKey: await registry.merchants.rotateApiKey(merchantId) }),
  );

  kit.merchant('get', '/v1/merchants/:merchantId/terminals', (_, { merchantId }) => {
    // Why code attempts at the merchant are refused, when they are: too many failed codes in a window.
    const refusal = codeWindows.refusal(merchantId, kit.deps.now());
    return ok(200, {
      terminals: registry.terminals.of(merchantId),
      codeAttempts: refusal ? { refused: true, ...refusal } : { refused: false },
    });
  });

  kit.merchant(
    'post',
    '/v1/merchants/:merchantId/terminals',
    async (request, { merchantId }) => {
      const label = isObject(request.body) ? request.body.label : undefined;
      if (!isText(label, limits.nameLengthMax))
        return fail('bad_request', `label must be 1-${limits.nameLengthMax} characters`);
      return ok(201, await registry.terminals.create(merchantId, label.trim()));
    },
    'merchantOnly',
  );

  /** The terminal named in the path, if it belongs to the merchant; the answer to send otherwise. */
  const terminalOf = (request: Request, { merchantId }: MerchantCaller): TerminalId | Answer => {
    const terminal = registry.terminals.get(request.params[1] as string);
    if (!terminal || terminal.merchantId !== merchantId) return fail('not_found', 'no such terminal');
    return terminal.terminalId;
  };
  for (const action of ['lock', 'unlock'] as const) {
    kit.merchant(
      'post',
      `/v1/merchants/:merchantId/terminals/:terminalId/${action}`,
      async (request, caller) => {
        const terminalId = terminalOf(request, caller);
        if (typeof terminalId !== 'string') return terminalId;
        // Only the operator's unlock also clears the day's failed codes (docs/security.md)...
        await registry.terminals.setLocked(terminalId, action === 'lock', caller.byOperator);
        // ... and from its merchant's windows, so one till's failures stop holding back the others.
        if (caller.byOperator && action === 'unlock')
          codeWindows.forgetTerminal(caller.merchantId, terminalId);
        return ok(200, { terminalId, locked: action === 'lock' });
      },
    );
  }

  // Terminal keys: revoke at once (a stolen till), or rekey (a new activation code; the old key works
  // until it is used).
  kit.merchant('post', '/v1/merchants/:merchantId/terminals/:terminalId/revoke', async (request, caller) => {
    const terminalId = terminalOf(request, caller);
    if (typeof terminalId !== 'string') return terminalId;
    await registry.terminals.revoke(terminalId);
    return ok(200, { terminalId, revoked: true });
  });
  // A rekey makes a new credential for the till, so it is the merchant's alone, as creating one is.
  kit.merchant(
    'post',
    '/v1/merchants/:merchantId/terminals/:terminalId/rekey',
    async (request, caller) => {
      const terminalId = terminalOf(request, caller);
      if (typeof terminalId !== 'string') return terminalId;
      return ok(201, await registry.terminals.rekey(terminalId));
    },
    'merchantOnly',
  );

  kit.merchant(
    'post',
    '/v1/merchants/:merchantId/cards',
    async (request, { merchantId }) => {
      const body = request.body;
      if (!isObject(body)) return fail('bad_request', 'the body must be a JSON object');
      const { amountCents, kind, idempotencyKey, expiresAtMs } = body;
      const phone = canonicalPhone(body.phone);
      if (!phone) return fail('bad_request', PHONE_MESSAGE);
      if (!isAmountCents(amountCents)) return fail('bad_request', 'amountCents must be a positive integer');
      if (kind !== 'gift' && kind !== 'reward') return fail('bad_request', 'kind must be "gift" or "reward"');
      if (!isIdempotencyKey(idempotencyKey))
        return fail('bad_request', 'idempotencyKey must be 1-64 characters of A-Z a-z 0-9 _ -');
      if (expiresAtMs !== undefined && (kind !== 'reward' || !isInt(expiresAtMs, 1, Number.MAX_SAFE_INTEGER)))
        return fail('bad_request', 'expiresAtMs is an epoch time in milliseconds, for rewards only');
      await registry.phones.remember(engine.consumerIdFor(phone), phone);
      const reply = await engine.loadValue({
        merchantId,
        phone,
        kind,
        funding: 'merchant',
        amountCents,
        idempotencyKey,
        expiresAtMs: expiresAtMs ?? null,
      });
      return answerFor(reply, 201, () => ({ cardId: reply.cardId, balanceCents: reply.balanceCents }));
    },
    'merchantOnly',
  );

  // Reports for the merchant dashboard (merchant-reports.ts: what they cost and how it is bounded).
  const reports = new MerchantReports(kit.deps.store, limits, kit.deps.cutoff, kit.deps.now, journalRefKey);
  const reportAnswer = <T>(report: ReportResult<T>): Answer => {
    if (report.ok) return ok(200, report.answer);
    return report.status === 'busy'
      ? fail('overloaded', 'too many reports are being read at once; retry in a moment')
      : fail('overloaded', 'a report of this merchant is being read; retry when it is answered');
  };
  const pageLimit = (request: Request) => queryInt(request, 'limit', 1, limits.reportPageEntriesMax);
  const LIMIT_MESSAGE = `limit must be an integer from 1 to ${limits.reportPageEntriesMax}`;

  kit.merchant('get', '/v1/merchants/:merchantId/transactions', async (request, { merchantId }) => {
    const limit = pageLimit(request);
    if (limit === false) return fail('bad_request', LIMIT_MESSAGE);
    const beforeMs = queryInt(request, 'beforeMs', 1, Number.MAX_SAFE_INTEGER);
    if (beforeMs === false) return fail('bad_request', 'beforeMs must be an epoch time in milliseconds');
    const cursor = request.query.get('before');
    if (cursor !== null && beforeMs !== undefined)
      return fail('bad_request', 'give either before or beforeMs, not both');
    const before = cursor === null ? null : reports.openCursor(merchantId, cursor);
    if (before === 'malformed') return fail('bad_request', 'before must be the `next` of a previous page');
    if (before === 'expired')
      return fail('bad_request', 'the cursor has expired; start again from the newest');
    return reportAnswer(
      await reports.transactions(merchantId, { limit: limit ?? 50, before, beforeMs: beforeMs ?? null }),
    );
  });

  kit.merchant('get', '/v1/merchants/:merchantId/activity', async (request, { merchantId }) => {
    const days = queryInt(request, 'days', 1, limits.reportActivityDaysMax);
    if (days === false)
      return fail('bad_request', `days must be an integer from 1 to ${limits.reportActivityDaysMax}`);
    return reportAnswer(await reports.activity(merchantId, days ?? 7));
  });

  kit.merchant('get', '/v1/merchants/:merchantId/statements', async (request, { merchantId }) => {
    const limit = pageLimit(request);
    if (limit === false) return fail('bad_request', LIMIT_MESSAGE);
    const before = request.query.get('before');
    if (before !== null && !parseDate(before)) return fail('bad_request', 'before must be a date YYYY-MM-DD');
    return reportAnswer(await reports.statements(merchantId, { limit: limit ?? 31, before }));
  });

  kit.merchant('get', '/v1/merchants/:merchantId/statements/:businessDate', (request, { merchantId }) => {
    const record = settlements.record(request.params[1] as string);
    const merchant = record?.merchants.find((settled) => settled.merchantId === merchantId);
    if (!record || !merchant) return fail('not_found', 'no statement for this merchant and day');
    const lines = settlements.statementLines(record.businessDate, merchantId).map((line) => ({
      ...line,
      journalKey: merchantJournalRef(journalRefKey, merchantId, line.journalKey),
    }));
    if (request.query.get('format') === 'csv')
      return {
        status: 200,
        body: statementCsv(record, merchant, lines),
        contentType: 'text/csv; charset=utf-8',
      };
    return ok(200, statementJson(record, merchant, lines));
  });
}
