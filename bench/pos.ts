import { randomUUID } from 'node:crypto';
import { type PosAnswer, PosClient } from '../sdk/pos-client.ts';
import type { Baseline } from './baselines/index.ts';
import { closedLoop, combine, type LoadResult, openLoop, type Tx } from './load.ts';
import { random } from './measure.ts';
import { PlainClient } from './plain-client.ts';
import {
  type Consumer,
  type Fleet,
  inParallel,
  issueCode,
  type PaycodeServer,
  setupFleet,
  startPaycode,
  type Terminal,
  WalletSocket,
} from './pos-server.ts';

/**
 * The POS network benchmark: the real server in a child process, driven over real WebSockets by
 * terminals that do the handshake and MAC every message, with wallet sockets receiving the pushes;
 * and the baselines (raw uWS echo, PostgreSQL, Redis) driven by the same load generator in the same
 * run. Every paycode redemption must come back `approved`; anything else counts as an error.
 */
export const POS_WORKLOADS = {
  redeem: 'pre-issued codes redeemed at the terminals of several merchants (closed loop, then open loop)',
  hot: 'the same at a single merchant: every redemption on one merchant account',
  'issue-redeem': 'a phone asks for a code on its wallet socket, a terminal redeems it (uniform phones)',
  zipf: 'issue-redeem with phones picked by a Zipf law (s = 1): a few phones pay most',
  inquire: 'inquire on live codes',
  mixed: 'redeem, with every 10th sale voided and every 10th (another) partly refunded',
  fanout: 'many idle wallet sockets (--idle-wallets); a redemption counts when its push arrives',
} as const;
export type PosWorkload = keyof typeof POS_WORKLOADS;
export const BASELINES = ['echo', 'postgres', 'redis'] as const;
export type BaselineKind = (typeof BASELINES)[number];

export interface PosBenchOptions {
  shards: number;
  merchants: number;
  terminals: number;
  consumers: number;
  /** Phones with an open wallet socket in the issue-redeem workloads. */
  wallets: number;
  /** Idle wallet sockets in the fan-out workload (each costs a file descriptor here and in the server). */
  idleWallets: number;
  /** Transactions per closed-loop measurement. */
  transactions: number;
  /** Open-loop points as fractions of the closed-loop maximum; seconds per point. */
  rates: number[];
  openSeconds: number;
  encoding: 'json' | 'msgpack';
  workloads: PosWorkload[];
  baselines: BaselineKind[];
  /** Extra node options of the paycode server (profiling). */
  serverNodeArgs: string[];
}

export interface PosBenchResult {
  options: PosBenchOptions;
  /** Closed-loop maxima and open-loop points, in the order measured. */
  runs: LoadResult[];
  baselines: { kind: BaselineKind; describe: string }[];
  setupSeconds: number;
  walletPushes: number;
  /** Workloads that could not finish, with the reason; the others still count. */
  failures: { workload: string; message: string }[];
}

const AMOUNT_CENTS = 100;
/**
 * A sale in `zipf`. Its most popular phone makes about an eighth of the run's payments (thousands): at
 * AMOUNT_CENTS each it would pass the consumer's day cap (`consumerSpendPerDayMaxCents`, $2,500 by
 * default), which refuses it, as it should. At 25¢ the whole run stays under the cap.
 */
const ZIPF_AMOUNT_CENTS = 25;

export async function runPosBench(options: PosBenchOptions): Promise<PosBenchResult> {
  const runs: LoadResult[] = [];
  const baselines: PosBenchResult['baselines'] = [];
  const failures: PosBenchResult['failures'] = [];
  const attempt = async (workload: string, measure: () => Promise<LoadResult[]>) => {
    try {
      runs.push(...(await measure()));
    } catch (error) {
      const message = error instanceof Error ? error.message : String(error);
      console.error(`${workload} failed: ${message}`);
      failures.push({ workload, message });
    }
  };
  for (const kind of options.baselines) {
    // Loaded only when asked for: the baselines bring their database clients.
    const { startBaseline } = await import('./baselines/index.ts');
    const baseline = await startBaseline(kind, baselineSeed(options));
    baselines.push({ kind, describe: baseline.describe });
    try {
      await attempt(`${kind} baseline`, () => measureBaseline(baseline, kind, options));
    } finally {
      await baseline.stop();
    }
  }
  const setupStarted = performance.now();
  const server = await startPaycode({ shards: options.shards, nodeArgs: options.serverNodeArgs });
  let walletPushes = 0;
  try {
    const bench = await PaycodeBench.open(server, options);
    const setupSeconds = (performance.now() - setupStarted) / 1000;
    try {
      for (const workload of options.workloads)
        await attempt(`paycode ${workload}`, () => bench.measure(workload));
    } finally {
      walletPushes = bench.close();
    }
    return { options, runs, baselines, setupSeconds, walletPushes, failures };
  } finally {
    await server.stop();
  }
}

