import { createHmac, randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { unpack } from 'msgpackr';
import { expect, onTestFinished } from 'vitest';
import WebSocket from 'ws';
import type { Limits } from '../core/limits.ts';
import type { FundingProvider } from '../gateway/funding/provider.ts';
import { createLogger } from '../log/logger.ts';
import { randomSecrets, type Secrets } from '../persistence/secrets.ts';
import { PosClient, posMac } from '../sdk/pos-client.ts';
import { type Config, readConfig } from '../server/config.ts';
import { type Server, startServer } from '../server/server.ts';
import { answerProblem, verdict } from './documented.ts';

/**
 * A real server (uWebSockets.js on 127.0.0.1 and a free port, engine workers, LMDB in a fresh
 * directory) for one test, with helpers that act as its users over real HTTP and WebSockets. The
 * ledger is audited after every commit; the test fails if an audit found a problem. Start-up lines are
 * kept in `lines` and structured log lines in `logs`; error lines also go to stderr, to explain a failure.
 */
export const OPERATOR_TOKEN = 'op_test_operator_token_0123456789';
export const ROUTING = '021000021';

export interface TestServer {
  server: Server;
  dataDir: string;
  secrets: Secrets;
  lines: string[];
  /** Every structured log line of the server (JSON), across restarts. */
  logs: string[];
  http(method: string, path: string, body?: unknown, token?: string): Promise<{ status: number; body: any }>;
  /** A merchant made by the operator; `fields` adds to the request (`codeDigitsMin`, fees, ...). */
  merchant(
    name?: string,
    keyword?: string,
    fields?: Record<string, unknown>,
  ): Promise<{ merchantId: string; apiKey: string }>;
  terminal(merchant: {
    merchantId: string;
    apiKey: string;
  }): Promise<{ terminalId: string; terminalKey: string }>;
  pos(
    terminal: { terminalId: string; terminalKey: string },
    encoding?: 'json' | 'msgpack',
  ): Promise<PosClient>;
  /**
   * Registers and verifies a phone through the API (the code read from the development inbox), asked by
   * the operator as a bulk onboarding would: tests make more phones from one address than its budget.
   */
  consumer(phone: string): Promise<{ consumerId: string; deviceToken: string }>;
  /** Asks for a payment code at the merchant with a device token; returns its digits. */
  code(merchant: { merchantId: string }, deviceToken: string): Promise<string>;
  load(
    merchant: { merchantId: string; apiKey: string },
    phone: string,
    amountCents: number,
    kind?: 'gift' | 'reward',
  ): Promise<void>;
  /** A gift card bought by card (the server needs a funding provider); asserts it was sold. */
  purchase(merchant: { merchantId: string }, deviceToken: string, amountCents: number): Promise<void>;
  /** The texts the development inbox holds for a phone, oldest first. */
  textsTo(phone: string): string[];
  restart(): Promise<void>;
}

export async function startTestServer(
  options: {
    env?: Record<string, string>;
    limits?: Partial<Limits>;
    dataDir?: string;
    secrets?: Secrets;
    funding?: FundingProvider;
    now?: () => number;
  } = {},
): Promise<TestServer> {
  const dataDir = options.dataDir ?? mkdtempSync(join(tmpdir(), 'paycode-gw-'));
  const secrets = options.secrets ?? randomSecrets();
  const { config, problems } = readConfig({
    PAYCODE_PORT: '0',
    PAYCODE_DATA_DIR: dataDir,
    PAYCODE_SHARDS: '2',
    PAYCODE_DEMO: '0',
    PAYCODE_ADMIN_TOKEN: OPERATOR_TOKEN,
    ...options.env,
  });
  expect(problems).toEqual([]);
  const lines: string[] = [];
  const logs: string[] = [];
  const logger = createLogger({
    write: (line) => {
      logs.push(line);
      if (line.startsWith('{"level":"error"')) console.error(line);
    },
  });
  const start = (cfg: Config) =>
    startServer({
      config: cfg,
      secrets,
      limits: options.limits,
      print: (line) => lines.push(line),
      logger,
      auditEachCommit: true,
      funding: options.funding,
      now: options.now,
    });
  let server = await start(config);
  let sequence = 0;
  onTestFinished(async () => {
    await server.close();
    expect(server.engine.auditFailures).toEqual([]);
    if (!options.dataDir) rmSync(dataDir, { recursive: true, force: true });
  });

  const t: TestServer = {
    get server() {
      return server;
    },
    dataDir,
    secrets,
    lines,
    logs,
    async http(method, path, body, token) {
      const response = await fetch(`${server.url}${path}`, {
        method,
        headers: token ? { authorization: `Bearer ${token}` } : {},
        body: body === undefined ? undefined : typeof body === 'string' ? body : JSON.stringify(body),
      });
      const text = await response.text();
      let parsed: unknown = text;
      try {
        parsed = JSON.parse(text);
      } catch {}
      expectDocumented(method, path, body, response.status, parsed);
      return { status: response.status, body: parsed };
    },
    async merchant(name = 'Corner Cafe', keyword, fields = {}) {
      const created = await t.http(
        'POST',
        '/v1/merchants',
        {
          name,
          routingNumber: ROUTING,
          accountNumber: '1234567890',
          accountType: 'checking',
          keyword,
          ...fields,
        },
        OPERATOR_TOKEN,
      );
      expect(created.status).toBe(201);
      return created.body;
    },
    async terminal(merchant) {
      const created = await t.http(
        'POST',
        `/v1/merchants/${merchant.merchantId}/terminals`,
        { label: 'till' },
        merchant.apiKey,
      );
      expect(created.status).toBe(201);
      const activated = await t.http('POST', '/v1/terminals/activate', {
        activationCode: created.body.activationCode,
      });
      expect(activated.status).toBe(200);
      return activated.body;
    },
    async pos(terminal, encoding = 'json') {
      const client = await PosClient.connect({ url: server.url, ...terminal, encoding, timeoutMs: 5_000 });
      onTestFinished(() => client.close());
      return client;
    },
    async consumer(phone) {
      expect((await t.http('POST', '/v1/consumers', { phone }, OPERATOR_TOKEN)).status).toBe(202);
      const otp = await waitFor(() => {
        const text = server.devInbox?.inbox.findLast(
          (entry) => entry.phone === phone && /verification/.test(entry.text),
        );
        return text ? /([0-9]{6})/.exec(text.text)?.[1] : undefined;
      });
      const verified = await t.http('POST', '/v1/consumers/verify', { phone, otp });
      expect(verified.status).toBe(200);
      return verified.body;
    },
    async code(merchant, deviceToken) {
      const issued = await t.http(
        'POST',
        '/v1/wallet/codes',
        { merchantId: merchant.merchantId },
        deviceToken,
      );
      expect(issued.status).toBe(201);
      return issued.body.code;
    },
    async load(merchant, phone, amountCents, kind = 'gift') {
      const loaded = await t.http(
        'POST',
        `/v1/merchants/${merchant.merchantId}/cards`,
        { phone, amountCents, kind, idempotencyKey: `load-${++sequence}` },
        merchant.apiKey,
      );
      expect(loaded.status).toBe(201);
    },
    async purchase(merchant, deviceToken, amountCents) {
      const bought = await t.http(
        'POST',
        '/v1/wallet/purchases',
        {
          merchantId: merchant.merchantId,
          amountCents,
          paymentToken: 'tok_sandbox_ok',
          idempotencyKey: `buy-${++sequence}`,
        },
        deviceToken,
      );
      expect(bought.status).toBe(201);
    },
    textsTo(phone) {
      return (server.devInbox?.inbox ?? []).filter((text) => text.phone === phone).map((text) => text.text);
    },
    async restart() {
      await server.close();
      server = await start({ ...config });
    },
  };
  return t;
}

/** Polls `probe` until it returns a value (default 5 s). */
export async function waitFor<T>(
  probe: () => T | undefined | Promise<T | undefined>,
  timeoutMs = 5_000,
): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await probe();
    if (value !== undefined) return value;
    if (Date.now() > deadline) throw new Error('timed out waiting');
    await new Promise((resolve) => setTimeout(resolve, 10));
  }
}

