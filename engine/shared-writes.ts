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
  putSync(key: Key, value: unknown, ...rest: unknown[]): unknown;
  remove(key: Key, ...rest: unknown[]): unknown;
};

export class SharedWrites {
  private pending: LogWrite[] = [];
  private scheduled = false;
  private readonly inFlight = new Set<Promise<void>>();
  private follower: ReturnType<typeof followLog> | null = null;
  /** Writes that could not be encoded since the last `durable`: its caller is told. */
  private unsent: unknown = null;

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
    shared.follower = followLog(js, store, SHARED_LOG, null, { skipping: shared.source, onApplied });
    return shared;
  }

  /** Resolves once every write recorded so far is stored in JetStream; rejects if one could not be. */
  durable(): Promise<void> {
    this.publish();
    const unsent = this.unsent;
    this.unsent = null;
    if (unsent) return Promise.reject(unsent);
    return Promise.all(this.inFlight).then(() => undefined);
  }

  /** Stops following; what was recorded is published first. */
  async close(): Promise<void> {
    await this.durable().catch(() => {});
    this.follower?.stop();
    await this.follower?.done;
  }

  private recordWrites(): void {
    for (const [name, value] of Object.entries(this.store)) {
      if (name === 'root' || typeof (value as Partial<Patchable>).put !== 'function') continue;
      const db = value as Patchable;
      const { put, putSync, remove } = { put: db.put, putSync: db.putSync, remove: db.remove };
      db.put = (key, written, ...rest) => {
        this.add([name, key, written]);
        return put.call(db, key, written, ...rest);
      };
      db.putSync = (key, written, ...rest) => {
        this.add([name, key, written]);
        return putSync.call(db, key, written, ...rest);
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
    if (this.scheduled) return;
    this.scheduled = true;
    setImmediate(() => this.publish());
  }

  private publish(): void {
    this.scheduled = false;
    if (this.pending.length === 0) return;
    const writes = this.pending;
    this.pending = [];
    let parts: Uint8Array[];
    try {
      parts = encodeParts(0, this.source, writes);
    } catch (error) {
      this.logger.error('writes could not be encoded for the shared log; other nodes miss them', {
        err: error as Error,
      });
      this.unsent = error;
      return;
    }
    for (const part of parts) {
      const stored = this.js.publish(SHARED_LOG.subject, part).then(
        () => undefined,
        (error: unknown) => {
          this.logger.error('a write could not be stored in the shared log; other nodes miss it', {
            err: error as Error,
          });
          throw error;
        },
      );
      this.inFlight.add(stored);
      const done = () => this.inFlight.delete(stored);
      stored.then(done, done);
    }
  }
}
