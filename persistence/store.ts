import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { type Database, type Key, open, type RootDatabase } from 'lmdb';
import type { PersistedAccount } from '../core/account-machine.ts';
import type { CardId, ConsumerId, GiftId, MerchantId, TerminalId } from '../core/ids.ts';
import type { Leg, PostingKind } from '../core/ledger.ts';
import type { Auth, LowBalance, ReceiptEvent, Reply } from '../core/wallet.ts';
import type { LiabilityDay, SettlementFigures, StatementLine } from '../sdk/http-answers.ts';

/**
 * The LMDB layout. One environment (`<dataDir>/lmdb`), values in MessagePack (msgpackr, lmdb-js's
 * default encoding, with shared structures), keys in lmdb-js ordered-binary (arrays sort element by
 * element):
 *
 * | database      | key                                   | value                                   |
 * | ------------- | ------------------------------------- | --------------------------------------- |
 * | `accounts`    | consumerId                            | PersistedAccount (state value, context) |
 * | `codes`       | [merchantId, codeHash]                | CodeIndexEntry: who holds a live code   |
 * | `auths`       | authId                                | Auth: a redemption and its undoing      |
 * | `journal`     | [atMs, writer, seq]                   | JournalEntry: balanced legs             |
 * | `history`     | [consumerId, atMs, writer, seq]       | HistoryEntry, one per card movement     |
 * | `idempotency` | [scope, key]                          | IdempotencyRecord                       |
 * | `timers`      | [slot, atMs, 'lots', consumerId]      | {}: a reward lot expires then           |
 * | `sagas`       | giftId                                | GiftSaga, while the gift is in transit  |
 * | `meta`        | string                                | counters and markers                    |
 * | `outbox`      | [atMs, writer, seq]                   | OutboxRecord: an SMS not yet delivered  |
 * | `deadTexts`   | [atMs, writer, seq] (its outbox key)  | DeadText: an SMS the SMSC refused for good |
 * | `merchants`   | merchantId                            | MerchantRecord (gateway registry)       |
 * | `terminals`   | terminalId                            | TerminalRecord (gateway registry)       |
 * | `credentials` | keyed hash of a token or code         | CredentialRecord: whom it authenticates |
 * | `otps`        | consumerId (`:unfreeze` for unfreezing) | OtpRecord: a pending phone verification |
 * | `phones`      | consumerId                            | the phone number, sealed                |
 * | `phoneAliases` | consumerId of a canonical number     | the older consumerId whose account it uses |
 * | `settled`     | journal key                           | the settlement id that paid the posting |
 * | `settlements` | businessDate                          | SettlementRecord: nets, file, summary   |
 * | `statements`  | [businessDate, merchantId]            | StatementLine[]: the postings paid      |
 * | `retiredHashes` | [kind, hash or consumerId]          | RetiredHash: under a retired master key |
 * | `liabilityDays` | [merchantId, businessDate]          | LiabilityDay: a finished day, kept by a report |
 *
 * Every shard writes only keys of the slots it owns, plus journal keys under its own writer id. The one
 * exception is `idempotency`: a key's records may be written by different shards (a redeem by the code's
 * slot, a void by the auth's), which is safe because the engine facade runs one request per key at a
 * time. Secrets are never stored here (see secrets.ts). The gateway's registry and the outbox are written
 * by the main thread (its journal-style keys use writer ids from GATEWAY_WRITER up); a shard adds an
 * outbox record in the same commit as the redemption, void, refund or reversal it reports.
 */

/** Who holds a live code (or held one that still answers `expired_code`), under [merchantId, codeHash]. */
export interface CodeIndexEntry {
  consumerId: ConsumerId;
  expiresAtMs: number;
  /** The code's length; absent in entries written when every code had 6 digits. */
  digits?: number;
}

export interface JournalEntry {
  atMs: number;
  kind: PostingKind;
  consumerId: ConsumerId;
  merchantId: MerchantId;
  ref: string;
  legs: Leg[];
  /**
   * How much the posting changed the bought value on the consumer's gift card (core/wallet.ts `Card`; a
   * gift's half moves it between the card and transit); absent when it changed none.
   */
  boughtCents?: number;
}

