import { type JetStreamClient, jetstream } from '@nats-io/jetstream';
import { type KV, Kvm } from '@nats-io/kv';
import { type NatsConnection, RequestError, type Subscription } from '@nats-io/transport-node';
import { Packr } from 'msgpackr';
import type { Command, Notice, Outcome } from '../core/commands.ts';
import { type ConsumerId, shardOfSlot, slotOfId } from '../core/ids.ts';
import type { Limits } from '../core/limits.ts';
import type { Logger } from '../log/logger.ts';
import type { Store } from '../persistence/store.ts';
import {
  type ClusterLink,
  connectCluster,
  ensureLogStreams,
  followLog,
  LogTruncatedError,
  logEnd,
  retrying,
  shardLog,
} from './replicated-log.ts';
import type { ShardClientHooks, ShardEvent, ShardHandle, ShardHealth } from './shard-client.ts';
import { ShardLeases } from './shard-leases.ts';
import type { ShardFault, ShardStats } from './shard-worker.ts';
import { SharedWrites } from './shared-writes.ts';
import {
  appliedPositions,
  clusterLogs,
  type Snapshot,
  snapshotTakenAtMs,
  takeSnapshot,
} from './snapshots.ts';

/**
 * A node of a cluster (docs/cluster.md): the engine's shards, each served by whichever node holds its
 * lease (shard-leases.ts), with every change stored in the shard's replicated log first
 * (replicated-log.ts). On this node each shard is a `ClusterShard`: while this node owns it, a local shard
 * thread that also answers the other nodes' commands for it over NATS; otherwise a follower that applies
 * the shard's log to the local LMDB and sends the shard's commands to its owner.
 *
 * @module
 */

export interface ClusterOptions {
  link: ClusterLink;
  /**
   * JetStream copies of each log, of the leases and of the snapshot; null: 3, or the NATS cluster's
   * servers if fewer (as the server this node connects to tells them).
   */
  replicas: number | null;
  shardCount: number;
  store: Store;
  limits: Limits;
  logger: Logger;
  /** Starts this node's thread for a shard it now owns, with the hooks that tie its life to the lease. */
  startShard(shardIndex: number, hooks: Pick<ShardClientHooks, 'mayRestart' | 'onGivenUp'>): ShardHandle;
  onEvent(event: ShardEvent): void;
  /** Another node's main-thread writes were applied to this node's LMDB: these databases changed. */
  onSharedWrites(databases: ReadonlySet<string>): void;
  /** Wallet notices a shard's owner sent to this node, for the phones whose sockets it holds. */
  onNotices(notices: Notice[]): void;
  /** The writer id of this node's outbox keys (engine.ts `gatewayWriter`). */
  writer: number;
  /** The node's data directory (a snapshot is made in it before it is stored). */
  dataDir: string;
}

const LEASES_BUCKET = 'paycode-leases';
const commandSubjectOf = (shardIndex: number) => `paycode.shard.${shardIndex}.command`;
/** Where nodes say which consumers they watch (a wallet socket) on a shard they do not serve. */
const watchSubjectOf = (shardIndex: number) => `paycode.shard.${shardIndex}.watch`;
/** Where a node that took a shard over says so: the others tell it again what they watch there. */
const ownedSubjectOf = (shardIndex: number | '*') => `paycode.shard.${shardIndex}.owned`;
/** Where a node tells the others something (a revocation). */
const broadcastSubjectOf = (topic: string) => `paycode.broadcast.${topic}`;
/** Where a shard's owner sends a node the notices of the consumers it watches. */
const noticesSubjectOf = (nodeId: string) => `paycode.node.${nodeId}.notices`;
const packr = new Packr({ useRecords: false });
const NOBODY: ReadonlySet<string> = new Set();
const OVERLOADED = { status: 'overloaded' } as const;
const INTERNAL = { status: 'internal' } as const;
/** How often the node serving shard 0 looks at the stored snapshot's age. */
const SNAPSHOT_CHECK_MS = 60_000;
/** How soon a command that found no owner is sent again. */
const NO_OWNER_RETRY_MS = 100;
/** The answer of a node that no longer owns the shard: the command did not run, try again. */
const NOT_OWNER = { notOwner: true } as const;

/** Every node must split accounts into the same shards: the first node's count is the cluster's. */
async function agreeOnShardCount(kv: KV, shardCount: number): Promise<void> {
  const entry = await retrying(async () => {
    // The first node's create stores the count; a create that failed (it exists, or timed out) is read.
    await kv.create('shards', String(shardCount)).catch(() => {});
    const found = await kv.get('shards');
    if (!found) throw new Error('the cluster has no shard count yet');
    return found;
  });
  const agreed = Number(entry.string());
  if (agreed !== shardCount)
    throw new Error(
      `this node has ${shardCount} shards and the cluster ${agreed}: set PAYCODE_SHARDS=${agreed}`,
    );
}

