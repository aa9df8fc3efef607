import { JetStreamApiCodes, JetStreamApiError } from '@nats-io/jetstream';
import type { KV } from '@nats-io/kv';
import type { Limits } from '../core/limits.ts';
import type { Logger } from '../log/logger.ts';

/**
 * Which node owns which shard, by leases in a JetStream key-value bucket (docs/cluster.md). Every change
 * of a lease is a compare-and-set on the key's revision, which JetStream itself checks, so two nodes never
 * both take the same lease. Keys: `shard.<index>` → {node, untilMs}; `node.<id>` → {untilMs, writer}, each
 * node's heartbeat, which tells the others how many nodes share the shards and whose texts are orphaned;
 * and `members`, the ids of every node that joined. A round only reads and writes keys by name: listing
 * keys would make a consumer, a change of the JetStream cluster's metadata that waits for its leader.
 *
 * Each round (every `shardLeaseRenewMs`) a node renews its heartbeat and its leases, then balances: it
 * takes free or expired shards while it owns fewer than its share (the shard count divided by the live
 * nodes, rounded up), and gives one back while it owns more, so a node that joins gets shards without a
 * pause of the others' remaining ones. A lease is free `shardLeaseMs` after its last renewal by its holder's
 * clock as the taker reads it (the nodes' clocks must agree to well within that).
 *
 * @module
 */

interface LeaseValue {
  node: string;
  untilMs: number;
  /** Given up by a node whose thread for it kept dying: any other node takes it, beyond its share. */
  orphan?: true;
}

export interface LeaseHooks {
  /** This node now holds the shard's lease: serve it; false when it cannot (the lease is given back). */
  acquired(shardIndex: number): Promise<boolean>;
  /** This node no longer holds it (lost, expired or given back): stop serving it before it resolves. */
  lost(shardIndex: number): Promise<void>;
  /** How far this node applied each log (by stream), told in its heartbeat (snapshots.ts). */
  applied(): Record<string, number>;
  /** Whether this node may take shards (false once it fell behind a truncated log). */
  mayTake(): boolean;
}

const shardKey = (shardIndex: number) => `shard.${shardIndex}`;
const nodeKey = (nodeId: string) => `node.${nodeId}`;
/** Every node id that ever joined, so a round reads the heartbeats by name (no listing of keys). */
const MEMBERS_KEY = 'members';
const encode = (value: unknown) => JSON.stringify(value);

/** Whether a compare-and-set failed because the key changed since it was read. */
const changedMeanwhile = (error: unknown) =>
  error instanceof JetStreamApiError &&
  (error.code === JetStreamApiCodes.StreamWrongLastSequence ||
    error.code === JetStreamApiCodes.StreamWrongLastSequenceUnknown);

export class ShardLeases {
  /** Shards this node holds: the lease's revision and until when it is ours by our own clock. */
  private readonly held = new Map<number, { revision: number; untilMs: number }>();
  /** Shards this node gave up, not to be taken by it again before then. */
  private readonly avoidUntilMs = new Map<number, number>();
  /** Shards being given back: still held (and served) until their thread stopped. */
  private readonly releasing = new Set<number>();
  /** Each shard's lease operations run one at a time, so none works from another's old revision. */
  private readonly turns = new Map<number, Promise<unknown>>();
  private timer: NodeJS.Timeout | undefined;
  /** Shards another node holds, and until when, as read in the last round. */
  private readonly heldElsewhereUntilMs = new Map<number, number>();
  /** The lowest position of each log (by stream) among the live nodes, as of the last round. */
  private oldest = new Map<string, number>();
  /** Writer ids of nodes whose heartbeat ran out, as of the last round. */
  private goneWriters = new Set<number>();
  private round: Promise<void> = Promise.resolve();
  private stopped = false;
  private taking = false;
  /** When `oldest` was last read. */
  private oldestAtMs = 0;

