import type { WebSocket, WebSocketBehavior } from 'uWebSockets.js';
import { createHmac, randomBytes } from 'node:crypto';
import { isCodeString } from '../core/codes.ts';
import type { MerchantId, TerminalId } from '../core/ids.ts';
import type { Limits } from '../core/limits.ts';
import type { Status } from '../core/statuses.ts';
import { unreachable } from '../core/unreachable.ts';
import type { Reply } from '../core/wallet.ts';
import { type Engine, isAmountCents, isIdempotencyKey } from '../engine/engine.ts';
import type { Logger } from '../log/logger.ts';
import { CLOSE_CODES } from '../sdk/close-codes.ts';
import {
  canonical as canonicalString,
  isPosRequestType,
  posMac as mac,
  macMatches,
  POS_REQUESTS,
  type PosRequestSpec,
  type PosRequestType,
} from '../sdk/pos-protocol.ts';
import { CodeAttempts } from './code-attempts.ts';
import type { CodeFailureWindows } from './code-windows.ts';
import { decodeFrame, type Encoding, encodeFrame, type Frame } from './codec.ts';
import type { InFlight } from './in-flight.ts';
import type { Metrics } from './metrics.ts';
import type { Registry } from './registry.ts';
import { type OriginPolicy, RateWindow, SocketsBy, socketOptions, upgradeWith } from './sockets.ts';

/**
 * The POS WebSocket (`/v1/pos`, docs/pos-guide.md). After a challenge/hello handshake every request and
 * answer carries an HMAC under the session key over its canonical fields; `seq` must grow strictly.
 * Answers are sent only after the engine's durable commit and carry nothing personal: the answer
 * fields are picked from the engine's reply by name.
 *
 * Redeems and inquiries go through code-attempts.ts, which owns the defences against code guessing.
 *
 * @module
 */

interface PosFields {
  key: string;
  code: string;
  amountCents: number;
  authId: string;
}

export interface PosSession {
  encoding: Encoding | null;
  nonce: string;
  terminalId: TerminalId | null;
  merchantId: MerchantId | null;
  sessionKey: Buffer | null;
  lastSeq: number;
  badMessages: number;
  closed: boolean;
  deadline: NodeJS.Timeout | null;
  requests: RateWindow;
}

export interface PosDeps {
  engine: Engine;
  registry: Registry;
  limits: Limits;
  metrics: Metrics;
  /** Which browser pages may open the socket. */
  origins: OriginPolicy;
  /** Requests being answered; a shutdown lets them finish and refuses new ones. */
  inFlight: InFlight;
  now: () => number;
  /** Called after a redeem, void, refund or reverse was answered (their texts are in the outbox). */
  onMoneyMoved: () => void;
  /** Refused handshakes, refused messages and failures; never a key, a code or a MAC. */
  logger: Logger;
  /** The failure windows of code attempts, shared with the merchant's dashboard. */
  codeWindows: CodeFailureWindows;
}

