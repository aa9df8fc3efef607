import { performance } from 'node:perf_hooks';
import { getHeapStatistics } from 'node:v8';
import { parentPort, workerData } from 'node:worker_threads';
import type { NatsConnection } from '@nats-io/transport-node';
import type { Command, Outcome, ShardReport } from '../core/commands.ts';
import type { ConsumerId } from '../core/ids.ts';
import type { Limits } from '../core/limits.ts';
import { unreachable } from '../core/unreachable.ts';
import {
  absorbLmdbCommitRejections,
  isStorageRefusal,
  META,
  openStore,
  storageRefusalCause,
  whenDurable,
  writeMeta,
} from '../persistence/store.ts';
import type { PendingBatch } from './group-commit.ts';
import { type ClusterLink, connectCluster, LogWriter } from './replicated-log.ts';
import { Shard } from './shard.ts';

/**
 * The thread around one shard. Messages in: `{ type: 'batch', commands }`, many commands per message;
 * `{ type: 'start' }` starts the shard's own timer clock (code expiry, sweeps);
 * messages out: one ShardReport per durable group commit.
 * `{ type: 'stats' }` is a measurement hook: the thread's heap (after a full GC when the process runs
 * with --expose-gc), what the shard keeps resident, and when this thread's start-up steps finished.
 *
 * Failures. An assertion, a failed commit that is not a storage refusal, or any other exception ends the
 * thread: the engine's supervisor answers what was in flight and starts a new thread, which rebuilds the
 * shard from LMDB (shard-client.ts). A commit the storage refused (a full disk) does not end it. Every
 * batch still in flight is answered at once: nothing of the refused batch, nor of the later ones (they
 * abort), is on disk, so their commands get `overloaded`; a batch LMDB committed before the refusal gets
 * `internal`, since lmdb-js may never report its flush (a retry with the same key finds its stored
 * result). The shard is then rebuilt from LMDB in this thread, answers reads (wallet, history) and
 * refuses every other command with `overloaded` until a small probe write is durable again. No timer
 * fires meanwhile; the rebuilt shard fires those that came due once writes are back.
 *
 * `{ type: 'fault' }` is a test hook that makes this thread die on purpose (see `ShardFault`). It is
 * accepted only when the engine was opened with `testHooks`, which the server never sets, and no client
 * input reaches it: commands arrive only inside `batch` messages.
 *
 * @module
 */

export interface ShardWorkerData {
  dataDir: string;
  shardIndex: number;
  shardCount: number;
  codeTtlMs: number;
  limits: Limits;
  hashKey: Uint8Array;
  sealKey: Uint8Array;
  /**
   * This thread replaces one that died. Its first act is a small durable write: LMDB serializes writers,
   * so every commit of the dead thread is complete and on disk before this shard reads its state and
   * answers a retry from a stored result.
   */
  restart: boolean;
  /** Accept the `fault` test hook. */
  testHooks: boolean;
  /** In a cluster: the shard's batches are stored in its replicated log first (replicated-log.ts). */
  cluster?: ClusterLink;
}

/**
 * How the `fault` test hook ends the thread: `throw` raises an exception at once, `exit` ends the thread
 * with exit code 1 without one, `throwAfterNextCommit` raises one after the next group commit is durable
 * and before its answers are posted (the window where a retry must find the stored result), and
 * `throwInsideNextCommit` makes a write inside the next group commit throw after the first one (the
 * whole batch must be left out, and the thread ends as for any failed commit); `hang` blocks the
 * thread's event loop for good, alive but silent.
 */
export type ShardFault = 'throw' | 'exit' | 'throwAfterNextCommit' | 'throwInsideNextCommit' | 'hang';

export type ShardMessage =
  | { type: 'batch'; commands: Command[] }
  | { type: 'watch'; consumerId: ConsumerId; on: boolean }
  | { type: 'stats' }
  | { type: 'start' }
  | { type: 'stop' }
  | { type: 'fault'; fault: ShardFault };

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
  /** Live codes of each length (index: digits − 6), all merchants together. */
  liveCodesByLength: number[];
  startup: { threadStartMs: number; modulesLoadedMs: number; storeOpenedMs: number; shardBuiltMs: number };
}

export type ShardReply =
  /** `writable` is false when the storage refused the start-up write of a restarted thread. */
  | { type: 'ready'; writable: boolean }
  /** The thread's event loop still turns (see `shardSilenceMaxMs`). */
  | { type: 'heartbeat' }
  | { type: 'report'; report: ShardReport }
  | { type: 'stats'; stats: ShardStats }
  /** The storage refused a commit (`writable: false`, with the cause) or takes writes again. */
  | { type: 'storage'; writable: boolean; cause?: string };

