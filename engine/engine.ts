import { createHmac } from 'node:crypto';
import {
  CODE_DIGITS_MIN,
  type CodeKeys,
  CodeSpace,
  hashCode,
  hashInputs,
  isCodeDigits,
  isCodeString,
  SHARDS_MAX_FOR_CODES,
} from '../core/codes.ts';
import type {
  Command,
  CommandBody,
  GiftStep,
  HistoryView,
  Notice,
  Outcome,
  WalletView,
} from '../core/commands.ts';
import { idempotencyScope } from '../core/commands.ts';
import {
  type AuthId,
  type CardId,
  type ConsumerId,
  ID_PREFIX,
  type MerchantId,
  SLOT_COUNT,
  shardOfSlot,
  slotOfId,
  type TerminalId,
} from '../core/ids.ts';
import { LIMITS, type Limits, validateLimits } from '../core/limits.ts';
import { isCanonicalPhone } from '../core/phone.ts';
import type { CardKind, Funding, Reply } from '../core/wallet.ts';
import { createLogger, type Logger } from '../log/logger.ts';
import { type AuditReport, auditInParallel, auditStore } from '../persistence/audit.ts';
import type { Secrets } from '../persistence/secrets.ts';
import { GATEWAY_WRITER, openStore, type Store, whenDurable } from '../persistence/store.ts';
import { Cluster } from './cluster.ts';
import type { ClusterLink } from './replicated-log.ts';
import {
  ShardClient,
  type ShardClientHooks,
  type ShardEvent,
  type ShardHandle,
  type ShardHealth,
} from './shard-client.ts';
import type { ShardFault, ShardStats } from './shard-worker.ts';
import { restoreIfBehind } from './snapshots.ts';

/**
 * The engine's promise-based API, used in-process by the gateway. It validates input, stamps each
 * command with the time it arrived, routes it to the shard that owns its slot (from the id, or for a
 * code from the holder the code index names), batches commands per shard into one message per event-loop turn, and answers with a
 * `Reply` whose `status` comes from statuses.ts. Business outcomes never throw.
 *
 * Requests under the same idempotency key are serialized here, so a retry never races its original:
 * it waits for the original's durable answer and then gets the stored one.
 *
 * @module
 */

export interface EngineOptions {
  dataDir: string;
  secrets: Secrets;
  shards: number;
  codeTtlMs?: number;
  limits?: Partial<Limits>;
  /** Run the ledger audit before serving and refuse to open when it fails (default true). */
  audit?: boolean;
  /** Clock for stamping commands; tests pass a fake one. */
  now?: () => number;
  /** Audit the whole store after every group commit and record failures in `auditFailures` (tests). */
  auditEachCommit?: boolean;
  /**
   * Called once for each shard given up after dying too often (shard-client.ts). The other shards keep
   * serving and `health()` says failing; the server keeps running so that `/healthz` can say it.
   */
  onFatal?: (error: Error) => void;
  /** Every death, restart and storage refusal of a shard, for metrics (the engine logs them itself). */
  onShardEvent?: (event: ShardEvent) => void;
  /** Where shard failures, restarts and storage refusals are logged (stderr by default). */
  logger?: Logger;
  /** Enables `injectShardFaultForTest`. Only tests set it; the server never does. */
  testHooks?: boolean;
  /**
   * Makes this engine a node of a cluster on NATS JetStream (cluster.ts): `shards` is then the cluster's
   * shard count, the same on every node, and each change is stored in JetStream with `replicas` copies.
   */
  cluster?: { link: ClusterLink; replicas: number | null };
}

/**
 * `ok`: every shard serves and writes. `degraded`: a shard is being restarted, or the storage refuses its
 * writes (a full disk; it still answers reads). `failing`: a shard was given up after dying too often.
 */
export interface EngineHealth {
  ok: boolean;
  status: 'ok' | 'degraded' | 'failing';
  shards: ShardHealth[];
}

/** Idempotency keys: 1 to `idempotencyKeyLengthMax` characters of A-Z a-z 0-9 _ -. */
export const IDEMPOTENCY_KEY_SHAPE = new RegExp(`^[A-Za-z0-9_-]{1,${LIMITS.idempotencyKeyLengthMax}}$`);
const ID = /^[A-Za-z0-9_-]{1,64}$/;

export const isIdempotencyKey = (value: unknown): value is string =>
  typeof value === 'string' && IDEMPOTENCY_KEY_SHAPE.test(value);
const isId = (value: unknown): value is string => typeof value === 'string' && ID.test(value);
const isCents = (value: unknown, max: number): value is number =>
  typeof value === 'number' && Number.isSafeInteger(value) && value > 0 && value <= max;
