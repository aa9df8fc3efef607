import { type ChildProcess, spawn } from 'node:child_process';
import { closeSync, mkdtempSync, openSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import WebSocket from 'ws';
import { freePort } from './baselines/services.ts';
import { fmtInt } from './measure.ts';

/**
 * The paycode server as the benchmark sees it: the real `paycode serve` in a child process (its CPU
 * is read from /proc), on a fresh data directory, and a fleet of merchants, activated terminals and
 * verified consumers with funded gift cards, all made through the public HTTP API.
 */
const CLI = new URL('../cli/paycode.mjs', import.meta.url).pathname;
export const BENCH_OPERATOR_TOKEN = 'op_bench_operator_token_0123456789';

export interface PaycodeServer {
  url: string;
  wsUrl: string;
  pid: number;
  dataDir: string;
  /** Resolves once the outbox holds no text (`paycode_sms_outbox_pending` is 0). */
  outboxDrained(): Promise<void>;
  /** SIGTERM, and waits for the exit; removes the data directory unless it was given. Resolves to the exit code. */
  stop(): Promise<number | null>;
  /** SIGKILL, and waits for the exit; the data directory stays. */
  kill(): Promise<void>;
}

export async function startPaycode(options: {
  shards: number;
  env?: Record<string, string>;
  nodeArgs?: string[];
  /** A directory of an earlier server to start on again (kept at stop); else a fresh one. */
  dataDir?: string;
  port?: number;
}): Promise<PaycodeServer> {
  const dataDir = options.dataDir ?? mkdtempSync(join(tmpdir(), 'paycode-bench-pos-'));
  const port = options.port ?? (await freePort());
  const log = openSync(join(dataDir, 'server.log'), 'a');
  const child: ChildProcess = spawn(process.execPath, [...(options.nodeArgs ?? []), CLI, 'serve'], {
    env: {
      ...process.env,
      PAYCODE_HOST: '127.0.0.1',
      PAYCODE_PORT: String(port),
      PAYCODE_DATA_DIR: join(dataDir, 'data'),
      PAYCODE_DEMO: '0',
      PAYCODE_SMS: 'console',
      PAYCODE_ADMIN_TOKEN: BENCH_OPERATOR_TOKEN,
      PAYCODE_SHARDS: String(options.shards),
      ...options.env,
    },
    // The console SMS sender prints every text: to a file, so the benchmark need not read them.
    stdio: ['ignore', log, log],
  });
  closeSync(log);
  const url = `http://127.0.0.1:${port}`;
  const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
  const deadline = Date.now() + 30_000;
  for (;;) {
    if (child.exitCode !== null) throw new Error(`the server exited: ${serverLog(dataDir)}`);
    const up = await fetch(`${url}/healthz`).then(
      (response) => response.ok,
      () => false,
    );
    if (up) break;
    if (Date.now() > deadline) throw new Error(`the server did not start: ${serverLog(dataDir)}`);
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
  return {
    url,
    wsUrl: url.replace(/^http/, 'ws'),
    pid: child.pid ?? 0,
    dataDir,
    async outboxDrained() {
      // Polled every 20 ms: each scrape costs the server a little CPU, counted like the rest.
      for (;;) {
        const metrics = await (await fetch(`${url}/metrics`)).text();
        const pending = /^paycode_sms_outbox_pending (\d+)$/m.exec(metrics)?.[1];
        if (pending === undefined) throw new Error('the server reports no paycode_sms_outbox_pending');
        if (pending === '0') return;
        await new Promise((resolve) => setTimeout(resolve, 20));
      }
    },
    async stop() {
      if (child.exitCode === null) child.kill('SIGTERM');
      const code = await exited;
      if (!options.dataDir) rmSync(dataDir, { recursive: true, force: true });
      return code;
    },
    async kill() {
      if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
      await exited;
    },
  };
}

function serverLog(dataDir: string): string {
  try {
    return readFileSync(join(dataDir, 'server.log'), 'utf8').slice(-2_000);
  } catch {
    return '(no log)';
  }
}

export async function http(
  url: string,
  method: string,
  path: string,
  body?: unknown,
  token?: string,
): Promise<{ status: number; body: Record<string, unknown> }> {
  const response = await fetch(`${url}${path}`, {
    method,
    headers: {
      ...(body === undefined ? {} : { 'content-type': 'application/json' }),
      ...(token ? { authorization: `Bearer ${token}` } : {}),
    },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  const text = await response.text();
  return { status: response.status, body: text ? JSON.parse(text) : {} };
}

async function expectStatus(
  what: string,
  answer: Promise<{ status: number; body: Record<string, unknown> }>,
  status: number,
): Promise<Record<string, unknown>> {
  const { status: got, body } = await answer;
  if (got !== status) throw new Error(`${what}: HTTP ${got} ${JSON.stringify(body)}`);
  return body;
}

/** Runs `fn` over `items` with at most `concurrency` calls outstanding, in order of items. */
export async function inParallel<T, R>(
  items: readonly T[],
  concurrency: number,
  fn: (item: T, i: number) => Promise<R>,
): Promise<R[]> {
  const results: R[] = new Array(items.length);
  let next = 0;
  const worker = async () => {
    while (next < items.length) {
      const i = next++;
      results[i] = await fn(items[i] as T, i);
    }
  };
  await Promise.all(Array.from({ length: Math.min(concurrency, items.length) }, worker));
  return results;
}

export interface Merchant {
  merchantId: string;
  apiKey: string;
}
export interface Terminal {
  terminalId: string;
  terminalKey: string;
  merchantId: string;
}
export interface Consumer {
  phone: string;
  consumerId: string;
  merchantId: string;
  deviceToken: string;
}
export interface Fleet {
  merchants: Merchant[];
  terminals: Terminal[];
  consumers: Consumer[];
}

export const CARD_CENTS = 1_000_000;

/**
 * Merchants, terminals (terminal t belongs to merchant t mod M) and consumers (consumer c holds a
 * gift card of CARD_CENTS at merchant c mod M and a device token), made over the HTTP API. With
 * `hotMerchant`, one more merchant, made last, has as many terminals as all the others together and
 * every consumer holds a card there too.
 */
export async function setupFleet(
  url: string,
  shape: { merchants: number; terminals: number; consumers: number; hotMerchant: boolean },
  concurrency = 32,
): Promise<Fleet> {
  const started = performance.now();
  const made = await inParallel(
    Array.from({ length: shape.merchants + (shape.hotMerchant ? 1 : 0) }, (_, m) => m),
    concurrency,
    async (m) => {
      const body = await expectStatus(
        'create merchant',
        http(
          url,
          'POST',
          '/v1/merchants',
          {
            name: `Bench Store ${m}`,
            routingNumber: '021000021',
            accountNumber: '000123456789',
            accountType: 'checking',
          },
          BENCH_OPERATOR_TOKEN,
        ),
        201,
      );
      return { merchantId: String(body.merchantId), apiKey: String(body.apiKey) };
    },
  );
  const merchants = made.slice(0, shape.merchants);
  const hot = shape.hotMerchant ? made.at(-1) : undefined;
  const merchantOf = (n: number) => merchants[n % merchants.length] as Merchant;
  const terminals = await inParallel(
    Array.from({ length: shape.terminals * (hot ? 2 : 1) }, (_, t) => t),
    concurrency,
    async (t) => {
      const merchant = t < shape.terminals ? merchantOf(t) : (hot as Merchant);
      const created = await expectStatus(
        'create terminal',
        http(
          url,
          'POST',
          `/v1/merchants/${merchant.merchantId}/terminals`,
          { label: `till ${t}` },
          merchant.apiKey,
        ),
        201,
      );
      const active = await expectStatus(
        'activate terminal',
        http(url, 'POST', '/v1/terminals/activate', { activationCode: created.activationCode }),
        200,
      );
      return {
        terminalId: String(active.terminalId),
        terminalKey: String(active.terminalKey),
        merchantId: merchant.merchantId,
      };
    },
  );
  let ready = 0;
  const progress = setInterval(
    () => process.stderr.write(`  setup: ${fmtInt(ready)}/${fmtInt(shape.consumers)} consumers\n`),
    5_000,
  );
  try {
    const consumers = await inParallel(
      Array.from({ length: shape.consumers }, (_, c) => c),
      concurrency,
      async (c) => {
        const merchant = merchantOf(c);
        const phone = `+1555${String(1_000_000 + c).padStart(7, '0')}`;
        for (const issuer of hot ? [merchant, hot] : [merchant]) {
          await expectStatus(
            'issue card',
            http(
              url,
              'POST',
              `/v1/merchants/${issuer.merchantId}/cards`,
              { phone, amountCents: CARD_CENTS, kind: 'gift', idempotencyKey: `bench-card-${c}` },
              issuer.apiKey,
            ),
            201,
          );
        }
        // As the operator onboarding phones in bulk: past the per-address budget of verification texts.
        await expectStatus(
          'register',
          http(url, 'POST', '/v1/consumers', { phone }, BENCH_OPERATOR_TOKEN),
          202,
        );
        const otp = await readOtp(url, phone);
        const verified = await expectStatus(
          'verify',
          http(url, 'POST', '/v1/consumers/verify', { phone, otp }),
          200,
        );
        ready++;
        return {
          phone,
          consumerId: String(verified.consumerId),
          merchantId: merchant.merchantId,
          deviceToken: String(verified.deviceToken),
        };
      },
    );
    process.stderr.write(
      `  setup: ${made.length} merchants, ${terminals.length} terminals, ${fmtInt(shape.consumers)} consumers ` +
        `in ${((performance.now() - started) / 1000).toFixed(1)} s\n`,
    );
    return { merchants: made, terminals, consumers };
  } finally {
    clearInterval(progress);
  }
}

/** The verification code from the development inbox (console SMS mode, loopback only). */
async function readOtp(url: string, phone: string): Promise<string> {
  for (let attempt = 0; attempt < 200; attempt++) {
    const { body } = await http(url, 'GET', `/v1/dev/inbox?phone=${encodeURIComponent(phone)}`);
    const texts = (body.texts ?? []) as { text: string }[];
    const otp = texts.map((t) => /verification code is (\d{6})/.exec(t.text)?.[1]).find(Boolean);
    if (otp) return otp;
    await new Promise((resolve) => setTimeout(resolve, 10));
  }
  throw new Error(`no verification code reached ${phone}`);
}

/** A live code for the consumer at its merchant, over HTTP. */
export async function issueCode(url: string, consumer: Consumer): Promise<string> {
  const body = await expectStatus(
    'issue code',
    http(url, 'POST', '/v1/wallet/codes', { merchantId: consumer.merchantId }, consumer.deviceToken),
    201,
  );
  return String(body.code);
}

/**
 * An open wallet socket: counts the pushes it receives and lets a caller wait for the next `code`
 * push (the answer to requestCode) or the next push of a kind.
 */
export class WalletSocket {
  pushes = 0;
  /** Each card's balance as last told: by the snapshot, then by `balance` pushes. */
  readonly balances = new Map<string, number>();
  private waiters: {
    match: (frame: Record<string, unknown>) => boolean;
    resolve: (frame: Record<string, unknown>) => void;
  }[] = [];
  /** Resolves when the socket closed (the server went away, or `close`). */
  readonly closed: Promise<void>;
  isClosed = false;

  private constructor(private readonly socket: WebSocket) {
    this.closed = new Promise((resolve) =>
      socket.once('close', () => {
        this.isClosed = true;
        resolve();
      }),
    );
    // A reset after the socket opened (the server was killed) is a close, not an exception.
    socket.on('error', () => undefined);
  }

  static open(wsUrl: string, deviceToken: string): Promise<WalletSocket> {
    const socket = new WebSocket(`${wsUrl}/v1/wallet`, { perMessageDeflate: false });
    const wallet = new WalletSocket(socket);
    return new Promise((resolve, reject) => {
      socket.once('error', reject);
      // Closed before the snapshot (the server went away meanwhile): refused, not pending for ever.
      socket.once('close', () => reject(new Error('wallet: closed before the snapshot')));
      socket.once('open', () => socket.send(JSON.stringify({ type: 'auth', token: deviceToken })));
      socket.on('message', (data) => {
        const frame = JSON.parse(String(data)) as Record<string, unknown>;
        if (frame.type === 'snapshot') {
          for (const card of frame.cards as { cardId: string; balanceCents: number }[])
            wallet.balances.set(card.cardId, card.balanceCents);
          resolve(wallet);
        } else if (frame.type === 'error' && frame.reqId === undefined)
          reject(new Error(`wallet: ${frame.status}`));
        else wallet.receive(frame);
      });
    });
  }

  /** Asks for a code and resolves with it (or rejects with the error status). */
  requestCode(merchantId: string, reqId: string): Promise<string> {
    const answer = this.next((frame) => frame.reqId === reqId);
    this.socket.send(JSON.stringify({ type: 'requestCode', reqId, merchantId }));
    return answer.then((frame) => {
      if (frame.type !== 'code') throw new Error(`requestCode: ${frame.status}`);
      return String(frame.code);
    });
  }

  next(match: (frame: Record<string, unknown>) => boolean): Promise<Record<string, unknown>> {
    return new Promise((resolve) => this.waiters.push({ match, resolve }));
  }

  close(): void {
    this.socket.close(1000);
  }

  private receive(frame: Record<string, unknown>): void {
    this.pushes++;
    if (frame.type === 'balance') this.balances.set(String(frame.cardId), Number(frame.balanceCents));
    const index = this.waiters.findIndex((waiter) => waiter.match(frame));
    if (index >= 0) this.waiters.splice(index, 1)[0]?.resolve(frame);
  }
}
