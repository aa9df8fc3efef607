import type { TemplatedApp } from 'uWebSockets.js';
import { CODE_DIGITS_MAX, CODE_DIGITS_MIN, codeDigitsMinOf, isCodeDigits } from '../core/codes.ts';
import { idempotencyScope } from '../core/commands.ts';
import type { ConsumerId, MerchantId, TerminalId } from '../core/ids.ts';
import type { Limits } from '../core/limits.ts';
import { STATUSES, TRANSIENT_STATUSES } from '../core/statuses.ts';
import type { Reply } from '../core/wallet.ts';
import type { Engine } from '../engine/engine.ts';
import { isAmountCents, isIdempotencyKey, isPhone } from '../engine/engine.ts';
import { KeyedWindow } from '../notify/keyed-window.ts';
import type { ConsoleSender } from '../notify/sender.ts';
import type { Store } from '../persistence/store.ts';
import { isAccountNumber, isAccountType, isRoutingNumber } from '../settlement/bank.ts';
import { type Cutoff, parseDate } from '../settlement/calendar.ts';
import { merchantJournalRef, statementCsv, statementJson } from '../settlement/reports.ts';
import type { Settlements } from '../settlement/settlements.ts';
import type { CodeFailureWindows } from './code-windows.ts';
import type { FundingProvider } from './funding/provider.ts';
import { type Answer, fail, ok, type Request, route } from './http.ts';
import { isLoopbackAddress, isLoopbackName } from './loopback.ts';
import { MerchantReports, type ReportResult } from './merchant-reports.ts';
import type { Metrics } from './metrics.ts';
import { isKeyword, type Principal, type Registry } from './registry.ts';
import { walletBody } from './wallet-socket.ts';

/**
 * The HTTP API of docs/http-api.md (its extensions marked there) (merchant details,
 * terminal lock and unlock, the merchant reports, wallet freeze and unfreeze, the development inbox).
 * Each handler checks the caller, then the body, then asks the engine or the registry; nothing is
 * changed before every check has passed.
 *
 * @module
 */

export interface RouteDeps {
  engine: Engine;
  registry: Registry;
  store: Store;
  limits: Limits;
  metrics: Metrics;
  /** The card processor for purchases; null when the server sells no value by card. */
  funding: FundingProvider | null;
  /** The development inbox when texts go to the console, else null. */
  devInbox: ConsoleSender | null;
  settlements: Settlements;
  /** The failure windows of code attempts, so a merchant sees why its codes are refused. */
  codeWindows: CodeFailureWindows;
  /** Keys the journal references a merchant sees (settlement/reports.ts `merchantJournalRef`). */
  journalRefKey: Buffer;
  /** The business day of settlement, which the merchant's activity report counts in. */
  cutoff: Cutoff;
  now: () => number;
  /** Called after something was queued for SMS delivery. */
  onTextQueued: () => void;
}

type Body = Record<string, unknown>;

const isObject = (value: unknown): value is Body =>
  value !== null && typeof value === 'object' && !Array.isArray(value);
const isText = (value: unknown, max: number): value is string =>
  typeof value === 'string' &&
  value.trim().length > 0 &&
  value.length <= max &&
  ![...value].some((char) => char < ' ' || char === '|');
const isInt = (value: unknown, min: number, max: number): value is number =>
  typeof value === 'number' && Number.isSafeInteger(value) && value >= min && value <= max;
const CODE_DIGITS_MESSAGE = `codeDigitsMin must be an integer from ${CODE_DIGITS_MIN} to ${CODE_DIGITS_MAX}`;
/**
 * Whether a request is from this machine and was addressed to it by a loopback name. The address alone
 * is not enough: a page of another site whose name an attacker points at 127.0.0.1 (DNS rebinding)
 * reaches the server from the browser on this machine, but with its own name in the Host header.
 */
const isLocalRequest = (request: Request) =>
  isLoopbackAddress(request.remoteAddress) && isLoopbackName(request.host);

/**
 * An integer query parameter in `[min, max]`: undefined when absent, false when it is anything else.
 * Only plain decimal digits are taken (no sign, exponent or fraction).
 */