/** An amount a request asks for: a positive safe integer of cents. */
export const isAmountCents = (value: unknown): value is number => isCents(value, Number.MAX_SAFE_INTEGER);

/** Digits looked up in a merchant's code index (`Engine.lookUpCode`). */
export interface CodeLookup {
  merchantId: string;
  code: string;
  state: 'live' | 'expired' | 'none';
  codeHash: string;
  /** Where an attempt at these digits goes. */
  slot: number;
}

const BAD: Reply = Object.freeze({ status: 'bad_request' });
/** A well-formed amount above what one load or gift may move (`loadMaxCents`). */
const OVER_LIMIT: Reply = Object.freeze({ status: 'limit_exceeded' });

export class Engine {
  private shards: ShardHandle[] = [];
  private cluster: Cluster | null = null;
  private readonly keys: CodeKeys;
  private readonly codeSpace: CodeSpace;
  private readonly limits: Limits;
  private readonly keyChains = new Map<string, Promise<unknown>>();
  private readonly watchers = new Map<ConsumerId, Set<(notice: Notice) => void>>();
  private readonly gifts = new Map<string, Promise<void>>();
  private readonly now: () => number;
  private readonly logger: Logger;
  private nextId = 1;
  private closing = false;
  /** The audit run when the engine opened (null when disabled). */
  openingAudit: AuditReport | null = null;
  /** Problems found by `auditEachCommit`. */
  readonly auditFailures: string[] = [];
  /** Canonical numbers' ids that use the account an older form of the number made (store.ts). */
  private readonly phoneAliases = new Map<ConsumerId, ConsumerId>();
  private readonly sharedWriteListeners = new Set<(databases: ReadonlySet<string>) => void>();

  private constructor(
    readonly store: Store,
    private readonly options: EngineOptions,
  ) {
    this.limits = { ...LIMITS, ...options.limits };
    for (const { key, value } of store.phoneAliases.getRange()) this.phoneAliases.set(key, value);
    const problems = validateLimits(this.limits);
    if (options.shards < 1 || options.shards > SHARDS_MAX_FOR_CODES || !Number.isInteger(options.shards)) {
      problems.push(
        `shards must be an integer from 1 to ${SHARDS_MAX_FOR_CODES}: each holds a share of the 6-digit codes`,
      );
    } else if (this.limits.merchantLiveCodesMax < options.shards) {
      problems.push('merchantLiveCodesMax must be at least the shard count: each shard holds its share');
    }
    if (problems.length > 0) throw new Error(`invalid engine configuration: ${problems.join('; ')}`);
    this.now = options.now ?? Date.now;
    this.keys = { hashKey: options.secrets.codeHashKey, sealKey: options.secrets.codeSealKey };
    this.codeSpace = new CodeSpace(this.keys);
    this.logger = options.logger ?? createLogger();
    // In a cluster the shards are started as this node takes their leases (Engine.open).
    if (!options.cluster)
      this.shards = Array.from({ length: options.shards }, (_, shardIndex) => this.startShard(shardIndex));
  }

  /** This process's thread for a shard; in a cluster, with the hooks that tie its life to the lease. */
  private startShard(
    shardIndex: number,
    clusterHooks?: Pick<ShardClientHooks, 'mayRestart' | 'onGivenUp'>,
  ): ShardClient {
    const { options } = this;
    return new ShardClient(
      {
        dataDir: options.dataDir,
        shardIndex,
        shardCount: options.shards,
        codeTtlMs: options.codeTtlMs ?? this.limits.codeTtlMs,
        limits: this.limits,
        hashKey: this.keys.hashKey,
        sealKey: this.keys.sealKey,
        testHooks: options.testHooks === true,
        ...(options.cluster ? { cluster: options.cluster.link } : {}),
      },
      this.limits,
      {
        onReport: (report) => this.onReport(report),
        onEvent: (event) => this.onShardEvent(event),
        logger: this.logger,
        ...clusterHooks,
      },
    );
  }

