import { createHmac, randomBytes, randomUUID } from 'node:crypto';
import { Packr, Unpackr } from 'msgpackr';
import WebSocket from 'ws';
import { answerFields, macMatches, posMac, requestFields } from './pos-protocol.ts';

export { posMac } from './pos-protocol.ts';

/**
 * A typed POS client for the paycode `/v1/pos` WebSocket (docs/pos-guide.md): the challenge/hello
 * handshake, per-message MACs both ways, growing `seq`, and safe retries. Every money request carries an
 * idempotency key; a request that times out or meets `overloaded`/`internal` is sent again under the
 * same key, and a redeem whose answer never arrives is reversed by its key, so a payment is never
 * taken twice nor kept without the cashier knowing.
 *
 * ```ts
 * const pos = await PosClient.connect({ url: 'ws://127.0.0.1:8080/v1/pos', terminalId, terminalKey });
 * const sale = await pos.redeem({ code: '123456', amountCents: 1250 });
 * if (sale.status === 'approved') console.log('approved', sale.approvedCents, sale.authId);
 * pos.close();
 * ```
 */
export interface PosClientOptions {
  /**
   * `ws://host:port/v1/pos` (an `http://host:port` base is accepted too), or several of a cluster's
   * nodes: the client uses the first that answers and moves to the next when its connection is lost.
   */
  url: string | readonly string[];
  terminalId: string;
  /** base64url of the 32-byte terminal key returned by activation. */
  terminalKey: string;
  encoding?: 'json' | 'msgpack';
  /** How long to wait for one answer. */
  timeoutMs?: number;
  /** Sends of one request before giving up (the first included). */
  attemptsMax?: number;
  /** Certificates to trust for `wss://` instead of Node's default roots (a private CA, a test certificate). */
  ca?: string | Buffer;
}

export interface PosAnswer {
  type: string;
  seq: number;
  status: string;
  [field: string]: unknown;
}

export class PosError extends Error {
  constructor(
    message: string,
    readonly status: string,
  ) {
    super(message);
  }
}

const RETRYABLE = new Set(['overloaded', 'internal']);
const packr = new Packr({ useRecords: false, variableMapSize: true });
const unpackr = new Unpackr({ useRecords: false, mapsAsObjects: true });

export class PosClient {
  private socket!: WebSocket;
  private sessionKey!: Buffer;
  private seq = 0;
  private readonly waiting = new Map<
    number,
    { resolve: (answer: PosAnswer) => void; reject: (error: Error) => void }
  >();
  private opening: Promise<void> | null = null;
  /** The node in use, of `options.url` when it lists several. */
  private urlIndex = 0;
  merchantId = '';

  private constructor(private readonly options: PosClientOptions) {}

  static async connect(options: PosClientOptions): Promise<PosClient> {
    const client = new PosClient(options);
    await client.open();
    return client;
  }

  redeem(request: {
    code: string;
    amountCents: number;
    partial?: boolean;
    key?: string;
  }): Promise<PosAnswer> {
    const key = request.key ?? newKey();
    const fields = {
      key,
      code: request.code,
      amountCents: request.amountCents,
      partial: request.partial ? 1 : 0,
    };
    return this.money('redeem', fields).catch(async (error: unknown) => {
      // No answer at all: the payment may or may not have happened. Undo it by its key; the answer is
      // `reversed` (it had happened) or `nothing_to_reverse` (it had not); either way nobody paid.
      const reversed = await this.money('reverse', { key });
      if (reversed.status !== 'reversed' && reversed.status !== 'nothing_to_reverse') {
        throw new PosError(`the payment under key ${key} is in doubt: reverse it again`, 'unknown');
      }
      return {
        type: 'redeemResult',
        seq: reversed.seq,
        status: reversed.status,
        key,
        cause: (error as Error).message,
      };
    });
  }

  inquire(code: string): Promise<PosAnswer> {
    return this.money('inquire', { code });
  }

  void(authId: string, key = newKey()): Promise<PosAnswer> {
    return this.money('void', { key, authId });
  }

  refund(authId: string, amountCents: number, key = newKey()): Promise<PosAnswer> {
    return this.money('refund', { key, authId, amountCents });
  }

  reverse(key: string): Promise<PosAnswer> {
    return this.money('reverse', { key });
  }

  ping(): Promise<PosAnswer> {
    return this.money('ping', {});
  }

  /** Sends one request once, with a valid MAC and the next `seq`, and returns the verified answer. */
  send(type: string, fields: Record<string, unknown>): Promise<PosAnswer> {
    const seq = ++this.seq;
    const canonical = [type, seq, ...(requestFields(type) ?? []).map((field) => fields[field])];
    return this.sendRaw({ type, seq, ...fields, mac: posMac(this.sessionKey, canonical) }, seq);
  }