const epochMs = () => performance.timeOrigin + performance.now();
const modulesLoadedMs = epochMs();

const data = workerData as ShardWorkerData;
if (!parentPort) throw new Error('shard-worker runs only as a worker thread');
const port = parentPort;
// A refused commit is handled below; lmdb-js's duplicate rejections of it must not end this thread.
absorbLmdbCommitRejections();

const store = openStore(data.dataDir);
const storeOpenedMs = epochMs();

const watched = new Set<ConsumerId>();
let stopping = false;
let natsConnection: NatsConnection | undefined;
// In a cluster the thread first writes its marker in the shard's log and applies the log up to it, so
// the shard is built from everything any earlier owner stored.
const log = data.cluster ? await openLog(data.cluster) : undefined;
const buildShard = (): Shard => {
  const built = new Shard({
    store,
    keys: { hashKey: Buffer.from(data.hashKey), sealKey: Buffer.from(data.sealKey) },
    shardIndex: data.shardIndex,
    shardCount: data.shardCount,
    codeTtlMs: data.codeTtlMs,
    limits: data.limits,
    nowMs: Date.now(),
    onCommitFailed: (error) => commitFailed(error),
    log,
  });
  for (const consumerId of watched) built.watch(consumerId, true);
  return built;
};

/**
 * A small durable write: whether the storage takes writes. A write not committed and reported on disk
 * within `storageProbeFlushWaitMs` counts as refused, so the probes go on rather than wait for good
 * (after a refused commit lmdb-js may settle a write only once a later one lands). Anything but a
 * refusal ends the thread.
 */
async function probeWrite(): Promise<boolean> {
  const written = (async () => {
    await store.root.transaction(() => writeMeta(store, META.writeProbe(data.shardIndex), Date.now()));
    await whenDurable(store);
    return true;
  })().catch((error: unknown) => {
    if (!isStorageRefusal(error)) throw error;
    // Handles the cause, so it is not reported as an unhandled rejection.
    void storageRefusalCause(error);
    return false;
  });
  let waited: NodeJS.Timeout | undefined;
  const timedOut = new Promise<boolean>((resolve) => {
    waited = setTimeout(resolve, data.limits.storageProbeFlushWaitMs, false);
  });
  try {
    return await Promise.race([written, timedOut]);
  } finally {
    clearTimeout(waited);
  }
}

async function openLog(link: ClusterLink): Promise<LogWriter> {
  const { nc, js } = await connectCluster(link, data.limits.clusterPublishTimeoutMs);
  natsConnection = nc;
  void nc.closed().then(() => {
    if (!stopping) crash(new Error(`shard ${data.shardIndex}: the connection to NATS closed`));
  });
  return LogWriter.open(js, store, data.shardIndex, link.nodeId);
}

/**
 * `serving`: commands run as usual. `refusing`: a commit was refused and the shard rebuilt from LMDB;
 * reads are answered, the rest refused, a probe runs.
 */
let mode: 'serving' | 'refusing' = 'serving';
if (data.restart && !(await probeWrite())) mode = 'refusing';
let shard = buildShard();
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

/** Batches handed to LMDB whose answers have not left; each is answered exactly once. */
const inFlight = new Set<{ commands: readonly Command[]; batch: PendingBatch }>();
/**
 * Refusals that followed each other closely (less than `storageProbeDelayMaxMs` apart): each one doubles
 * the wait before the first probe, so a disk that takes small probes but refuses real batches does not
 * make the shard rebuild itself at the pace of the shortest probe delay.
 */
let refusalsInRow = 0;
let lastRefusalAtMs = Number.NEGATIVE_INFINITY;
let probeTimer: NodeJS.Timeout | undefined;
let crashAfterNextCommit = false;
/** Set once the thread is going to end: nothing more is answered from it. */
let dying = false;

function crash(error: unknown): void {
  dying = true;
  setImmediate(() => {
    throw error;
  });
}

const answerAll = (commands: readonly Command[], status: 'overloaded' | 'internal'): Outcome[] =>
  commands.map((command) => ({ id: command.id, reply: { status } }));

function postReport(report: ShardReport): void {
  if (!dying) port.postMessage({ type: 'report', report } satisfies ShardReply);
}