  static async open(options: EngineOptions): Promise<Engine> {
    // A cluster node behind what the logs still hold starts from the latest snapshot instead.
    if (options.cluster)
      await restoreIfBehind({
        link: options.cluster.link,
        dataDir: options.dataDir,
        shardCount: options.shards,
        publishTimeoutMs: { ...LIMITS, ...options.limits }.clusterPublishTimeoutMs,
        logger: options.logger ?? createLogger(),
      });
    const store = openStore(options.dataDir);
    let engine: Engine;
    try {
      engine = new Engine(store, options);
    } catch (error) {
      await store.root.close();
      throw error;
    }
    if (options.cluster) {
      try {
        engine.cluster = await Cluster.join({
          ...options.cluster,
          shardCount: options.shards,
          store,
          limits: engine.limits,
          logger: engine.logger,
          startShard: (shardIndex, hooks) => engine.startShard(shardIndex, hooks),
          onEvent: (event) => engine.onShardEvent(event),
          onSharedWrites: (databases) => engine.sharedWritesApplied(databases),
          onNotices: (notices) => engine.deliver(notices),
          writer: engine.gatewayWriter,
          dataDir: options.dataDir,
        });
      } catch (error) {
        await store.root.close();
        throw error;
      }
      engine.shards = engine.cluster.shards;
    }
    // The shards boot while the store is audited (each part on its own read snapshot); their clocks
    // start and commands reach them only once every part passed, so nothing changes the store meanwhile.
    const audit = await (options.audit === false
      ? null
      : auditInParallel(store, options.dataDir, (options.now ?? Date.now)()).catch((error: Error) => error));
    const booted = await Promise.all(engine.shards.map((shard) => shard.ready)).then(
      () => null,
      (error: Error) => error,
    );
    if (booted || audit instanceof Error || (audit && !audit.ok)) {
      await engine.close();
      if (booted) throw booted;
      throw audit instanceof Error ? audit : new Error(`ledger audit failed: ${audit?.problems.join('; ')}`);
    }
    for (const shard of engine.shards) shard.start();
    // A node takes shards only once its own state passed the audit.
    engine.cluster?.start();
    engine.openingAudit = audit;
    // Finish the gift sagas a crash interrupted; every step is idempotent.
    for (const { value } of store.sagas.getRange()) void engine.continueGift(value);
    return engine;
  }

  /**
   * The writer id of this process's journal-style keys (`[atMs, writer, seq]`, store.ts): in a cluster each
   * node has its own, so two nodes never write the same key.
   */
  get gatewayWriter(): number {
    const nodeId = this.options.cluster?.link.nodeId;
    if (nodeId === undefined) return GATEWAY_WRITER;
    let hash = 0x811c9dc5;
    for (const char of nodeId) hash = Math.imul(hash ^ char.charCodeAt(0), 0x01000193) >>> 0;
    return GATEWAY_WRITER + 1 + (hash % 1_000_000);
  }

  /**
   * Whether a text of the outbox written under `writer` is this process's to send: in a cluster, texts a
   * shard wrote are sent by the node serving that shard, texts a node's main thread wrote by that node.
   */
  sendsTextsOf(writer: number): boolean {
    if (!this.cluster) return true;
    if (writer < GATEWAY_WRITER) return this.cluster.serves(writer);
    if (writer === this.gatewayWriter) return true;
    // Texts queued before the node became part of a cluster, or by a node that stopped beating (its
    // verification codes among them): the node serving shard 0 sends them.
    return (writer === GATEWAY_WRITER || this.cluster.writerGone(writer)) && this.cluster.serves(0);
  }

  /** In a cluster, tells every other node something; nothing on a single node. */
  broadcast(topic: string, payload: unknown): void {
    this.cluster?.broadcast(topic, payload);
  }

  /** Calls `handler` with what other nodes of the cluster broadcast on `topic`. */
  onBroadcast(topic: string, handler: (payload: unknown) => void): void {
    this.cluster?.onBroadcast(topic, handler);
  }

  /** Claims a task done once for the whole cluster (cluster.ts `claim`); always true on a single node. */
  claimOnce(task: string): Promise<boolean> {
    return this.cluster ? this.cluster.claim(task) : Promise.resolve(true);
  }

  /**
   * Calls `listener` with the databases other nodes' main-thread writes changed in this node's LMDB (in a
   * cluster), so what is kept from them in memory can be read again.
   */
  onSharedWrites(listener: (databases: ReadonlySet<string>) => void): void {
    this.sharedWriteListeners.add(listener);
  }

  private sharedWritesApplied(databases: ReadonlySet<string>): void {
    if (databases.has('phoneAliases'))
      for (const { key, value } of this.store.phoneAliases.getRange()) this.phoneAliases.set(key, value);
    for (const listener of this.sharedWriteListeners) listener(databases);
  }

  /** Consumer ids are a keyed hash of the phone number: stable, opaque, and routable without a lookup. */
  consumerIdFor(phone: string): ConsumerId {
    const id = this.hashedConsumerId(phone);
    return this.phoneAliases.get(id) ?? id;
  }