export class Cluster {
  private snapshotTimer: NodeJS.Timeout | undefined;
  private snapshotting: Promise<unknown> = Promise.resolve();
  /** A snapshot is being taken: the timer does not queue another. */
  private snapshotInProgress = false;

  private constructor(
    private readonly nc: NatsConnection,
    private readonly js: JetStreamClient,
    readonly shards: ClusterShard[],
    private readonly leases: ShardLeases,
    private readonly shared: SharedWrites,
    private readonly kv: KV,
    private readonly options: ClusterOptions,
    private readonly replicas: number,
  ) {}

  private get nodeId(): string {
    return this.options.link.nodeId;
  }

  /**
   * Takes a snapshot of this node's state and truncates the logs below what every live node applied
   * (snapshots.ts). The node serving shard 0 does it every `clusterSnapshotIntervalMs`.
   */
  snapshot(): Promise<Snapshot> {
    const { store, dataDir, shardCount, logger } = this.options;
    const { replicas } = this;
    this.snapshotInProgress = true;
    const taking = this.snapshotting.then(async () => {
      const startedMs = Date.now();
      const snapshot = await takeSnapshot({
        js: this.js,
        store,
        dataDir,
        logs: clusterLogs(shardCount),
        replicas,
        oldestApplied: (stream) => this.leases.oldestApplied(stream),
        published: () => this.shared.durable(),
      });
      logger.info('snapshot stored; logs truncated', {
        bytes: snapshot.bytes,
        ms: Date.now() - startedMs,
        positions: snapshot.positions,
        truncatedBelow: snapshot.truncatedBelow,
      });
      return snapshot;
    });
    this.snapshotting = taking
      .catch(() => {})
      .finally(() => {
        this.snapshotInProgress = false;
      });
    return taking;
  }

  /**
   * Claims a task done once for the whole cluster (a business day's settlement) for good: true for the
   * first node to ask, and for that node again (after a restart too); false for every other node.
   */
  async claim(task: string): Promise<boolean> {
    const key = `task.${task}`;
    const holder = () =>
      retrying(() => this.kv.get(key)).then((entry) =>
        entry?.operation === 'PUT' ? entry.json<{ node: string }>().node : null,
      );
    const held = await holder();
    if (held !== null) return held === this.nodeId;
    // A create that timed out may have been stored: the key then names this node.
    await this.kv.create(key, JSON.stringify({ node: this.nodeId })).catch(() => {});
    return (await holder()) === this.nodeId;
  }

  /** Tells every other node something (a revocation, so their open sessions end too). */
  broadcast(topic: string, payload: unknown): void {
    if (!this.nc.isClosed())
      this.nc.publish(broadcastSubjectOf(topic), packr.pack({ node: this.nodeId, payload }));
  }

  /** Calls `handler` with what other nodes broadcast on `topic`. */
  onBroadcast(topic: string, handler: (payload: unknown) => void): void {
    this.nc.subscribe(broadcastSubjectOf(topic), {
      callback: (error, message) => {
        if (error) return;
        const { node, payload } = packr.unpack(message.data) as { node: string; payload: unknown };
        if (node !== this.nodeId) handler(payload);
      },
    });
  }

  /** Sends the notices of consumers other nodes watch to those nodes (the notices of this node's shards). */
  sendNotices(notices: readonly Notice[]): void {
    const byNode = new Map<string, Notice[]>();
    for (const notice of notices) {
      const shard = this.shards[shardOfSlot(slotOfId(notice.consumerId), this.shards.length)];
      for (const nodeId of shard?.watchersElsewhere(notice.consumerId) ?? []) {
        const list = byNode.get(nodeId) ?? [];
        list.push(notice);
        byNode.set(nodeId, list);
      }
    }
    for (const [nodeId, list] of byNode) this.nc.publish(noticesSubjectOf(nodeId), packr.pack(list));
  }

  /** Starts taking leases (once the node's state is audited), and snapshots while it serves shard 0. */
  start(): void {
    this.leases.allowTaking();
    // Whichever node serves shard 0 takes the next one once the stored one is as old as the interval.
    const intervalMs = this.options.limits.clusterSnapshotIntervalMs;
    this.snapshotTimer = setInterval(
      () => {
        if (!this.serves(0) || this.snapshotInProgress) return;
        snapshotTakenAtMs(this.js, this.replicas)
          .then((takenAtMs) =>
            takenAtMs === null || Date.now() - takenAtMs >= intervalMs ? this.snapshot() : null,
          )
          .catch((error: unknown) => this.options.logger.warn('snapshot not taken', { err: error as Error }));
      },
      Math.min(intervalMs, SNAPSHOT_CHECK_MS),
    );
    this.snapshotTimer.unref();
  }

