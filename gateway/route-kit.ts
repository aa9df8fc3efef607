import type { TemplatedApp } from 'uWebSockets.js';
import type { Static, TObject } from '@sinclair/typebox';
import type { ConsumerId, MerchantId } from '../core/ids.ts';
import type { Limits } from '../core/limits.ts';
import { STATUSES } from '../core/statuses.ts';
import { unreachable } from '../core/unreachable.ts';
import type { Reply } from '../core/wallet.ts';
import type { Engine } from '../engine/engine.ts';
import type { ConsoleSender } from '../notify/sender.ts';
import type { Store } from '../persistence/store.ts';
import type { Cutoff } from '../settlement/calendar.ts';
import type { Settlements } from '../settlement/settlements.ts';
import type { CallerKind, RouteSpec } from './api.ts';
import { objectCheck } from './api-schema.ts';
import type { CodeFailureWindows } from './code-windows.ts';
import type { Principal } from './credentials.ts';
import type { FundingProvider } from './funding/provider.ts';
import type { Gifts } from './gifts.ts';
import { type Answer, fail, ok, type Request, route } from './http.ts';
import type { Metrics } from './metrics.ts';
import type { Registry } from './registry.ts';

/**
 * What the HTTP routes share: their dependencies, and the registration of a route declared in api.ts with
 * its caller and its input checked once, from the declaration, before the handler runs. Each routes
 * file (merchant-routes.ts, wallet-routes.ts, operator-routes.ts) registers one resource's routes
 * through it.
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
  /** Gifts between phones, with their budget (gifts.ts). */
  gifts: Gifts;
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

/** An engine reply as an HTTP answer: `approved` with the given body, anything else as an error. */
export function answerFor(reply: Reply, successStatus: number, body: () => unknown): Answer {
  if (reply.status === 'approved') return ok(successStatus, body());
  return fail(reply.status, STATUSES[reply.status].meaning);
}

/** The merchant a route acts for, and whether the operator asked on its behalf. */
export interface MerchantCaller {
  merchantId: MerchantId;
  byOperator: boolean;
}

type CallerOf<C extends CallerKind> = C extends 'merchant' | 'merchantOnly'
  ? MerchantCaller
  : C extends 'device'
    ? ConsumerId
    : C extends 'operator'
      ? Principal
      : C extends 'anyToken'
        ? Principal | null
        : null;
type InputOf<T> = [NonNullable<T>] extends [never]
  ? undefined
  : NonNullable<T> extends TObject
    ? Static<NonNullable<T>>
    : undefined;

/** What a handler is given: the request, its caller, and its body and query as checked. */
export interface Call<S extends AnyRoute> {
  request: Request;
  caller: CallerOf<S['caller']>;
  body: InputOf<S['body']>;
  query: InputOf<S['query']>;
}

// biome-ignore lint/suspicious/noExplicitAny: any route of the table
type AnyRoute = RouteSpec<any, any, any>;

/** The names of a pattern's path parameters, in order. */
const paramNames = (path: string) => [...path.matchAll(/:([A-Za-z]+)/g)].map((match) => match[1] as string);

/** A query string as the schema's types: integers from plain decimal digits (no sign, exponent or fraction). */
function queryValues(query: URLSearchParams, schema: TObject): Record<string, unknown> {
  const values: Record<string, unknown> = {};
  for (const [name, property] of Object.entries(schema.properties)) {
    const text = query.get(name);
    if (text === null) continue;
    values[name] = property.type === 'integer' && /^[0-9]{1,16}$/.test(text) ? Number(text) : text;
  }
  return values;
}

/**
 * Registers the routes of api.ts on the app: the caller is checked first, then the path parameters, the
 * query and the body against the route's schemas; the handler runs only when all have passed.
 */
export class RouteKit {
  /** Every route as `[method, pattern]`, in the order registered (the OpenAPI test checks them). */
  readonly registered: [string, string][] = [];

  constructor(
    private readonly app: TemplatedApp,
    readonly deps: RouteDeps,
  ) {}

