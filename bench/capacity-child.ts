// The first statement of this process's own code: Node and the tsx loader have started, nothing of
// the server is loaded yet (its modules are imported dynamically below, so their load is timed).
const entryMs = performance.timeOrigin + performance.now();

import { readFileSync } from 'node:fs';
import { pathToFileURL } from 'node:url';
import type { Engine, EngineOptions } from '../engine/engine.ts';
import type { ShardStats } from '../engine/shard-worker.ts';
import type { Server } from '../server/server.ts';
import { epochMs } from './measure.ts';

/**
 * One restart of the capacity benchmark (bench/capacity.ts), in a fresh process forked with
 * --expose-gc: starts the real server (`startServer`, secrets from the data dir's file, port 0 on
 * 127.0.0.1, demo off, console SMS) on a data dir, reports its start-up timeline over IPC, then answers
 * the parent's requests:
 * - `memory`: a full GC in every thread, then the heap of the main thread and of each shard thread,
 *   and the process's RSS (anonymous and file-backed apart, from /proc/self/status);
 * - `touch`: hydrates every account once through `engine.wallet` (bounded concurrency), so each
 *   shard's live-actor LRU fills, then measures memory again;
 * - `close`: closes the server and exits.
 * The parent measures from spawn to the first accepted GET /healthz itself.
 *
 * The only hook besides the engine's `shardStats()` is a wrapper around `Engine.open` that notes when
 * it started and ended; the server is otherwise started as `npm start` would start it.
 */
export interface ChildArgs {
  dataDir: string;
  shards: number;
  codeTtlMs: number;
}

/** Epoch milliseconds with the sub-millisecond part, comparable across processes on this machine. */

export interface ChildTimeline {
  /** This process's time origin (Node's notion of process start). */
  processStartMs: number;
  entryMs: number;
  /** server/server.ts and everything it imports are loaded. */
  importedMs: number;
  engineOpenStartMs: number;
  engineOpenEndMs: number;
  /** The ledger audit inside Engine.open (the engine's own figure); null when it did not run. */
  auditMs: number | null;
  /** startServer resolved: the socket listens. */
  listeningMs: number;
  /** CPU this process used up to listening, all threads (process.cpuUsage). */
  cpuMs: number;
}

export interface ProcessStatus {
  rssBytes: number;
  rssAnonBytes: number;
  rssFileBytes: number;
  rssShmemBytes: number;
  /** Peak RSS of the process so far. */
  hwmBytes: number;
}

export interface MemorySample {
  main: { heapUsedBytes: number; heapTotalBytes: number; externalBytes: number; arrayBuffersBytes: number };
  shards: ShardStats[];
  status: ProcessStatus;
}

export interface TouchResult {
  accounts: number;
  elapsedMs: number;
  /** Wallets that showed a live code (the codes seeded before the restart). */
  liveCodesSeen: number;
}

export type ParentMessage =
  | { type: 'memory' }
  | { type: 'touch'; accounts: number; concurrency: number }
  | { type: 'close' };

export type ChildMessage =
  | { type: 'listening'; url: string; timeline: ChildTimeline }
  | { type: 'memory'; memory: MemorySample }
  | { type: 'touched'; touch: TouchResult; memory: MemorySample }
  | { type: 'failed'; error: string };

/** The benchmark's phone numbers: `+1555` and 7 digits. */
export const phoneOf = (i: number): string => `+1555${String(i).padStart(7, '0')}`;
/** How many phones `phoneOf` can make. */
export const PHONES_MAX = 10_000_000;

function send(message: ChildMessage): void {
  process.send?.(message);
}

function processStatus(): ProcessStatus {
  const fields = new Map<string, number>();
  try {
    for (const line of readFileSync('/proc/self/status', 'utf8').split('\n')) {
      const match = /^(\w+):\s+(\d+) kB$/.exec(line);
      if (match) fields.set(match[1] as string, Number(match[2]) * 1024);
    }
  } catch {
    // not Linux: RSS from Node only
  }
  return {
    rssBytes: fields.get('VmRSS') ?? process.memoryUsage().rss,
    rssAnonBytes: fields.get('RssAnon') ?? 0,
    rssFileBytes: fields.get('RssFile') ?? 0,
    rssShmemBytes: fields.get('RssShmem') ?? 0,
    hwmBytes: fields.get('VmHWM') ?? 0,
  };
}