  /** The id a number hashes to, whatever account an older form of it made (server/phone-ids.ts). */
  hashedConsumerId(phone: string): ConsumerId {
    const digest = createHmac('sha256', this.options.secrets.consumerIdKey).update(phone).digest();
    return `${ID_PREFIX.consumer}_${(digest[0] as number) % SLOT_COUNT}_${digest.subarray(1, 17).toString('base64url')}` as ConsumerId;
  }

  /** From now on (and after restarts) `canonicalId`'s number uses the account of `accountId`. */
  async linkConsumerId(canonicalId: ConsumerId, accountId: ConsumerId): Promise<void> {
    await this.store.phoneAliases.put(canonicalId, accountId);
    await whenDurable(this.store);
    this.phoneAliases.set(canonicalId, accountId);
  }

  /**
   * Calls `listener` with every durable change of one consumer's wallet (balances and codes) until the
   * returned function is called. Shards build notices only for watched consumers, so an unwatched
   * redemption costs nothing here.
   */
  watch(consumerId: ConsumerId, listener: (notice: Notice) => void): () => void {
    if (!this.isConsumerId(consumerId)) throw new TypeError(`not a consumer id: ${String(consumerId)}`);
    let listeners = this.watchers.get(consumerId);
    if (!listeners) {
      listeners = new Set();
      this.watchers.set(consumerId, listeners);
      this.shardOf(slotOfId(consumerId)).watch(consumerId, true);
    }
    listeners.add(listener);
    return () => {
      if (!listeners.delete(listener) || listeners.size > 0) return;
      this.watchers.delete(consumerId);
      this.shardOf(slotOfId(consumerId)).watch(consumerId, false);
    };
  }

  // -------------------------------------------------------------------------------------------------
  // Value.

  async loadValue(request: {
    merchantId: string;
    phone: string;
    kind: CardKind;
    funding: Funding;
    amountCents: number;
    idempotencyKey: string;
    expiresAtMs?: number | null;
  }): Promise<Reply> {
    const { merchantId, phone, kind, funding, amountCents, idempotencyKey } = request;
    const expiresAtMs = request.expiresAtMs ?? null;
    if (!isId(merchantId) || !isCanonicalPhone(phone) || !isIdempotencyKey(idempotencyKey)) return BAD;
    if ((kind !== 'gift' && kind !== 'reward') || (funding !== 'merchant' && funding !== 'consumer'))
      return BAD;
    if (!isAmountCents(amountCents)) return BAD;
    if (amountCents > this.limits.loadMaxCents) return OVER_LIMIT;
    // Rewards may expire; gift value never does, and what consumers buy is gift value. Whether the
    // expiry is still ahead is checked by the shard after the replay lookup, so a retry keeps its answer.
    if (
      expiresAtMs !== null &&
      (kind !== 'reward' || !Number.isSafeInteger(expiresAtMs) || expiresAtMs <= 0)
    ) {
      return BAD;
    }
    if (funding === 'consumer' && kind !== 'gift') return BAD;
    const consumerId = this.consumerIdFor(phone);
    const scope =
      funding === 'merchant' ? idempotencyScope.merchant(merchantId) : idempotencyScope.consumer(consumerId);
    const canonical = ['load', merchantId, consumerId, kind, funding, amountCents, expiresAtMs ?? ''].join(
      '|',
    );
    const idem = { scope, key: idempotencyKey, inputHash: hashInputs(this.keys, canonical) };
    return this.keyed(idem, slotOfId(consumerId), {
      op: 'load',
      consumerId,
      merchantId: merchantId as MerchantId,
      kind,
      funding,
      amountCents,
      expiresAtMs,
      idem,
    });
  }

  /** Gives part of a gift card to another phone: a saga of idempotent steps across two shards. */
  async gift(request: {
    consumerId: string;
    merchantId: string;
    amountCents: number;
    toPhone: string;
    idempotencyKey: string;
  }): Promise<Reply> {
    const { consumerId, merchantId, amountCents, toPhone, idempotencyKey } = request;
    if (
      !this.isConsumerId(consumerId) ||
      !isId(merchantId) ||
      !isCanonicalPhone(toPhone) ||
      !isIdempotencyKey(idempotencyKey)
    ) {
      return BAD;
    }
    if (!isAmountCents(amountCents) || amountCents < this.limits.giftMinCents) return BAD;
    const toConsumerId = this.consumerIdFor(toPhone);
    if (toConsumerId === consumerId) return BAD;
    const canonical = ['gift', merchantId, toConsumerId, amountCents].join('|');
    const idem = {
      scope: idempotencyScope.consumer(consumerId),
      key: idempotencyKey,
      inputHash: hashInputs(this.keys, canonical),
    };
    const reply = await this.keyed(idem, slotOfId(consumerId), {
      op: 'giftSend',
      consumerId,
      merchantId: merchantId as MerchantId,
      amountCents,
      toConsumerId,
      idem,
    });
    if (reply.giftId) {
      // A replay whose saga nobody drives (its report was lost) drives it from the stored saga.
      this.store.root.resetReadTxn();
      const saga = this.gifts.has(reply.giftId) ? undefined : this.store.sagas.get(reply.giftId);
      await (saga ? this.continueGift(saga) : this.gifts.get(reply.giftId));
    }
    return reply;
  }

