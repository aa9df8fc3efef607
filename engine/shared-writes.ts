import { randomBytes } from 'node:crypto';
import type { JetStreamClient } from '@nats-io/jetstream';
import type { NatsConnection } from '@nats-io/transport-node';
import type { Key } from 'lmdb';
import type { Logger } from '../log/logger.ts';
import type { Store } from '../persistence/store.ts';
import {
  encodeParts,
  ensureLogStreams,
  followLog,
  isReplaying,
  LogTruncatedError,
  type LogWrite,
  logEnd,
  SHARED_LOG,
} from './replicated-log.ts';

/**
 * In a cluster, what a node's main thread writes to its LMDB (the registry of merchants, terminals and
 * credentials, verification codes, phones, the SMS outbox's removals, settlements, reports' kept days)
 * reaches every node through one shared JetStream stream (docs/cluster.md). Every put and remove on the
 * main thread's store is recorded as it is made and published at the end of the event-loop turn, one
 * message per turn; `whenDurable` (persistence/store.ts) then also waits until JetStream stored them, so
 * an answer that changed the registry leaves only once the change is replicated. Every node applies the
 * other nodes' records in stream order; its own are already in its LMDB.
 *
 * What this does not give: the stream orders writes, it does not arbitrate them. Two nodes writing the
 * same key at once each keep the other's value (the last one each applied); the registry's writes are
 * each a new key or a change by one operator, so that is rare, and the docs say so.
 *
 * @module
 */

type Patchable = {
  put(key: Key, value: unknown, ...rest: unknown[]): unknown;
  remove(key: Key, ...rest: unknown[]): unknown;
};

export class SharedWrites {
  /** Recorded, not yet handed to JetStream, in the order made. */
  private pending: LogWrite[] = [];
  private recorded = 0;
  private stored = 0;
  private readonly waiting: { upTo: number; resolve: () => void; reject: (error: unknown) => void }[] = [];
  private publishing = false;
  private closed = false;
  private batchNo = 0;
  /**
   * This process's writes JetStream may not have ordered yet, by key: another node's write of such a key
   * that the stream places before them is not applied here (ours will follow it in the stream).
   */
  private readonly unseen = new Map<string, number>();
  private follower: ReturnType<typeof followLog> | null = null;
  /** The shared log was truncated past what this node applied: it must restart from a snapshot. */
  behind = false;

  private constructor(
    private readonly js: JetStreamClient,
    private readonly store: Store,
    /** This process's name in the records: its node id and a random part, new at every start. */
    private readonly source: string,
    private readonly logger: Logger,
  ) {}

  /**
   * Applies the whole shared log to this node's LMDB (its own records of earlier starts too), then records
   * the main thread's writes and follows the other nodes'. `onApplied` hears which databases they changed.
   */
  static async open(options: {
    nc: NatsConnection;
    js: JetStreamClient;
    store: Store;
    nodeId: string;
    replicas: number;
    logger: Logger;
    onApplied: (databases: ReadonlySet<string>) => void;
  }): Promise<SharedWrites> {
    const { nc, js, store, nodeId, replicas, logger, onApplied } = options;
    await ensureLogStreams(nc, [SHARED_LOG], replicas);
    await followLog(js, store, SHARED_LOG, await logEnd(nc, SHARED_LOG), { onApplied }).done;
    const shared = new SharedWrites(js, store, `${nodeId}:${randomBytes(6).toString('base64url')}`, logger);
    shared.recordWrites();
    shared.follower = followLog(js, store, SHARED_LOG, null, {
      filter: (node, writes) => shared.toApply(node, writes),
      onApplied,
    });
    shared.follower.done.catch((error: unknown) => {
      // Behind a truncated log, this node's registry stays old: it says so until restarted.
      if (error instanceof LogTruncatedError) shared.behind = true;
      logger.error('following the shared log failed', { err: error as Error });
    });
    return shared;
  }

