import { CLIENT_CLOSE_CODE, CLOSE_CODES } from '../../sdk/close-codes.ts';
import {
  answerFields,
  POS_REQUESTS,
  type PosRequestSpec,
  type PosRequestType,
} from '../../sdk/pos-messages.ts';
import { hmac, importHmacKey, macValid, messageMac, randomBase64url } from './crypto.ts';

/**
 * The POS WebSocket in the browser (docs/pos-guide.md): the challenge/hello handshake under
 * the terminal key, the session key derived from both nonces, a growing `seq` and a MAC on every request.
 * Every answer, the welcome included, is checked with `crypto.subtle.verify` before anyone acts on it; an
 * answer that fails the check counts as lost, exactly like one that never came. The session reconnects by
 * itself with a growing, jittered delay and reports its state for the status light.
 *
 * This class knows nothing about money: it sends one request and returns its verified answer, or rejects
 * with AnswerLost. Retries and reversals are the till's business (till.ts).
 */
export type ConnectionState = 'connecting' | 'online' | 'offline' | 'revoked';

export interface PosAnswer {
  type: string;
  seq: number;
  status: string;
  [field: string]: unknown;
}

/** No verified answer: the request may or may not have been carried out. */
export class AnswerLost extends Error {}

export interface SessionOptions {
  url: string;
  terminalId: string;
  merchantId: string;
  terminalKey: CryptoKey;
  onState: (state: ConnectionState) => void;
  /** Called after every successful handshake: the moment to finish pending reversals. */
  onOnline: () => void;
}

const HANDSHAKE_TIMEOUT_MS = 10_000;
const ANSWER_TIMEOUT_MS = 10_000;
const RECONNECT_DELAY_MIN_MS = 500;
const RECONNECT_DELAY_MAX_MS = 15_000;
/** After a `rate_limited` refusal (the terminal's sessions are all taken) there is no point in hurrying. */
const REFUSED_DELAY_MS = 10_000;
/** A quiet session sends a ping this often, so a dead connection shows as offline within seconds. */
/** Handshakes refused in a row before the till takes its key for revoked. */
const REFUSALS_REVOKED = 3;
const HEARTBEAT_MS = 20_000;
const HEARTBEAT_TIMEOUT_MS = 5_000;

interface Connection {
  socket: WebSocket;
  nonce: string | null;
  cnonce: string;
  sessionKey: CryptoKey | null;
}

interface Waiter {
  result: string;
  resolve: (answer: PosAnswer) => void;
  reject: (error: Error) => void;
  timer: ReturnType<typeof setTimeout>;
}

export class PosSession {
  state: ConnectionState = 'connecting';
  private connection: Connection | null = null;
  private seq = 0;
  private readonly waiting = new Map<number, Waiter>();
  private failuresInRow = 0;
  /** Handshakes refused `unauthorized` since the last welcome. */
  private refusalsInRow = 0;
  private retryTimer: ReturnType<typeof setTimeout> | null = null;
  private heartbeatTimer: ReturnType<typeof setInterval> | null = null;
  private nextDelayMinMs = 0;
  private stopped = false;
  private readonly onlineWaiters = new Set<() => void>();
  /** Frames are handled one at a time: verifying is asynchronous, and the handshake must stay in order. */
  private inbox: Promise<void> = Promise.resolve();
  /** Requests are signed and sent one at a time, so `seq` reaches the server in increasing order. */
  private outbox: Promise<void> = Promise.resolve();

  constructor(private readonly options: SessionOptions) {}

  start(): void {
    window.addEventListener('online', this.reconnectNow);
    this.connect();
  }

  stop(): void {
    this.stopped = true;
    window.removeEventListener('online', this.reconnectNow);
    if (this.retryTimer) clearTimeout(this.retryTimer);
    this.stopHeartbeat();
    const socket = this.connection?.socket;
    this.connection = null;
    socket?.close(1000);
    this.failAll('the terminal was closed');
  }