export interface HistoryEntry {
  atMs: number;
  kind: PostingKind;
  merchantId: MerchantId;
  cardId: CardId;
  amountCents: number;
  balanceCents: number;
  ref: string;
}

export interface IdempotencyRecord {
  /** The operation that used the key (a `reverse` looks for a `redeem`). */
  op: string;
  inputHash: string;
  reply: Reply;
  atMs: number;
}

export interface GiftSaga {
  giftId: GiftId;
  fromConsumerId: ConsumerId;
  toConsumerId: ConsumerId;
  merchantId: MerchantId;
  amountCents: number;
  /** The part that was bought value (absent: none, as in sagas begun before the funding was kept). */
  boughtCents?: number;
  atMs: number;
}

/** What an SMS says: a receipt is rendered at delivery; free text is sealed because it may hold a code. */
export type OutboxMessage =
  | {
      kind: 'receipt';
      event: ReceiptEvent;
      merchantId: MerchantId;
      amountCents: number;
      /** The consumer's total at the merchant after the event. */
      balanceCents: number;
      ref: string;
      /** Low-balance alerts the redemption crossed, one per card. */
      alerts?: LowBalance[];
    }
  | { kind: 'text'; sealedText: string };

export interface OutboxRecord {
  consumerId: ConsumerId;
  atMs: number;
  message: OutboxMessage;
}

/** A text the SMS provider refused for good, kept under its outbox key until the operator resends it. */
export interface DeadText extends OutboxRecord {
  failedAtMs: number;
  /** The provider's refusal (for SMPP, the command status); never the text. */
  reason: string;
}

export interface MerchantRecord {
  merchantId: MerchantId;
  name: string;
  keyword: string | null;
  feeBps: number;
  feeFixedCents: number;
  /** The shortest payment code its consumers get (6-10); absent in records made before it existed: 6. */
  codeDigitsMin?: number;
  /** `{routingNumber, accountNumber, accountType}` as JSON, sealed under the master key. */
  sealedBank: string;
  createdAtMs: number;
}

export interface TerminalRecord {
  terminalId: TerminalId;
  merchantId: MerchantId;
  label: string;
  /** The terminal key sealed under the master key; null until the terminal is activated. */
  sealedKey: string | null;
  activationExpiresAtMs: number;
  /** Consecutive failed codes (invalid or expired); an approval resets it. */
  codeFailures: number;
  /** When the last failures happened (at most `terminalCodeFailuresPerDayMax` of them, oldest first). */
  failuresAtMs?: number[];
  /** Those of `failuresAtMs` explained as typos by the terminal's next sale (gateway/code-windows.ts). */
  typosAtMs?: number[];
  /** The keyed hash of the activation code not used yet, so revoking the terminal can void it. */
  activationHash?: string;
  locked: boolean;
  createdAtMs: number;
}

export interface CredentialRecord {
  kind: 'merchant' | 'device' | 'activation';
  /** The merchant, consumer or terminal the credential stands for. */
  subject: string;
  expiresAtMs: number | null;
  /** Device tokens and API keys: the generation of their subject they were issued in (see below). */
  generation?: number;
}

/** What the `meta` database holds, by kind of key. */
interface MetaValues {
  settledUpToMs: number;
  operatorTokenHash: string;
  journalSeq: number;
  writeProbe: number;
  keyword: string;
  generation: number;
  achFilesCreated: number;
  phoneIdsLinked: number;
  logPosition: { seq: number; epoch: number };
}

/** A key of `meta` that says the type of its value. */
export type MetaKey<K extends keyof MetaValues> = string & { readonly metaValue: K };