  constructor(
    private readonly kv: KV,
    private readonly nodeId: string,
    /** This node's writer id (engine.ts `gatewayWriter`), told in its heartbeat. */
    private readonly writer: number,
    private readonly shardCount: number,
    private readonly limits: Limits,
    private readonly hooks: LeaseHooks,
    private readonly logger: Logger,
  ) {}

  /**
   * Starts the rounds: the heartbeat (with the applied positions, so no log is truncated past this node
   * while it catches up) and the renewals; leases are taken only once `allowTaking` was called. Resolves
   * after the first round.
   */
  start(): Promise<void> {
    const next = () => {
      if (this.stopped) return;
      this.round = this.runRound()
        .catch((error: unknown) => this.logger.warn('lease round failed', { err: error as Error }))
        .finally(() => {
          if (!this.stopped) this.timer = setTimeout(next, this.limits.shardLeaseRenewMs);
        });
    };
    next();
    return this.round;
  }

  /** From the next round on, takes free shards up to this node's share (once its state is audited). */
  allowTaking(): void {
    this.taking = true;
  }

  /** Whether this node holds the shard's lease and it has not run out by this node's clock. */
  holds(shardIndex: number): boolean {
    const lease = this.held.get(shardIndex);
    return lease !== undefined && lease.untilMs > Date.now();
  }

  /** Whether some node serves the shard: this one, or another whose lease had not run out when read. */
  ownerLives(shardIndex: number): boolean {
    return this.holds(shardIndex) || (this.heldElsewhereUntilMs.get(shardIndex) ?? 0) > Date.now();
  }

  /**
   * Renews the lease now; false when it is no longer ours (it is then dropped, without `lost`): another
   * node changed it, or it could not be renewed (NATS unreachable) before it ran out. `strict`: false
   * also when it could not be renewed at all, for a decision that must not rest on an old renewal.
   */
  confirm(shardIndex: number, strict = false): Promise<boolean> {
    return this.inTurn(shardIndex, () => this.renew(shardIndex, strict));
  }

  /** Gives the lease back (after `lost`), so another node may take it at once. */
  async giveBack(shardIndex: number, orphan = false): Promise<void> {
    if (orphan) this.avoidUntilMs.set(shardIndex, Date.now() + this.limits.shardRestartWindowMs);
    if (!this.held.has(shardIndex) || this.releasing.has(shardIndex)) return;
    this.releasing.add(shardIndex);
    try {
      await this.hooks.lost(shardIndex);
      await this.inTurn(shardIndex, async () => {
        const lease = this.held.get(shardIndex);
        this.held.delete(shardIndex);
        if (!lease) return;
        await this.kv
          .update(
            shardKey(shardIndex),
            encode({ node: this.nodeId, untilMs: 0, ...(orphan ? { orphan: true } : {}) }),
            lease.revision,
          )
          .catch(() => {});
        this.logger.info('shard lease given back', { shard: shardIndex });
      });
    } finally {
      this.releasing.delete(shardIndex);
    }
  }

  /** Stops the rounds and gives every lease back (after `lost` for each), so others take over at once. */
  async stop(): Promise<void> {
    this.stopped = true;
    clearTimeout(this.timer);
    await this.round;
    await Promise.all([...this.held.keys()].map((shardIndex) => this.giveBack(shardIndex)));
    // The heartbeat is left run out, not removed: the others then send the texts this node could not.
    await this.kv.put(nodeKey(this.nodeId), encode({ untilMs: 0, writer: this.writer })).catch(() => {});
  }

  private inTurn<T>(shardIndex: number, operation: () => Promise<T>): Promise<T> {
    const next = (this.turns.get(shardIndex) ?? Promise.resolve()).then(operation);
    this.turns.set(
      shardIndex,
      next.catch(() => {}),
    );
    return next;
  }