  // -------------------------------------------------------------------------------------------------
  // Codes.

  /** A code at the merchant, of at least `codeDigitsMin` digits (the merchant's setting; 6 when absent). */
  issueCode(request: {
    consumerId: string;
    merchantId: string;
    capCents?: number | null;
    codeDigitsMin?: number;
  }): Promise<Reply & { code?: string }> {
    const { consumerId, merchantId, codeDigitsMin = CODE_DIGITS_MIN } = request;
    const capCents = request.capCents ?? null;
    if (!this.isConsumerId(consumerId) || !isId(merchantId)) return Promise.resolve(BAD);
    if (capCents !== null && !isCents(capCents, Number.MAX_SAFE_INTEGER)) return Promise.resolve(BAD);
    if (!isCodeDigits(codeDigitsMin)) return Promise.resolve(BAD);
    return this.reply(slotOfId(consumerId), {
      op: 'issueCode',
      consumerId,
      merchantId: merchantId as MerchantId,
      capCents,
      codeDigitsMin,
    });
  }

  cancelCode(consumerId: string): Promise<Reply> {
    return this.consumerOp('cancelCode', consumerId);
  }

  freeze(consumerId: string): Promise<Reply> {
    return this.consumerOp('freeze', consumerId);
  }

  unfreeze(consumerId: string): Promise<Reply> {
    return this.consumerOp('unfreeze', consumerId);
  }

  /** Sets (or, with null, clears) the low-balance alert of one of the consumer's cards. */
  setAlert(consumerId: string, cardId: string, belowCents: number | null): Promise<Reply> {
    if (!this.isConsumerId(consumerId) || !isId(cardId)) return Promise.resolve(BAD);
    if (belowCents !== null && !isAmountCents(belowCents)) return Promise.resolve(BAD);
    return this.reply(slotOfId(consumerId), {
      op: 'setAlert',
      consumerId,
      cardId: cardId as CardId,
      belowCents,
    });
  }

  async wallet(consumerId: string): Promise<WalletView | null> {
    if (!this.isConsumerId(consumerId)) return null;
    return (await this.submit(slotOfId(consumerId), { op: 'wallet', consumerId })).wallet ?? null;
  }

  async history(consumerId: string, limit = this.limits.historyEntriesMax): Promise<HistoryView[] | null> {
    if (!this.isConsumerId(consumerId)) return null;
    if (!Number.isSafeInteger(limit)) return null;
    const bounded = Math.max(1, Math.min(limit, this.limits.historyEntriesMax));
    return (
      (await this.submit(slotOfId(consumerId), { op: 'history', consumerId, limit: bounded })).history ?? null
    );
  }

  // -------------------------------------------------------------------------------------------------
  // Point of sale. Keys are scoped to the terminal.

  redeem(request: {
    merchantId: string;
    terminalId: string;
    key: string;
    code: string;
    amountCents: number;
    partial: boolean;
    /** Answer only from the key's stored result (`not_found` when there is none); see shard.ts. */
    replayOnly?: boolean;
    /** The caller's look-up of these digits (`lookUpCode`), so they are not looked up twice. */
    lookup?: CodeLookup;
  }): Promise<Reply> {
    const { merchantId, terminalId, key, code, amountCents, partial } = request;
    if (!isId(merchantId) || !isId(terminalId) || !isIdempotencyKey(key) || !isCodeString(code)) {
      return Promise.resolve(BAD);
    }
    if (!isCents(amountCents, Number.MAX_SAFE_INTEGER) || typeof partial !== 'boolean')
      return Promise.resolve(BAD);
    const canonical = ['redeem', merchantId, code, amountCents, partial ? 1 : 0].join('|');
    const idem = {
      scope: idempotencyScope.terminal(terminalId),
      key,
      inputHash: hashInputs(this.keys, canonical),
    };
    const { codeHash, slot } = this.located(merchantId, code, request.lookup);
    return this.keyed(idem, slot, {
      op: 'redeem',
      merchantId: merchantId as MerchantId,
      terminalId: terminalId as TerminalId,
      codeHash,
      amountCents,
      partial,
      idem,
      ...(request.replayOnly ? { replayOnly: true as const } : {}),
    });
  }