/** Enough codes for the closed-loop measurement and every open-loop point of a baseline. */
function baselineSeed(options: PosBenchOptions): { codes: number; merchants: number; accounts: number } {
  return { codes: options.transactions + 500_000, merchants: options.merchants, accounts: options.consumers };
}

async function measureBaseline(
  baseline: Baseline,
  kind: BaselineKind,
  options: PosBenchOptions,
): Promise<LoadResult[]> {
  const clients = await Promise.all(
    Array.from({ length: options.terminals }, () => PlainClient.connect(baseline.url)),
  );
  let used = 0; // codes are single use: every transaction takes the next one
  const txAt = (base: number): Tx => {
    return async (i) => {
      const n = base + i;
      const client = clients[n % clients.length] as PlainClient;
      if (kind === 'echo') {
        // A redeem-sized frame, as a terminal sends it.
        await client.send({
          type: 'redeem',
          key: `k-${n}`,
          code: '004711',
          amountCents: AMOUNT_CENTS,
          partial: 0,
          mac: 'x'.repeat(43),
        });
        return;
      }
      const { merchantId, code } = baselineCode(n, baselineSeed(options));
      const answer = await client.send({
        type: 'redeem',
        terminalId: `t${n % clients.length}`,
        key: `k-${n}`,
        merchantId,
        code,
        amountCents: AMOUNT_CENTS,
      });
      if (answer.status !== 'approved') throw new Error(`${kind} redeem: ${answer.status}`);
    };
  };
  const serverPids = () => baseline.serverPids();
  const { baselineCode } = await import('./baselines/index.ts');
  try {
    const total = options.transactions;
    const max = await closedLoop({
      label: `${kind} baseline`,
      total,
      tx: txAt(used),
      clients: clients.length,
      serverPids,
    });
    used += total;
    const results = [max];
    for (const fraction of options.rates) {
      const offeredPerSec = Math.max(1, Math.round(max.perSec * fraction));
      const count = Math.round(offeredPerSec * options.openSeconds);
      results.push(
        await openLoop({
          label: `${kind} baseline`,
          total: count,
          tx: txAt(used),
          offeredPerSec,
          outstandingMax: clients.length * 64,
          serverPids,
        }),
      );
      used += count;
    }
    return results;
  } finally {
    for (const client of clients) client.close();
  }
}

/** The paycode fleet, its terminal connections and wallet sockets, and one method per workload. */
class PaycodeBench {
  private readonly poses = new Map<string, PosClient[]>();
  private readonly connected = new Set<string>();
  private readonly turn = new Map<string, number>();
  private readonly wallets = new Map<Consumer, WalletSocket>();
  private readonly hotFleet: Fleet;

  private constructor(
    private readonly server: PaycodeServer,
    private readonly fleet: Fleet,
    private readonly options: PosBenchOptions,
  ) {
    // The hot merchant, when made, is the last one; its terminals are as many as all the others'.
    const hot = options.workloads.includes('hot') ? fleet.merchants.at(-1)?.merchantId : undefined;
    this.hotFleet = {
      merchants: fleet.merchants.filter((m) => m.merchantId === hot),
      terminals: fleet.terminals.filter((t) => t.merchantId === hot),
      consumers: fleet.consumers.map((c) => ({ ...c, merchantId: hot as string })),
    };
    this.fleet = {
      merchants: fleet.merchants.filter((m) => m.merchantId !== hot),
      terminals: fleet.terminals.filter((t) => t.merchantId !== hot),
      consumers: fleet.consumers,
    };
  }

