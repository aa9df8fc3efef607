import { type JetStreamClient, jetstream, jetstreamManager, StorageType } from '@nats-io/jetstream';
import { connect, type NatsConnection } from '@nats-io/transport-node';
import type { Key } from 'lmdb';
import { Packr } from 'msgpackr';
import { databaseNamed, META, type MetaKey, readMeta, type Store, writeMeta } from '../persistence/store.ts';
import { SweepIfOlder, type Write } from './group-commit.ts';

/**
 * A shard's replicated log in a cluster (docs/cluster.md): every group commit of the shard is one message
 * on the shard's own JetStream stream, and every node applies the stream, in order, to its local LMDB,
 * which is thus the node's materialized state with the stream position it has applied (`META.logPosition`).
 *
 * Fencing. Only the shard's owner writes its stream, but a paused or partitioned node may not know yet
 * that it lost its lease, and JetStream 2.9's expected-sequence check is not a fence on its own (two
 * publishes expecting the same sequence may both be accepted in a clustered stream). So:
 * - a writer first appends a marker; the marker's stream sequence is the writer's epoch;
 * - each record carries its writer's epoch, and applying the stream ignores a record whose epoch is not
 *   the latest marker's: a record of a replaced writer that lands after its successor's marker is never
 *   applied, on any node;
 * - a writer takes a batch as stored only if JetStream stored it right after the writer's previous
 *   message (its marker or last record); any other sequence means another writer came in between, and
 *   the writer stops without answering.
 *
 * @module
 */

/** How a node reaches the cluster. */
export interface ClusterLink {
  /** NATS server URLs of a JetStream-enabled cluster. */
  servers: string[];
  /** This node's name, unique in the cluster. */
  nodeId: string;
}

/** One write of a record: `[database, key]` removes, `[database, key, value]` puts, a fourth element sweeps. */
export type LogWrite = [database: string, key: Key, value?: unknown, sweepOlderThanMs?: number];

/**
 * A stream message: a writer's marker (no writes) or a group commit. A commit larger than
 * `PART_BYTES_MAX` is stored as several messages in a row, each but the last with `more`; it is applied
 * only once its last part is read, and not at all when a marker comes first (its writer died midway).
 */
interface LogRecord {
  epoch: number;
  node: string;
  writes?: LogWrite[];
  /** A slice of one write too large for a message (encoded); the next record with `writes` ends it. */
  bytes?: Uint8Array;
  more?: true;
}

/** The largest message written (NATS refuses payloads over 1 MiB by default). */
const PART_BYTES_MAX = 256 * 1024;
/** A slice of a write larger than a message, with room for the record around it. */
const SLICE_BYTES = PART_BYTES_MAX - 1024;

/** A commit's messages: one, or several parts of at most `PART_BYTES_MAX` each. */
export function encodeParts(epoch: number, node: string, writes: LogWrite[]): Uint8Array[] {
  const whole = packr.pack({ epoch, node, writes } satisfies LogRecord);
  if (whole.length <= PART_BYTES_MAX) return [whole];
  if (writes.length === 1) {
    // One write larger than a message (a big merchant's statement): its encoding in slices.
    const bytes = packr.pack(writes[0]);
    const slices: Uint8Array[] = [];
    for (let at = 0; at < bytes.length; at += SLICE_BYTES)
      slices.push(packr.pack({ epoch, node, bytes: bytes.subarray(at, at + SLICE_BYTES), more: true }));
    return [...slices, packr.pack({ epoch, node, writes: [] } satisfies LogRecord)];
  }
  const half = Math.ceil(writes.length / 2);
  const first = encodeParts(epoch, node, writes.slice(0, half));
  const rest = encodeParts(epoch, node, writes.slice(half));
  // Every part but the last says more follow.
  return [...first.map((part) => packr.pack({ ...(packr.unpack(part) as LogRecord), more: true })), ...rest];
}

/** A replicated log: its stream and subject, and the `meta` key of how far this node applied it. */
export interface LogName {
  stream: string;
  subject: string;
  position: MetaKey<'logPosition'>;
}