function send(commands: readonly Command[], batch: PendingBatch | null): void {
  if (!batch) return;
  const entry = { commands, batch };
  inFlight.add(entry);
  batch.durable.then(
    (report) => {
      // Already answered when a refusal abandoned it.
      if (!inFlight.delete(entry)) return;
      if (crashAfterNextCommit && commands.length > 0) {
        // Test hook: the batch is durable, its answers never leave.
        crash(new Error(`shard ${data.shardIndex}: injected fault after a commit`));
        return;
      }
      postReport(report);
    },
    (error: unknown) => {
      if (!inFlight.delete(entry)) return;
      // The shard learns of a failed commit first (commitFailed); a batch is answered here only if that
      // did not happen, and then nothing may be answered from this thread any more.
      crash(error);
    },
  );
}

/**
 * A commit failed. Anything but a storage refusal ends the thread: a commit that fails for another reason
 * must not be answered, and the supervisor restarts the shard from LMDB.
 */
function commitFailed(error: unknown): void {
  // In a cluster a batch may be in the shard's log and not in LMDB: only a new thread, catching up from
  // the log, may go on.
  if (!isStorageRefusal(error) || data.cluster) {
    crash(error);
    return;
  }
  // Handles the cause, so it is not reported as an unhandled rejection; the answers wait for it at most
  // a second, in case lmdb-js never reports it.
  const cause = Promise.race([
    storageRefusalCause(error),
    new Promise<string>((resolve) => setTimeout(resolve, 1_000, 'cause not reported').unref()),
  ]);
  // A later batch of a shard already abandoned; it was answered with the rest.
  if (mode !== 'serving' || dying) return;
  mode = 'refusing';
  const nowMs = Date.now();
  refusalsInRow = nowMs - lastRefusalAtMs < data.limits.storageProbeDelayMaxMs ? refusalsInRow + 1 : 1;
  lastRefusalAtMs = nowMs;
  // Every batch in flight is answered: those LMDB committed may wait for a flush lmdb-js never reports
  // after a refusal; the others (this one, later ones that abort) left nothing on disk.
  const abandoned = [...inFlight];
  inFlight.clear();
  rebuild();
  // The engine hears of the refusal before the answers it explains (the cause is known a moment later).
  void cause.then((text) => {
    if (dying) return;
    port.postMessage({ type: 'storage', writable: false, cause: text } satisfies ShardReply);
    for (const { commands, batch } of abandoned) {
      if (commands.length === 0) continue;
      const outcomes = answerAll(commands, batch.committed ? 'internal' : 'overloaded');
      postReport({ outcomes, notices: [], gifts: [] });
    }
    // The commands that waited for the refused batch: reads are answered, the rest refused (or run, if a
    // probe found the storage writable meanwhile).
    writing = null;
    runWaiting();
  });
}

/** Drops what memory holds and reads the shard again from LMDB, the truth; then waits for the disk. */
function rebuild(): void {
  // Transactions of the old shard still queued in LMDB abort: it has seen its commit fail.
  shard.dispose();
  shard = buildShard();
  const { storageProbeDelayMs, storageProbeDelayMaxMs } = data.limits;
  scheduleProbe(Math.min(storageProbeDelayMaxMs, storageProbeDelayMs * 2 ** (refusalsInRow - 1)));
}

function scheduleProbe(delayMs: number): void {
  probeTimer = setTimeout(() => {
    probeTimer = undefined;
    probeWrite().then(
      (writable) => {
        if (mode !== 'refusing') return;
        if (!writable) return scheduleProbe(Math.min(data.limits.storageProbeDelayMaxMs, delayMs * 2));
        mode = 'serving';
        port.postMessage({ type: 'storage', writable: true } satisfies ShardReply);
      },
      (error: unknown) => crash(error),
    );
  }, delayMs);
}

/** Reads that need no write: answered while the storage refuses writes. */
const isRead = (command: Command) => command.op === 'wallet' || command.op === 'history';

/**
 * How far the engine's clock is from this thread's, as its latest commands say. The shard's own ticks
 * run on the engine's clock, so a timer fires by the clock that stamped the command that set it: the
 * same clock when serving (the offset is the hop's latency), the test's clock in tests, never a mix in
 * which a code issued by one clock expires by another before it could be used.
 */
let clockOffsetMs = 0;
const engineNowMs = () => Date.now() + clockOffsetMs;

/**
 * Group commit across messages: while a batch is being written and flushed, the commands that arrive
 * wait, and they go into the next batch once it is on disk, up to `shardBatchLengthMax` commands (the
 * rest wait for the round after). A shard thus writes one transaction and waits for one flush per round,
 * however many messages the round brought, rather than one per message (each a hand-off to lmdb-js's
 * write and flush threads).
 */