  inquire(request: { merchantId: string; code: string; lookup?: CodeLookup }): Promise<Reply> {
    const { merchantId, code } = request;
    if (!isId(merchantId) || !isCodeString(code)) return Promise.resolve(BAD);
    const { codeHash, slot } = this.located(merchantId, code, request.lookup);
    return this.reply(slot, {
      op: 'inquire',
      merchantId: merchantId as MerchantId,
      codeHash,
    });
  }

  void(request: { merchantId: string; terminalId: string; key: string; authId: string }): Promise<Reply> {
    const { merchantId, terminalId, key, authId } = request;
    if (!isId(merchantId) || !isId(terminalId) || !isIdempotencyKey(key) || !isId(authId))
      return Promise.resolve(BAD);
    if (slotOfId(authId) < 0) return Promise.resolve({ status: 'not_found' });
    const idem = {
      scope: idempotencyScope.terminal(terminalId),
      key,
      inputHash: hashInputs(this.keys, `void|${authId}`),
    };
    return this.keyed(idem, slotOfId(authId), {
      op: 'void',
      merchantId: merchantId as MerchantId,
      authId: authId as AuthId,
      idem,
    });
  }

  refund(request: {
    merchantId: string;
    terminalId: string;
    key: string;
    authId: string;
    amountCents: number;
  }): Promise<Reply> {
    const { merchantId, terminalId, key, authId, amountCents } = request;
    if (!isId(merchantId) || !isId(terminalId) || !isIdempotencyKey(key) || !isId(authId))
      return Promise.resolve(BAD);
    if (!isCents(amountCents, Number.MAX_SAFE_INTEGER)) return Promise.resolve(BAD);
    if (slotOfId(authId) < 0) return Promise.resolve({ status: 'not_found' });
    const idem = {
      scope: idempotencyScope.terminal(terminalId),
      key,
      inputHash: hashInputs(this.keys, `refund|${authId}|${amountCents}`),
    };
    return this.keyed(idem, slotOfId(authId), {
      op: 'refund',
      merchantId: merchantId as MerchantId,
      authId: authId as AuthId,
      amountCents,
      idem,
    });
  }

  /** Whether a request under this key was answered and its answer is stored: a retry replays it. */
  hasStoredAnswer(scope: string, key: string): boolean {
    this.store.root.resetReadTxn();
    return this.store.idempotency.get([scope, key]) !== undefined;
  }

  /**
   * Undoes the redeem this terminal sent under `key` if it was approved and is not voided. When the key
   * was never used, the key is closed, so a redeem still travelling under it is refused, not approved
   * behind the terminal's back.
   */
  reverse(request: { merchantId: string; terminalId: string; key: string }): Promise<Reply> {
    const { merchantId, terminalId, key } = request;
    if (!isId(merchantId) || !isId(terminalId) || !isIdempotencyKey(key)) return Promise.resolve(BAD);
    const scope = idempotencyScope.terminal(terminalId);
    return this.serialized(`${scope}|${key}`, async () => {
      this.store.root.resetReadTxn();
      const record = this.store.idempotency.get([scope, key]);
      if (!record) {
        // Any slot can keep the record; no other request under this key runs meanwhile.
        const idem = { scope, key, inputHash: 'closed-by-reverse' };
        const closed = await this.reply(0, { op: 'closeKey', idem, reply: { status: 'nothing_to_reverse' } });
        // Only a stored close may say so; `overloaded` or `internal` closed nothing and must be retried.
        return closed.status === 'nothing_to_reverse'
          ? closed
          : { status: closed.status === 'internal' ? 'internal' : 'overloaded' };
      }
      const authId = record.reply.authId;
      if (record.op !== 'redeem' || record.reply.status !== 'approved' || !authId)
        return { status: 'nothing_to_reverse' };
      return this.reply(slotOfId(authId), {
        op: 'reverse',
        merchantId: merchantId as MerchantId,
        authId: authId as AuthId,
      });
    });
  }

  // -------------------------------------------------------------------------------------------------
  // Operations.