  /** Whether the node writing outbox keys under this writer id stopped beating: its texts are orphaned. */
  writerGone(writer: number): boolean {
    return this.leases.isGone(writer);
  }

  /** Whether this node serves the shard now (its lease lives and its thread runs). */
  serves(shardIndex: number): boolean {
    return this.shards[shardIndex]?.health().state === 'serving' && this.leases.holds(shardIndex);
  }

  /**
   * Joins the cluster: creates the lease bucket and the logs if they do not exist, checks the shard count,
   * and brings the local LMDB up to every log. Resolves once the local state is caught up; `start` then
   * takes leases.
   */
  static async join(options: ClusterOptions): Promise<Cluster> {
    const { link, shardCount, store, limits, logger } = options;
    const { nc, js } = await connectCluster(link, limits.clusterPublishTimeoutMs);
    let leases: ShardLeases | null = null;
    try {
      const servers = Math.max(link.servers.length, nc.info?.connect_urls?.length ?? 0);
      const replicas = options.replicas ?? Math.min(3, servers);
      if (options.replicas === null && replicas < 3)
        logger.warn('JetStream keeps fewer than 3 copies: the NATS cluster showed only these servers', {
          replicas,
          hint: 'set PAYCODE_NATS_REPLICAS if more servers are coming',
        });
      // A lease call must not outlast a round: the next round tries again while the lease lives.
      const leaseCalls = jetstream(nc, { timeout: limits.shardLeaseRenewMs });
      const kv = await retrying(() => new Kvm(leaseCalls).create(LEASES_BUCKET, { replicas, history: 1 }));
      await agreeOnShardCount(kv, shardCount);
      const logs = Array.from({ length: shardCount }, (_, shardIndex) => shardLog(shardIndex));
      await ensureLogStreams(nc, logs, replicas);
      const shards: ClusterShard[] = [];
      let shared: SharedWrites | null = null;
      leases = new ShardLeases(
        kv,
        link.nodeId,
        options.writer,
        shardCount,
        limits,
        {
          acquired: (shardIndex) => (shards[shardIndex] as ClusterShard).own(),
          lost: (shardIndex) => (shards[shardIndex] as ClusterShard).disown(),
          applied: () => appliedPositions(store, clusterLogs(shardCount)),
          mayTake: () => !(shared?.behind || shards.some((shard) => shard.behind)),
        },
        logger,
      );
      for (let shardIndex = 0; shardIndex < shardCount; shardIndex++)
        shards.push(new ClusterShard(shardIndex, nc, js, options, leases));
      // Beating from now on: no log is truncated past this node while it catches up.
      await leases.start();
      for (const log of logs) await followLog(js, store, log, await logEnd(nc, log)).done;
      shared = await SharedWrites.open({
        nc,
        js,
        store,
        nodeId: link.nodeId,
        replicas,
        logger,
        onApplied: (databases) => options.onSharedWrites(databases),
      });
      store.replication = shared;
      // Pushes: notices from the owners of other shards, and owners asking for the watches again.
      nc.subscribe(noticesSubjectOf(link.nodeId), {
        callback: (error, message) => {
          if (!error) options.onNotices(packr.unpack(message.data) as Notice[]);
        },
      });
      nc.subscribe(ownedSubjectOf('*'), {
        callback: (error, message) => {
          if (error) return;
          const shard = shards[Number(message.subject.split('.')[2])];
          shard?.announceWatches();
        },
      });
      for (const shard of shards) shard.follow();
      return new Cluster(nc, js, shards, leases, shared, kv, options, replicas);
    } catch (error) {
      await leases?.stop().catch(() => {});
      await nc.close();
      throw error;
    }
  }

  /** Whether this node fell behind a truncated log: its copy is old until it restarts from a snapshot. */
  get behind(): boolean {
    return this.shared.behind || this.shards.some((shard) => shard.behind);
  }

  /** Gives every lease back (this node's shards stop first), stops following, and leaves. */
  async leave(): Promise<void> {
    clearInterval(this.snapshotTimer);
    await this.snapshotting;
    await this.leases.stop();
    await Promise.all(this.shards.map((shard) => shard.stopFollowing()));
    await this.shared.close();
    await this.nc.close();
  }
}