  static async open(server: PaycodeServer, options: PosBenchOptions): Promise<PaycodeBench> {
    const fleet = await setupFleet(server.url, {
      merchants: options.merchants,
      terminals: options.terminals,
      consumers: options.consumers,
      hotMerchant: options.workloads.includes('hot'),
    });
    // The fleet's verification texts are sent before anything is measured.
    await server.outboxDrained();
    return new PaycodeBench(server, fleet, options);
  }

  /** The lengths of the codes the workload being measured was given, counted by number of digits. */
  private codeDigits: Record<number, number> = {};

  private noteCode(code: string): string {
    this.codeDigits[code.length] = (this.codeDigits[code.length] ?? 0) + 1;
    return code;
  }

  async measure(workload: PosWorkload): Promise<LoadResult[]> {
    this.codeDigits = {};
    const results = await this.measureRuns(workload);
    for (const result of results) result.codeDigits = this.codeDigits;
    return results;
  }

  private async measureRuns(workload: PosWorkload): Promise<LoadResult[]> {
    const { options } = this;
    const label = `paycode ${workload}`;
    const serverPids = () => [this.server.pid];
    // A payment's text is part of its cost: each run ends when the outbox has sent its texts.
    const settle = () => this.server.outboxDrained();
    const base = workload === 'hot' ? this.hotFleet : this.fleet;
    const fleet =
      workload === 'fanout' ? { ...base, consumers: base.consumers.slice(0, options.idleWallets) } : base;
    await this.connect(fleet.terminals);
    if (workload === 'fanout') await this.openWallets(fleet.consumers);
    const clients = fleet.terminals.length;
    switch (workload) {
      case 'redeem':
      case 'hot':
      case 'mixed':
      case 'fanout': {
        const max = await this.rounds(
          fleet,
          options.transactions,
          (tx, total) => closedLoop({ label, total, tx, clients, serverPids, settle }),
          workload,
        );
        if (workload !== 'redeem') return [max];
        const points = [max];
        for (const fraction of options.rates) {
          const offeredPerSec = Math.max(1, Math.round(max.perSec * fraction));
          points.push(
            // One round per point (one code per consumer at most): a pause to issue codes in the middle
            // of a fixed schedule would let the server catch up.
            await this.rounds(
              fleet,
              Math.min(fleet.consumers.length, Math.round(offeredPerSec * options.openSeconds)),
              (tx, total) =>
                openLoop({
                  label,
                  total,
                  tx,
                  offeredPerSec,
                  outstandingMax: clients * 64,
                  serverPids,
                  settle,
                }),
              workload,
            ),
          );
        }
        return points;
      }
      case 'inquire': {
        const codes = await this.issue(fleet.consumers);
        const tx: Tx = async (i) => {
          const { code, merchantId } = codes[i % codes.length] as { code: string; merchantId: string };
          expectApproved('inquire', await this.pos(merchantId).inquire(code));
        };
        return [await closedLoop({ label, total: options.transactions, tx, clients, serverPids, settle })];
      }
      case 'issue-redeem':
      case 'zipf': {
        const phones = fleet.consumers.slice(0, options.wallets);
        await this.openWallets(phones);
        const pick =
          workload === 'zipf' ? zipfPicker(phones.length, 1, 42) : uniformPicker(phones.length, 42);
        const busy = new Map<number, Promise<void>>();
        const tx: Tx = async () => {
          const p = pick();
          // One live code per phone: a phone's next payment waits for its last one.
          const previous = busy.get(p) ?? Promise.resolve();
          const mine = previous.then(async () => {
            const consumer = phones[p] as Consumer;
            const wallet = this.wallets.get(consumer) as WalletSocket;
            const code = this.noteCode(await wallet.requestCode(consumer.merchantId, randomUUID()));
            const amountCents = workload === 'zipf' ? ZIPF_AMOUNT_CENTS : AMOUNT_CENTS;
            expectApproved('redeem', await this.pos(consumer.merchantId).redeem({ code, amountCents }));
          });
          const settled = mine.catch(() => {});
          busy.set(p, settled);
          await mine.finally(() => {
            if (busy.get(p) === settled) busy.delete(p);
          });
        };
        return [await closedLoop({ label, total: options.transactions, tx, clients, serverPids, settle })];
      }
    }
  }

