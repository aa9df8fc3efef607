import type { TemplatedApp } from 'uWebSockets.js';
import { DEV_INBOX_TEXTS_MAX, ROUTES } from './api.ts';
import { fail, ok, type Request } from './http.ts';
import { isLoopbackAddress, isLoopbackName } from './loopback.ts';
import { merchantRoutes } from './merchant-routes.ts';
import { operatorRoutes } from './operator-routes.ts';
import { safeEqual } from './registry-tables.ts';
import { type RouteDeps, RouteKit } from './route-kit.ts';
import { walletRoutes } from './wallet-routes.ts';

export type { RouteDeps } from './route-kit.ts';

/**
 * The HTTP API of docs/http-api.md (its extensions marked there), declared in api.ts: the routes of each
 * resource come from their own file (operator-routes.ts, merchant-routes.ts, wallet-routes.ts), each with
 * its caller and input checked by route-kit.ts before the handler runs; here are the few that belong to
 * no one resource, and the answers to paths and methods the API does not have. Nothing is changed before
 * every check has passed.
 *
 * @module
 */

/**
 * Whether a request is from this machine and was addressed to it by a loopback name. The address alone
 * is not enough: a page of another site whose name an attacker points at 127.0.0.1 (DNS rebinding)
 * reaches the server from the browser on this machine, but with its own name in the Host header.
 */
const isLocalRequest = (request: Request) =>
  !request.forwarded && isLoopbackAddress(request.peer) && isLoopbackName(request.host);

/** Registers the routes; returns each as `[method, pattern]` (the OpenAPI test checks them). */
export function httpRoutes(app: TemplatedApp, deps: RouteDeps): [string, string][] {
  const { engine, registry, metrics } = deps;
  const kit = new RouteKit(app, deps);
  // Whoever holds a token: a page that has only an API key learns whose it is. No personal data.
  kit.route(ROUTES.me, ({ caller }) => {
    if (!caller) return fail('unauthorized', 'a valid bearer token is required');
    if (caller.kind === 'operator') return ok(200, { kind: 'operator' });
    if (caller.kind === 'device') return ok(200, { kind: 'device', expiresAtMs: caller.expiresAtMs });
    const merchant = registry.merchants.get(caller.merchantId);
    if (!merchant) return fail('not_found', 'no such merchant');
    return ok(200, { kind: 'merchant', merchantId: merchant.merchantId, name: merchant.name });
  });

  operatorRoutes(kit);
  merchantRoutes(kit);

  // Terminals, before they hold a credential.
  kit.route(ROUTES.activateTerminal, async ({ body }) => {
    const activated = await registry.terminals.activate(body.activationCode);
    return activated ? ok(200, activated) : fail('not_found', 'unknown, used or expired activation code');
  });

  walletRoutes(kit);

  // Operations.

  // Healthy is `{ok: true}` as docs/gateway.md ("Health") says; otherwise 503 with what is wrong, so a load balancer
  // stops sending and an operator sees which shard (docs/gateway.md). Causes stay in the log.
  kit.route(ROUTES.health, () => {
    const { ok: healthy, status, shards } = engine.health();
    if (healthy) return ok(200, { ok: true });
    return ok(503, { ok: false, status, shards });
  });

  // With PAYCODE_METRICS_TOKEN, to whoever sends it (a scraper elsewhere); without, to this machine only.
  kit.route(ROUTES.metrics, async ({ request }) => {
    const { metricsToken } = deps;
    if (metricsToken !== null && !safeEqual(request.token, metricsToken))
      return fail('unauthorized', 'metrics need the metrics token (PAYCODE_METRICS_TOKEN) as a bearer token');
    if (metricsToken === null && !isLocalRequest(request))
      return fail('forbidden', 'metrics are served on loopback only (or set PAYCODE_METRICS_TOKEN)');
    return { status: 200, body: await metrics.registry.metrics(), contentType: metrics.registry.contentType };
  });

  if (deps.devInbox) {
    const inbox = deps.devInbox;
    // Development only (console SMS mode), and from this machine only: the texts hold codes.
    kit.route(ROUTES.devInbox, ({ request, query: { phone } }) => {
      if (!isLocalRequest(request)) return fail('forbidden', 'the inbox is served on loopback only');
      const texts = inbox.inbox
        .filter((text) => phone === undefined || text.phone === phone)
        .slice(-DEV_INBOX_TEXTS_MAX);
      return ok(200, { texts: texts.reverse() });
    });
  }

  // A known path asked with another method: 405 with the methods it takes, not a 404 that hides it.
  const methodsOf = new Map<string, string[]>();
  for (const [method, pattern] of kit.registered)
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
  return kit.registered;
}