/** One shard as this node sees it: its own thread while this node owns it, else its owner over NATS. */
class ClusterShard implements ShardHandle {
  readonly ready = Promise.resolve();
  private local: ShardHandle | null = null;
  private subscription: Subscription | null = null;
  private follower: { done: Promise<void>; stop: () => void } | null = null;
  private started = false;
  private readonly watched = new Set<ConsumerId>();
  private forwardedId = 0;
  /** While this node serves the shard: the consumers other nodes watch, and which nodes. */
  private readonly elsewhere = new Map<ConsumerId, Set<string>>();
  private watchSubscription: Subscription | null = null;
  private changing: Promise<unknown> = Promise.resolve();
  /** The shard's log was truncated past what this node applied: it must restart from a snapshot. */
  behind = false;

  constructor(
    private readonly shardIndex: number,
    private readonly nc: NatsConnection,
    private readonly js: Parameters<typeof followLog>[0],
    private readonly options: ClusterOptions,
    private readonly leases: ShardLeases,
  ) {}

  start(): void {
    this.started = true;
    this.local?.start();
  }

  submit(command: Command): Promise<Outcome> {
    return this.forward(command);
  }

  watch(consumerId: ConsumerId, on: boolean): void {
    if (on) this.watched.add(consumerId);
    else this.watched.delete(consumerId);
    if (this.local) this.local.watch(consumerId, on || this.elsewhere.has(consumerId));
    else this.tellOwner([consumerId], on);
  }

  /** The other nodes that watch a consumer of this shard (while this node serves it). */
  watchersElsewhere(consumerId: ConsumerId): ReadonlySet<string> {
    return this.elsewhere.get(consumerId) ?? NOBODY;
  }

  /** Tells the shard's (new) owner every consumer this node watches on it, and its sockets to read afresh. */
  announceWatches(): void {
    if (this.local || this.watched.size === 0) return;
    this.tellOwner([...this.watched], true);
    for (const consumerId of this.watched) this.options.onNotices([{ type: 'resync', consumerId }]);
  }

  private tellOwner(consumerIds: ConsumerId[], on: boolean): void {
    if (this.nc.isClosed()) return;
    this.nc.publish(
      watchSubjectOf(this.shardIndex),
      packr.pack({ node: this.options.link.nodeId, consumerIds, on }),
    );
  }

  health(): ShardHealth {
    if (this.local) return this.local.health();
    if (this.behind) return { shardIndex: this.shardIndex, state: 'failed', writable: false, restarts: 0 };
    // Writable while another node's lease on it lives; else no node serves it now.
    const writable = this.leases.ownerLives(this.shardIndex);
    return { shardIndex: this.shardIndex, state: 'remote', writable, restarts: 0 };
  }

  stats(): Promise<ShardStats> {
    return this.local ? this.local.stats() : Promise.reject(new Error('another node serves this shard'));
  }

  injectFault(fault: ShardFault): void {
    this.local?.injectFault(fault);
  }

  async stop(): Promise<void> {
    await this.disown();
    await this.stopFollowing();
  }

  /** Applies the shard's log to the local LMDB as other nodes write it. */
  follow(): void {
    this.follower = followLog(this.js, this.options.store, shardLog(this.shardIndex), null);
    this.follower.done.catch((error: unknown) => {
      // Behind a truncated log, this node's copy of the shard stays old: it says so until restarted.
      if (error instanceof LogTruncatedError) this.behind = true;
      this.options.logger.error('following a shard log failed', {
        shard: this.shardIndex,
        err: error as Error,
      });
    });
  }

  async stopFollowing(): Promise<void> {
    const follower = this.follower;
    this.follower = null;
    follower?.stop();
    await follower?.done.catch(() => {});
  }

  /** This node took the lease: stop following, start the shard's thread, answer the other nodes. */
  own(): Promise<boolean> {
    return this.inTurn(() => this.serve());
  }

  /** This node no longer owns the shard: stop answering, end the thread, follow the log again. */
  disown(): Promise<void> {
    return this.inTurn(() => this.release());
  }

  /** Runs a change of ownership after the ones before it, so a shard never starts while it is ended. */
  private inTurn<T>(change: () => Promise<T>): Promise<T> {
    const next = this.changing.then(change);
    this.changing = next.catch(() => {});
    return next;
  }

