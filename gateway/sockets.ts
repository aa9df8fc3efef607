import uWS, { type WebSocketBehavior } from 'uWebSockets.js';
import type { Limits } from '../engine/limits.ts';

/**
 * What every WebSocket of the gateway shares: bounded frames, a bounded send queue that closes a slow
 * reader instead of buffering without end, idle timeouts with automatic pings, and no compression
 * (compressed secrets next to attacker-chosen data leak through their length).
 */
export function socketOptions(limits: Limits): WebSocketBehavior<unknown> {
  return {
    compression: uWS.DISABLED,
    maxPayloadLength: limits.wsMessageBytesMax,
    maxBackpressure: limits.wsBackpressureBytesMax,
    closeOnBackpressureLimit: 1,
    idleTimeout: limits.wsIdleTimeoutS,
    sendPingsAutomatically: true,
  };
}

/** An upgrade handler that gives each new socket a fresh session object as its user data. */
export function upgradeWith<T>(session: () => T): NonNullable<WebSocketBehavior<T>['upgrade']> {
  return (res, req, context) =>
    res.upgrade(
      session(),
      req.getHeader('sec-websocket-key'),
      req.getHeader('sec-websocket-protocol'),
      req.getHeader('sec-websocket-extensions'),
      context,
    );
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