/** Every key of `meta`, spelled here only. */
export const META = {
  /** Where the last settlement stopped: postings before it are paid. */
  settledUpToMs: 'settledUpToMs' as MetaKey<'settledUpToMs'>,
  /** The keyed hash of the operator's token. */
  operatorTokenHash: 'operatorTokenHash' as MetaKey<'operatorTokenHash'>,
  /** A shard's last journal sequence number, so keys stay unique across restarts. */
  journalSeq: (shardIndex: number) => `journalSeq:${shardIndex}` as MetaKey<'journalSeq'>,
  /** A restarted shard's start-up write, which tells whether the storage takes writes. */
  writeProbe: (shardIndex: number) => `writeProbe:${shardIndex}` as MetaKey<'writeProbe'>,
  /** The merchant that owns an SMS keyword. */
  keyword: (keyword: string) => `keyword:${keyword}` as MetaKey<'keyword'>,
  /**
   * Every device token of a consumer, or every API key of a merchant, is revoked at once by starting a
   * new generation of that subject: a credential of an earlier generation no longer works, and its
   * record stays until it expires.
   */
  generation: (kind: CredentialRecord['kind'], subject: string) =>
    `generation:${kind}:${subject}` as MetaKey<'generation'>,
  /** Set once the phone numbers kept in a non-canonical form were linked to their canonical ids. */
  phoneIdsLinked: 'phoneIdsLinked' as MetaKey<'phoneIdsLinked'>,
  /**
   * In a cluster, how far this node applied a shard's replicated log: the last stream sequence applied and
   * the epoch (the sequence of the latest writer's marker) whose records apply (engine/replicated-log.ts).
   */
  logPosition: (log: string) => `logPosition:${log}` as MetaKey<'logPosition'>,
  /** ACH files made on a calendar day, for the file id modifier. */
  achFilesCreated: (date: string) => `achFilesCreated:${date}` as MetaKey<'achFilesCreated'>,
} as const;

export function readMeta<K extends keyof MetaValues>(
  store: Store,
  key: MetaKey<K>,
): MetaValues[K] | undefined {
  return store.meta.get(key) as MetaValues[K] | undefined;
}

/** Writes a `meta` value, in the caller's transaction. */
export function writeMeta<K extends keyof MetaValues>(store: Store, key: MetaKey<K>, value: MetaValues[K]) {
  return store.meta.put(key, value);
}

export function currentGeneration(store: Store, kind: CredentialRecord['kind'], subject: string): number {
  return readMeta(store, META.generation(kind, subject)) ?? 0;
}

export function isCurrentGeneration(store: Store, credential: CredentialRecord): boolean {
  return (credential.generation ?? 0) === currentGeneration(store, credential.kind, credential.subject);
}

/**
 * A hash made under a master key that a rotation retired (docs/key-rotation.md): the rotation lists every
 * credential hash, verification code hash and the operator token hash it finds, so `paycode master-key`
 * can tell what still depends on a retired key. A hash not listed here was made under the current key.
 * An entry goes stale (and is swept) once its credential is migrated, used up, expired or gone.
 */
export type RetiredHashKey = ['credential', string] | ['otp', string] | ['operator', string];

export interface RetiredHash {
  /** `masterKeyId` (secrets.ts) of the key the hash was made under. */
  masterKeyId: string;
  /** The hash itself: for a verification code or the operator token, the value it must still equal. */
  hash: string;
}

export interface OtpRecord {
  otpHash: string;
  expiresAtMs: number;
  attempts: number;
  /** When the last codes were sent, for the per-phone send limit. */
  sentAtMs: number[];
}

/** One settled business day: what each merchant is paid or debited, the ACH file and the reports. */
export interface SettlementRecord {
  settlementId: string;
  businessDate: string;
  achFileId: string;
  createdAtMs: number;
  /** The ACH file sealed under the master key: it holds every merchant's bank account. */
  sealedAch: string;
  merchants: SettledMerchant[];
  summary: SettlementSummary;
}

/** A merchant's net position for one settlement (settlement/net.ts computes it). */
export interface MerchantNet extends SettlementFigures {
  merchantId: string;
  lines: StatementLine[];
}

/** A merchant's figures in a settlement; its postings are in the `statements` database. */
export interface SettledMerchant extends Omit<MerchantNet, 'lines'> {
  name: string;
  /** The ACH trace number of its entry; null when the net is zero or the merchant is not registered. */
  traceNumber: string | null;
  /**
   * How the entry named the merchant (its identification number); absent in settlements made before
   * references existed, whose entries carried the id's last 15 characters in upper case.
   */
  achReference?: string;
}