  /** Resolves true once the session is online, false after `timeoutMs` or when it never can be. */
  whenOnline(timeoutMs: number): Promise<boolean> {
    if (this.state === 'online') return Promise.resolve(true);
    if (this.state === 'revoked' || this.stopped) return Promise.resolve(false);
    return new Promise((resolve) => {
      const done = () => {
        clearTimeout(timer);
        this.onlineWaiters.delete(done);
        resolve(this.state === 'online');
      };
      const timer = setTimeout(done, timeoutMs);
      this.onlineWaiters.add(done);
    });
  }

  /** Sends one request of the message table with the next `seq` and its MAC; resolves with the verified answer. */
  request(
    type: PosRequestType,
    fields: Record<string, unknown>,
    timeoutMs = ANSWER_TIMEOUT_MS,
  ): Promise<PosAnswer> {
    const spec: PosRequestSpec = POS_REQUESTS[type];
    const connection = this.connection;
    if (this.state !== 'online' || !connection?.sessionKey) return Promise.reject(new AnswerLost('offline'));
    const sessionKey = connection.sessionKey;
    return new Promise<PosAnswer>((resolve, reject) => {
      this.outbox = this.outbox.then(async () => {
        if (this.connection !== connection || connection.socket.readyState !== WebSocket.OPEN) {
          reject(new AnswerLost('connection closed'));
          return;
        }
        const seq = ++this.seq;
        let mac: string;
        try {
          mac = await messageMac(sessionKey, [type, seq, ...spec.fields.map((name) => fields[name])]);
        } catch (error) {
          // Nothing was sent; the chain stays usable for the next request.
          reject(error);
          return;
        }
        const timer = setTimeout(() => {
          if (!this.waiting.delete(seq)) return;
          reject(new AnswerLost('no answer in time'));
          // A session that swallowed an answer is not trusted with the next one: start a fresh one.
          connection.socket.close(CLIENT_CLOSE_CODE, 'answer timeout');
        }, timeoutMs);
        this.waiting.set(seq, { result: spec.result, resolve, reject, timer });
        connection.socket.send(JSON.stringify({ type, seq, ...fields, mac }));
      });
    });
  }

  /** Reconnects at once if the session is waiting to: someone needs it now (the network is back, a sale). */
  readonly reconnectNow = (): void => {
    if (this.state !== 'offline' || this.stopped) return;
    if (this.retryTimer) clearTimeout(this.retryTimer);
    this.connect();
  };

  private setState(state: ConnectionState): void {
    if (this.state === 'revoked') return;
    this.state = state;
    this.options.onState(state);
    if (state !== 'connecting') for (const done of [...this.onlineWaiters]) done();
  }

  private connect(): void {
    if (this.stopped || this.state === 'revoked') return;
    this.retryTimer = null;
    this.setState('connecting');
    const connection: Connection = {
      socket: new WebSocket(this.options.url),
      nonce: null,
      cnonce: randomBase64url(16),
      sessionKey: null,
    };
    this.connection = connection;
    this.seq = 0;
    const { socket } = connection;
    const handshakeTimer = setTimeout(
      () => socket.close(CLIENT_CLOSE_CODE, 'handshake timeout'),
      HANDSHAKE_TIMEOUT_MS,
    );
    socket.addEventListener('message', (event: MessageEvent) => {
      if (this.connection !== connection) return;
      this.inbox = this.inbox
        .then(() => this.receive(connection, event.data, handshakeTimer))
        .catch(() => socket.close(CLIENT_CLOSE_CODE, 'unreadable frame'));
    });
    socket.addEventListener('close', (event: CloseEvent) => {
      clearTimeout(handshakeTimer);
      if (this.connection !== connection) return;
      this.connection = null;
      this.stopHeartbeat();
      this.failAll('connection closed');
      if (event.code === CLOSE_CODES.tooMany) this.nextDelayMinMs = REFUSED_DELAY_MS;
      this.scheduleReconnect();
    });
  }

  private scheduleReconnect(): void {
    if (this.stopped || this.state === 'revoked') return;
    const delayMs = Math.max(
      this.nextDelayMinMs,
      Math.min(RECONNECT_DELAY_MAX_MS, RECONNECT_DELAY_MIN_MS * 2 ** this.failuresInRow),
    );
    this.failuresInRow++;
    this.nextDelayMinMs = 0;
    // Jitter, so tills that lost the server together do not all come back in the same millisecond.
    this.retryTimer = setTimeout(() => this.connect(), delayMs * (0.75 + Math.random() * 0.5));
    this.setState('offline');
  }

