import { performance } from 'node:perf_hooks';
import { getHeapStatistics } from 'node:v8';
import { parentPort, workerData } from 'node:worker_threads';
import { openStore } from '../persistence/store.ts';
import type { Command, ShardReport } from './commands.ts';
import type { ConsumerId } from './ids.ts';
import type { Limits } from './limits.ts';
import { Shard } from './shard.ts';

/**
 * The thread around one shard. Messages in: `{ type: 'batch', commands }`, many commands per message;
 * `{ type: 'start' }` starts the shard's own timer clock (code expiry, sweeps);
 * messages out: one ShardReport per durable group commit. A failed commit
 * throws out of the worker: the engine then stops answering rather than answer from memory.
 * `{ type: 'stats' }` is a measurement hook: the thread's heap (after a full GC when the process runs
 * with --expose-gc), what the shard keeps resident, and when this thread's start-up steps finished.
 */
export interface ShardWorkerData {
  dataDir: string;
  shardIndex: number;
  shardCount: number;
  codeTtlMs: number;
  limits: Limits;
  hashKey: Uint8Array;
  sealKey: Uint8Array;
}

export type ShardMessage =
  | { type: 'batch'; commands: Command[] }
  | { type: 'watch'; consumerId: ConsumerId; on: boolean }
  | { type: 'stats' }
  | { type: 'start' }
  | { type: 'stop' };

/** Times are milliseconds since the epoch, with the sub-millisecond part (performance.timeOrigin + now). */
export interface ShardStats {
  shardIndex: number;
  /** V8 heap of this thread: used and committed, plus external (ArrayBuffers, ...) and malloced memory. */
  heapUsedBytes: number;
  heapTotalBytes: number;
  externalBytes: number;
  mallocedBytes: number;
  /** Whether a full GC ran before the heap was read (only with --expose-gc). */
  collected: boolean;
  liveActors: number;
  codeTimers: number;
  wheelTimers: number;
  watched: number;
  startup: { threadStartMs: number; modulesLoadedMs: number; storeOpenedMs: number; shardBuiltMs: number };
}

export type ShardReply =
  | { type: 'ready' }
  | { type: 'report'; report: ShardReport }
  | { type: 'stats'; stats: ShardStats };

const epochMs = () => performance.timeOrigin + performance.now();
const modulesLoadedMs = epochMs();

const data = workerData as ShardWorkerData;
const port = parentPort;
if (!port) throw new Error('shard-worker runs only as a worker thread');

const store = openStore(data.dataDir);
const storeOpenedMs = epochMs();
const shard = new Shard({
  store,
  keys: { hashKey: Buffer.from(data.hashKey), sealKey: Buffer.from(data.sealKey) },
  shardIndex: data.shardIndex,
  shardCount: data.shardCount,
  codeTtlMs: data.codeTtlMs,
  limits: data.limits,
  nowMs: Date.now(),
});
// A worker's timeOrigin is the process's; its environment was created when this thread started.
const startup = {
  threadStartMs: performance.timeOrigin + performance.nodeTiming.environment,
  modulesLoadedMs,
  storeOpenedMs,
  shardBuiltMs: epochMs(),
};

function stats(): ShardStats {
  const gc = (globalThis as { gc?: () => void }).gc;
  gc?.();
  const heap = getHeapStatistics();
  return {
    shardIndex: data.shardIndex,
    heapUsedBytes: heap.used_heap_size,
    heapTotalBytes: heap.total_heap_size,
    externalBytes: heap.external_memory,
    mallocedBytes: heap.malloced_memory,
    collected: gc !== undefined,
    ...shard.resident(),
    startup,
  };
}

function send(pending: Promise<ShardReport> | null): void {
  pending?.then(
    (report) => port?.postMessage({ type: 'report', report } satisfies ShardReply),
    (error: unknown) => {
      // A commit that fails must not be answered; crash the worker so the engine sees it.
      setImmediate(() => {
        throw error;
      });
    },
  );
}

// The shard's own clock starts only when the engine says so (after the start-up audit passed), so
// nothing changes the store while it is being audited.
let ticker: NodeJS.Timeout | undefined;

port.on('message', (message: ShardMessage) => {
  if (message.type === 'batch') send(shard.run(message.commands));
  else if (message.type === 'start')
    ticker ??= setInterval(() => send(shard.tick(Date.now())), data.limits.timerTickMs);
  else if (message.type === 'watch') shard.watch(message.consumerId, message.on);
  else if (message.type === 'stats') port.postMessage({ type: 'stats', stats: stats() } satisfies ShardReply);
  else {
    clearInterval(ticker);
    void store.root.flushed.then(async () => {
      await store.root.close();
      port.close();
    });
  }
});
port.postMessage({ type: 'ready' } satisfies ShardReply);
