import { codeDigitsMinOf } from '../core/codes.ts';
import type { TerminalId } from '../core/ids.ts';
import { canonicalPhone } from '../core/phone.ts';
import { liabilityCsv } from '../settlement/liability.ts';
import { merchantJournalRef, statementCsv, statementJson, transactionsCsv } from '../settlement/reports.ts';
import { CURSOR_EXPIRED, ROUTES } from './api.ts';
import { type Answer, fail, ok, type Request } from './http.ts';
import { MerchantReports, type ReportResult } from './merchant-reports.ts';
import { answerFor, type MerchantCaller, type RouteKit } from './route-kit.ts';

/**
 * A merchant's routes (docs/http-api.md, "Merchants"): its details and API key, its terminals, the value
 * it issues, and the reports of its dashboard. Each is called with the merchant's own API key or the
 * operator's token (route-kit.ts checks which, once).
 *
 * @module
 */
export function merchantRoutes(kit: RouteKit): void {
  const { engine, registry, limits, codeWindows, settlements, journalRefKey } = kit.deps;

  kit.route(ROUTES.merchant, ({ caller: { merchantId } }) => {
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
  kit.route(ROUTES.rotateApiKey, async ({ caller: { merchantId } }) =>
    ok(201, { merchantId, apiKey: await registry.merchants.rotateApiKey(merchantId) }),
  );

  kit.route(ROUTES.terminals, ({ caller: { merchantId } }) => {
    // Why code attempts at the merchant are refused, when they are: too many failed codes in a window.
    const refusal = codeWindows.refusal(merchantId, kit.deps.now());
    return ok(200, {
      terminals: registry.terminals.of(merchantId),
      codeAttempts: refusal ? { refused: true, ...refusal } : { refused: false },
    });
  });

  kit.route(ROUTES.createTerminal, async ({ caller: { merchantId }, body }) =>
    ok(201, await registry.terminals.create(merchantId, body.label.trim())),
  );

  /** The terminal named in the path, if it belongs to the merchant; the answer to send otherwise. */
  const terminalOf = (request: Request, { merchantId }: MerchantCaller): TerminalId | Answer => {
    const terminal = registry.terminals.get(request.params[1] as string);
    if (!terminal || terminal.merchantId !== merchantId) return fail('not_found', 'no such terminal');
    return terminal.terminalId;
  };
  for (const action of ['lock', 'unlock'] as const) {
    kit.route(
      action === 'lock' ? ROUTES.lockTerminal : ROUTES.unlockTerminal,
      async ({ request, caller }) => {
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
  kit.route(ROUTES.revokeTerminal, async ({ request, caller }) => {
    const terminalId = terminalOf(request, caller);
    if (typeof terminalId !== 'string') return terminalId;
    await registry.terminals.revoke(terminalId);
    return ok(200, { terminalId, revoked: true });
  });
  // A rekey makes a new credential for the till, so it is the merchant's alone, as creating one is.
  kit.route(ROUTES.rekeyTerminal, async ({ request, caller }) => {
    const terminalId = terminalOf(request, caller);
    if (typeof terminalId !== 'string') return terminalId;
    return ok(201, await registry.terminals.rekey(terminalId));
  });

  kit.route(ROUTES.issueCard, async ({ caller: { merchantId }, body }) => {
    const { amountCents, kind, idempotencyKey, expiresAtMs } = body;
    const phone = canonicalPhone(body.phone) as string;
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
  });

  // Reports for the merchant dashboard (merchant-reports.ts: what they cost and how it is bounded).
  const reports = new MerchantReports(kit.deps.store, limits, kit.deps.cutoff, kit.deps.now, journalRefKey);
  const reportAnswer = <T>(report: ReportResult<T>): Answer => {
    if (report.ok) return ok(200, report.answer);
    return report.status === 'busy'
      ? fail('overloaded', 'too many reports are being read at once; retry in a moment')
      : fail('overloaded', 'a report of this merchant is being read; retry when it is answered');
  };
  kit.route(ROUTES.transactions, async ({ caller: { merchantId }, query }) => {
    const { limit, beforeMs, before: cursor } = query;
    if (cursor !== undefined && beforeMs !== undefined)
      return fail('bad_request', 'give either before or beforeMs, not both');
    const before = cursor === undefined ? null : reports.openCursor(merchantId, cursor);
    if (before === 'malformed') return fail('bad_request', 'before must be the `next` of a previous page');
    if (before === 'expired') return fail('bad_request', CURSOR_EXPIRED);
    const report = await reports.transactions(merchantId, { limit, before, beforeMs: beforeMs ?? null });
    if (!report.ok || query.format !== 'csv') return reportAnswer(report);
    const { transactions, next } = report.answer;
    return {
      status: 200,
      body: transactionsCsv(transactions),
      contentType: 'text/csv; charset=utf-8',
      headers: next === null ? {} : { 'paycode-next': next },
    };
  });

  kit.route(ROUTES.activity, async ({ caller: { merchantId }, query }) =>
    reportAnswer(await reports.activity(merchantId, query.days)),
  );

  kit.route(ROUTES.liability, async ({ caller: { merchantId }, query }) => {
    const report = await reports.liability(merchantId, query.days);
    if (!report.ok || query.format !== 'csv') return reportAnswer(report);
    return { status: 200, body: liabilityCsv(report.answer.days), contentType: 'text/csv; charset=utf-8' };
  });

  kit.route(ROUTES.statements, async ({ caller: { merchantId }, query: { limit, before } }) =>
    reportAnswer(await reports.statements(merchantId, { limit, before: before ?? null })),
  );

  kit.route(ROUTES.statement, ({ request, caller: { merchantId }, query }) => {
    const record = settlements.record(request.params[1] as string);
    const merchant = record?.merchants.find((settled) => settled.merchantId === merchantId);
    if (!record || !merchant) return fail('not_found', 'no statement for this merchant and day');
    const lines = settlements.statementLines(record.businessDate, merchantId).map((line) => ({
      ...line,
      journalKey: merchantJournalRef(journalRefKey, merchantId, line.journalKey),
    }));
    if (query.format === 'csv')
      return {
        status: 200,
        body: statementCsv(record, merchant, lines),
        contentType: 'text/csv; charset=utf-8',
      };
    return ok(200, statementJson(record, merchant, lines));
  });
}
