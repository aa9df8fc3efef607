import { parentPort, workerData } from 'node:worker_threads';
import { openStore } from '../persistence/store.ts';
import type { Command, ShardReport } from './commands.ts';
import type { ConsumerId } from './ids.ts';
import type { Limits } from './limits.ts';
import { Shard } from './shard.ts';

/**
 * The thread around one shard. Messages in: `{ type: 'batch', commands }`, many commands per message;
 * messages out: one ShardReport per durable group commit. A failed commit
 * throws out of the worker: the engine then stops answering rather than answer from memory.
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
  | { type: 'stop' };

export type ShardReply = { type: 'ready' } | { type: 'report'; report: ShardReport };

const data = workerData as ShardWorkerData;
const port = parentPort;
if (!port) throw new Error('shard-worker runs only as a worker thread');

const store = openStore(data.dataDir);
const shard = new Shard({
  store,
  keys: { hashKey: Buffer.from(data.hashKey), sealKey: Buffer.from(data.sealKey) },
  shardIndex: data.shardIndex,
  shardCount: data.shardCount,
  codeTtlMs: data.codeTtlMs,
  limits: data.limits,
  nowMs: Date.now(),
});

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

const ticker = setInterval(() => send(shard.tick(Date.now())), data.limits.timerTickMs);

port.on('message', (message: ShardMessage) => {
  if (message.type === 'batch') send(shard.run(message.commands));
  else if (message.type === 'watch') shard.watch(message.consumerId, message.on);
  else {
    clearInterval(ticker);
    void store.root.flushed.then(async () => {
      await store.root.close();
      port.close();
    });
  }
});
port.postMessage({ type: 'ready' } satisfies ShardReply);