function queryInt(request: Request, name: string, min: number, max: number): number | undefined | false {
  const text = request.query.get(name);
  if (text === null) return undefined;
  if (!/^[0-9]{1,16}$/.test(text)) return false;
  const value = Number(text);
  return isInt(value, min, max) ? value : false;
}

/** An engine reply as an HTTP answer: `approved` with the given body, anything else as an error. */
function answerFor(reply: Reply, successStatus: number, body: () => unknown): Answer {
  if (reply.status === 'approved') return ok(successStatus, body());
  return fail(reply.status, STATUSES[reply.status].meaning);
}

/** Registers the routes; returns each as `[method, pattern]` (the OpenAPI test checks them). */
export function httpRoutes(app: TemplatedApp, deps: RouteDeps): [string, string][] {
  const { engine, registry, limits, metrics } = deps;
  const onAnswer = (pattern: string, code: number) => metrics.httpRequests.inc({ route: pattern, code });
  const registered: [string, string][] = [];
  const add =
    (method: 'get' | 'post' | 'del') =>
    (pattern: string, handler: (request: Request) => Promise<Answer> | Answer) => {
      registered.push([method === 'del' ? 'delete' : method, pattern]);
      const body = {
        bytesMax: method === 'post' ? limits.httpBodyBytesMax : 0,
        drainBytesMax: limits.httpBodyDrainBytesMax,
      };
      route(app, method, pattern, body, handler, onAnswer);
    };
  const get = add('get');
  const post = add('post');
  const del = add('del');

  const principal = (request: Request): Principal | null =>
    request.token ? registry.authenticate(request.token) : null;
  /**
   * The merchant named in the path, or (unless `merchantOnly`) the operator; the answer to send otherwise.
   * `merchantOnly`: what the merchant alone may do, with its own API key (create its terminals, issue
   * value it pays for at settlement); the operator administers the platform but does not act as a merchant.
   */
  const merchantCaller = (
    request: Request,
    access: 'merchantOrOperator' | 'merchantOnly' = 'merchantOrOperator',
  ): { merchantId: MerchantId } | Answer => {
    const caller = principal(request);
    const merchantId = request.params[0] as MerchantId;
    if (!caller) return fail('unauthorized', 'a valid bearer token is required');
    if (caller.kind === 'device' || (caller.kind === 'merchant' && caller.merchantId !== merchantId))
      return fail('forbidden', 'this token may not act for this merchant');
    if (caller.kind === 'operator' && access === 'merchantOnly')
      return fail('forbidden', "the operator does not act as a merchant: use the merchant's own API key");
    if (!registry.merchant(merchantId)) return fail('not_found', 'no such merchant');
    return { merchantId };
  };
  const consumerCaller = (request: Request): { consumerId: ConsumerId } | Answer => {
    const caller = principal(request);
    if (caller?.kind !== 'device') return fail('unauthorized', 'a valid device token is required');
    return { consumerId: caller.consumerId };
  };
  const isAnswer = (value: object): value is Answer => 'status' in value;
  const reports = new MerchantReports(deps.store, limits, deps.cutoff, deps.now, deps.journalRefKey);
  const reportAnswer = <T>(report: ReportResult<T>): Answer => {
    if (report.ok) return ok(200, report.answer);
    return report.status === 'busy'
      ? fail('overloaded', 'too many reports are being read at once; retry in a moment')
      : fail('overloaded', 'a report of this merchant is being read; retry when it is answered');
  };

  // Whoever holds a token: a page that has only an API key learns whose it is. No personal data.
  get('/v1/me', (request) => {
    const caller = principal(request);
    if (!caller) return fail('unauthorized', 'a valid bearer token is required');
    if (caller.kind === 'operator') return ok(200, { kind: 'operator' });
    if (caller.kind === 'device') return ok(200, { kind: 'device', expiresAtMs: caller.expiresAtMs });
    const merchant = registry.merchant(caller.merchantId);
    if (!merchant) return fail('not_found', 'no such merchant');
    return ok(200, { kind: 'merchant', merchantId: merchant.merchantId, name: merchant.name });
  });

  // Operator.

  post('/v1/merchants', async (request) => {
    const caller = principal(request);
    if (!caller) return fail('unauthorized', 'the operator token is required');
    if (caller.kind !== 'operator') return fail('forbidden', 'only the operator creates merchants');
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
    if (!isText(name, 100)) return fail('bad_request', 'name must be 1-100 characters');
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
    const created = await registry.createMerchant({
      name: name.trim(),
      keyword,
      feeBps,
      feeFixedCents,
      codeDigitsMin,
      bank: { routingNumber, accountNumber, accountType },
    });
    return 'status' in created ? fail(created.status, created.message) : ok(201, created);
  });

  // Merchants.

  get('/v1/merchants/:merchantId', (request) => {
    const caller = merchantCaller(request);
    if (isAnswer(caller)) return caller;
    const merchant = registry.merchant(caller.merchantId);
    if (!merchant) return fail('not_found', 'no such merchant');
    const { merchantId, name, keyword, feeBps, feeFixedCents } = merchant;
    return ok(200, {
      merchantId,
      name,
      keyword,
      feeBps,
      feeFixedCents,
      codeDigitsMin: codeDigitsMinOf(merchant),
    });
  });

  // The operator sets how many digits a merchant's codes have at least (so its cashiers always type as many).
  post('/v1/merchants/:merchantId/code-digits', async (request) => {
    const caller = principal(request);
    if (!caller) return fail('unauthorized', 'the operator token is required');
    if (caller.kind !== 'operator') return fail('forbidden', 'only the operator sets the code length');
    const codeDigitsMin = isObject(request.body) ? request.body.codeDigitsMin : undefined;
    if (!isCodeDigits(codeDigitsMin)) return fail('bad_request', CODE_DIGITS_MESSAGE);
    const merchant = await registry.setCodeDigitsMin(request.params[0] as MerchantId, codeDigitsMin);
    if (!merchant) return fail('not_found', 'no such merchant');
    return ok(200, { merchantId: merchant.merchantId, codeDigitsMin: codeDigitsMinOf(merchant) });
  });

  // A leaked API key: the operator or the merchant makes a new one, and every earlier key stops working.
  post('/v1/merchants/:merchantId/api-key', async (request) => {
    const caller = merchantCaller(request);
    if (isAnswer(caller)) return caller;
    return ok(201, { merchantId: caller.merchantId, apiKey: await registry.rotateApiKey(caller.merchantId) });
  });

  get('/v1/merchants/:merchantId/terminals', (request) => {
    const caller = merchantCaller(request);
    if (isAnswer(caller)) return caller;
    // Why code attempts at the merchant are refused, when they are: too many failed codes in a window.
    const refusal = deps.codeWindows.refusal(caller.merchantId, deps.now());
    return ok(200, {
      terminals: registry.terminalsOf(caller.merchantId),
      codeAttempts: refusal ? { refused: true, ...refusal } : { refused: false },
    });
  });

  post('/v1/merchants/:merchantId/terminals', async (request) => {
    const caller = merchantCaller(request, 'merchantOnly');
    if (isAnswer(caller)) return caller;
    const label = isObject(request.body) ? request.body.label : undefined;
    if (!isText(label, 100)) return fail('bad_request', 'label must be 1-100 characters');
    return ok(201, await registry.createTerminal(caller.merchantId, label.trim()));
  });

  /** The terminal named in the path, if it belongs to the merchant calling; the answer to send otherwise. */
  const merchantTerminal = (
    request: Request,
    access: 'merchantOrOperator' | 'merchantOnly' = 'merchantOrOperator',
  ): TerminalId | Answer => {
    const caller = merchantCaller(request, access);
    if (isAnswer(caller)) return caller;
    const terminal = registry.terminal(request.params[1] as string);
    if (!terminal || terminal.merchantId !== caller.merchantId) return fail('not_found', 'no such terminal');
    return terminal.terminalId;
  };
  for (const action of ['lock', 'unlock'] as const) {
    post(`/v1/merchants/:merchantId/terminals/:terminalId/${action}`, async (request) => {
      const terminalId = merchantTerminal(request);
      if (typeof terminalId !== 'string') return terminalId;
      // Only the operator's unlock also clears the day's failed codes (docs/security.md).
      const byOperator = principal(request)?.kind === 'operator';
      await registry.setLocked(terminalId, action === 'lock', byOperator);
      // ... and from its merchant's windows, so one till's failures stop holding back the others.
      if (byOperator && action === 'unlock')
        deps.codeWindows.forgetTerminal(request.params[0] as MerchantId, terminalId);
      return ok(200, { terminalId, locked: action === 'lock' });
    });
  }

  // Terminal keys: revoke at once (a stolen till), or rekey (a new activation code; the old key works
  // until it is used).
  post('/v1/merchants/:merchantId/terminals/:terminalId/revoke', async (request) => {
    const terminalId = merchantTerminal(request);
    if (typeof terminalId !== 'string') return terminalId;
    await registry.revokeTerminal(terminalId);
    return ok(200, { terminalId, revoked: true });
  });
  // A rekey makes a new credential for the till, so it is the merchant's alone, as creating one is.
  post('/v1/merchants/:merchantId/terminals/:terminalId/rekey', async (request) => {
    const terminalId = merchantTerminal(request, 'merchantOnly');
    if (typeof terminalId !== 'string') return terminalId;
    return ok(201, await registry.rekeyTerminal(terminalId));
  });

  post('/v1/merchants/:merchantId/cards', async (request) => {
    const caller = merchantCaller(request, 'merchantOnly');
    if (isAnswer(caller)) return caller;
    const body = request.body;
    if (!isObject(body)) return fail('bad_request', 'the body must be a JSON object');
    const { phone, amountCents, kind, idempotencyKey, expiresAtMs } = body;
    if (!isPhone(phone)) return fail('bad_request', 'phone must be an E.164 number like +15555550123');
    if (!isAmountCents(amountCents)) return fail('bad_request', 'amountCents must be a positive integer');
    if (kind !== 'gift' && kind !== 'reward') return fail('bad_request', 'kind must be "gift" or "reward"');
    if (!isIdempotencyKey(idempotencyKey))
      return fail('bad_request', 'idempotencyKey must be 1-64 characters of A-Z a-z 0-9 _ -');
    if (expiresAtMs !== undefined && (kind !== 'reward' || !isInt(expiresAtMs, 1, Number.MAX_SAFE_INTEGER)))
      return fail('bad_request', 'expiresAtMs is an epoch time in milliseconds, for rewards only');
    await registry.rememberPhone(engine.consumerIdFor(phone), phone);
    const reply = await engine.loadValue({
      merchantId: caller.merchantId,
      phone,
      kind,
      funding: 'merchant',
      amountCents,
      idempotencyKey,
      expiresAtMs: expiresAtMs ?? null,
    });
    return answerFor(reply, 201, () => ({ cardId: reply.cardId, balanceCents: reply.balanceCents }));
  });

  // Terminals and consumers, before they hold a credential.

  post('/v1/terminals/activate', async (request) => {
    const code = isObject(request.body) ? request.body.activationCode : undefined;
    if (!isText(code, 32)) return fail('bad_request', 'activationCode is required');
    const activated = await registry.activate(code);
    return activated ? ok(200, activated) : fail('not_found', 'unknown, used or expired activation code');
  });

  // Verification texts cost money: besides each phone's own limits (registry.ts), a budget per client
  // address and one for the whole platform (limits.ts), so many numbers cannot be texted at our expense.
  // The operator's token (bulk onboarding) skips these two, never the phone's own limits.
  const otpsPerAddress = new KeyedWindow(60 * 60_000, limits.otpSendsPerAddressPerHourMax);
  const otpsAll = new KeyedWindow(60_000, limits.otpSendsPerMinuteMax);
  const sendVerification = async (
    request: Request,
    phone: string,
    consumerId: ConsumerId,
    purpose: 'sign-in' | 'unfreeze' = 'sign-in',
  ) => {
    const nowMs = deps.now();
    if (principal(request)?.kind !== 'operator') {
      // Both are checked before either is taken, so an address past its own budget takes nothing of the
      // platform's (one address must not spend everyone's).
      const address = request.remoteAddress;
      if (!otpsPerAddress.hasRoom(address, nowMs) || !otpsAll.hasRoom('all', nowMs))
        return fail('rate_limited', 'too many verification codes are being sent; try later');
      otpsPerAddress.take(address, nowMs);
      otpsAll.take('all', nowMs);
    }
    const sent = await registry.startVerification(phone, consumerId, purpose);
    if (sent === 'rate_limited') return fail('rate_limited', 'too many codes sent to this phone; try later');
    deps.onTextQueued();
    return ok(202, {});
  };

  post('/v1/consumers', async (request) => {
    const phone = isObject(request.body) ? request.body.phone : undefined;
    if (!isPhone(phone)) return fail('bad_request', 'phone must be an E.164 number like +15555550123');
    return sendVerification(request, phone, engine.consumerIdFor(phone));
  });

  post('/v1/consumers/verify', async (request) => {
    const body = request.body;
    if (!isObject(body) || !isPhone(body.phone)) return fail('bad_request', 'phone must be an E.164 number');
    if (typeof body.otp !== 'string' || !/^[0-9]{6}$/.test(body.otp))
      return fail('bad_request', 'otp must be the 6 digits of the text');
    if (body.revokeOtherDevices !== undefined && typeof body.revokeOtherDevices !== 'boolean')
      return fail('bad_request', 'revokeOtherDevices must be true or false');
    const consumerId = engine.consumerIdFor(body.phone);
    const deviceToken = await registry.verify(consumerId, body.otp, body.revokeOtherDevices === true);
    return deviceToken
      ? ok(200, { consumerId, deviceToken })
      : fail('unauthorized', 'wrong or expired verification code');
  });

  // Consumers.

  post('/v1/wallet/purchases', async (request) => {
    const caller = consumerCaller(request);
    if (isAnswer(caller)) return caller;
    const { funding } = deps;
    if (!funding) return fail('forbidden', 'this server sells no value by card (PAYCODE_FUNDING=none)');
    const body = request.body;
    if (!isObject(body)) return fail('bad_request', 'the body must be a JSON object');
    const { merchantId, amountCents, paymentToken, idempotencyKey } = body;
    if (typeof merchantId !== 'string') return fail('bad_request', 'merchantId is required');
    if (!isAmountCents(amountCents)) return fail('bad_request', 'amountCents must be a positive integer');
    if (!isText(paymentToken, 256)) return fail('bad_request', 'paymentToken is required');
    if (!isIdempotencyKey(idempotencyKey))
      return fail('bad_request', 'idempotencyKey must be 1-64 characters of A-Z a-z 0-9 _ -');
    const merchant = registry.merchant(merchantId);
    if (!merchant) return fail('not_found', 'no such merchant');
    const phone = registry.phoneOf(caller.consumerId);
    if (!phone) return fail('not_found', 'no phone number is known for this consumer');
    const load = () =>
      engine.loadValue({ merchantId, phone, kind: 'gift', funding: 'consumer', amountCents, idempotencyKey });
    const cardBody = (reply: Reply) => ({ cardId: reply.cardId, balanceCents: reply.balanceCents });
    // A purchase already loaded under this key answers from its stored result and is not charged again.
    if (engine.hasStoredAnswer(idempotencyScope.consumer(caller.consumerId), idempotencyKey)) {
      const reply = await load();
      return answerFor(reply, 201, () => cardBody(reply));
    }
    // Refuse what the engine would refuse before any money is taken.
    const view = await engine.wallet(caller.consumerId);
    const card = view?.cards.find((held) => held.merchantId === merchantId && held.kind === 'gift');
    if (
      amountCents > limits.loadMaxCents ||
      (card?.balanceCents ?? 0) + amountCents > limits.cardBalanceMaxCents
    )
      return fail('limit_exceeded', STATUSES.limit_exceeded.meaning);
    const charge = await funding.charge({
      // Different fields under one key are different charges, so refunding a refused one touches no other.
      idempotencyKey: `${caller.consumerId}/${idempotencyKey}/${merchantId}/${amountCents}`,
      amountCents,
      paymentToken,
      description: `paycode gift card ${merchant.name}`,
    });
    if (!charge.ok) return fail(charge.status, 'the card payment was declined');
    const reply = await load();
    // A refusal (the card filled up meanwhile) gives the money back; a transient status keeps the charge
    // for the retry under the same key, which the processor answers with the same charge.
    if (reply.status !== 'approved' && !TRANSIENT_STATUSES.has(reply.status))
      await funding.refund(charge.chargeId);
    return answerFor(reply, 201, () => cardBody(reply));
  });

  get('/v1/wallet', async (request) => {
    const caller = consumerCaller(request);
    if (isAnswer(caller)) return caller;
    const view = await engine.wallet(caller.consumerId);
    return view ? ok(200, walletBody(view, registry)) : fail('internal', 'the wallet could not be read');
  });

  post('/v1/wallet/codes', async (request) => {
    const caller = consumerCaller(request);
    if (isAnswer(caller)) return caller;
    const body = request.body;
    if (!isObject(body) || typeof body.merchantId !== 'string')
      return fail('bad_request', 'merchantId is required');
    if (body.capCents !== undefined && body.capCents !== null && !isAmountCents(body.capCents))
      return fail('bad_request', 'capCents must be a positive integer');
    const merchant = registry.merchant(body.merchantId);
    if (!merchant) return fail('not_found', 'no such merchant');
    const reply = await engine.issueCode({
      consumerId: caller.consumerId,
      merchantId: body.merchantId,
      capCents: body.capCents as number | null | undefined,
      codeDigitsMin: codeDigitsMinOf(merchant),
    });
    return answerFor(reply, 201, () => ({
      code: reply.code,
      merchantId: body.merchantId,
      capCents: reply.capCents,
      expiresAtMs: reply.expiresAtMs,
    }));
  });

  del('/v1/wallet/codes', async (request) => {
    const caller = consumerCaller(request);
    if (isAnswer(caller)) return caller;
    const reply = await engine.cancelCode(caller.consumerId);
    return reply.status === 'not_found'
      ? fail('not_found', 'no live code')
      : answerFor(reply, 200, () => ({}));
  });

  get('/v1/wallet/history', async (request) => {
    const caller = consumerCaller(request);
    if (isAnswer(caller)) return caller;
    const entries = await engine.history(caller.consumerId);
    if (!entries) return fail('internal', 'the history could not be read');
    return ok(200, {
      entries: entries.map(({ atMs, kind, merchantId, amountCents, balanceCents, ref, cardId }) => ({
        atMs,
        kind,
        merchantId,
        amountCents,
        balanceCents,
        ref,
        cardId,
      })),
    });
  });

  // Signs this device out (a lost phone revokes every device when it verifies again, see above).
  del('/v1/wallet/token', async (request) => {
    const caller = consumerCaller(request);
    if (isAnswer(caller)) return caller;
    await registry.revokeDeviceToken(request.token as string);
    return ok(200, {});
  });

  // Freezing needs only the device; with `revokeOtherDevices` it also signs every other device out (a
  // token that may have been stolen) and gives this one a new token.
  post('/v1/wallet/freeze', async (request) => {
    const caller = consumerCaller(request);
    if (isAnswer(caller)) return caller;
    const revoke = isObject(request.body) ? request.body.revokeOtherDevices : undefined;
    if (revoke !== undefined && typeof revoke !== 'boolean')
      return fail('bad_request', 'revokeOtherDevices must be true or false');
    const reply = await engine.freeze(caller.consumerId);
    if (reply.status !== 'approved') return answerFor(reply, 200, () => ({}));
    if (!revoke) return ok(200, { frozen: true });
    return ok(200, { frozen: true, deviceToken: await registry.revokeOtherDevices(caller.consumerId) });
  });

  // Unfreezing needs a fresh code texted to the phone, so a stolen device token cannot undo a freeze.
  post('/v1/wallet/unfreeze/code', async (request) => {
    const caller = consumerCaller(request);
    if (isAnswer(caller)) return caller;
    const phone = registry.phoneOf(caller.consumerId);
    if (!phone) return fail('not_found', 'no phone number is known for this consumer');
    return sendVerification(request, phone, caller.consumerId, 'unfreeze');
  });
  post('/v1/wallet/unfreeze', async (request) => {
    const caller = consumerCaller(request);
    if (isAnswer(caller)) return caller;
    const otp = isObject(request.body) ? request.body.otp : undefined;
    if (typeof otp !== 'string' || !/^[0-9]{6}$/.test(otp))
      return fail('bad_request', 'otp must be the 6 digits texted by POST /v1/wallet/unfreeze/code');
    if (!(await registry.confirmPhone(caller.consumerId, otp)))
      return fail('unauthorized', 'wrong or expired verification code');
    const reply = await engine.unfreeze(caller.consumerId);
    return answerFor(reply, 200, () => ({ frozen: false }));
  });

  // Settlement.

  const operatorOnly = (request: Request): Answer | null => {
    const caller = principal(request);
    if (!caller) return fail('unauthorized', 'the operator token is required');
    return caller.kind === 'operator' ? null : fail('forbidden', 'settlement is for the operator');
  };

  post('/v1/settlements', async (request) => {
    const refused = operatorOnly(request);
    if (refused) return refused;
    const businessDate = isObject(request.body) ? request.body.businessDate : undefined;
    if (!parseDate(businessDate)) return fail('bad_request', 'businessDate must be a date YYYY-MM-DD');
    const outcome = await deps.settlements.settle(businessDate as string);
    if (!outcome.ok) return fail(outcome.status, outcome.message);
    const { record } = outcome;
    return ok(200, {
      businessDate: record.businessDate,
      merchants: record.merchants.map(({ merchantId, netCents }) => ({ merchantId, netCents })),
      achFileId: record.achFileId,
    });
  });

  get('/v1/settlements/:businessDate', (request) => {
    const refused = operatorOnly(request);
    if (refused) return refused;
    const record = deps.settlements.record(request.params[0] as string);
    return record ? ok(200, record.summary) : fail('not_found', 'this business day is not settled');
  });

  get('/v1/settlements/:businessDate/ach', (request) => {
    const refused = operatorOnly(request);
    if (refused) return refused;
    const record = deps.settlements.record(request.params[0] as string);
    if (!record) return fail('not_found', 'this business day is not settled');
    return { status: 200, body: deps.settlements.ach(record), contentType: 'text/plain; charset=us-ascii' };
  });

  // Reports for the merchant dashboard (gateway/merchant-reports.ts: what they cost and how it is bounded).

  get('/v1/merchants/:merchantId/transactions', async (request) => {
    const caller = merchantCaller(request);
    if (isAnswer(caller)) return caller;
    const limit = queryInt(request, 'limit', 1, limits.reportPageEntriesMax);
    if (limit === false)
      return fail('bad_request', `limit must be an integer from 1 to ${limits.reportPageEntriesMax}`);
    const beforeMs = queryInt(request, 'beforeMs', 1, Number.MAX_SAFE_INTEGER);
    if (beforeMs === false) return fail('bad_request', 'beforeMs must be an epoch time in milliseconds');
    const cursor = request.query.get('before');
    if (cursor !== null && beforeMs !== undefined)
      return fail('bad_request', 'give either before or beforeMs, not both');
    const before = cursor === null ? null : reports.openCursor(caller.merchantId, cursor);
    if (before === 'malformed') return fail('bad_request', 'before must be the `next` of a previous page');
    if (before === 'expired')
      return fail('bad_request', 'the cursor has expired; start again from the newest');
    const page = await reports.transactions(caller.merchantId, {
      limit: limit ?? 50,
      before,
      beforeMs: beforeMs ?? null,
    });
    return reportAnswer(page);
  });

  get('/v1/merchants/:merchantId/activity', async (request) => {
    const caller = merchantCaller(request);
    if (isAnswer(caller)) return caller;
    const days = queryInt(request, 'days', 1, limits.reportActivityDaysMax);
    if (days === false)
      return fail('bad_request', `days must be an integer from 1 to ${limits.reportActivityDaysMax}`);
    return reportAnswer(await reports.activity(caller.merchantId, days ?? 7));
  });

  get('/v1/merchants/:merchantId/statements', async (request) => {
    const caller = merchantCaller(request);
    if (isAnswer(caller)) return caller;
    const limit = queryInt(request, 'limit', 1, limits.reportPageEntriesMax);
    if (limit === false)
      return fail('bad_request', `limit must be an integer from 1 to ${limits.reportPageEntriesMax}`);
    const before = request.query.get('before');
    if (before !== null && !parseDate(before)) return fail('bad_request', 'before must be a date YYYY-MM-DD');
    return reportAnswer(await reports.statements(caller.merchantId, { limit: limit ?? 31, before }));
  });

  get('/v1/merchants/:merchantId/statements/:businessDate', (request) => {
    const caller = merchantCaller(request);
    if (isAnswer(caller)) return caller;
    const record = deps.settlements.record(request.params[1] as string);
    const merchant = record?.merchants.find((settled) => settled.merchantId === caller.merchantId);
    if (!record || !merchant) return fail('not_found', 'no statement for this merchant and day');
    const lines = deps.settlements.statementLines(record.businessDate, merchant.merchantId).map((line) => ({
      ...line,
      journalKey: merchantJournalRef(deps.journalRefKey, merchant.merchantId, line.journalKey),
    }));
    if (request.query.get('format') === 'csv')
      return {
        status: 200,
        body: statementCsv(record, merchant, lines),
        contentType: 'text/csv; charset=utf-8',
      };
    return ok(200, statementJson(record, merchant, lines));
  });

  // Operations.

  // Healthy is `{ok: true}` as docs/gateway.md ("Health") says; otherwise 503 with what is wrong, so a load balancer
  // stops sending and an operator sees which shard (docs/gateway.md). Causes stay in the log.
  get('/healthz', () => {
    const { ok: healthy, status, shards } = engine.health();
    if (healthy) return ok(200, { ok: true });
    return ok(503, { ok: false, status, shards });
  });

  get('/metrics', async (request) => {
    if (!isLocalRequest(request)) return fail('forbidden', 'metrics are served on loopback only');
    return { status: 200, body: await metrics.registry.metrics(), contentType: metrics.registry.contentType };
  });

  if (deps.devInbox) {
    const inbox = deps.devInbox;
    // Development only (console SMS mode), and from this machine only: the texts hold codes.
    get('/v1/dev/inbox', (request) => {
      if (!isLocalRequest(request)) return fail('forbidden', 'the inbox is served on loopback only');
      const phone = request.query.get('phone');
      const texts = inbox.inbox.filter((text) => phone === null || text.phone === phone).slice(-50);
      return ok(200, { texts: texts.reverse() });
    });
  }

  // A known path asked with another method: 405 with the methods it takes, not a 404 that hides it.
  const methodsOf = new Map<string, string[]>();
  for (const [method, pattern] of registered)
    methodsOf.set(pattern, [...(methodsOf.get(pattern) ?? []), method.toUpperCase()]);
  for (const [pattern, methods] of methodsOf) {
    app.any(pattern, (res) => {
      metrics.httpRequests.inc({ route: pattern, code: 405 });
      res.cork(() => {
        res
          .writeStatus('405 Method Not Allowed')
          .writeHeader('allow', methods.join(', '))
          .writeHeader('content-type', 'application/json')
          .end(
            JSON.stringify({
              error: { code: 'bad_request', message: `this endpoint takes ${methods.join(', ')}` },
            }),
          );
      });
    });
  }

  app.any('/*', (res) => {
    metrics.httpRequests.inc({ route: 'unknown', code: 404 });
    res.cork(() => {
      res
        .writeStatus('404 Not Found')
        .writeHeader('content-type', 'application/json')
        .end(JSON.stringify({ error: { code: 'not_found', message: 'no such endpoint' } }));
    });
  });
  return registered;
}