  private async renew(shardIndex: number, strict: boolean): Promise<boolean> {
    const lease = this.held.get(shardIndex);
    if (!lease || this.stopped) return false;
    const untilMs = Date.now() + this.limits.shardLeaseMs;
    try {
      lease.revision = await this.kv.update(
        shardKey(shardIndex),
        encode({ node: this.nodeId, untilMs }),
        lease.revision,
      );
      lease.untilMs = untilMs;
      return true;
    } catch (error) {
      const changed = changedMeanwhile(error);
      // A renewal that was stored but whose answer was lost left the key ours at a newer revision.
      if (changed) {
        const entry = await this.kv.get(shardKey(shardIndex)).catch(() => null);
        const value = entry?.operation === 'PUT' ? entry.json<LeaseValue>() : null;
        if (entry && value?.node === this.nodeId && value.untilMs > Date.now()) {
          lease.revision = entry.revision;
          lease.untilMs = value.untilMs;
          return true;
        }
      }
      if (!changed && this.holds(shardIndex)) return !strict;
      this.held.delete(shardIndex);
      return false;
    }
  }

  private async runRound(): Promise<void> {
    const nowMs = Date.now();
    const heartbeat = {
      untilMs: nowMs + this.limits.shardLeaseMs,
      writer: this.writer,
      applied: this.hooks.applied(),
      // A node still catching up, or behind a truncated log, does not count in the others' shares.
      taking: this.taking && this.hooks.mayTake(),
    };
    const beating = this.kv
      .put(nodeKey(this.nodeId), encode(heartbeat))
      .catch((error: unknown) => this.logger.warn('node heartbeat not written', { err: error as Error }));
    // Every lease at once: a slow renewal must not let the others run out.
    await Promise.all(
      [...this.held.keys()].map(async (shardIndex) => {
        if (await this.confirm(shardIndex)) return;
        this.logger.warn('shard lease lost', { shard: shardIndex });
        this.hooks
          .lost(shardIndex)
          .catch((error: unknown) =>
            this.logger.error('stopping a shard failed', { shard: shardIndex, err: error as Error }),
          );
      }),
    );
    await beating;
    if (this.stopped) return;
    const live = await this.liveNodes();
    if (!this.taking) return;
    if (!this.hooks.mayTake()) {
      // Behind a truncated log: its shards go to the others, one a round.
      const held = [...this.held.keys()].find((shardIndex) => !this.releasing.has(shardIndex));
      if (held !== undefined) void this.giveBack(held);
      return;
    }
    const share = Math.ceil(this.shardCount / live);
    const owned = () => this.held.size - this.releasing.size;
    for (let shardIndex = 0; shardIndex < this.shardCount; shardIndex++) {
      if (this.held.has(shardIndex) || this.stopped) continue;
      if ((this.avoidUntilMs.get(shardIndex) ?? 0) > Date.now()) {
        await this.observe(shardIndex).catch(() => null);
        continue;
      }
      // The shard starts while the rounds go on renewing this node's other leases.
      const beyondShare = owned() >= share;
      if (await this.inTurn(shardIndex, () => this.take(shardIndex, beyondShare)))
        void this.hooks
          .acquired(shardIndex)
          .then((serving) => (serving ? undefined : this.giveBack(shardIndex)))
          .catch((error: unknown) => this.logger.error('starting a shard failed', { err: error as Error }));
    }
    // One at a time: the next round sees whether this node still owns more than its share.
    if (owned() > share && this.releasing.size === 0 && !this.stopped)
      void this.giveBack(Math.max(...this.held.keys()));
  }