export interface SettlementSummary {
  businessDate: string;
  settlementId: string;
  achFileId: string;
  window: { startMs: number; endMs: number };
  createdAtMs: number;
  effectiveDate: string;
  postings: number;
  totals: Omit<MerchantNet, 'merchantId' | 'lines'>;
  /** The merchant-account legs of the journal over the same postings, summed apart from the nets. */
  journalLegsCents: number;
  file: {
    entries: number;
    creditCents: number;
    debitCents: number;
    offsetCents: number;
    entryHash: string;
    blocks: number;
  };
  /** Nets left out of the file, with the reason; the operator settles them by hand. */
  unpaid: { merchantId: string; netCents: number; reason: string }[];
  reconciled: boolean;
  problems: string[];
}

/** Writer ids of journal-style keys (`[atMs, writer, seq]`) used by the main thread; shards use 0-63. */
export const GATEWAY_WRITER = 1_000;

export interface Store {
  root: RootDatabase;
  accounts: Database<PersistedAccount, ConsumerId>;
  codes: Database<CodeIndexEntry, [MerchantId, string]>;
  auths: Database<Auth, string>;
  journal: Database<JournalEntry, [number, number, number]>;
  history: Database<HistoryEntry, [ConsumerId, number, number, number]>;
  idempotency: Database<IdempotencyRecord, [string, string]>;
  /** Only reward-lot expiries are stored; code timers are rebuilt from the code index at start-up. */
  timers: Database<Record<string, never>, [number, number, 'lots', ConsumerId]>;
  sagas: Database<GiftSaga, string>;
  meta: Database<unknown, string>;
  outbox: Database<OutboxRecord, [number, number, number]>;
  deadTexts: Database<DeadText, [number, number, number]>;
  merchants: Database<MerchantRecord, string>;
  terminals: Database<TerminalRecord, string>;
  credentials: Database<CredentialRecord, string>;
  otps: Database<OtpRecord, string>;
  phones: Database<string, string>;
  /**
   * Numbers first registered in a non-canonical form (before phone numbers were canonicalized): the
   * canonical number's id maps to the id of the account the older form made (server/phone-ids.ts).
   */
  phoneAliases: Database<ConsumerId, ConsumerId>;
  settled: Database<string, [number, number, number]>;
  settlements: Database<SettlementRecord, string>;
  statements: Database<StatementLine[], [string, string]>;
  retiredHashes: Database<RetiredHash, RetiredHashKey>;
  /**
   * A merchant's liability figures of a finished business day that reconciled, kept by the liability report
   * once no posting can still reach the day (gateway/merchant-reports.ts), so later reports read them
   * instead of the journal. Derived data: losing it costs a longer read, never a wrong figure.
   */
  liabilityDays: Database<LiabilityDay, [string, string]>;
  /**
   * In a cluster, where the main thread's writes are replicated (engine/shared-writes.ts): `whenDurable`
   * also waits until they are stored there.
   */
  replication?: { durable(): Promise<void> };
}

export interface StoreOptions {
  /**
   * The memory map reserved when the environment opens (64 GiB by default). lmdb-js 3.5 grows the map by
   * itself when a commit needs more (measured: a 64 KiB map took 20 MB of writes), so this is a starting
   * size, not a cap; what ends writing is the disk. Tests set it small to show that.
   */
  mapSizeBytes?: number;
}

export function openStore(dataDir: string, options: StoreOptions = {}): Store {
  const path = join(dataDir, 'lmdb');
  mkdirSync(path, { recursive: true });
  // overlappingSync (the Linux default) resolves a commit before it is on disk; the shard waits for
  // `flushed` before it acknowledges, so the flush stays off the write lock and durability holds.
  const mapSize = options.mapSizeBytes ?? 64 * 1024 ** 3;
  const root = open({ path, maxDbs: 32, mapSize, overlappingSync: true });
  // Shared structures: msgpackr stores each record shape once per database instead of its field names
  // in every record, about halving record size and encoding time. lmdb-js keeps the shapes consistent
  // across threads (a shape is added under the write lock, and readers reload unknown shapes).
  const db = <V, K extends Key>(name: string) =>
    root.openDB<V, K>({ name, sharedStructuresKey: Symbol.for('structures') });
  return {
    root,
    accounts: db('accounts'),
    codes: db('codes'),
    auths: db('auths'),
    journal: db('journal'),
    history: db('history'),
    idempotency: db('idempotency'),
    timers: db('timers'),
    sagas: db('sagas'),
    meta: db('meta'),
    outbox: db('outbox'),
    deadTexts: db('deadTexts'),
    merchants: db('merchants'),
    terminals: db('terminals'),
    credentials: db('credentials'),
    otps: db('otps'),
    phones: db('phones'),
    phoneAliases: db('phoneAliases'),
    settled: db('settled'),
    settlements: db('settlements'),
    statements: db('statements'),
    retiredHashes: db('retiredHashes'),
    liabilityDays: db('liabilityDays'),
  };
}