  /** Sends any frame and waits for the answer with `seq` (tests use it for malformed requests). */
  sendRaw(frame: Record<string, unknown>, seq: number): Promise<PosAnswer> {
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        this.waiting.delete(seq);
        reject(new PosError(`no answer within ${this.options.timeoutMs ?? 10_000} ms`, 'timeout'));
      }, this.options.timeoutMs ?? 10_000);
      this.waiting.set(seq, {
        resolve: (answer) => {
          clearTimeout(timer);
          resolve(answer);
        },
        reject: (error) => {
          clearTimeout(timer);
          reject(error);
        },
      });
      this.write(frame);
    });
  }

  close(): void {
    this.socket.close(1000);
  }

  private async money(type: string, fields: Record<string, unknown>): Promise<PosAnswer> {
    const attemptsMax = this.options.attemptsMax ?? 3;
    let lastError: Error = new Error('not sent');
    for (let attempt = 1; attempt <= attemptsMax; attempt++) {
      try {
        if (this.socket.readyState !== WebSocket.OPEN) await this.reconnect();
        const answer = await this.send(type, fields);
        if (!RETRYABLE.has(answer.status) || attempt === attemptsMax) return answer;
      } catch (error) {
        lastError = error as Error;
        if (error instanceof PosError && error.status === 'bad_mac') throw error;
      }
      await new Promise((resolve) => setTimeout(resolve, 50 * 2 ** attempt));
    }
    throw lastError;
  }

  /** One reconnection at a time, however many requests noticed the lost socket. */
  private reconnect(): Promise<void> {
    if (!this.opening) {
      const opening = this.open();
      const clear = () => {
        if (this.opening === opening) this.opening = null;
      };
      opening.then(clear, clear);
      this.opening = opening;
    }
    return this.opening;
  }

  private write(frame: Record<string, unknown>): void {
    const binary = this.options.encoding === 'msgpack';
    this.socket.send(binary ? packr.pack(frame) : JSON.stringify(frame));
  }

  private read(data: WebSocket.RawData, isBinary: boolean): Record<string, unknown> {
    const bytes = Array.isArray(data) ? Buffer.concat(data) : Buffer.from(data as ArrayBuffer);
    return isBinary ? unpackr.unpack(bytes) : JSON.parse(bytes.toString('utf8'));
  }

  /** Opens a session on the node in use, or on the next ones in turn when it cannot be reached. */
  private async open(): Promise<void> {
    const urls = typeof this.options.url === 'string' ? [this.options.url] : this.options.url;
    let lastError: Error = new Error('no server URL');
    for (let tried = 0; tried < urls.length; tried++) {
      try {
        return await this.openAt(urls[this.urlIndex % urls.length] as string);
      } catch (error) {
        lastError = error as Error;
        // A refused key is refused by every node.
        if (error instanceof PosError && error.status !== 'closed') throw error;
        this.urlIndex++;
      }
    }
    throw lastError;
  }

  private openAt(base: string): Promise<void> {
    const url = base
      .replace(/^http/, 'ws')
      .replace(/\/?$/, '')
      .replace(/(\/v1\/pos)?$/, '/v1/pos');
    const terminalKey = Buffer.from(this.options.terminalKey, 'base64url');
    const socket = new WebSocket(url, { perMessageDeflate: false, ca: this.options.ca });
    this.socket = socket;
    return new Promise((resolve, reject) => {
      let nonce = '';
      let cnonce = '';
      socket.on('error', reject);
      socket.on('close', () => {
        const error = new PosError('connection closed', 'closed');
        reject(error);
        // A socket replaced by a reconnection leaves the new one's requests alone.
        if (this.socket !== socket) return;
        for (const waiter of this.waiting.values()) waiter.reject(error);
        this.waiting.clear();
      });
      socket.on('message', (data, isBinary) => {
        const frame = this.read(data, isBinary) as PosAnswer & {
          nonce: string;
          terminalId: string;
          merchantId: string;
        };
        if (frame.type === 'challenge') {
          nonce = frame.nonce;
          cnonce = randomBytes(16).toString('base64url');
          const mac = posMac(terminalKey, ['hello', this.options.terminalId, nonce, cnonce]);
          this.write({ type: 'hello', terminalId: this.options.terminalId, cnonce, mac });
        } else if (frame.type === 'welcome') {
          this.sessionKey = createHmac('sha256', terminalKey).update(`session|${nonce}|${cnonce}`).digest();
          if (!macMatches(this.sessionKey, ['welcome', frame.terminalId, frame.merchantId], frame.mac)) {
            reject(new PosError('the server proved no knowledge of the terminal key', 'bad_mac'));
            socket.close();
            return;
          }
          this.merchantId = frame.merchantId;
          this.seq = 0;
          resolve();
        } else if (frame.type === 'error' && frame.seq === undefined) {
          const error = new PosError(`refused: ${frame.status}`, frame.status);
          reject(error);
          for (const waiter of this.waiting.values()) waiter.reject(error);
          this.waiting.clear();
        } else {
          this.answer(frame);
        }
      });
    });
  }

  private answer(frame: PosAnswer): void {
    const waiter = this.waiting.get(frame.seq);
    if (!waiter) return;
    this.waiting.delete(frame.seq);
    const fields = answerFields(frame.type);
    const canonicalFields = [
      frame.type,
      frame.seq,
      frame.status,
      ...(fields ?? []).map((field) => frame[field]),
    ];
    if (!fields || !macMatches(this.sessionKey, canonicalFields, frame.mac)) {
      waiter.reject(new PosError(`answer ${frame.seq} carries a bad MAC`, 'bad_mac'));
      return;
    }
    waiter.resolve(frame);
  }
}

function newKey(): string {
  return randomUUID();
}