/** A shard's log: its group commits, written by its owner only. */
export const shardLog = (shardIndex: number): LogName => ({
  stream: `paycode-shard-${shardIndex}`,
  subject: `paycode.shard.${shardIndex}.log`,
  position: META.logPosition(`shard-${shardIndex}`),
});

/** The log of what the nodes' main threads write (the registry, the outbox, settlement: shared-writes.ts). */
export const SHARED_LOG: LogName = {
  stream: 'paycode-shared',
  subject: 'paycode.shared.log',
  position: META.logPosition('shared'),
};

const packr = new Packr({ useRecords: false });

/** How long a JetStream call is tried again while the cluster elects its leaders. */
const RETRY_WAIT_MS = 20_000;

/** A JetStream API call while the cluster elects its leaders: retried for up to `waitMs`. */
export async function retrying<T>(call: () => Promise<T>, waitMs = RETRY_WAIT_MS): Promise<T> {
  const deadline = Date.now() + waitMs;
  for (;;) {
    try {
      return await call();
    } catch (error) {
      if (Date.now() > deadline) throw error;
      await new Promise((resolve) => setTimeout(resolve, 250));
    }
  }
}

/** A connection to the NATS cluster; its JetStream publishes wait `publishTimeoutMs` for their acknowledgement. */
export async function connectCluster(
  link: ClusterLink,
  publishTimeoutMs: number,
): Promise<{ nc: NatsConnection; js: JetStreamClient }> {
  const nc = await connect({
    servers: link.servers,
    name: link.nodeId,
    maxReconnectAttempts: -1,
    waitOnFirstConnect: true,
    reconnectTimeWait: 250,
  });
  return { nc, js: jetstream(nc, { timeout: publishTimeoutMs }) };
}

/** Creates the logs' streams that do not exist yet, each with `replicas` copies. */
export async function ensureLogStreams(
  nc: NatsConnection,
  logs: readonly LogName[],
  replicas: number,
): Promise<void> {
  const jsm = await retrying(() => jetstreamManager(nc, { timeout: 2_000 }));
  for (const log of logs) {
    const exists = await jsm.streams.info(log.stream).then(
      () => true,
      () => false,
    );
    if (exists) continue;
    await retrying(() =>
      jsm.streams.add({
        name: log.stream,
        subjects: [log.subject],
        num_replicas: replicas,
        storage: StorageType.File,
      }),
    );
  }
}

/** The last sequence of a log's stream (0 when empty). */
export async function logEnd(nc: NatsConnection, log: LogName): Promise<number> {
  const jsm = await retrying(() => jetstreamManager(nc, { timeout: 2_000 }));
  const info = await retrying(() => jsm.streams.info(log.stream));
  return info.state.last_seq;
}

/** The engine's writes as a record's writes: databases by name, removals and sweeps spelled out. */
function toLogWrites(store: Store, writes: readonly Write[]): LogWrite[] {
  return writes.map(([db, key, value]) => {
    const name = databaseNamed(store, db);
    if (value === undefined) return [name, key];
    if (value instanceof SweepIfOlder) return [name, key, null, value.olderThanMs];
    return [name, key, value];
  });
}

let replaying = false;

/** Whether the writes made now come from a log being applied (shared-writes.ts does not record those). */
export const isReplaying = (): boolean => replaying;

/**
 * Texts removed (sent) before their record arrived: a shard's text comes through the shard's log and its
 * removal through the shared log, which a node may apply first. The record that follows is then dropped,
 * not kept to be sent again. Kept an hour, in this process (at start the shard logs are applied first).
 */
const sentBeforeArrival = new Map<string, number>();
const SENT_BEFORE_ARRIVAL_KEPT_MS = 60 * 60_000;