  /** Fires every timer due at `nowMs` on every shard (shards also tick on their own clock). */
  async tick(nowMs: number): Promise<void> {
    await Promise.all(this.shards.map((_, shardIndex) => this.submitAt(shardIndex, nowMs, { op: 'tick' })));
  }

  /**
   * Measurement hook: each shard thread's V8 heap (after a full GC when the process runs with
   * --expose-gc), live actors and timers, and when its start-up steps finished. Not used in serving.
   */
  shardStats(): Promise<ShardStats[]> {
    return Promise.all(this.shards.map((shard) => shard.stats()));
  }

  /** How the shards are doing; `GET /healthz` answers from this. */
  health(): EngineHealth {
    const shards = this.shards.map((shard) => shard.health());
    // A cluster node behind a truncated log serves an old copy until it restarts from a snapshot.
    const status =
      shards.some((shard) => shard.state === 'failed') || this.cluster?.behind
        ? 'failing'
        : shards.every((shard) => (shard.state === 'serving' || shard.state === 'remote') && shard.writable)
          ? 'ok'
          : 'degraded';
    return { ok: status === 'ok', status, shards };
  }

  /**
   * Test hook: makes one shard's worker thread die (see `ShardFault`) so that tests can exercise the
   * supervisor. It throws unless the engine was opened with `testHooks`, which the server never sets, and
   * nothing a client sends reaches it.
   */
  injectShardFaultForTest(shardIndex: number, fault: ShardFault): void {
    if (!this.options.testHooks) throw new Error('test hooks are not enabled on this engine');
    const shard = this.shards[shardIndex];
    if (!shard) throw new RangeError(`no shard ${shardIndex}`);
    shard.injectFault(fault);
  }

  /** Waits for in-flight gift sagas; then audits the store. */
  async audit(): Promise<AuditReport> {
    await Promise.all(this.gifts.values());
    return auditStore(this.store, this.now());
  }

  async close(): Promise<void> {
    this.closing = true;
    await Promise.all(this.gifts.values());
    await this.cluster?.leave();
    await Promise.all(this.shards.map((shard) => shard.stop()));
    await this.store.root.close();
  }

  // -------------------------------------------------------------------------------------------------
  // Plumbing.

  private isConsumerId(value: unknown): value is ConsumerId {
    return isId(value) && value.startsWith(`${ID_PREFIX.consumer}_`) && slotOfId(value) >= 0;
  }

  private consumerOp(op: 'cancelCode' | 'freeze' | 'unfreeze', consumerId: string): Promise<Reply> {
    if (!this.isConsumerId(consumerId)) return Promise.resolve(BAD);
    return this.reply(slotOfId(consumerId), { op, consumerId });
  }

  private submit(slot: number, body: CommandBody): Promise<Outcome> {
    return this.submitAt(slot, this.now(), body);
  }

  private submitAt(slot: number, nowMs: number, body: CommandBody): Promise<Outcome> {
    return this.shardOf(slot).submit({ ...body, id: this.nextId++, nowMs, slot } as Command);
  }

  private shardOf(slot: number): ShardHandle {
    return this.shards[shardOfSlot(slot, this.options.shards)] as ShardHandle;
  }

  private async reply(slot: number, body: CommandBody): Promise<Reply & { code?: string }> {
    return (await this.submit(slot, body)).reply;
  }

  /**
   * One look-up of digits in a merchant's code index: what they are now (`live`, `expired`: a code really
   * issued, past its lifetime, still answered `expired_code`, or `none`), and where an attempt at them
   * goes. It is the shard of the holder the index names, which checks again; digits that are no code go
   * to the only slot that could draw them (codes.ts), which answers `invalid_code` (and keeps the answer
   * under a redeem's key) unless it issued them meanwhile. Null for malformed input. The gateway makes it
   * before an attempt, to count one that cannot succeed before it runs, and hands it to `redeem` or
   * `inquire`, so an attempt costs one keyed hash and one read of the index.
   */
  lookUpCode(merchantId: string, code: unknown, nowMs: number): CodeLookup | null {
    if (!isId(merchantId) || !isCodeString(code)) return null;
    const codeHash = hashCode(this.keys, merchantId, code);
    // Codes are issued on the shard threads: see their latest commits.
    this.store.root.resetReadTxn();
    const entry = this.store.codes.get([merchantId as MerchantId, codeHash]);
    if (!entry)
      return { merchantId, code, state: 'none', codeHash, slot: this.codeSpace.slotOf(merchantId, code) };
    const state = entry.expiresAtMs > nowMs ? 'live' : 'expired';
    return { merchantId, code, state, codeHash, slot: slotOfId(entry.consumerId) };
  }

