import { performance } from 'node:perf_hooks';
import { Worker } from 'node:worker_threads';
import type { Command, Outcome, ShardReport } from '../core/commands.ts';
import type { ConsumerId } from '../core/ids.ts';
import type { Limits } from '../core/limits.ts';
import type { Logger } from '../log/logger.ts';
import type { ShardFault, ShardMessage, ShardReply, ShardStats, ShardWorkerData } from './shard-worker.ts';

/**
 * The main-thread side of one shard: it batches commands into one message per event-loop turn, routes
 * the answers back, and supervises the worker thread.
 *
 * Supervision. When the thread dies (an assertion, an exception, a failed commit, running out of memory),
 * every command it was sent and has not answered is answered `internal` at once: it may or may not have
 * been committed, and a retry with the same idempotency key finds out (the key's record is written in the
 * same transaction as the effect). Commands queued but not yet sent are answered `overloaded`: they never
 * reached the thread. Once the thread has exited (so every commit it started has completed), a new thread
 * is started after a delay that doubles with each death in the window; it rebuilds the shard from LMDB,
 * the truth, and until it is ready commands are answered `overloaded`. A shard that dies more than
 * `shardRestartsPerWindowMax` times within `shardRestartWindowMs` is given up: it answers `internal`, the
 * other shards keep serving, and the engine's health says failing.
 *
 * The supervisor measures its window on the real clock, not on the engine's (tests pass a fake one).
 *
 * @module
 */

/** `remote`: in a cluster, another node serves the shard. */
export type ShardState = 'starting' | 'serving' | 'restarting' | 'failed' | 'stopped' | 'remote';

export interface ShardHealth {
  shardIndex: number;
  state: ShardState;
  /** False while the storage refuses this shard's writes: it answers reads and refuses the rest. */
  writable: boolean;
  /** Threads started to replace dead ones since the engine opened. */
  restarts: number;
}

export type ShardEvent =
  /** The thread died; a new one starts in `restartInMs`, or never (null): the shard is given up. */
  | { type: 'died'; shardIndex: number; error: Error; restartInMs: number | null }
  /** A thread that replaced a dead one is serving. */
  | { type: 'restarted'; shardIndex: number; restarts: number }
  /** The storage refused one of the shard's commits, or takes its writes again. */
  | { type: 'storage'; shardIndex: number; writable: boolean; cause?: string }
  /** In a cluster: this node took the shard over and serves it. */
  | { type: 'owned'; shardIndex: number };

/** What the engine uses of a shard: a `ShardClient`, or in a cluster a shard any node may serve. */
export interface ShardHandle {
  readonly ready: Promise<void>;
  start(): void;
  submit(command: Command): Promise<Outcome>;
  watch(consumerId: ConsumerId, on: boolean): void;
  health(): ShardHealth;
  stats(): Promise<ShardStats>;
  injectFault(fault: ShardFault): void;
  stop(): Promise<void>;
}

export interface ShardClientHooks {
  onReport(report: ShardReport): void;
  onEvent(event: ShardEvent): void;
  logger: Logger;
  /**
   * Asked before a dead thread is replaced (in a cluster: whether this node still holds the shard's
   * lease); when it says no, the shard stops here and its unanswered commands stay answered.
   */
  mayRestart?: () => Promise<boolean>;
  /** Called once the shard is given up after dying too often (in a cluster: its lease is given back). */
  onGivenUp?: () => void;
}

const INTERNAL = { status: 'internal' } as const;
const OVERLOADED = { status: 'overloaded' } as const;

export class ShardClient implements ShardHandle {
  private worker: Worker | null = null;
  private state: ShardState = 'starting';
  private writable = true;
  private stopping = false;
  /** Whether the engine started the shard's own clock; a new thread is started the same way. */
  private started = false;
  private restarts = 0;
  /** When the thread died, within the window (real clock, milliseconds). */
  private deathsAtMs: number[] = [];
  private restartTimer: NodeJS.Timeout | undefined;
  private queue: Command[] = [];
  private readonly waiting = new Map<number, (outcome: Outcome) => void>();
  /** Consumers someone listens to; a new thread is told again. */
  private readonly watched = new Set<ConsumerId>();
  private flushScheduled = false;
  private drained?: () => void;
  private statsWaiting: { resolve: (stats: ShardStats) => void; reject: (error: Error) => void }[] = [];
  private readonly logger: Logger;
  /** When the thread last said anything (real clock); a serving thread silent too long is ended. */
  private heardAtMs = performance.now();
  private checkedAtMs = performance.now();
  private readonly watchdog: NodeJS.Timeout;
  /** Why the supervisor ended the thread itself (it was silent), for the death that follows. */
  private endedFor: Error | null = null;
  /** Resolves when the first thread is ready; rejects if it dies before (the engine does not open). */
  readonly ready: Promise<void>;