/** Applies one record's writes to LMDB; call inside a transaction. */
function applyLogWrites(store: Store, writes: readonly LogWrite[]): void {
  for (const [name, key, value, sweepOlderThanMs] of writes) {
    const db = store[name as keyof Store] as Store['auths'];
    if (name === 'outbox') {
      const id = JSON.stringify(key);
      if (value === undefined && db.get(key as string) === undefined) {
        sentBeforeArrival.set(id, Date.now() + SENT_BEFORE_ARRIVAL_KEPT_MS);
        for (const [old, untilMs] of sentBeforeArrival)
          if (untilMs < Date.now()) sentBeforeArrival.delete(old);
        continue;
      }
      if (value !== undefined && sentBeforeArrival.delete(id)) continue;
    }
    if (sweepOlderThanMs !== undefined) {
      const atMs = (db.get(key as string) as { atMs?: number } | undefined)?.atMs;
      if ((atMs ?? Number.POSITIVE_INFINITY) < sweepOlderThanMs) db.remove(key as string);
    } else if (value === undefined) db.remove(key as string);
    else db.put(key as string, value as never);
  }
}

/**
 * Applies stream messages (in order, from the one after the stored position) in one transaction, with the
 * new position. Records of a writer that a later marker replaced are skipped, and so are those `skipping`
 * names as their writer (a node's own writes, already in its LMDB).
 */
/** Which of a commit's writes to apply, by the writer that stored it (shared-writes.ts). */
export type WriteFilter = (node: string, writes: LogWrite[]) => LogWrite[];

function applyLogMessages(
  store: Store,
  log: LogName,
  messages: readonly { seq: number; record: LogRecord }[],
  filter: WriteFilter | undefined,
  touched: Set<string>,
  /** The first part of a commit still open elsewhere: the position stays below it. */
  holdFrom = Number.POSITIVE_INFINITY,
): Promise<unknown> {
  return store.root.transaction(() => {
    replaying = true;
    try {
      const position = readMeta(store, log.position) ?? { seq: 0, epoch: 0 };
      // The parts of each writer's commit so far (writers of the shared log interleave), from `fromSeq`.
      const commits = new Map<string, { fromSeq: number; writes: LogWrite[]; slices: Uint8Array[] }>();
      let lastSeq = position.seq;
      for (const { seq, record } of messages) {
        if (seq <= position.seq) continue;
        lastSeq = seq;
        if (!record.writes && !record.bytes) {
          commits.clear();
          position.epoch = seq;
        } else if (record.epoch === position.epoch) {
          const commit = commits.get(record.node) ?? { fromSeq: seq, writes: [], slices: [] };
          commits.set(record.node, commit);
          if (record.bytes) commit.slices.push(record.bytes);
          else {
            if (commit.slices.length > 0) {
              commit.writes.push(packr.unpack(Buffer.concat(commit.slices)) as LogWrite);
              commit.slices = [];
            }
            commit.writes.push(...(record.writes as LogWrite[]));
          }
          if (record.more) continue;
          commits.delete(record.node);
          const writes = filter ? filter(record.node, commit.writes) : commit.writes;
          applyLogWrites(store, writes);
          for (const [name] of writes) touched.add(name);
        }
      }
      // A commit whose last part is not read yet is read again from its first part next time.
      const openFrom = Math.min(holdFrom, ...[...commits.values()].map((commit) => commit.fromSeq));
      position.seq = Number.isFinite(openFrom) ? Math.min(openFrom - 1, lastSeq) : lastSeq;
      writeMeta(store, log.position, position);
    } finally {
      replaying = false;
    }
  });
}

/**
 * A shared-log writer's name is its node's id and a part new at every start (shared-writes.ts): a new
 * run of a node means its earlier run died, and that run's open commit will never end.
 */
function abandonEarlierRuns(open: Map<string, unknown>, writer: string): void {
  const node = writer.split(':')[0];
  for (const other of open.keys()) if (other !== writer && other.split(':')[0] === node) open.delete(other);
}

/** A log no longer holds the messages after this node's position: it must start from a snapshot. */
export class LogTruncatedError extends Error {
  constructor(stream: string, wanted: number, found: number) {
    super(
      `${stream}: message ${wanted} is no longer kept (the next is ${found}); restart the node to rebuild it from the latest snapshot`,
    );
  }
}

const MARKER_TIMEOUT_MS = 1_000;
/** Records a new writer reads one by one, rather than through a consumer, to reach its marker. */
const DIRECT_CATCH_UP_MAX = 256;

