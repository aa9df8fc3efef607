import type { WebSocket, WebSocketBehavior } from 'uWebSockets.js';
import { type CodeKeys, codeDigitsMinOf, unsealCode } from '../core/codes.ts';
import type { Notice, WalletView } from '../core/commands.ts';
import type { ConsumerId } from '../core/ids.ts';
import type { Limits } from '../core/limits.ts';
import type { Reply } from '../core/wallet.ts';
import type { Engine } from '../engine/engine.ts';
import type { Logger } from '../log/logger.ts';
import { CLOSE_CODES } from '../sdk/close-codes.ts';
import { decodeFrame, type Encoding, encodeFrame, type Frame } from './codec.ts';
import type { InFlight } from './in-flight.ts';
import type { Metrics } from './metrics.ts';
import type { Registry } from './registry.ts';
import { type OriginPolicy, RateWindow, SocketsBy, socketOptions, upgradeWith } from './sockets.ts';

/**
 * The wallet WebSocket (`/v1/wallet`, docs/http-api.md "Wallet WebSocket"). The phone authenticates with its device token in
 * its first message, gets a snapshot, and then hears every durable change of its wallet as it happens.
 *
 * The socket watches the consumer before it reads the snapshot, and holds pushes back until the
 * snapshot is sent, so no change falls between the two. Pushes leave on the next turn of the event
 * loop; a `requestCode` or `cancelCode` answer is the `code` push it caused, sent at once with the
 * request's `reqId` (the engine reports the change before it resolves the request).
 *
 * @module
 */

export interface WalletSession {
  encoding: Encoding | null;
  consumerId: ConsumerId | null;
  ready: boolean;
  pending: Frame[];
  flushScheduled: boolean;
  unwatch: (() => void) | null;
  closed: boolean;
  /** The authentication deadline, then the device token's expiry. */
  deadline: NodeJS.Timeout | null;
  /** The device token this socket signed in with (its id, not the token) and when it expires. */
  tokenId: string | null;
  tokenExpiresAtMs: number;
  requests: RateWindow;
}

export interface WalletDeps {
  engine: Engine;
  registry: Registry;
  keys: CodeKeys;
  limits: Limits;
  metrics: Metrics;
  /** Which browser pages may open the socket. */
  origins: OriginPolicy;
  /** Refused sign-ins and failures; never a token or a code. */
  logger: Logger;
  now: () => number;
  /** Requests being answered; a shutdown lets them finish and refuses new ones. */
  inFlight: InFlight;
}

/** The wallet as docs/http-api.md shows it (`GET /v1/wallet`, the snapshot): cards carry the merchant name. */
export function walletBody(view: WalletView, registry: Registry): Frame {
  return {
    cards: view.cards.map((card) => ({
      cardId: card.cardId,
      merchantId: card.merchantId,
      merchantName: registry.merchants.get(card.merchantId)?.name ?? card.merchantId,
      kind: card.kind,
      balanceCents: card.balanceCents,
      availableCents: card.availableCents,
      ...(card.alertBelowCents !== undefined && { alertBelowCents: card.alertBelowCents }),
    })),
    activeCode: view.activeCode,
    frozen: view.frozen,
  };
}

function noticeFrame(notice: Exclude<Notice, { type: 'resync' }>, keys: CodeKeys): Frame {
  if (notice.type === 'balance') {
    const { card, cause, atMs } = notice;
    return {
      type: 'balance',
      cardId: card.cardId,
      merchantId: card.merchantId,
      balanceCents: card.balanceCents,
      availableCents: card.availableCents,
      cause,
      atMs,
    };
  }
  return {
    type: 'code',
    code: unsealCode(keys, notice.sealed, notice.consumerId),
    merchantId: notice.merchantId,
    capCents: notice.capCents,
    state: notice.state,
    expiresAtMs: notice.expiresAtMs,
  };
}