const waiting: Command[][] = [];
/** The batch being written, whose durability lets the waiting commands go; null when none is. */
let writing: PendingBatch | null = null;

function batch(commands: Command[]): void {
  const latest = commands.reduce((max, command) => Math.max(max, command.nowMs), Number.NEGATIVE_INFINITY);
  if (latest > Number.NEGATIVE_INFINITY) clockOffsetMs = latest - Date.now();
  waiting.push(commands);
  if (!writing) runWaiting();
}

/** Runs the waiting commands: one batch while serving (the next waits for it), all of them while refusing. */
function runWaiting(): void {
  while (waiting.length > 0 && !writing && !dying) {
    const commands = nextBatch();
    if (mode === 'serving') {
      const pending = shard.run(commands);
      send(commands, pending);
      writing = pending;
      // After the answers (send's handler came first); a refused commit lets the waiting go instead.
      const next = () => {
        if (writing !== pending) return;
        writing = null;
        runWaiting();
      };
      pending.durable.then(next, () => {});
      continue;
    }
    const reads = commands.filter(isRead);
    const refused = reads.length === 0 ? commands : commands.filter((command) => !isRead(command));
    if (refused.length > 0)
      postReport({ outcomes: answerAll(refused, 'overloaded'), notices: [], gifts: [] });
    if (reads.length > 0) send(reads, shard.run(reads));
  }
}

/** Whole waiting messages, from the first, while they fit in one batch (a message never exceeds one). */
function nextBatch(): Command[] {
  let taken = 0;
  let length = 0;
  for (const message of waiting) {
    if (taken > 0 && length + message.length > data.limits.shardBatchLengthMax) break;
    taken++;
    length += message.length;
  }
  const messages = waiting.splice(0, taken);
  return messages.length === 1 ? (messages[0] as Command[]) : messages.flat();
}

function fault(kind: ShardFault): void {
  if (!data.testHooks) return;
  switch (kind) {
    case 'throwAfterNextCommit':
      crashAfterNextCommit = true;
      return;
    case 'throwInsideNextCommit':
      shard.injectFaultInsideNextCommit();
      return;
    case 'hang':
      for (;;);
    case 'exit':
      process.exit(1);
      return;
    case 'throw':
      throw new Error(`shard ${data.shardIndex}: injected fault`);
    default:
      unreachable(kind);
  }
}

// The shard's own clock starts only when the engine says so (after the start-up audit passed), so
// nothing changes the store while it is being audited. It stands still while writes are refused.
let ticker: NodeJS.Timeout | undefined;

port.on('message', (message: ShardMessage) => {
  switch (message.type) {
    case 'batch':
      batch(message.commands);
      return;
    case 'start':
      ticker ??= setInterval(() => {
        if (mode === 'serving') send([], shard.tick(engineNowMs()));
      }, data.limits.timerTickMs);
      return;
    case 'watch':
      if (message.on) watched.add(message.consumerId);
      else watched.delete(message.consumerId);
      shard.watch(message.consumerId, message.on);
      return;
    case 'stats':
      port.postMessage({ type: 'stats', stats: stats() } satisfies ShardReply);
      return;
    case 'fault':
      fault(message.fault);
      return;
    case 'stop':
      stop();
      return;
    default:
      unreachable(message);
  }
});

/** Stops the clock, waits for what was committed to be durable, and closes the store and the port. */
function stop(): void {
  stopping = true;
  clearInterval(ticker);
  clearTimeout(probeTimer);
  if (mode !== 'serving') {
    // lmdb-js never settles the flush of a refused commit, and its close() waits for that flush; nothing
    // of this shard waits to be flushed (every write since the refusal failed), so end without waiting.
    void store.root.close();
    void natsConnection?.close();
    port.close();
    return;
  }
  void whenDurable(store).then(async () => {
    await store.root.close();
    await natsConnection?.close();
    port.close();
  });
}
port.postMessage({ type: 'ready', writable: mode === 'serving' } satisfies ShardReply);
setInterval(
  () => port.postMessage({ type: 'heartbeat' } satisfies ShardReply),
  data.limits.shardHeartbeatMs,
).unref();
if (mode === 'refusing') {
  refusalsInRow = 1;
  lastRefusalAtMs = Date.now();
  scheduleProbe(data.limits.storageProbeDelayMs);
}