  constructor(
    private readonly data: Omit<ShardWorkerData, 'restart'>,
    private readonly limits: Limits,
    private readonly hooks: ShardClientHooks,
  ) {
    this.logger = hooks.logger.child({ shard: data.shardIndex });
    this.ready = this.boot(false);
    this.watchdog = setInterval(() => this.checkAlive(), limits.shardHeartbeatMs);
    this.watchdog.unref();
  }

  /**
   * A thread that is alive but silent (stuck in a loop or a blocked call) answers nothing: it is ended,
   * its commands are answered `internal` at once, and a new thread is started as after a death.
   */
  private checkAlive(): void {
    const nowMs = performance.now();
    // A late check means this thread stalled (a paused process, a long task): the heartbeats may be
    // waiting unread, so the silence is measured from now on.
    const stalled = nowMs - this.checkedAtMs > 2 * this.limits.shardHeartbeatMs;
    this.checkedAtMs = nowMs;
    if (stalled) this.heardAtMs = nowMs;
    const worker = this.worker;
    if (!worker || this.state !== 'serving' || this.stopping) return;
    const silentMs = nowMs - this.heardAtMs;
    if (silentMs <= this.limits.shardSilenceMaxMs) return;
    this.endedFor = new Error(`shard worker silent for ${Math.round(silentMs)} ms`);
    this.state = 'restarting';
    this.failInFlight();
    void worker.terminate();
  }

  submit(command: Command): Promise<Outcome> {
    if (this.state === 'failed') return Promise.resolve({ id: command.id, reply: INTERNAL });
    if (this.state !== 'serving' || this.waiting.size >= this.limits.shardInboxLengthMax) {
      return Promise.resolve({ id: command.id, reply: OVERLOADED });
    }
    return new Promise((resolve) => {
      this.waiting.set(command.id, resolve);
      this.queue.push(command);
      if (!this.flushScheduled) {
        this.flushScheduled = true;
        setImmediate(() => this.flush());
      }
    });
  }

  /** Starts the shard's own clock (after the engine's start-up audit passed). */
  start(): void {
    this.started = true;
    this.post({ type: 'start' });
  }

  watch(consumerId: ConsumerId, on: boolean): void {
    if (on) this.watched.add(consumerId);
    else this.watched.delete(consumerId);
    this.post({ type: 'watch', consumerId, on });
  }

  health(): ShardHealth {
    return {
      shardIndex: this.data.shardIndex,
      state: this.state,
      writable: this.writable,
      restarts: this.restarts,
    };
  }

  /** Test hook (see Engine.injectShardFaultForTest); the thread ignores it unless test hooks are on. */
  injectFault(fault: ShardFault): void {
    this.post({ type: 'fault', fault });
  }

  /** Asks the shard thread for its heap and resident counts (a measurement hook). */
  stats(): Promise<ShardStats> {
    const worker = this.worker;
    if (!worker || this.state !== 'serving') return Promise.reject(new Error('the shard is not serving'));
    return new Promise((resolve, reject) => {
      this.statsWaiting.push({ resolve, reject });
      worker.postMessage({ type: 'stats' } satisfies ShardMessage);
    });
  }

  /** Waits for every answer, lets the shard flush and close its store, then waits for the thread to end. */
  async stop(): Promise<void> {
    this.stopping = true;
    clearTimeout(this.restartTimer);
    clearInterval(this.watchdog);
    if (this.waiting.size > 0) await new Promise<void>((resolve) => (this.drained = resolve));
    const worker = this.worker;
    if (worker) {
      const exited = new Promise((resolve) => worker.once('exit', resolve));
      worker.postMessage({ type: 'stop' } satisfies ShardMessage);
      await exited;
    }
    this.state = 'stopped';
  }

  // -------------------------------------------------------------------------------------------------
  // The thread and its life.

  private post(message: ShardMessage): void {
    this.worker?.postMessage(message);
  }

  /** Starts a thread; the promise settles when it is ready or when it ends before that. */
  private boot(restart: boolean): Promise<void> {
    const worker = new Worker(new URL('./shard-worker-boot.mjs', import.meta.url), {
      workerData: { ...this.data, restart } satisfies ShardWorkerData,
      resourceLimits: { maxYoungGenerationSizeMb: this.limits.shardYoungGenerationMb },
    });
    this.worker = worker;
    let failure: Error | null = null;
    return new Promise((resolve, reject) => {
      worker.on('message', (message: ShardReply) => {
        this.heardAtMs = performance.now();
        if (message.type === 'heartbeat') return;
        if (message.type === 'report') this.receive(message.report);
        else if (message.type === 'ready') {
          this.onReady(restart, message.writable);
          resolve();
        } else if (message.type === 'stats') this.statsWaiting.shift()?.resolve(message.stats);
        else this.onStorage(message.writable, message.cause);
      });
      worker.on('error', (error) => {
        // Answer at once and take no more commands; the new thread starts only once this one has exited.
        failure ??= error;
        if (this.state === 'serving') this.state = 'restarting';
        this.failInFlight();
      });
      worker.once('exit', (code) => {
        if (this.worker === worker) this.worker = null;
        const error = failure ?? this.endedFor ?? new Error(`shard worker exited with code ${code}`);
        this.endedFor = null;
        reject(error);
        if (this.stopping) return;
        this.failInFlight();
        this.onDeath(error, restart);
      });
    });
  }