export function walletBehavior(deps: WalletDeps): WebSocketBehavior<WalletSession> {
  const { engine, registry, limits, metrics } = deps;
  const consumerSockets = new SocketsBy<WebSocket<WalletSession>>();

  /** Pushes that answer a request leave in the request's encoding; other pushes in the session's. */
  const answerEncodings = new WeakMap<Frame, Encoding>();

  const send = (ws: WebSocket<WalletSession>, message: Frame, encoding = ws.getUserData().encoding) => {
    if (ws.getUserData().closed) return;
    metrics.walletPushes.inc();
    ws.send(encodeFrame(message, encoding ?? 'json'), encoding === 'msgpack');
  };
  /** Sends held pushes up to and including `upTo` (all when omitted). */
  const flush = (ws: WebSocket<WalletSession>, upTo?: Frame) => {
    const session = ws.getUserData();
    if (!session.ready || session.closed) return;
    const end = upTo ? session.pending.indexOf(upTo) + 1 : session.pending.length;
    const frames = session.pending.splice(0, end);
    ws.cork(() => {
      for (const frame of frames) send(ws, frame, answerEncodings.get(frame));
    });
  };
  const refuse = (ws: WebSocket<WalletSession>, reason: string) => {
    deps.logger.warn('wallet auth refused', { reason });
    send(ws, { type: 'error', status: 'unauthorized' });
    if (!ws.getUserData().closed) ws.end(CLOSE_CODES.unauthorized, 'unauthorized');
  };

  /** Closes the socket once its device token expired (a timer, re-armed past the longest delay). */
  const closeAtExpiry = (ws: WebSocket<WalletSession>) => {
    const session = ws.getUserData();
    const leftMs = session.tokenExpiresAtMs - deps.now();
    if (leftMs <= 0) refuse(ws, 'device token expired');
    else session.deadline = setTimeout(() => closeAtExpiry(ws), Math.min(leftMs, 2 ** 31 - 1));
  };
  // A revoked device token ends the sockets signed in with it.
  registry.credentials.onRevocation((revocation) => {
    if (revocation.kind !== 'devices') return;
    for (const ws of consumerSockets.of(revocation.consumerId)) {
      if (revocation.tokenId === undefined || ws.getUserData().tokenId === revocation.tokenId)
        refuse(ws, 'device token revoked');
    }
  });

  const authenticate = async (ws: WebSocket<WalletSession>, frame: Frame | null) => {
    const session = ws.getUserData();
    const principal =
      frame?.type === 'auth' && typeof frame.token === 'string'
        ? registry.credentials.authenticate(frame.token)
        : null;
    if (principal?.kind !== 'device') {
      refuse(ws, frame?.type !== 'auth' ? 'no auth message' : principal ? 'not a device token' : 'bad token');
      return;
    }
    const { consumerId } = principal;
    if (consumerSockets.count(consumerId) >= limits.walletSocketsPerConsumerMax) {
      deps.logger.warn('wallet socket refused: too many sockets', { consumerId });
      send(ws, { type: 'error', status: 'rate_limited' });
      ws.end(CLOSE_CODES.tooMany, 'too many wallet sockets');
      return;
    }
    consumerSockets.add(consumerId, ws);
    if (session.deadline) clearTimeout(session.deadline);
    session.consumerId = consumerId;
    session.tokenId = principal.tokenId;
    session.tokenExpiresAtMs = principal.expiresAtMs;
    closeAtExpiry(ws);
    session.unwatch = engine.watch(consumerId, (notice) => {
      if (notice.type === 'resync') {
        void resnapshot(ws, consumerId);
        return;
      }
      session.pending.push(noticeFrame(notice, deps.keys));
      if (session.flushScheduled || !session.ready) return;
      session.flushScheduled = true;
      setImmediate(() => {
        session.flushScheduled = false;
        flush(ws);
      });
    });
    const view = await engine.wallet(consumerId);
    if (session.closed) return;
    if (!view) {
      send(ws, { type: 'error', status: 'internal' });
      return;
    }
    ws.cork(() => send(ws, { type: 'snapshot', ...walletBody(view, registry) }));
    session.ready = true;
    flush(ws);
  };

  /**
   * A fresh snapshot after the consumer's shard was restarted: pushes of a batch lost with the dead thread
   * were never sent, and the snapshot says where the wallet stands now. It leaves after the pushes queued
   * before it.
   */
  const resnapshot = async (ws: WebSocket<WalletSession>, consumerId: ConsumerId) => {
    const session = ws.getUserData();
    if (!session.ready) return; // the first snapshot is still to come
    // What is queued leaves first; pushes that come while the wallet is read wait and follow the snapshot,
    // as for the first one.
    flush(ws);
    session.ready = false;
    const view = await engine.wallet(consumerId);
    if (session.closed) return;
    if (!view) {
      // Not readable now: the phone reconnects and gets its snapshot then.
      ws.end(CLOSE_CODES.serverError, 'wallet not readable; reconnect');
      return;
    }
    session.pending.unshift({ type: 'snapshot', ...walletBody(view, registry) });
    session.ready = true;
    flush(ws);
  };

  /** Answers a request with the `code` push it caused, or with an error carrying its status. */
  const answerWithPush = (
    ws: WebSocket<WalletSession>,
    encoding: Encoding,
    reqId: unknown,
    reply: Reply,
    expected: Frame,
  ) => {
    const session = ws.getUserData();
    if (reply.status !== 'approved') {
      send(ws, { type: 'error', reqId, status: reply.status }, encoding);
      return;
    }
    const push = session.pending.find(
      (frame) =>
        frame.type === 'code' &&
        frame.state === expected.state &&
        (expected.code === undefined || frame.code === expected.code),
    );
    if (push) {
      push.reqId = reqId;
      answerEncodings.set(push, encoding);
      flush(ws, push);
    } else {
      // Not expected (the engine reports a change before it answers), but the phone must get its answer.
      send(ws, { ...expected, reqId }, encoding);
    }
  };

  const request = async (ws: WebSocket<WalletSession>, frame: Frame | null, encoding: Encoding) => {
    const session = ws.getUserData();
    const consumerId = session.consumerId as ConsumerId;
    const reqId = frame?.reqId;
    const validReqId =
      (typeof reqId === 'string' && reqId.length <= limits.walletRequestIdLengthMax) ||
      (typeof reqId === 'number' && Number.isSafeInteger(reqId));
    if (!frame || !validReqId) {
      send(ws, { type: 'error', reqId: validReqId ? reqId : undefined, status: 'bad_request' }, encoding);
      return;
    }
    if (session.requests.add(Date.now()) > limits.wsRequestsPerSecondMax) {
      send(ws, { type: 'error', reqId, status: 'rate_limited' }, encoding);
      return;
    }
    if (frame.type === 'requestCode') {
      const { merchantId, capCents } = frame;
      const merchant = typeof merchantId === 'string' ? registry.merchants.get(merchantId) : undefined;
      if (typeof merchantId !== 'string' || !merchant) {
        const status = typeof merchantId === 'string' ? 'not_found' : 'bad_request';
        send(ws, { type: 'error', reqId, status }, encoding);
        return;
      }
      const reply = await engine.issueCode({
        consumerId,
        merchantId,
        capCents: capCents as number | undefined,
        codeDigitsMin: codeDigitsMinOf(merchant),
      });
      answerWithPush(ws, encoding, reqId, reply, {
        type: 'code',
        code: reply.code,
        merchantId,
        capCents: reply.capCents,
        state: 'issued',
        expiresAtMs: reply.expiresAtMs,
      });
    } else if (frame.type === 'cancelCode') {
      const reply = await engine.cancelCode(consumerId);
      answerWithPush(ws, encoding, reqId, reply, { type: 'code', state: 'cancelled' });
    } else {
      send(ws, { type: 'error', reqId, status: 'bad_request' }, encoding);
    }
  };

  return {
    ...socketOptions(limits),
    upgrade: upgradeWith<WalletSession>(
      () => ({
        encoding: null,
        consumerId: null,
        ready: false,
        pending: [],
        flushScheduled: false,
        unwatch: null,
        closed: false,
        deadline: null,
        tokenId: null,
        tokenExpiresAtMs: 0,
        requests: new RateWindow(1_000),
      }),
      deps.origins,
    ),
    open: (ws) => {
      metrics.sockets.inc({ endpoint: 'wallet' });
      ws.getUserData().deadline = setTimeout(() => refuse(ws, 'no auth in time'), limits.wsAuthDeadlineMs);
    },
    message: (ws, data, isBinary) => {
      const session = ws.getUserData();
      session.encoding ??= isBinary ? 'msgpack' : 'json';
      const frame = decodeFrame(data, isBinary);
      const encoding = isBinary ? 'msgpack' : 'json';
      if (session.consumerId && session.tokenExpiresAtMs <= deps.now()) {
        refuse(ws, 'device token expired');
        return;
      }
      if (deps.inFlight.draining) {
        send(ws, { type: 'error', reqId: frame?.reqId, status: 'overloaded' }, encoding);
        return;
      }
      const handled = deps.inFlight.track(
        session.consumerId ? request(ws, frame, encoding) : authenticate(ws, frame),
      );
      handled.catch((error: unknown) => {
        deps.logger.error('wallet request failed', { consumerId: session.consumerId, err: error });
        send(ws, { type: 'error', reqId: frame?.reqId, status: 'internal' }, encoding);
      });
    },
    close: (ws) => {
      metrics.sockets.dec({ endpoint: 'wallet' });
      const session = ws.getUserData();
      session.closed = true;
      if (session.deadline) clearTimeout(session.deadline);
      session.unwatch?.();
      if (session.consumerId) consumerSockets.delete(session.consumerId, ws);
    },
  };
}