  /**
   * Counts the live nodes that take shards, and notes which writer ids belong to nodes whose heartbeat
   * ran out and the oldest position of each log among the live nodes.
   */
  private async liveNodes(): Promise<number> {
    const members = await this.members();
    const beats = await Promise.all(members.map((nodeId) => this.kv.get(nodeKey(nodeId))));
    const nowMs = Date.now();
    let live = 0;
    const gone = new Set<number>();
    const oldest = new Map(Object.entries(this.hooks.applied()));
    for (const [index, entry] of beats.entries()) {
      if (entry?.operation !== 'PUT') continue;
      const beat = entry.json<{
        untilMs: number;
        writer?: number;
        applied?: Record<string, number>;
        taking?: boolean;
      }>();
      const self = members[index] === this.nodeId;
      if (beat.untilMs > nowMs || self) {
        // Shares count the nodes that take shards; every live node holds the logs back.
        if (self || beat.taking !== false) live++;
        for (const stream of oldest.keys())
          oldest.set(stream, Math.min(oldest.get(stream) ?? 0, beat.applied?.[stream] ?? 0));
      } else if (beat.writer !== undefined) gone.add(beat.writer);
    }
    this.goneWriters = gone;
    this.oldest = oldest;
    this.oldestAtMs = Date.now();
    return Math.max(1, live);
  }

  /** The ids of every node that joined, this one added (by compare-and-set) if it is not there yet. */
  private async members(): Promise<string[]> {
    for (;;) {
      const entry = await this.kv.get(MEMBERS_KEY);
      const members = entry?.operation === 'PUT' ? entry.json<string[]>() : [];
      if (members.includes(this.nodeId)) return members;
      const joined = encode([...members, this.nodeId]);
      const stored = await (entry
        ? this.kv.update(MEMBERS_KEY, joined, entry.revision)
        : this.kv.create(MEMBERS_KEY, joined)
      ).then(
        () => true,
        (error: unknown) => {
          // Another node joined meanwhile: read again; anything else ends the round.
          if (changedMeanwhile(error)) return false;
          throw error;
        },
      );
      if (stored) return [...members, this.nodeId];
    }
  }

  /**
   * The lowest position of a log any live node applied, as of the last round; 0 (keep everything) before
   * the first, or when the last round that read the heartbeats is older than a lease.
   */
  oldestApplied(stream: string): number {
    if (Date.now() - this.oldestAtMs > this.limits.shardLeaseMs) return 0;
    return this.oldest.get(stream) ?? 0;
  }

  /** Whether the node that writes under this writer id stopped beating (as of the last round). */
  isGone(writer: number): boolean {
    return this.goneWriters.has(writer);
  }

  /** Reads the shard's lease, and notes until when another node holds it. */
  private async observe(shardIndex: number) {
    const entry = await this.kv.get(shardKey(shardIndex));
    const lease = entry?.operation === 'PUT' ? entry.json<LeaseValue>() : null;
    if (lease && lease.node !== this.nodeId) this.heldElsewhereUntilMs.set(shardIndex, lease.untilMs);
    else this.heldElsewhereUntilMs.delete(shardIndex);
    return entry;
  }

  /**
   * Takes the shard's lease if it is free or ran out (`orphanOnly`: only if another node gave it up);
   * true when it is now ours.
   */
  private async take(shardIndex: number, orphanOnly: boolean): Promise<boolean> {
    const key = shardKey(shardIndex);
    const untilMs = Date.now() + this.limits.shardLeaseMs;
    const value = encode({ node: this.nodeId, untilMs });
    try {
      const entry = await this.observe(shardIndex);
      let revision: number;
      if (entry?.operation !== 'PUT') {
        if (orphanOnly) return false;
        revision = await this.kv.create(key, value);
      } else {
        const lease = entry.json<LeaseValue>();
        if (lease.untilMs > Date.now() && lease.node !== this.nodeId) return false;
        if (orphanOnly && !lease.orphan) return false;
        revision = await this.kv.update(key, value, entry.revision);
      }
      this.held.set(shardIndex, { revision, untilMs });
      this.logger.info('shard lease taken', { shard: shardIndex });
      return true;
    } catch {
      // Another node changed the key meanwhile: it is theirs.
      return false;
    }
  }
}
