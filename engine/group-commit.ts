import { ABORT, type Database, type Key } from 'lmdb';
import type { ShardReport } from '../core/commands.ts';
import { type Store, whenDurable } from '../persistence/store.ts';

/**
 * A shard's group commit: the writes of a whole batch go to LMDB in one transaction, and the batch's
 * answers are released only once that transaction and every earlier one are flushed to disk. Batches
 * may overlap (a timer batch is applied in memory while a batch of commands flushes; commands themselves
 * wait for the batch before them, see shard-worker.ts); after a failed commit nothing later may land,
 * since it would build on state that is not on disk.
 *
 * @module
 */

/**
 * A pending write: database, key and value (undefined removes; `SweepIfOlder` removes an idempotency
 * record only if it is still old). The databases hold different value types; each write is built next
 * to the value it stores.
 */
// biome-ignore lint/suspicious/noExplicitAny: a heterogeneous list of databases
export type Write = [Database<any, Key>, Key, unknown];

/** What one batch writes and answers. */
export interface Batch {
  no: number;
  writes: Write[];
  report: ShardReport;
}

/** A batch applied in memory and handed to LMDB. */
export interface PendingBatch {
  /** Resolves with the answers once this batch and every earlier one are durable. */
  readonly durable: Promise<ShardReport>;
  /** Whether LMDB committed it (visible, perhaps not yet flushed); false while pending, failed or aborted. */
  readonly committed: boolean;
}

/** A write that removes an idempotency record only if it is still older than the retention. */
export class SweepIfOlder {
  constructor(readonly olderThanMs: number) {}
}

/** Writes applied in memory whose batch is not yet committed, so later batches read them. */
export class Overlay<V> {
  private readonly entries = new Map<string, { batch: number; value: V | null }>();
  set(key: string, batch: number, value: V | null): void {
    this.entries.set(key, { batch, value });
  }
  get(key: string): { value: V | null } | undefined {
    return this.entries.get(key);
  }
  release(batch: number): void {
    for (const [key, entry] of this.entries) if (entry.batch <= batch) this.entries.delete(key);
  }
}

/**
 * In a cluster, the shard's replicated log (replicated-log.ts): a batch is appended there first, and
 * applied to LMDB, with the log position, once JetStream stored it with its replicas. The local commit need
 * not be flushed before the answers: the node rebuilds anything lost from the log.
 */
export interface ReplicatedLog {
  append(writes: readonly Write[]): Promise<number>;
  /** Writes the position after a record, in the caller's transaction. */
  writePosition(seq: number): void;
}

export class GroupCommit {
  private batchNo = 0;
  /** The last batch on disk: what it changed may be dropped from memory. */
  durableBatchNo = 0;
  private tail: Promise<unknown> = Promise.resolve();
  /** In a cluster: the local commit of the last batch appended to the log. */
  private localTail: Promise<unknown> = Promise.resolve();
  private failed = false;
  private throwInsideNext = false;

  constructor(
    private readonly store: Store,
    private readonly shardIndex: number,
    /** Called when a batch is on disk, in batch order. */
    private readonly onDurable: (batchNo: number) => void,
    /**
     * Called at once when LMDB fails a commit, before the answers of earlier batches are released: after a
     * refused commit lmdb-js may never report the flush they wait for (see shard-worker.ts).
     */
    private readonly onCommitFailed?: (error: unknown) => void,
    private readonly log?: ReplicatedLog,
  ) {}

  /** A new batch; reads see other shards' commits from here on (idempotency keys may be any shard's). */
  begin(): Batch {
    this.store.root.resetReadTxn();
    return { no: ++this.batchNo, writes: [], report: { outcomes: [], notices: [], gifts: [] } };
  }

  commit(batch: Batch): PendingBatch {
    const { store, log } = this;
    // All or nothing: the batch is a child transaction, so a write that throws aborts all of it (in a
    // plain transaction callback lmdb-js would commit the writes made before the throw), and the commit
    // fails with that error, so nothing of the batch is answered.
    const transact = (seq?: number) =>
      store.root.childTransaction(() => {
        if (this.failed) return ABORT;
        this.apply(batch.writes);
        if (seq !== undefined) log?.writePosition(seq);
      });
    // In a cluster the batch goes to the log at once (appends are acknowledged in order), and to LMDB once
    // it is stored there, in batch order. After a failure nothing more is appended, and a batch stored in
    // the log but not here fails too: the thread must end and its successor catch up from the log.
    const replicate = (appending: ReplicatedLog) =>
      this.failed
        ? Promise.reject(new Error(`shard ${this.shardIndex}: an earlier commit failed`))
        : Promise.all([appending.append(batch.writes), this.localTail])
            .then(([seq]) => transact(seq))
            .then((result) => {
              if (result === ABORT) throw new Error(`shard ${this.shardIndex}: stored in the log, not here`);
            });
    const committed: Promise<unknown> =
      batch.writes.length === 0 ? Promise.resolve() : log ? replicate(log) : transact();
    if (log && batch.writes.length > 0) this.localTail = committed.catch(() => {});
    // Answers leave in batch order, each only after its own commit and every earlier one is on disk (in a
    // cluster: stored in the log and committed here). A batch that wrote nothing waits only for the earlier
    // ones: lmdb-js may never settle `flushed` after a failed commit until the next write succeeds, and
    // reads must still be answered while writes are refused.
    const durable =
      batch.writes.length === 0
        ? this.tail.then(() => undefined)
        : log
          ? this.tail.then(() => committed)
          : this.tail.then(() => committed).then(() => whenDurable(store));
    durable.catch(() => {
      this.failed = true;
    });
    this.tail = durable;
    const pending = {
      committed: false,
      durable: durable.then(() => {
        this.durableBatchNo = batch.no;
        this.onDurable(batch.no);
        return batch.report;
      }),
    };
    committed.then(
      (result) => {
        pending.committed = result !== ABORT;
      },
      (error: unknown) => {
        this.failed = true;
        this.onCommitFailed?.(error);
      },
    );
    return pending;
  }

  /** Test hook (shard-worker.ts `ShardFault`): the next commit throws after its first write. */
  injectFaultInsideNextCommit(): void {
    this.throwInsideNext = true;
  }

  private apply(writes: readonly Write[]): void {
    for (const [index, [db, key, value]] of writes.entries()) {
      if (index === 1 && this.throwInsideNext) {
        this.throwInsideNext = false;
        throw new Error(`shard ${this.shardIndex}: injected fault inside a commit`);
      }
      if (value === undefined) db.remove(key);
      else if (!(value instanceof SweepIfOlder)) db.put(key, value);
      else if ((db.get(key)?.atMs ?? Number.POSITIVE_INFINITY) < value.olderThanMs) db.remove(key);
    }
  }
}
