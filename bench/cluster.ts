import { type ChildProcess, fork } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Reply } from '../core/wallet.ts';
import { Engine } from '../engine/engine.ts';
import { createLogger } from '../log/logger.ts';
import { createSecretsFile, loadSecrets } from '../persistence/secrets.ts';
import { fmtInt, fmtMs, median, processCpuMs, runBounded, sleep, summarize, table } from './measure.ts';
import { type NatsCluster, startNatsCluster } from './nats-servers.ts';
import { cpuMsOf } from './proc.ts';

/**
 * `npm run bench -- cluster`: what replication costs, and how long a failover takes. All on one machine,
 * so the figures show the price of storing each change in JetStream with three replicas, not scaling.
 *
 * - Payments (a code issued, then redeemed: two durable changes) kept `--cluster-in-flight` in flight,
 *   each by its own funded consumer, on the engine alone: one node without NATS (its answers wait for the
 *   LMDB flush), one node on a three-server JetStream cluster (answers wait for JetStream's
 *   acknowledgement with three replicas), and three nodes on it (each payment through a node picked in
 *   turn, routed to its shard's owner). Server CPU is this process's (every engine thread) plus the NATS
 *   servers'.
 * - Failover: three node processes with the default lease; one is killed (SIGKILL) `--kills` times, in
 *   turn, and the time until the two others serve every shard is measured; the killed node is started
 *   again and the shards rebalanced before the next kill.
 *
 * @module
 */

export interface ClusterBenchOptions {
  shards: number;
  payments: number;
  /** Payments in flight, each by its own consumer. */
  concurrency: number;
  kills: number;
}

export interface ClusterBenchRow {
  setup: string;
  payments: number;
  perSecond: number;
  p50Ms: number;
  p99Ms: number;
  cpuUsPerPayment: number;
}

export interface ClusterBenchResult {
  rows: ClusterBenchRow[];
  failoverMs: number[];
}

const quiet = createLogger({ level: (process.env.PAYCODE_BENCH_LOG_LEVEL as 'warn') ?? 'error' });
const PAY_CENTS = 1;

async function fundAll(engine: Engine, phones: string[]): Promise<void> {
  await runBounded(
    phones.length,
    200,
    (i) =>
      engine.loadValue({
        merchantId: 'm1',
        phone: phones[i] as string,
        kind: 'gift',
        funding: 'merchant',
        amountCents: 100_000,
        idempotencyKey: `load-${i}`,
      }),
    (i, reply) => {
      if (reply.status !== 'approved') throw new Error(`load ${i}: ${reply.status}`);
    },
  );
}

/** Closed-loop payments through `engines` in turn; one payment per consumer at a time. */
async function pay(engines: Engine[], phones: string[], options: ClusterBenchOptions, natsPids: number[]) {
  const ids = phones.map((phone) => (engines[0] as Engine).consumerIdFor(phone));
  const inFlight = phones.length;
  // A consumer pays once at a time (a new code replaces its last one): each payment takes a free one.
  const free = ids.map((_, index) => index);
  const payment = async (i: number): Promise<Reply> => {
    const engine = engines[i % engines.length] as Engine;
    const consumer = free.pop() as number;
    try {
      const issued = await engine.issueCode({ consumerId: ids[consumer] as string, merchantId: 'm1' });
      if (issued.status !== 'approved') return issued;
      return await engine.redeem({
        merchantId: 'm1',
        terminalId: 't1',
        key: `pay-${i}`,
        code: issued.code as string,
        amountCents: PAY_CENTS,
        partial: false,
      });
    } finally {
      free.push(consumer);
    }
  };
  const check = (i: number, reply: Reply) => {
    if (reply.status !== 'approved') throw new Error(`payment ${i}: ${reply.status}`);
  };
  await runBounded(Math.min(2_000, options.payments), inFlight, payment, check);
  const cpuBefore = processCpuMs();
  const natsBefore = cpuMsOf(natsPids);
  const run = await runBounded(options.payments, inFlight, (i) => payment(i + options.payments), check);
  const cpuAfter = processCpuMs();
  const cpuMs =
    cpuAfter.userMs +
    cpuAfter.systemMs -
    cpuBefore.userMs -
    cpuBefore.systemMs +
    cpuMsOf(natsPids) -
    natsBefore;
  const latency = summarize(run.latenciesMs);
  return {
    payments: options.payments,
    perSecond: (options.payments / run.elapsedMs) * 1000,
    p50Ms: latency.p50Ms,
    p99Ms: latency.p99Ms,
    cpuUsPerPayment: (cpuMs * 1000) / options.payments,
  };
}

async function openEngines(
  count: number,
  nats: NatsCluster | null,
  options: ClusterBenchOptions,
  root: string,
) {
  const secretsFile = join(root, 'secrets.json');
  createSecretsFile(secretsFile);
  const engines: Engine[] = [];
  for (let index = 0; index < count; index++) {
    engines.push(
      await Engine.open({
        dataDir: mkdtempSync(join(root, 'node-')),
        secrets: loadSecrets(secretsFile),
        shards: options.shards,
        logger: quiet,
        ...(nats ? { cluster: { link: { servers: nats.urls, nodeId: `n${index}` }, replicas: 3 } } : {}),
      }),
    );
  }
  // Each node serves its share before the run starts.
  const share = Math.floor(options.shards / count);
  const served = (engine: Engine) =>
    engine.health().shards.filter((shard) => shard.state === 'serving').length;
  for (const engine of engines) while (served(engine) < share) await sleep(50);
  return engines;
}

