import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { type Database, type Key, open, type RootDatabase } from 'lmdb';
import type { PersistedAccount } from '../engine/account-machine.ts';
import type { CardId, ConsumerId, GiftId, MerchantId } from '../engine/ids.ts';
import type { Leg, PostingKind } from '../engine/ledger.ts';
import type { Auth, Reply } from '../engine/wallet.ts';

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
 *
 * Every shard writes only keys of the slots it owns, plus journal keys under its own writer id. The one
 * exception is `idempotency`: a key's records may be written by different shards (a redeem by the code's
 * slot, a void by the auth's), which is safe because the engine facade runs one request per key at a
 * time. Secrets are never stored here (see secrets.ts).
 */
export interface CodeIndexEntry {
  consumerId: ConsumerId;
  expiresAtMs: number;
}

export interface JournalEntry {
  atMs: number;
  kind: PostingKind;
  consumerId: ConsumerId;
  merchantId: MerchantId;
  ref: string;
  legs: Leg[];
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
  atMs: number;
}

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
}

export function openStore(dataDir: string): Store {
  const path = join(dataDir, 'lmdb');
  mkdirSync(path, { recursive: true });
  // overlappingSync (the Linux default) resolves a commit before it is on disk; the shard waits for
  // `flushed` before it acknowledges, so the flush stays off the write lock and durability holds.
  const root = open({ path, maxDbs: 16, mapSize: 64 * 1024 ** 3, overlappingSync: true });
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
  };
}

/** Resolves once everything committed so far is flushed to disk: the moment an answer may be sent. */
export function whenDurable(store: Store): Promise<void> {
  return new Promise((resolve, reject) => store.root.flushed.then(() => resolve(), reject));
}