  /** Issues one code per consumer and runs `run` over them, round after round, until `total`. */
  private async rounds(
    fleet: Fleet,
    total: number,
    run: (tx: Tx, count: number) => Promise<LoadResult>,
    workload: PosWorkload,
  ): Promise<LoadResult> {
    const results: LoadResult[] = [];
    for (let done = 0; done < total; ) {
      const count = Math.min(total - done, fleet.consumers.length);
      const consumers = fleet.consumers.slice(0, count);
      const codes = await this.issue(consumers);
      results.push(await run(this.sale(workload, consumers, codes), count));
      done += count;
    }
    return combine(results);
  }

  private sale(
    workload: PosWorkload,
    consumers: Consumer[],
    codes: { code: string; merchantId: string }[],
  ): Tx {
    return async (i) => {
      const { code, merchantId } = codes[i] as { code: string; merchantId: string };
      const pos = this.pos(merchantId);
      const pushed =
        workload === 'fanout'
          ? this.wallets
              .get(consumers[i] as Consumer)
              ?.next((f) => f.type === 'balance' && f.cause === 'redeem')
          : undefined;
      const sale = await pos.redeem({ code, amountCents: AMOUNT_CENTS });
      expectApproved('redeem', sale);
      if (workload === 'mixed' && i % 10 === 0) expectApproved('void', await pos.void(String(sale.authId)));
      if (workload === 'mixed' && i % 10 === 5)
        expectApproved('refund', await pos.refund(String(sale.authId), AMOUNT_CENTS / 2));
      if (pushed) await pushed;
    };
  }

  /** A live code for each consumer at its merchant (HTTP, untimed). */
  private async issue(consumers: Consumer[]): Promise<{ code: string; merchantId: string }[]> {
    return inParallel(consumers, 64, async (consumer) => ({
      code: this.noteCode(await issueCode(this.server.url, consumer)),
      merchantId: consumer.merchantId,
    }));
  }

  /** The merchant's terminals in turn. */
  private pos(merchantId: string): PosClient {
    const clients = this.poses.get(merchantId) as PosClient[];
    const turn = this.turn.get(merchantId) ?? 0;
    this.turn.set(merchantId, turn + 1);
    return clients[turn % clients.length] as PosClient;
  }

  private async connect(terminals: Terminal[]): Promise<void> {
    const missing = terminals.filter((t) => !this.connected.has(t.terminalId));
    const clients = await inParallel(missing, 64, (terminal) =>
      PosClient.connect({
        url: this.server.url,
        terminalId: terminal.terminalId,
        terminalKey: terminal.terminalKey,
        encoding: this.options.encoding,
        timeoutMs: 30_000,
      }),
    );
    missing.forEach((terminal, i) => {
      this.connected.add(terminal.terminalId);
      const list = this.poses.get(terminal.merchantId) ?? [];
      list.push(clients[i] as PosClient);
      this.poses.set(terminal.merchantId, list);
    });
  }

  private async openWallets(consumers: Consumer[]): Promise<void> {
    const missing = consumers.filter((c) => !this.wallets.has(c));
    const sockets = await inParallel(missing, 64, (consumer) =>
      WalletSocket.open(this.server.wsUrl, consumer.deviceToken),
    );
    missing.forEach((consumer, i) => {
      this.wallets.set(consumer, sockets[i] as WalletSocket);
    });
  }

  /** Closes every socket; returns the wallet pushes received. */
  close(): number {
    for (const clients of this.poses.values()) for (const client of clients) client.close();
    let pushes = 0;
    for (const wallet of this.wallets.values()) {
      pushes += wallet.pushes;
      wallet.close();
    }
    return pushes;
  }
}

function expectApproved(what: string, answer: PosAnswer): void {
  if (answer.status !== 'approved') throw new Error(`${what}: ${answer.status}`);
}

function uniformPicker(n: number, seed: number): () => number {
  const next = random(seed);
  return () => Math.floor(next() * n);
}

/** Index k in [0, n) with probability proportional to 1 / (k + 1)^s. */
export function zipfPicker(n: number, s: number, seed: number): () => number {
  const cdf = new Float64Array(n);
  let sum = 0;
  for (let k = 0; k < n; k++) cdf[k] = sum += 1 / (k + 1) ** s;
  const next = random(seed);
  return () => {
    const u = next() * sum;
    let lo = 0;
    let hi = n - 1;
    while (lo < hi) {
      const mid = (lo + hi) >>> 1;
      if ((cdf[mid] as number) < u) lo = mid + 1;
      else hi = mid;
    }
    return lo;
  };
}