  private async receive(
    connection: Connection,
    data: unknown,
    handshakeTimer: ReturnType<typeof setTimeout>,
  ): Promise<void> {
    // The terminal speaks JSON, so every answer comes as text; anything else is not for us.
    if (typeof data !== 'string') return;
    const frame: unknown = JSON.parse(data);
    if (typeof frame !== 'object' || frame === null || Array.isArray(frame)) return;
    const message = frame as Record<string, unknown>;
    const { terminalId, merchantId, terminalKey } = this.options;
    if (message.type === 'challenge' && connection.nonce === null && typeof message.nonce === 'string') {
      connection.nonce = message.nonce;
      const mac = await messageMac(terminalKey, ['hello', terminalId, message.nonce, connection.cnonce]);
      connection.socket.send(JSON.stringify({ type: 'hello', terminalId, cnonce: connection.cnonce, mac }));
    } else if (message.type === 'welcome' && connection.nonce !== null && !connection.sessionKey) {
      const derived = await hmac(terminalKey, `session|${connection.nonce}|${connection.cnonce}`);
      const sessionKey = await importHmacKey(derived);
      // The welcome proves the server knows the terminal key: a server that cannot prove it gets nothing.
      const proven =
        sessionKey !== null &&
        message.terminalId === terminalId &&
        message.merchantId === merchantId &&
        (await macValid(sessionKey, ['welcome', terminalId, merchantId], message.mac));
      if (!proven) {
        connection.socket.close(CLIENT_CLOSE_CODE, 'welcome failed verification');
        return;
      }
      clearTimeout(handshakeTimer);
      connection.sessionKey = sessionKey;
      this.failuresInRow = 0;
      this.refusalsInRow = 0;
      this.setState('online');
      this.startHeartbeat();
      this.options.onOnline();
    } else if (message.type === 'error' && message.seq === undefined) {
      // A refusal without a MAC: `unauthorized` means the terminal key was revoked or replaced, but the
      // server also says it to a hello that came too late (a sleeping laptop), and anyone on the path
      // can forge it. Only refusals of several handshakes in a row count as a revoked key.
      if (message.status === 'unauthorized' && ++this.refusalsInRow >= REFUSALS_REVOKED) {
        this.setState('revoked');
        this.failAll('the terminal key was revoked');
      }
    } else if (typeof message.seq === 'number') {
      await this.answer(connection, message);
    }
  }

  private async answer(connection: Connection, message: Record<string, unknown>): Promise<void> {
    const seq = message.seq as number;
    const waiter = this.waiting.get(seq);
    // An answer nobody waits for any more (it came after its timeout) is ignored.
    if (!waiter || !connection.sessionKey) return;
    this.waiting.delete(seq);
    clearTimeout(waiter.timer);
    const { type, status } = message;
    const fields = answerFields(type);
    const valid =
      (type === waiter.result || type === 'error') &&
      typeof status === 'string' &&
      fields !== undefined &&
      (await macValid(
        connection.sessionKey,
        [type, seq, status, ...fields.map((name) => message[name])],
        message.mac,
      ));
    if (!valid) {
      waiter.reject(new AnswerLost('an answer failed verification'));
      connection.socket.close(CLIENT_CLOSE_CODE, 'answer failed verification');
      return;
    }
    waiter.resolve(message as PosAnswer);
  }

  private failAll(reason: string): void {
    for (const waiter of this.waiting.values()) {
      clearTimeout(waiter.timer);
      waiter.reject(new AnswerLost(reason));
    }
    this.waiting.clear();
  }

  private startHeartbeat(): void {
    this.stopHeartbeat();
    this.heartbeatTimer = setInterval(() => {
      if (this.waiting.size > 0) return;
      // A lost ping closes the socket (see request), which brings the reconnection.
      this.request('ping', {}, HEARTBEAT_TIMEOUT_MS).catch(() => undefined);
    }, HEARTBEAT_MS);
  }

  private stopHeartbeat(): void {
    if (this.heartbeatTimer) clearInterval(this.heartbeatTimer);
    this.heartbeatTimer = null;
  }
}