/**
 * Applies a log up to `untilSeq`. A short way (a writer restarting on the node that wrote the log, the
 * common case) is read message by message from the stream's leader: a consumer, the other way, is a
 * change of the JetStream cluster's metadata, which waits for its leader to be elected again after a
 * NATS server died.
 */
async function catchUp(js: JetStreamClient, store: Store, log: LogName, untilSeq: number): Promise<void> {
  const from = (readMeta(store, log.position)?.seq ?? 0) + 1;
  if (untilSeq - from >= DIRECT_CATCH_UP_MAX) return followLog(js, store, log, untilSeq).done;
  const jsm = await js.jetstreamManager();
  const messages: { seq: number; record: LogRecord }[] = [];
  for (let seq = from; seq <= untilSeq; seq++) {
    const message = await retrying(() => jsm.streams.getMessage(log.stream, { seq }));
    // A message no longer in the stream: the consumer's way reads what is there.
    if (!message) return followLog(js, store, log, untilSeq).done;
    messages.push({ seq, record: packr.unpack(message.data) as LogRecord });
  }
  await applyLogMessages(store, log, messages, undefined, new Set());
}

/**
 * Reads a log's stream from after the stored position and applies it: up to `untilSeq`, or for good
 * (a follower) until `stop` is called. Resolves when it has stopped, after its last transaction. A read
 * that fails (a NATS server lost, a stream leader moving) starts again from the stored position: a
 * catch-up for up to `RETRY_WAIT_MS`, a follower for as long as it is not stopped. `onApplied` is called
 * after each transaction that changed something, with the databases it changed.
 */
export function followLog(
  js: JetStreamClient,
  store: Store,
  log: LogName,
  untilSeq: number | null,
  options: { filter?: WriteFilter; onApplied?: (databases: ReadonlySet<string>) => void } = {},
): { done: Promise<void>; stop: () => void } {
  let stopped = false;
  let stopConsumer = () => {};
  const readOnce = async () => {
    const from = (readMeta(store, log.position)?.seq ?? 0) + 1;
    if (untilSeq !== null && from > untilSeq) return;
    // Truncated up to and past `from` (nothing left to read shows no gap): this node fell behind.
    const { first_seq } = (await (await js.jetstreamManager()).streams.info(log.stream)).state;
    if (first_seq > from) throw new LogTruncatedError(log.stream, from, first_seq);
    const consumer = await js.consumers.get(log.stream, { opt_start_seq: from });
    const messages = await consumer.consume({ max_messages: 1_000 });
    stopConsumer = () => void messages.stop();
    if (stopped) stopConsumer();
    let chunk: { seq: number; record: LogRecord }[] = [];
    // The parts read so far of each writer's open commit: they join the chunk with their last part, so a
    // commit is applied whole while the other writers' commits go on being applied.
    const open = new Map<string, { seq: number; record: LogRecord }[]>();
    let applying: Promise<unknown> = Promise.resolve();
    let failure: unknown = null;
    let next = from;
    try {
      for await (const message of messages) {
        if (failure) break;
        // A message delivered again (the consumer recreated after a hiccup) was read already.
        if (message.seq < next) continue;
        // Messages are never removed but below a snapshot (snapshots.ts): a gap means this node fell behind.
        if (message.seq > next) {
          failure = new LogTruncatedError(log.stream, next, message.seq);
          break;
        }
        next = message.seq + 1;
        const record = packr.unpack(message.data) as LogRecord;
        const entry = { seq: message.seq, record };
        const last = untilSeq !== null && message.seq >= untilSeq;
        if (!record.writes && !record.bytes) {
          // A marker: the open commits of the shard's earlier writers never end.
          open.clear();
          chunk.push(entry);
        } else {
          abandonEarlierRuns(open, record.node);
          const parts = open.get(record.node);
          if (record.more) {
            if (parts) parts.push(entry);
            else open.set(record.node, [entry]);
          } else {
            open.delete(record.node);
            chunk.push(...(parts ?? []), entry);
          }
        }
        if (message.info.pending === 0 || chunk.length >= 1_000 || last) {
          const taken = chunk;
          chunk = [];
          const touched = new Set<string>();
          const holdFrom = Math.min(...[...open.values()].map((parts) => (parts[0] as { seq: number }).seq));
          applying = applying
            .then(() => applyLogMessages(store, log, taken, options.filter, touched, holdFrom))
            .then(() => {
              if (touched.size > 0) options.onApplied?.(touched);
            })
            .catch((error: unknown) => {
              failure = error;
              stopConsumer();
            });
        }
        if (last) {
          lastRead = message.seq;
          break;
        }
      }
    } finally {
      await applying;
    }
    if (failure) throw failure;
  };
  // A read ends when it reached `untilSeq`, when it is stopped, or when the consumer ended or failed
  // (a connection closing, a leader moving): then it starts again from the stored position.
  // (The parts of a commit whose last part is not written yet are read, not applied.)
  let lastRead = 0;
  const reached = () =>
    untilSeq !== null && Math.max(lastRead, readMeta(store, log.position)?.seq ?? 0) >= untilSeq;
  const done = (async () => {
    const deadline = Date.now() + RETRY_WAIT_MS;
    for (;;) {
      const failed = await readOnce().then(
        () => null,
        (error: unknown) => error,
      );
      if (stopped || reached()) return;
      if (failed instanceof LogTruncatedError) throw failed;
      if (untilSeq !== null && Date.now() > deadline)
        throw failed ?? new Error(`${log.stream}: not read up to ${untilSeq}`);
      await new Promise((resolve) => setTimeout(resolve, 250));
      if (stopped) return;
    }
  })();
  return {
    done,
    stop: () => {
      stopped = true;
      stopConsumer();
    },
  };
}