/** A raw WebSocket that collects every frame it receives, decoded. */
export interface Collector {
  socket: WebSocket;
  frames: any[];
  /** Whether each frame came in a binary (MessagePack) frame. */
  binary: boolean[];
  closed: Promise<number>;
  next(match?: (frame: any) => boolean, timeoutMs?: number): Promise<any>;
  send(frame: unknown): void;
}

export async function openSocket(url: string, path: string): Promise<Collector> {
  const socket = new WebSocket(`${url.replace(/^http/, 'ws')}${path}`, { perMessageDeflate: false });
  const frames: any[] = [];
  const binary: boolean[] = [];
  let read = 0;
  const closed = new Promise<number>((resolve) => socket.on('close', (code) => resolve(code)));
  socket.on('message', (data, isBinary) => {
    const bytes = data as Buffer;
    binary.push(isBinary);
    frames.push(isBinary ? unpack(bytes) : JSON.parse(bytes.toString('utf8')));
  });
  await new Promise((resolve, reject) => {
    socket.once('open', resolve);
    socket.once('error', reject);
  });
  onTestFinished(() => socket.close());
  return {
    socket,
    frames,
    binary,
    closed,
    async next(match = () => true, timeoutMs = 5_000) {
      return waitFor(() => {
        for (let i = read; i < frames.length; i++) {
          if (match(frames[i])) {
            read = i + 1;
            return frames[i];
          }
        }
        return undefined;
      }, timeoutMs);
    },
    send(frame) {
      socket.send(typeof frame === 'string' || Buffer.isBuffer(frame) ? frame : JSON.stringify(frame));
    },
  };
}

