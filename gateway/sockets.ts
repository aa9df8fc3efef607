import type { WebSocketBehavior } from 'uWebSockets.js';
import { isIP } from 'node:net';
import type { Limits } from '../core/limits.ts';
import { type Answer, fail, originOf, type ProxyPolicy, THROUGH_PROXY_ONLY } from './http.ts';
import { uws } from './uws.ts';

/**
 * What every WebSocket of the gateway shares: bounded frames, a bounded send queue that closes a slow
 * reader instead of buffering without end, idle timeouts with automatic pings, and no compression
 * (compressed secrets next to attacker-chosen data leak through their length).
 *
 * @module
 */

export function socketOptions(limits: Limits): WebSocketBehavior<unknown> {
  return {
    compression: uws().DISABLED,
    maxPayloadLength: limits.wsMessageBytesMax,
    maxBackpressure: limits.wsBackpressureBytesMax,
    closeOnBackpressureLimit: 1,
    idleTimeout: limits.wsIdleTimeoutS,
    sendPingsAutomatically: true,
  };
}

/**
 * An upgrade handler that gives each new socket a fresh session object as its user data. A browser
 * page may open it only from an origin in `allowedOrigins`, or from the server's own origin when that
 * is a loopback or IP address (a DNS name must be listed: a rebound name would otherwise pass as
 * "own"); others get 403. A client that sends no Origin header is not a browser page and is let in.
 */
export interface OriginPolicy {
  /** Origins besides the server's own whose browser pages may open the sockets. */
  allowed: readonly string[] | null;
  /** The server's own scheme (behind a trusted TLS proxy, the one the proxy says the client used). */
  scheme: 'http' | 'https';
  /** The trusted proxies, when the server is behind some (http.ts, `serveBehind`). */
  proxy?: ProxyPolicy;
}

export function upgradeWith<T>(
  session: () => T,
  origins: OriginPolicy,
): NonNullable<WebSocketBehavior<T>['upgrade']> {
  return (res, req, context) => {
    const forbid = (answer: Answer) => {
      const body = JSON.stringify(answer.body);
      res.cork(() =>
        res.writeStatus('403 Forbidden').writeHeader('content-type', 'application/json').end(body),
      );
    };
    const from = originOf(origins.proxy, res, req);
    if (from.refused) return forbid(THROUGH_PROXY_ONLY);
    const origin = req.getHeader('origin');
    const scheme =
      origins.proxy?.proxies.schemeOf(from.peer, req.getHeader('x-forwarded-proto'), origins.scheme) ??
      origins.scheme;
    if (origin && !originAllowed(origin, `${scheme}://${req.getHeader('host')}`, origins.allowed))
      return forbid(fail('forbidden', 'this origin may not open the socket'));
    res.upgrade(
      session(),
      req.getHeader('sec-websocket-key'),
      req.getHeader('sec-websocket-protocol'),
      req.getHeader('sec-websocket-extensions'),
      context,
    );
  };
}

function originAllowed(origin: string, own: string, allowedOrigins: readonly string[] | null): boolean {
  if (allowedOrigins?.includes(origin)) return true;
  try {
    const ownUrl = new URL(own);
    const address = ownUrl.hostname === 'localhost' || isIP(ownUrl.hostname.replace(/^\[|\]$/g, '')) !== 0;
    return address && new URL(origin).origin === ownUrl.origin;
  } catch {
    return false;
  }
}

/**
 * The open sockets of each owner (a terminal, a consumer): their number bounds new ones, and a revoked
 * credential closes them.
 */
export class SocketsBy<Socket> {
  private readonly sockets = new Map<string, Set<Socket>>();

  count(owner: string): number {
    return this.sockets.get(owner)?.size ?? 0;
  }

  of(owner: string): Socket[] {
    return [...(this.sockets.get(owner) ?? [])];
  }

  add(owner: string, socket: Socket): void {
    const open = this.sockets.get(owner);
    if (open) open.add(socket);
    else this.sockets.set(owner, new Set([socket]));
  }

  delete(owner: string, socket: Socket): void {
    const open = this.sockets.get(owner);
    if (open?.delete(socket) && open.size === 0) this.sockets.delete(owner);
  }
}

/** Counts events in fixed windows of `windowMs`. */
export class RateWindow {
  private startMs = 0;
  private events = 0;

  constructor(private readonly windowMs: number) {}

  /** Records one event at `nowMs`; returns the events in the current window, this one included. */
  add(nowMs: number): number {
    this.roll(nowMs);
    return ++this.events;
  }

  count(nowMs: number): number {
    this.roll(nowMs);
    return this.events;
  }

  private roll(nowMs: number): void {
    if (nowMs - this.startMs < this.windowMs) return;
    this.startMs = nowMs;
    this.events = 0;
  }
}