  route<S extends AnyRoute>(spec: S, handler: (call: Call<S>) => Promise<Answer> | Answer): void {
    this.registered.push([spec.method, spec.path]);
    const { limits, metrics, registry } = this.deps;
    const names = paramNames(spec.path);
    const checkParams = spec.params && objectCheck(spec.params, 'the path');
    const checkQuery = spec.query && objectCheck(spec.query, 'the query');
    const checkBody = spec.body && objectCheck(spec.body, 'the body');
    const run = (request: Request, caller: unknown): Promise<Answer> | Answer => {
      if (checkParams) {
        const params = checkParams(Object.fromEntries(names.map((name, i) => [name, request.params[i]])));
        if (!params.ok) return fail('bad_request', params.message);
      }
      let query: unknown;
      if (checkQuery) {
        const checked = checkQuery(queryValues(request.query, spec.query as TObject));
        if (!checked.ok) return fail('bad_request', checked.message);
        query = checked.value;
      }
      let body: unknown;
      if (checkBody) {
        const given = request.body === undefined && spec.bodyOptional ? {} : request.body;
        const checked = checkBody(given);
        if (!checked.ok) return fail('bad_request', checked.message);
        body = checked.value;
      }
      return handler({ request, caller, body, query } as Call<S>);
    };
    const onAnswer = (route: string, code: number, seconds: number) => {
      metrics.httpRequests.inc({ route, code });
      metrics.httpLatency.observe({ route }, seconds);
    };
    const bodyBounds = {
      bytesMax: spec.method === 'post' ? limits.httpBodyBytesMax : 0,
      drainBytesMax: limits.httpBodyDrainBytesMax,
    };
    const method = spec.method === 'delete' ? 'del' : spec.method;
    route(
      this.app,
      method,
      spec.path,
      bodyBounds,
      (request) => {
        const principal =
          spec.caller !== 'anyone' && request.token ? registry.credentials.authenticate(request.token) : null;
        const refusal = callerRefusal(spec, principal, request.params[0]);
        if (refusal) return refusal;
        const kind = spec.caller as CallerKind;
        switch (kind) {
          case 'anyone':
          case 'anyToken':
          case 'operator':
            return run(request, principal);
          case 'device':
            return run(request, (principal as Principal & { kind: 'device' }).consumerId);
          case 'merchant':
          case 'merchantOnly': {
            const merchantId = request.params[0] as MerchantId;
            if (!registry.merchants.get(merchantId)) return fail('not_found', 'no such merchant');
            return run(request, { merchantId, byOperator: principal?.kind === 'operator' });
          }
          default:
            return unreachable(kind);
        }
      },
      onAnswer,
    );
  }
}

/**
 * Why a caller may not call the route, or null. A merchant route takes the merchant named by the path's
 * first parameter (its own API key) or the operator; `merchantOnly` the merchant alone: the operator
 * administers the platform but does not act as a merchant.
 */
function callerRefusal(
  spec: AnyRoute,
  caller: Principal | null,
  pathMerchant: string | undefined,
): Answer | null {
  switch (spec.caller as CallerKind) {
    case 'anyone':
    case 'anyToken':
      return null;
    case 'device':
      return caller?.kind === 'device' ? null : fail('unauthorized', 'a valid device token is required');
    case 'operator':
      if (!caller) return fail('unauthorized', 'the operator token is required');
      return caller.kind === 'operator'
        ? null
        : fail('forbidden', spec.forbidden ?? 'this is for the operator');
    case 'merchant':
    case 'merchantOnly':
      if (!caller) return fail('unauthorized', 'a valid bearer token is required');
      if (caller.kind === 'device' || (caller.kind === 'merchant' && caller.merchantId !== pathMerchant))
        return fail('forbidden', 'this token may not act for this merchant');
      if (caller.kind === 'operator' && spec.caller === 'merchantOnly')
        return fail('forbidden', "the operator does not act as a merchant: use the merchant's own API key");
      return null;
  }
}