  /** The look-up the caller made for these digits, or a new one. */
  private located(merchantId: string, code: string, lookup: CodeLookup | undefined): CodeLookup {
    if (lookup?.merchantId === merchantId && lookup.code === code) return lookup;
    return this.lookUpCode(merchantId, code, this.now()) as CodeLookup;
  }

  private keyed(idem: { scope: string; key: string }, slot: number, body: CommandBody): Promise<Reply> {
    return this.serialized(`${idem.scope}|${idem.key}`, () => this.reply(slot, body));
  }

  /** Runs `task` after every earlier task under the same key has finished. */
  private serialized<T>(chainKey: string, task: () => Promise<T>): Promise<T> {
    const previous = this.keyChains.get(chainKey);
    const next = previous ? previous.then(task) : task();
    this.keyChains.set(chainKey, next);
    const clear = () => {
      if (this.keyChains.get(chainKey) === next) this.keyChains.delete(chainKey);
    };
    next.then(clear, clear);
    return next;
  }

  private onReport(report: { notices: Notice[]; gifts: GiftStep[] }): void {
    if (this.options.auditEachCommit) {
      const audit = auditStore(this.store, this.now());
      if (!audit.ok) this.auditFailures.push(...audit.problems);
    }
    this.deliver(report.notices);
    this.cluster?.sendNotices(report.notices);
    for (const gift of report.gifts) void this.continueGift(gift);
  }

  /** Hands notices to this process's listeners (wallet sockets). */
  private deliver(notices: readonly Notice[]): void {
    for (const notice of notices)
      for (const listener of this.watchers.get(notice.consumerId) ?? []) listener(notice);
  }

  /** Steps two and three of a gift: credit the receiver, then close the saga on the sender's shard. */
  private continueGift(gift: GiftStep): Promise<void> {
    const running = this.gifts.get(gift.giftId);
    if (running) return running;
    // A step that was shed, or lost with a dying shard thread, is tried again with backoff (each step is
    // idempotent); a shard given up, or an engine closing, leaves the saga to the next start.
    const step = async (slot: number, body: CommandBody) => {
      for (let attempt = 1; ; attempt++) {
        const { reply } = await this.submit(slot, body);
        const retry = reply.status === 'overloaded' || reply.status === 'internal';
        if (!retry || this.closing || this.shardOf(slot).health().state === 'failed') return reply;
        const { giftStepRetryDelayMs, giftStepRetryDelayMaxMs } = this.limits;
        const delayMs = Math.min(giftStepRetryDelayMaxMs, giftStepRetryDelayMs * 2 ** (attempt - 1));
        await new Promise((resolve) => setTimeout(resolve, delayMs));
      }
    };
    const done = (async () => {
      const received = await step(slotOfId(gift.toConsumerId), {
        op: 'giftReceive',
        giftId: gift.giftId,
        consumerId: gift.toConsumerId,
        merchantId: gift.merchantId,
        amountCents: gift.amountCents,
        ...(gift.boughtCents ? { boughtCents: gift.boughtCents } : {}),
      });
      if (received.status === 'approved')
        await step(slotOfId(gift.fromConsumerId), { op: 'giftDone', giftId: gift.giftId });
    })();
    this.gifts.set(gift.giftId, done);
    const clear = () => this.gifts.delete(gift.giftId);
    done.then(clear, clear);
    return done;
  }

  private onShardEvent(event: ShardEvent): void {
    if (event.type === 'died' && event.restartInMs === null) this.options.onFatal?.(event.error);
    // A thread that died after a commit, or a batch answered `internal` when a later commit was refused,
    // never reported the gift sagas it started: drive every saga of its slots again (steps are
    // idempotent, and a saga already driven is not started twice).
    // Pushes of a batch lost with a dead thread were never sent: every watcher of that shard reads afresh.
    if (event.type === 'restarted' || event.type === 'owned') {
      const restarted = this.shards[event.shardIndex];
      for (const [consumerId, listeners] of this.watchers) {
        if (this.shardOf(slotOfId(consumerId)) !== restarted) continue;
        for (const listener of listeners) listener({ type: 'resync', consumerId });
      }
    }
    const resumed =
      event.type === 'restarted' || event.type === 'owned' || (event.type === 'storage' && event.writable);
    if (resumed && !this.closing) {
      this.store.root.resetReadTxn();
      for (const { value } of this.store.sagas.getRange())
        if (this.shardOf(slotOfId(value.fromConsumerId)) === this.shards[event.shardIndex])
          void this.continueGift(value);
    }
    this.options.onShardEvent?.(event);
  }
}