/** The POS handshake by hand (a tampered MAC on request); the socket, the session key and the answer. */
export async function posHandshake(url: string, terminalId: string, key: Buffer, tamper = false) {
  const socket = await openSocket(url, '/v1/pos');
  const challenge = await socket.next();
  expect(challenge).toEqual({ type: 'challenge', nonce: expect.stringMatching(/^[A-Za-z0-9_-]{22}$/) });
  const cnonce = randomBytes(16).toString('base64url');
  const mac = posMac(key, ['hello', terminalId, challenge.nonce, cnonce]);
  socket.send({ type: 'hello', terminalId, cnonce, mac: tamper ? `${mac.slice(0, -2)}AA` : mac });
  const sessionKey = createHmac('sha256', key).update(`session|${challenge.nonce}|${cnonce}`).digest();
  return { socket, sessionKey, answer: await socket.next() };
}

/**
 * Every answer a test gets is one docs/openapi.json describes, and the document's verdict on the request
 * is the server's: a request it refuses is refused (after the caller checks, which come first, or as too
 * large), and one it
 * takes is never `bad_request` except for a rule it states in words (of the server's state, or between query
 * parameters).
 */
function expectDocumented(
  method: string,
  path: string,
  sent: unknown,
  status: number,
  answer: unknown,
): void {
  expect(answerProblem(method, path, status, answer)).toBeNull();
  let body = sent;
  if (typeof sent === 'string') {
    try {
      body = JSON.parse(sent);
    } catch {
      return;
    }
  }
  const documented = verdict(method, path, body);
  if (documented === 'invalid')
    expect([400, 401, 403, 404, 413], `${method} ${path} ${JSON.stringify(body)?.slice(0, 200)}`).toContain(
      status,
    );
  if (documented === 'valid' && status === 400)
    expect(
      (answer as { error: { message: string } }).error.message,
      `${method} ${path} ${JSON.stringify(body)?.slice(0, 200)}`,
    ).toMatch(WORDED_RULES);
}

/** `bad_request` answers for rules the document states in words: of the server's state, or between query parameters. */
const WORDED_RULES =
  /^(the keyword [A-Za-z0-9]+ is taken|business day .* has not begun .*|give either before or beforeMs, not both|before must be the `next` of a previous page|the cursor has expired; start again from the newest|a gift goes to another phone than yours)$/;