async function measureMemory(engine: Engine): Promise<MemorySample> {
  const gc = (globalThis as { gc?: () => void }).gc;
  if (!gc) throw new Error('run the capacity child with --expose-gc');
  // Let timers and microtasks left over from the last step run first.
  await new Promise((resolve) => setTimeout(resolve, 250));
  const shards = await engine.shardStats(); // each shard thread runs a full GC before it reads its heap
  gc();
  gc();
  const usage = process.memoryUsage();
  return {
    main: {
      heapUsedBytes: usage.heapUsed,
      heapTotalBytes: usage.heapTotal,
      externalBytes: usage.external,
      arrayBuffersBytes: usage.arrayBuffers,
    },
    shards,
    status: processStatus(),
  };
}

/** Reads every account's wallet once, `concurrency` at a time, with a progress line every ~5 s. */
async function touchAll(engine: Engine, accounts: number, concurrency: number): Promise<TouchResult> {
  const started = performance.now();
  let next = 0;
  let done = 0;
  let liveCodesSeen = 0;
  let lastLog = started;
  const worker = async (): Promise<void> => {
    while (next < accounts) {
      const i = next++;
      const wallet = await engine.wallet(engine.consumerIdFor(phoneOf(i)));
      if (!wallet || wallet.cards.length === 0) throw new Error(`account #${i} has no wallet or no card`);
      if (wallet.activeCode) liveCodesSeen++;
      done++;
      const now = performance.now();
      if (now - lastLog >= 5_000) {
        lastLog = now;
        const rate = (done / (now - started)) * 1000;
        console.log(
          `  touch: ${done.toLocaleString('en-US')}/${accounts.toLocaleString('en-US')} wallets, ` +
            `${Math.round(rate).toLocaleString('en-US')}/s, ETA ${Math.round((accounts - done) / rate)} s`,
        );
      }
    }
  };
  await Promise.all(Array.from({ length: Math.min(concurrency, accounts) }, worker));
  return { accounts, elapsedMs: performance.now() - started, liveCodesSeen };
}

async function main(): Promise<void> {
  const args = JSON.parse(process.argv[2] ?? '') as ChildArgs;
  const [{ startServer }, { readConfig }, { Engine: EngineClass }] = await Promise.all([
    import('../server/server.ts'),
    import('../server/config.ts'),
    import('../engine/engine.ts'),
  ]);
  const importedMs = epochMs();

  // Time Engine.open from the outside; startServer calls it once.
  const timeline: Partial<ChildTimeline> = { processStartMs: performance.timeOrigin, entryMs, importedMs };
  const open = EngineClass.open.bind(EngineClass);
  EngineClass.open = async (options: EngineOptions) => {
    timeline.engineOpenStartMs = epochMs();
    const engine = await open(options);
    timeline.engineOpenEndMs = epochMs();
    timeline.auditMs = engine.openingAudit?.durationMs ?? null;
    return engine;
  };

  const { config, problems } = readConfig({
    PAYCODE_HOST: '127.0.0.1',
    PAYCODE_PORT: '0',
    PAYCODE_DATA_DIR: args.dataDir,
    PAYCODE_SHARDS: String(args.shards),
    PAYCODE_CODE_TTL_MS: String(args.codeTtlMs),
    PAYCODE_DEMO: '0',
    PAYCODE_SMS: 'console',
    // A fixed operator token, so no start writes a generated one (every restart does the same work).
    PAYCODE_ADMIN_TOKEN: 'op_capacity_bench_operator_token',
  });
  if (problems.length > 0) throw new Error(`configuration: ${problems.join('; ')}`);
  const lines: string[] = [];
  const server: Server = await startServer({
    config,
    print: (line) => lines.push(line),
    onFatal: (error) => {
      send({ type: 'failed', error: String(error) });
      process.exit(1);
    },
  });
  timeline.listeningMs = epochMs();
  const cpu = process.cpuUsage();
  timeline.cpuMs = (cpu.user + cpu.system) / 1000;
  send({ type: 'listening', url: server.url, timeline: timeline as ChildTimeline });

  process.on('message', (message: ParentMessage) => {
    const handle = async (): Promise<void> => {
      if (message.type === 'memory') {
        send({ type: 'memory', memory: await measureMemory(server.engine) });
      } else if (message.type === 'touch') {
        const touch = await touchAll(server.engine, message.accounts, message.concurrency);
        send({ type: 'touched', touch, memory: await measureMemory(server.engine) });
      } else {
        await server.close();
        process.exit(0);
      }
    };
    handle().catch((error: unknown) => {
      send({
        type: 'failed',
        error: error instanceof Error ? (error.stack ?? error.message) : String(error),
      });
      process.exit(1);
    });
  });
}

// The parent imports this module for its types and `phoneOf`; only a forked child runs the server.
if (process.argv[1] && import.meta.url === pathToFileURL(process.argv[1]).href) {
  main().catch((error: unknown) => {
    send({ type: 'failed', error: error instanceof Error ? (error.stack ?? error.message) : String(error) });
    process.exit(1);
  });
}