async function measureSetup(setup: string, nodes: number, useNats: boolean, options: ClusterBenchOptions) {
  const root = mkdtempSync(join(tmpdir(), 'paycode-bench-cluster-'));
  const nats = useNats ? await startNatsCluster(3) : null;
  try {
    const engines = await openEngines(nodes, nats, options, root);
    try {
      const phones = Array.from(
        { length: options.concurrency },
        (_, i) => `+1555${String(i).padStart(7, '0')}`,
      );
      await fundAll(engines[0] as Engine, phones);
      return { setup, ...(await pay(engines, phones, options, nats?.pids() ?? [])) };
    } finally {
      for (const engine of engines) await engine.close();
    }
  } finally {
    await nats?.stop();
    rmSync(root, { recursive: true, force: true });
  }
}

interface NodeProcess {
  process: ChildProcess;
  served(): Promise<number>;
}

function startNode(root: string, id: string, nats: NatsCluster, shards: number): Promise<NodeProcess> {
  const child = fork(
    join(import.meta.dirname, 'cluster-node.ts'),
    [join(root, id), join(root, 'secrets.json'), id, nats.urls.join(','), String(shards)],
    { execArgv: ['--import', 'tsx'], stdio: ['ignore', 'inherit', 'inherit', 'ipc'] },
  );
  let nextId = 0;
  const waiting = new Map<number, (value: number) => void>();
  return new Promise((resolve, reject) => {
    child.once('exit', (code) => {
      reject(new Error(`node ${id} exited with ${code}`));
      // A killed node serves nothing: its unanswered questions say so.
      for (const answer of waiting.values()) answer(0);
      waiting.clear();
    });
    child.on('message', (message: { ready?: true; id?: number; result?: number }) => {
      if (message.ready)
        resolve({
          process: child,
          served: () =>
            new Promise((answer) => {
              if (!child.connected) return answer(0);
              waiting.set(nextId, answer);
              child.send({ id: nextId++, method: 'served', args: [] });
            }),
        });
      else {
        waiting.get(message.id as number)?.(message.result as number);
        waiting.delete(message.id as number);
      }
    });
  });
}

async function measureFailover(options: ClusterBenchOptions): Promise<number[]> {
  const root = mkdtempSync(join(tmpdir(), 'paycode-bench-failover-'));
  const nats = await startNatsCluster(3);
  createSecretsFile(join(root, 'secrets.json'));
  const ids = ['a', 'b', 'c'];
  const nodes: NodeProcess[] = [];
  try {
    for (const id of ids) nodes.push(await startNode(root, id, nats, options.shards));
    const share = options.shards / ids.length;
    const balanced = async () => {
      for (;;) {
        const served = await Promise.all(nodes.map((node) => node.served()));
        if (served.every((count) => count === share)) return;
        await sleep(100);
      }
    };
    await balanced();
    const times: number[] = [];
    for (let kill = 0; kill < options.kills; kill++) {
      const victim = kill % ids.length;
      const others = nodes.filter((_, index) => index !== victim);
      const killedAt = performance.now();
      (nodes[victim] as NodeProcess).process.kill('SIGKILL');
      for (;;) {
        const served = await Promise.all(others.map((node) => node.served()));
        if (served.reduce((sum, count) => sum + count, 0) === options.shards) break;
        await sleep(20);
      }
      times.push(performance.now() - killedAt);
      console.log(`kill ${kill + 1}: every shard served again after ${fmtInt(times.at(-1) as number)} ms`);
      nodes[victim] = await startNode(root, ids[victim] as string, nats, options.shards);
      await balanced();
    }
    return times;
  } finally {
    for (const node of nodes) node.process.kill('SIGKILL');
    await nats.stop();
    rmSync(root, { recursive: true, force: true });
  }
}

export async function runClusterBench(options: ClusterBenchOptions): Promise<ClusterBenchResult> {
  const rows: ClusterBenchRow[] = [];
  for (const [setup, nodes, useNats] of [
    ['one node, no NATS (LMDB flush)', 1, false],
    ['one node, JetStream R3', 1, true],
    ['three nodes, JetStream R3', 3, true],
  ] as const) {
    console.log(`measuring: ${setup}`);
    rows.push(await measureSetup(setup, nodes, useNats, options));
  }
  const failoverMs = options.kills > 0 ? await measureFailover(options) : [];
  return { rows, failoverMs };
}

export function printClusterBench(result: ClusterBenchResult, options: ClusterBenchOptions): void {
  console.log(
    `\npayments (code issued + redeemed), ${fmtInt(options.concurrency)} in flight, ${options.shards} shards, engine alone`,
  );
  console.log(
    table(
      ['setup', 'payments', 'per s', 'p50 ms', 'p99 ms', 'server CPU µs per payment'],
      result.rows.map((row) => [
        row.setup,
        fmtInt(row.payments),
        fmtInt(row.perSecond),
        fmtMs(row.p50Ms),
        fmtMs(row.p99Ms),
        fmtInt(row.cpuUsPerPayment),
      ]),
    ),
  );
  if (result.failoverMs.length === 0) return;
  const sorted = [...result.failoverMs].sort((a, b) => a - b);
  console.log(
    `\nfailover over ${sorted.length} kills (SIGKILL of one of three nodes, default lease): median ${fmtInt(median(sorted))} ms, max ${fmtInt(sorted.at(-1) as number)} ms`,
  );
}