const databaseNames = new WeakMap<object, string>();

/** The name of one of the store's databases (as in `Store`), e.g. for a replicated record of writes. */
export function databaseNamed(store: Store, db: object): string {
  if (!databaseNames.has(db))
    for (const [name, value] of Object.entries(store))
      if (name !== 'root' && name !== 'replication') databaseNames.set(value, name);
  const name = databaseNames.get(db);
  if (name === undefined) throw new Error('not a database of this store');
  return name;
}

/**
 * Resolves once everything committed so far is flushed to disk (in a cluster, and the main thread's
 * writes stored in JetStream): the moment an answer may be sent.
 */
export function whenDurable(store: Store): Promise<void> {
  const flushed = new Promise<void>((resolve, reject) => store.root.flushed.then(() => resolve(), reject));
  return store.replication
    ? Promise.all([flushed, store.replication.durable()]).then(() => undefined)
    : flushed;
}

/**
 * Whether a write failed because the storage refused the commit as a whole (a full disk, a file size
 * limit, an I/O error): lmdb-js then rejects every write of that transaction with one wrapper error that
 * carries the cause as a promise in `commitError`, and nothing of the transaction is on disk or visible.
 * An error thrown by the transaction's own callback is not one: lmdb-js transactions are not rolled back,
 * so the writes made before the throw were committed.
 */
export function isStorageRefusal(error: unknown): error is Error & { commitError: Promise<never> } {
  return error instanceof Error && 'commitError' in error && isThenable(error.commitError);
}

/** The cause of a storage refusal in words, e.g. "Input/output error (code 5)" for a short write. */
export async function storageRefusalCause(error: Error & { commitError: Promise<never> }): Promise<string> {
  try {
    await error.commitError;
    return error.message;
  } catch (cause) {
    const code = (cause as { code?: unknown }).code;
    const message = cause instanceof Error ? cause.message : String(cause);
    return code === undefined ? message : `${message} (code ${String(code)})`;
  }
}

const isThenable = (value: unknown): value is PromiseLike<unknown> =>
  typeof value === 'object' && value !== null && typeof (value as { then?: unknown }).then === 'function';

let absorbing = false;

/**
 * When a commit fails, lmdb-js (3.5, write.js) also rejects promises that no caller holds: the cause in
 * `commitError`, and an internal promise of its event-turn batch. Under Node's default those unhandled
 * rejections end the thread although the caller handled its own failed write, so a full disk would take
 * the process down at the first write, again after every restart. This listener drops exactly those
 * rejections in the calling thread (a process, or one worker thread); any other unhandled rejection is
 * rethrown and ends the thread as before. The process that owns the threads installs it, not a library.
 */
export function absorbLmdbCommitRejections(): void {
  if (absorbing) return;
  absorbing = true;
  process.on('unhandledRejection', (reason, promise) => {
    if (isStorageRefusal(reason)) {
      // The cause is rejected right after the wrapper; handling it here keeps it from being reported.
      reason.commitError.then(undefined, () => {});
      return;
    }
    // The cause itself, when no wrapper of it reached a handler first: lmdb-js's promise of the cause is
    // the only one that carries its own `reject` function, and the cause carries the system error number.
    const errno = (reason as { code?: unknown } | null)?.code;
    if (Object.hasOwn(promise, 'reject') && reason instanceof Error && typeof errno === 'number') return;
    throw reason;
  });
}
