import type { TemplatedApp } from 'uWebSockets.js';
import type { ConsumerId, MerchantId } from '../core/ids.ts';
import type { Limits } from '../core/limits.ts';
import { STATUSES } from '../core/statuses.ts';
import type { Reply } from '../core/wallet.ts';
import type { Engine } from '../engine/engine.ts';
import type { ConsoleSender } from '../notify/sender.ts';
import type { Store } from '../persistence/store.ts';
import type { Cutoff } from '../settlement/calendar.ts';
import type { Settlements } from '../settlement/settlements.ts';
import type { CodeFailureWindows } from './code-windows.ts';
import type { Principal } from './credentials.ts';
import type { FundingProvider } from './funding/provider.ts';
import { type Answer, fail, ok, type Request, route } from './http.ts';
import type { Metrics } from './metrics.ts';
import type { Registry } from './registry.ts';

/**
 * What the HTTP routes share: their dependencies, the checks of request bodies, and the registration of
 * a route with its caller checked once (a merchant, a consumer's device, the operator) before the
 * handler runs. Each routes file (merchant-routes.ts, wallet-routes.ts, operator-routes.ts) registers
 * one resource's routes through it.
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
  /** The bearer token `/metrics` asks for (`PAYCODE_METRICS_TOKEN`); null: served to this machine only. */
  metricsToken: string | null;
}

export type Body = Record<string, unknown>;

export const isObject = (value: unknown): value is Body =>
  value !== null && typeof value === 'object' && !Array.isArray(value);

/** A name or label: 1 to `max` characters, not blank, no control characters and no `|`. */
export const isText = (value: unknown, max: number): value is string =>
  typeof value === 'string' &&
  value.trim().length > 0 &&
  value.length <= max &&
  ![...value].some((char) => char < ' ' || char === '|');

export const isInt = (value: unknown, min: number, max: number): value is number =>
  typeof value === 'number' && Number.isSafeInteger(value) && value >= min && value <= max;

/**
 * An integer query parameter in `[min, max]`: undefined when absent, false when it is anything else.
 * Only plain decimal digits are taken (no sign, exponent or fraction).
 */
export function queryInt(
  request: Request,
  name: string,
  min: number,
  max: number,
): number | undefined | false {
  const text = request.query.get(name);
  if (text === null) return undefined;
  if (!/^[0-9]{1,16}$/.test(text)) return false;
  const value = Number(text);
  return isInt(value, min, max) ? value : false;
}

/** An engine reply as an HTTP answer: `approved` with the given body, anything else as an error. */
export function answerFor(reply: Reply, successStatus: number, body: () => unknown): Answer {
  if (reply.status === 'approved') return ok(successStatus, body());
  return fail(reply.status, STATUSES[reply.status].meaning);
}

type Method = 'get' | 'post' | 'del';
type Handler<Caller> = (request: Request, caller: Caller) => Promise<Answer> | Answer;

/**
 * Who may call a merchant's route: the merchant named in the path (its own API key) or the operator;
 * `merchantOnly` for what the merchant alone may do (create its terminals, issue value it pays for at
 * settlement): the operator administers the platform but does not act as a merchant.
 */
export type MerchantAccess = 'merchantOrOperator' | 'merchantOnly';

/** The merchant a route acts for, and whether the operator asked on its behalf. */
export interface MerchantCaller {
  merchantId: MerchantId;
  byOperator: boolean;
}

/** Registers routes on the app, each with its caller checked once. */
export class RouteKit {
  /** Every route as `[method, pattern]`, in the order registered (the OpenAPI test checks them). */
  readonly registered: [string, string][] = [];

  constructor(
    private readonly app: TemplatedApp,
    readonly deps: RouteDeps,
  ) {}

  /** A route anyone may call, whatever token the request carries (none is looked up). */
  open(method: Method, pattern: string, handler: (request: Request) => Promise<Answer> | Answer): void {
    this.registered.push([method === 'del' ? 'delete' : method, pattern]);
    const { limits, metrics } = this.deps;
    const body = {
      bytesMax: method === 'post' ? limits.httpBodyBytesMax : 0,
      drainBytesMax: limits.httpBodyDrainBytesMax,
    };
    const onAnswer = (route: string, code: number, seconds: number) => {
      metrics.httpRequests.inc({ route, code });
      metrics.httpLatency.observe({ route }, seconds);
    };
    route(this.app, method, pattern, body, handler, onAnswer);
  }

  /** A route anyone may call, told who the request's token belongs to (null: none, or not valid). */
  anyCaller(method: Method, pattern: string, handler: Handler<Principal | null>): void {
    this.open(method, pattern, (request) =>
      handler(request, request.token ? this.deps.registry.credentials.authenticate(request.token) : null),
    );
  }

  /** A route of the merchant named by the path's first parameter. */
  merchant(
    method: Method,
    pattern: string,
    handler: Handler<MerchantCaller>,
    access: MerchantAccess = 'merchantOrOperator',
  ): void {
    this.anyCaller(method, pattern, (request, caller) => {
      const merchantId = request.params[0] as MerchantId;
      if (!caller) return fail('unauthorized', 'a valid bearer token is required');
      if (caller.kind === 'device' || (caller.kind === 'merchant' && caller.merchantId !== merchantId))
        return fail('forbidden', 'this token may not act for this merchant');
      if (caller.kind === 'operator' && access === 'merchantOnly')
        return fail('forbidden', "the operator does not act as a merchant: use the merchant's own API key");
      if (!this.deps.registry.merchants.get(merchantId)) return fail('not_found', 'no such merchant');
      return handler(request, { merchantId, byOperator: caller.kind === 'operator' });
    });
  }

  /** A route of the consumer whose device token calls it. */
  consumer(method: Method, pattern: string, handler: Handler<ConsumerId>): void {
    this.anyCaller(method, pattern, (request, caller) =>
      caller?.kind === 'device'
        ? handler(request, caller.consumerId)
        : fail('unauthorized', 'a valid device token is required'),
    );
  }

  /** A route of the operator; `forbidden` says what a merchant or device asked for. */
  operator(method: Method, pattern: string, forbidden: string, handler: Handler<Principal>): void {
    this.anyCaller(method, pattern, (request, caller) => {
      if (!caller) return fail('unauthorized', 'the operator token is required');
      return caller.kind === 'operator' ? handler(request, caller) : fail('forbidden', forbidden);
    });
  }
}