  private async serve(): Promise<boolean> {
    await this.stopFollowing();
    const local = this.options.startShard(this.shardIndex, {
      mayRestart: () => this.mayRestart(),
      onGivenUp: () => this.giveUp(),
    });
    try {
      await local.ready;
    } catch (error) {
      this.options.logger.error('shard thread did not start', {
        shard: this.shardIndex,
        err: error as Error,
      });
      this.follow();
      return false;
    }
    // Until now this node's commands for the shard went to the subscription, which nobody answered yet.
    this.local = local;
    for (const consumerId of this.watched) local.watch(consumerId, true);
    if (this.started) local.start();
    this.subscription = this.nc.subscribe(commandSubjectOf(this.shardIndex), {
      queue: 'owner',
      callback: (error, message) => {
        if (error) return;
        // A node whose lease ran out (it was paused, say) answers nothing from its old state.
        if (!this.leases.holds(this.shardIndex)) {
          message.respond(packr.pack(NOT_OWNER));
          return;
        }
        const command = packr.unpack(message.data) as Command;
        const id = command.id;
        // Forwarded commands get ids of their own here, so they never meet this node's own ones.
        void local.submit({ ...command, id: -++this.forwardedId }).then((outcome) => {
          // A connection closing meanwhile: the sender's request times out and says `internal`.
          if (!this.nc.isClosed()) message.respond(packr.pack({ ...outcome, id }));
        });
      },
    });
    this.watchSubscription = this.nc.subscribe(watchSubjectOf(this.shardIndex), {
      callback: (error, message) => {
        if (error) return;
        const { node, consumerIds, on } = packr.unpack(message.data) as {
          node: string;
          consumerIds: ConsumerId[];
          on: boolean;
        };
        for (const consumerId of consumerIds) {
          const nodes = this.elsewhere.get(consumerId) ?? new Set<string>();
          if (on) nodes.add(node);
          else nodes.delete(node);
          if (nodes.size > 0) this.elsewhere.set(consumerId, nodes);
          else this.elsewhere.delete(consumerId);
          local.watch(consumerId, nodes.size > 0 || this.watched.has(consumerId));
        }
      },
    });
    // The other nodes answer with what they watch here.
    this.nc.publish(ownedSubjectOf(this.shardIndex), new Uint8Array());
    this.options.onEvent({ type: 'owned', shardIndex: this.shardIndex });
    return true;
  }

  private async release(): Promise<void> {
    const local = this.local;
    if (!local) return;
    this.local = null;
    this.subscription?.unsubscribe();
    this.subscription = null;
    this.watchSubscription?.unsubscribe();
    this.watchSubscription = null;
    this.elsewhere.clear();
    // This node's own watchers now need the next owner: tell it (and it asks again once it serves).
    this.announceWatches();
    // A thread that does not stop in time is left to end: it is fenced off the log by the next owner.
    await Promise.race([
      local.stop(),
      new Promise((resolve) => setTimeout(resolve, this.options.limits.shardSilenceMaxMs)),
    ]);
    if (!this.follower) this.follow();
  }

  /** The thread died too often, or may not be replaced: give the shard to another node. */
  private giveUp(): void {
    void this.disown()
      .then(() => this.leases.giveBack(this.shardIndex, true))
      .catch(() => {});
  }

  private async mayRestart(): Promise<boolean> {
    // A thread that died may have been fenced by another writer: only a lease renewed now restarts it.
    const holds = await this.leases.confirm(this.shardIndex, true);
    // Not renewed now: follow the shard again and give the lease back, so a node that can reach NATS
    // takes it over.
    if (!holds) this.giveUp();
    return holds;
  }

  /**
   * Sends a command to the shard's owner. While no node answers the subject (a lease changing hands, an
   * owner starting), the command reached nobody and is sent again, until the request timeout: `overloaded`
   * then. A request that timed out may have run: `internal`.
   */
  private async forward(command: Command): Promise<Outcome> {
    const { clusterRequestTimeoutMs } = this.options.limits;
    const deadline = Date.now() + clusterRequestTimeoutMs;
    for (;;) {
      if (this.local && this.leases.holds(this.shardIndex)) return this.local.submit(command);
      try {
        const answer = await this.nc.request(commandSubjectOf(this.shardIndex), packr.pack(command), {
          timeout: Math.max(1, deadline - Date.now()),
        });
        const outcome = packr.unpack(answer.data) as Outcome | typeof NOT_OWNER;
        if (!('notOwner' in outcome)) return outcome;
      } catch (error) {
        const noResponders = error instanceof RequestError && error.isNoResponders();
        if (!noResponders) return { id: command.id, reply: INTERNAL };
      }
      // Nobody owns the shard right now, or a former owner said so: the command did not run.
      if (Date.now() + NO_OWNER_RETRY_MS >= deadline) return { id: command.id, reply: OVERLOADED };
      await new Promise((resolve) => setTimeout(resolve, NO_OWNER_RETRY_MS));
    }
  }
}