/** Raised when a writer finds that another writer came in between: it must answer nothing more. */
export class FencedError extends Error {}

/**
 * The owner's side: it appends its marker, brings the local LMDB up to it, and then appends group commits,
 * each taken as stored only at the sequence right after the previous one.
 */
export class LogWriter {
  private constructor(
    private readonly js: JetStreamClient,
    private readonly store: Store,
    private readonly shardIndex: number,
    private readonly nodeId: string,
    readonly epoch: number,
    /** The sequence the next record must get. */
    private nextSeq: number,
  ) {}

  private failed = false;

  static async open(
    js: JetStreamClient,
    store: Store,
    shardIndex: number,
    nodeId: string,
  ): Promise<LogWriter> {
    const marker: LogRecord = { epoch: 0, node: nodeId };
    // Short attempts: after a NATS server died, the stream's new leader is taken as soon as it is elected.
    const ack = await retrying(() =>
      js.publish(shardLog(shardIndex).subject, packr.pack(marker), { timeout: MARKER_TIMEOUT_MS }),
    );
    await catchUp(js, store, shardLog(shardIndex), ack.seq);
    return new LogWriter(js, store, shardIndex, nodeId, ack.seq, ack.seq + 1);
  }

  /**
   * Appends a group commit's writes; resolves with the stream sequence once JetStream stored it with its
   * replicas. Calls must be made in commit order; they are sent at once and acknowledged in that order.
   */
  async append(writes: readonly Write[]): Promise<number> {
    if (this.failed) throw new Error(`shard ${this.shardIndex}: an earlier append failed`);
    const parts = encodeParts(this.epoch, this.nodeId, toLogWrites(this.store, writes));
    const stored = parts.map(async (part) => {
      const expected = this.nextSeq++;
      const ack = await this.js.publish(shardLog(this.shardIndex).subject, part, {
        expect: { lastSequence: expected - 1 },
      });
      if (ack.seq !== expected)
        throw new FencedError(
          `shard ${this.shardIndex}: stored at ${ack.seq}, not ${expected}: another writer`,
        );
      return ack.seq;
    });
    try {
      const seqs = await Promise.all(stored);
      return seqs[seqs.length - 1] as number;
    } catch (error) {
      // Its count of sequences is wrong from here on: only a new writer (a new marker) may go on.
      this.failed = true;
      throw error;
    }
  }

  /** Writes the position of a record appended and applied, in the caller's transaction. */
  writePosition(seq: number): void {
    writeMeta(this.store, shardLog(this.shardIndex).position, { seq, epoch: this.epoch });
  }
}