  /**
   * Resolves once every write recorded so far is stored in JetStream. A publish that fails is tried again
   * (JetStream drops a repeated message by its id) until it is stored: an answer never leaves before.
   */
  durable(): Promise<void> {
    const upTo = this.recorded;
    if (this.stored >= upTo) return Promise.resolve();
    void this.pump();
    return new Promise((resolve, reject) => this.waiting.push({ upTo, resolve, reject }));
  }

  /** Publishes what was recorded (for up to `waitMs`), then stops following. */
  async close(waitMs = 5_000): Promise<void> {
    const published = this.durable().catch(() => {});
    await Promise.race([published, new Promise((resolve) => setTimeout(resolve, waitMs).unref())]);
    this.closed = true;
    this.follower?.stop();
    await this.follower?.done.catch(() => {});
  }

  /** Our own records: already applied here. Others': all but the keys we wrote since, unseen yet. */
  private toApply(node: string, writes: LogWrite[]): LogWrite[] {
    if (node === this.source) {
      for (const write of writes) {
        const key = keyOf(write);
        const count = (this.unseen.get(key) ?? 1) - 1;
        if (count > 0) this.unseen.set(key, count);
        else this.unseen.delete(key);
      }
      return [];
    }
    return this.unseen.size === 0 ? writes : writes.filter((write) => !this.unseen.has(keyOf(write)));
  }

  private recordWrites(): void {
    // `putSync` and the conditional writes go through `put` in lmdb-js, so these two see every write.
    for (const [name, value] of Object.entries(this.store)) {
      if (name === 'root' || typeof (value as Partial<Patchable>).put !== 'function') continue;
      const db = value as Patchable;
      const { put, remove } = { put: db.put, remove: db.remove };
      db.put = (key, written, ...rest) => {
        this.add([name, key, written]);
        return put.call(db, key, written, ...rest);
      };
      db.remove = (key, ...rest) => {
        this.add([name, key]);
        return remove.call(db, key, ...rest);
      };
    }
  }

  private add(write: LogWrite): void {
    // A log being applied writes what another node (or a shard) already stored; lmdb-js keeps each
    // database's shared record structures under a symbol key, which are this node's own.
    if (isReplaying() || typeof write[1] === 'symbol') return;
    this.pending.push(write);
    this.recorded++;
    const key = keyOf(write);
    this.unseen.set(key, (this.unseen.get(key) ?? 0) + 1);
    if (this.pending.length === 1) setImmediate(() => void this.pump());
  }

  /** Publishes the recorded writes in order, one batch at a time, each until it is stored. */
  private async pump(): Promise<void> {
    if (this.publishing) return;
    this.publishing = true;
    try {
      while (this.pending.length > 0 && !this.closed) {
        const writes = this.pending;
        this.pending = [];
        const batch = `${this.source}:${++this.batchNo}`;
        let failure: unknown = null;
        try {
          const parts = encodeParts(0, this.source, writes);
          for (const [index, part] of parts.entries()) await this.publish(part, `${batch}:${index}`);
        } catch (error) {
          // Writes that cannot be encoded are never shared: their answers are refused, and it is logged.
          failure = error;
          this.logger.error('writes could not be shared with the other nodes', { err: error as Error });
        }
        this.stored += writes.length;
        for (const waiter of this.waiting.filter((entry) => entry.upTo <= this.stored))
          if (failure) waiter.reject(failure);
          else waiter.resolve();
        this.waiting.splice(
          0,
          this.waiting.length,
          ...this.waiting.filter((entry) => entry.upTo > this.stored),
        );
      }
    } finally {
      this.publishing = false;
    }
  }

  private async publish(part: Uint8Array, msgID: string): Promise<void> {
    for (let attempt = 1; !this.closed; attempt++) {
      try {
        await this.js.publish(SHARED_LOG.subject, part, { msgID });
        return;
      } catch (error) {
        if (attempt === 1)
          this.logger.warn('a shared write is not stored yet; trying again', { err: error as Error });
        await new Promise((resolve) => setTimeout(resolve, Math.min(5_000, 100 * 2 ** attempt)));
      }
    }
  }
}

/** A write's database and key, as one string. */
const keyOf = (write: LogWrite) => `${write[0]}\u0000${JSON.stringify(write[1])}`;