export function posBehavior(deps: PosDeps): WebSocketBehavior<PosSession> {
  const { limits, metrics } = deps;
  const terminalSockets = new SocketsBy<WebSocket<PosSession>>();
  const attempts = new CodeAttempts(deps);

  /** Sends in the given encoding: the request's for an answer, the session's for the server's own frames. */
  const send = (ws: WebSocket<PosSession>, message: Frame, encoding = ws.getUserData().encoding) => {
    if (ws.getUserData().closed) return;
    ws.cork(() => ws.send(encodeFrame(message, encoding ?? 'json'), encoding === 'msgpack'));
  };
  // A revoked or replaced terminal key ends the sessions made with it.
  deps.registry.credentials.onRevocation((revocation) => {
    if (revocation.kind !== 'terminal') return;
    for (const ws of terminalSockets.of(revocation.terminalId)) {
      deps.logger.info('pos session closed: terminal key revoked', { terminalId: revocation.terminalId });
      send(ws, { type: 'error', status: 'unauthorized' });
      if (!ws.getUserData().closed) ws.end(CLOSE_CODES.unauthorized, 'unauthorized');
    }
  });
  const refuse = (
    ws: WebSocket<PosSession>,
    status: Status,
    detail: { reason: string; terminalId?: string },
    code: number = CLOSE_CODES.unauthorized,
  ) => {
    metrics.handshakeFailures.inc();
    deps.logger.warn('pos handshake refused', { status, ...detail });
    send(ws, { type: 'error', status });
    const session = ws.getUserData();
    if (!session.closed) ws.end(code, status);
  };
  const answer = (
    ws: WebSocket<PosSession>,
    encoding: Encoding,
    spec: PosRequestSpec,
    seq: number,
    status: Status,
    reply: Reply = { status },
  ) => {
    const session = ws.getUserData();
    const message: Frame = { type: spec.result, seq, status };
    for (const field of spec.answer) message[field] = (reply as unknown as Frame)[field];
    const canonical = [spec.result, seq, status, ...spec.answer.map((field) => message[field])];
    message.mac = mac(session.sessionKey as Buffer, canonical);
    metrics.posRequests.inc({ type: spec.result, status });
    send(ws, message, encoding);
  };
  const misbehaved = (ws: WebSocket<PosSession>, status: Status) => {
    const session = ws.getUserData();
    const badMessages = ++session.badMessages;
    deps.logger.warn('pos message refused', { terminalId: session.terminalId, status, badMessages });
    if (badMessages > limits.posBadMessagesMax && !session.closed) {
      deps.logger.warn('pos session closed: too many bad messages', {
        terminalId: session.terminalId,
        badMessages,
      });
      ws.end(CLOSE_CODES.tooManyBadMessages, 'too many bad messages');
    }
  };

  const hello = (ws: WebSocket<PosSession>, frame: Frame) => {
    const session = ws.getUserData();
    const { terminalId, cnonce } = frame;
    if (
      frame.type !== 'hello' ||
      typeof terminalId !== 'string' ||
      typeof cnonce !== 'string' ||
      !/^[A-Za-z0-9_-]{22}$/.test(cnonce) ||
      typeof frame.mac !== 'string'
    ) {
      refuse(ws, 'unauthorized', { reason: 'malformed hello' });
      return;
    }
    const terminal = deps.registry.terminals.get(terminalId);
    const terminalKey = terminal ? deps.registry.terminals.key(terminal) : null;
    if (
      !terminal ||
      !terminalKey ||
      !macMatches(terminalKey, ['hello', terminalId, session.nonce, cnonce], frame.mac)
    ) {
      const reason = !terminal ? 'unknown terminal' : !terminalKey ? 'terminal not activated' : 'bad mac';
      refuse(ws, 'unauthorized', { reason, terminalId: terminal?.terminalId });
      return;
    }
    if (terminalSockets.count(terminalId) >= limits.posConnectionsPerTerminalMax) {
      refuse(
        ws,
        'rate_limited',
        { reason: 'too many sessions', terminalId: terminal.terminalId },
        CLOSE_CODES.tooMany,
      );
      return;
    }
    terminalSockets.add(terminalId, ws);
    if (session.deadline) clearTimeout(session.deadline);
    session.terminalId = terminal.terminalId;
    session.merchantId = terminal.merchantId;
    session.sessionKey = createHmac('sha256', terminalKey)
      .update(`session|${session.nonce}|${cnonce}`)
      .digest();
    const welcome = ['welcome', terminal.terminalId, terminal.merchantId];
    send(ws, {
      type: 'welcome',
      terminalId: terminal.terminalId,
      merchantId: terminal.merchantId,
      mac: mac(session.sessionKey, welcome),
    });
  };

  const dispatch = (session: PosSession, type: PosRequestType, frame: Frame): Promise<Reply> => {
    const merchantId = session.merchantId as MerchantId;
    const terminalId = session.terminalId as TerminalId;
    // Types are checked by the engine, which answers `bad_request` for anything malformed; a code attempt's
    // fields are checked here first, so a malformed one is never counted as a guess.
    const { key, code, amountCents, authId } = frame as unknown as PosFields;
    switch (type) {
      case 'redeem': {
        const partial = frame.partial ?? 0;
        const wellFormed =
          (partial === 0 || partial === 1) &&
          isIdempotencyKey(key) &&
          isCodeString(code) &&
          isAmountCents(amountCents);
        if (!wellFormed) return Promise.resolve({ status: 'bad_request' });
        return attempts.run(terminalId, merchantId, key, code, (replayOnly, lookup) =>
          deps.engine.redeem({
            merchantId,
            terminalId,
            key,
            code,
            amountCents,
            partial: partial === 1,
            replayOnly,
            lookup,
          }),
        );
      }
      case 'inquire':
        if (!isCodeString(code)) return Promise.resolve({ status: 'bad_request' });
        return attempts.run(terminalId, merchantId, undefined, code, (_, lookup) =>
          deps.engine.inquire({ merchantId, code, lookup }),
        );
      case 'void':
        return deps.engine.void({ merchantId, terminalId, key, authId });
      case 'refund':
        return deps.engine.refund({ merchantId, terminalId, key, authId, amountCents });
      case 'reverse':
        return deps.engine.reverse({ merchantId, terminalId, key });
      case 'ping':
        return Promise.resolve({ status: 'approved' });
      default:
        return unreachable(type);
    }
  };

  const request = (ws: WebSocket<PosSession>, frame: Frame | null, encoding: Encoding) => {
    const session = ws.getUserData();
    const type = frame?.type;
    const seq = frame?.seq;
    if (!frame || typeof type !== 'string' || typeof seq !== 'number' || !Number.isSafeInteger(seq)) {
      send(ws, { type: 'error', status: 'bad_request' }, encoding);
      misbehaved(ws, 'bad_request');
      return;
    }
    if (!isPosRequestType(type)) {
      send(
        ws,
        {
          type: 'error',
          seq,
          status: 'bad_request',
          mac: mac(session.sessionKey as Buffer, ['error', seq, 'bad_request']),
        },
        encoding,
      );
      misbehaved(ws, 'bad_request');
      return;
    }
    const spec: PosRequestSpec = POS_REQUESTS[type];
    const canonical = [type, seq, ...spec.fields.map((field) => frame[field])];
    if (canonicalString(canonical) === null) {
      // An object or array where the protocol has a scalar: no MAC can be checked, nothing is accepted.
      answer(ws, encoding, spec, seq, 'bad_request');
      misbehaved(ws, 'bad_request');
      return;
    }
    if (!macMatches(session.sessionKey as Buffer, canonical, frame.mac)) {
      answer(ws, encoding, spec, seq, 'bad_mac');
      misbehaved(ws, 'bad_mac');
      return;
    }
    if (seq <= session.lastSeq) {
      answer(ws, encoding, spec, seq, 'replay');
      misbehaved(ws, 'replay');
      return;
    }
    session.lastSeq = seq;
    const startedAtMs = deps.now();
    if (session.requests.add(startedAtMs) > limits.wsRequestsPerSecondMax) {
      answer(ws, encoding, spec, seq, 'rate_limited');
      return;
    }
    if (deps.inFlight.draining) {
      answer(ws, encoding, spec, seq, 'overloaded');
      return;
    }
    const timer = metrics.posLatency.startTimer({ type });
    deps.inFlight.track(dispatch(session, type, frame)).then(
      (reply) => {
        timer();
        answer(ws, encoding, spec, seq, reply.status, reply);
        if (type !== 'ping' && type !== 'inquire') deps.onMoneyMoved();
      },
      (error: unknown) => {
        deps.logger.error('pos request failed', { terminalId: session.terminalId, type, err: error });
        answer(ws, encoding, spec, seq, 'internal');
      },
    );
  };

  return {
    ...socketOptions(limits),
    upgrade: upgradeWith<PosSession>(
      () => ({
        encoding: null,
        nonce: randomBytes(16).toString('base64url'),
        terminalId: null,
        merchantId: null,
        sessionKey: null,
        lastSeq: 0,
        badMessages: 0,
        closed: false,
        deadline: null,
        requests: new RateWindow(1_000),
      }),
      deps.origins,
    ),
    open: (ws) => {
      metrics.sockets.inc({ endpoint: 'pos' });
      const session = ws.getUserData();
      session.deadline = setTimeout(
        () => refuse(ws, 'unauthorized', { reason: 'no hello in time' }),
        limits.wsAuthDeadlineMs,
      );
      send(ws, { type: 'challenge', nonce: session.nonce });
    },
    message: (ws, data, isBinary) => {
      const session = ws.getUserData();
      session.encoding ??= isBinary ? 'msgpack' : 'json';
      const frame = decodeFrame(data, isBinary);
      if (session.sessionKey) request(ws, frame, isBinary ? 'msgpack' : 'json');
      else if (frame) hello(ws, frame);
      else refuse(ws, 'unauthorized', { reason: 'unreadable hello' });
    },
    close: (ws) => {
      metrics.sockets.dec({ endpoint: 'pos' });
      const session = ws.getUserData();
      session.closed = true;
      if (session.deadline) clearTimeout(session.deadline);
      if (session.terminalId) terminalSockets.delete(session.terminalId, ws);
    },
  };
}