  private onReady(restart: boolean, writable: boolean): void {
    if (this.stopping) return;
    this.heardAtMs = performance.now();
    this.onStorage(writable, writable ? undefined : 'the first write of the new thread was refused');
    if (restart) {
      // Before any command: notices of watched consumers and the clock are as before the death.
      for (const consumerId of this.watched) this.post({ type: 'watch', consumerId, on: true });
      if (this.started) this.post({ type: 'start' });
    }
    this.state = 'serving';
    if (!restart) return;
    this.logger.info('shard worker restarted', { restarts: this.restarts, writable });
    this.hooks.onEvent({ type: 'restarted', shardIndex: this.data.shardIndex, restarts: this.restarts });
  }

  private onDeath(error: Error, wasRestart: boolean): void {
    const { shardIndex } = this.data;
    // The first thread never became ready: the engine does not open, and says why.
    if (this.state === 'starting' && !wasRestart) {
      this.state = 'failed';
      return;
    }
    const { shardRestartWindowMs, shardRestartsPerWindowMax, shardRestartDelayMs, shardRestartDelayMaxMs } =
      this.limits;
    const nowMs = performance.now();
    this.deathsAtMs = this.deathsAtMs.filter((atMs) => atMs > nowMs - shardRestartWindowMs);
    this.deathsAtMs.push(nowMs);
    const deaths = this.deathsAtMs.length;
    if (deaths > shardRestartsPerWindowMax) {
      this.state = 'failed';
      this.logger.error('shard worker keeps dying; the shard is given up', {
        err: error,
        deathsInWindow: deaths,
        windowMs: shardRestartWindowMs,
      });
      this.hooks.onEvent({ type: 'died', shardIndex, error, restartInMs: null });
      this.hooks.onGivenUp?.();
      return;
    }
    this.state = 'restarting';
    const restartInMs = Math.min(shardRestartDelayMaxMs, shardRestartDelayMs * 2 ** (deaths - 1));
    this.logger.warn('shard worker died; restarting it from disk', {
      err: error,
      restartInMs,
      deathsInWindow: deaths,
    });
    this.hooks.onEvent({ type: 'died', shardIndex, error, restartInMs });
    this.restartTimer = setTimeout(async () => {
      this.restartTimer = undefined;
      if (this.hooks.mayRestart && !(await this.hooks.mayRestart())) {
        this.state = 'stopped';
        return;
      }
      if (this.stopping) return;
      this.restarts++;
      // A new thread that dies before it is ready is one more death; the exit handler counts it.
      this.boot(true).catch(() => {});
    }, restartInMs);
  }

  private onStorage(writable: boolean, cause: string | undefined): void {
    if (this.writable === writable) return;
    this.writable = writable;
    if (writable) this.logger.info('storage takes writes again');
    else this.logger.error('storage refuses writes; the shard answers reads and refuses the rest', { cause });
    this.hooks.onEvent({ type: 'storage', shardIndex: this.data.shardIndex, writable, cause });
  }

  /** Answers every command the dead thread did not answer, and every one queued for it. */
  private failInFlight(): void {
    for (const command of this.queue) {
      this.waiting.get(command.id)?.({ id: command.id, reply: OVERLOADED });
      this.waiting.delete(command.id);
    }
    this.queue = [];
    for (const [id, resolve] of this.waiting) resolve({ id, reply: INTERNAL });
    this.waiting.clear();
    this.drained?.();
    for (const waiter of this.statsWaiting) waiter.reject(new Error('the shard worker died'));
    this.statsWaiting = [];
  }

  // -------------------------------------------------------------------------------------------------
  // Batches.

  private flush(): void {
    this.flushScheduled = false;
    const queue = this.queue;
    this.queue = [];
    for (let start = 0; start < queue.length; start += this.limits.shardBatchLengthMax) {
      const commands = queue.slice(start, start + this.limits.shardBatchLengthMax);
      this.post({ type: 'batch', commands });
    }
  }

  private receive(report: ShardReport): void {
    for (const outcome of report.outcomes) {
      const resolve = this.waiting.get(outcome.id);
      this.waiting.delete(outcome.id);
      resolve?.(outcome);
    }
    if (this.waiting.size === 0) this.drained?.();
    this.hooks.onReport(report);
  }
}
