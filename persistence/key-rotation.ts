import { randomBytes } from 'node:crypto';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import type { Database, Key } from 'lmdb';
import { isBound, SEALED_FOR, seal, unsealWithAny } from '../core/seal.ts';
import { loadSecrets, masterKeyId, type Secrets, writeMasterKeys } from './secrets.ts';
import {
  type CredentialRecord,
  isCurrentGeneration,
  META,
  type OutboxRecord,
  openStore,
  type RetiredHash,
  type RetiredHashKey,
  readMeta,
  type Store,
  whenDurable,
} from './store.ts';

/**
 * Master key rotation, run by the operator while the server is stopped (docs/key-rotation.md).
 *
 * `rotateMasterKey` lists every hash made under the current master key in `retiredHashes` (the hashes
 * cannot be recomputed: the tokens they hash are not stored), then writes a new master key into the
 * secrets file with the old one kept as the newest retired key, and only then re-seals every sealed value
 * under the new key, one write transaction per batch. Each step is durable before the next begins, so a
 * crash anywhere leaves every value readable and every hash matchable with the keys in the file, and
 * running the command again finishes the job under yet another key.
 *
 * `masterKeyStatus` says what still depends on each retired key. `dropRetiredMasterKeys` first re-seals
 * what a retired key still opens (values an interrupted rotation left), then removes from the file the
 * retired keys nothing depends on, or with `force` every retired key, deleting the credentials that only
 * it could match.
 *
 * @module
 */

export interface MasterKeyOptions {
  dataDir: string;
  secretsFile: string;
  /** Where `PAYCODE_MASTER_KEY` is looked up. */
  env?: NodeJS.ProcessEnv;
  /**
   * Rotate although some sealed values open with no key in the file (they are left as they are); drop
   * retired keys although credentials still depend on them (those credentials are deleted).
   */
  force?: boolean;
  /** Called after each committed batch of re-sealed values. */
  onProgress?: (progress: { database: string; resealed: number }) => void;
  /** Values re-sealed, or hashes listed, per write transaction. */
  batchMax?: number;
  nowMs?: number;
}

export type DependentKind = 'merchant' | 'device' | 'activation' | 'otp' | 'operator';

export interface RetiredKeyReport {
  masterKeyId: string;
  /** Sealed values that only this key opens; a drop re-seals them under the master key first. */
  sealedValues: number;
  /** Credentials whose hash was made under this key and that still work: dropping the key loses them. */
  dependents: Record<DependentKind, number>;
  /** Merchants whose API key, which never expires, has not been used since the rotation. */
  merchantIds: string[];
  /** When the last expiring dependent expires; null when none expires. */
  lastExpiresAtMs: number | null;
}

export interface Unreadable {
  database: string;
  key: Key;
}

export interface MasterKeyReport {
  secretsFile: string;
  masterKeyId: string;
  retired: RetiredKeyReport[];
  /** Sealed values that open with no key in the file: neither a rotation nor a drop changes them. */
  unreadable: Unreadable[];
}

export interface RotationReport extends MasterKeyReport {
  /** Values re-sealed under the new master key, per database. */
  resealed: Record<string, number>;
  /** Hashes this run listed under the key it retired. */
  hashesListed: number;
}

export interface DropReport extends MasterKeyReport {
  dropped: string[];
  /** Credentials deleted with a key dropped by force. */
  lost: Record<DependentKind, number>;
  resealed: Record<string, number>;
}

const BATCH_MAX = 1_000;
const UNREADABLE_LISTED_MAX = 100;

export async function rotateMasterKey(options: MasterKeyOptions): Promise<RotationReport> {
  const { secrets, store } = await openForMaintenance(options, 'rotate');
  try {
    const keys = [secrets.masterKey, ...secrets.retiredMasterKeys];
    if (!options.force) {
      const { unreadable, unreadableCount } = sealedByKey(store, keys);
      const first = unreadable[0];
      if (first)
        throw new Error(
          `${unreadableCount} sealed values (the first in ${first.database}) open with no key in ${options.secretsFile}: ` +
            'is it the file the server uses? --force rotates anyway and leaves them as they are',
        );
    }
    // The list must be durable before the new key is: a hash not listed counts as the current key's.
    const nowMs = options.nowMs ?? Date.now();
    const hashesListed = await listHashes(store, masterKeyId(secrets.masterKey), nowMs, options.batchMax);
    await whenDurable(store);
    // And the file must be durable before anything is sealed under the new key (writeMasterKeys flushes).
    const masterKey = randomBytes(32);
    writeMasterKeys(options.secretsFile, masterKey, keys);
    const rotated: Secrets = { ...secrets, masterKey, retiredMasterKeys: keys };
    const { resealed } = await reseal(store, [masterKey, ...keys], options);
    return { ...report(store, rotated, options.secretsFile, nowMs), resealed, hashesListed };
  } finally {
    await store.root.close();
  }
}

export async function masterKeyStatus(options: MasterKeyOptions): Promise<MasterKeyReport> {
  const { secrets, store } = await openForMaintenance(options, 'status');
  try {
    return report(store, secrets, options.secretsFile, options.nowMs ?? Date.now());
  } finally {
    await store.root.close();
  }
}

export async function dropRetiredMasterKeys(options: MasterKeyOptions): Promise<DropReport> {
  const { secrets, store } = await openForMaintenance(options, 'drop');
  try {
    const nowMs = options.nowMs ?? Date.now();
    const keys = [secrets.masterKey, ...secrets.retiredMasterKeys];
    const { resealed } = await reseal(store, keys, options);
    const before = report(store, secrets, options.secretsFile, nowMs);
    const free = (retired: RetiredKeyReport) =>
      retired.sealedValues === 0 && Object.values(retired.dependents).every((count) => count === 0);
    const dropped = new Set(
      before.retired
        .filter((retired) => options.force || free(retired))
        .map(({ masterKeyId }) => masterKeyId),
    );
    // The database is cleaned before the file changes: a crash in between leaves the keys in the file,
    // and running the command again finishes.
    const lost = await prune(
      store,
      new Set(before.retired.map(({ masterKeyId }) => masterKeyId)),
      dropped,
      nowMs,
    );
    await whenDurable(store);
    const kept = secrets.retiredMasterKeys.filter((key) => !dropped.has(masterKeyId(key)));
    if (kept.length !== secrets.retiredMasterKeys.length)
      writeMasterKeys(options.secretsFile, secrets.masterKey, kept);
    const after = report(store, { ...secrets, retiredMasterKeys: kept }, options.secretsFile, nowMs);
    return { ...after, dropped: [...dropped], lost, resealed };
  } finally {
    await store.root.close();
  }
}

// ---------------------------------------------------------------------------------------------------
// Opening.

async function openForMaintenance(
  options: MasterKeyOptions,
  command: 'rotate' | 'status' | 'drop',
): Promise<{ secrets: Secrets; store: Store }> {
  const { secretsFile, dataDir } = options;
  const env = options.env ?? {};
  // The file alone, held to the production rules (present, private, complete) whatever the mode: these
  // commands rewrite it, and must never make up a key that already sealed something.
  let secrets: Secrets;
  try {
    secrets = loadSecrets(secretsFile, {}, { production: true });
  } catch (error) {
    const message = (error as Error).message;
    if (env.PAYCODE_MASTER_KEY && /lacks .*masterKey/.test(message))
      throw new Error(`${message}: write the value of PAYCODE_MASTER_KEY into it as masterKey first`);
    throw error;
  }
  if (env.PAYCODE_MASTER_KEY) {
    const fromEnv = loadSecrets(
      secretsFile,
      { PAYCODE_MASTER_KEY: env.PAYCODE_MASTER_KEY },
      { production: true },
    );
    if (!fromEnv.masterKey.equals(secrets.masterKey))
      throw new Error(
        `PAYCODE_MASTER_KEY differs from the masterKey of ${secretsFile}: the commands work on the file, so it ` +
          'must hold the key the server uses (write it there as masterKey, or unset PAYCODE_MASTER_KEY)',
      );
  }
  if (!existsSync(join(dataDir, 'lmdb')))
    throw new Error(`no database in ${dataDir}: set PAYCODE_DATA_DIR to the server's data directory`);
  const store = openStore(dataDir);
  if (command !== 'status') {
    const others = otherProcesses(store);
    if (others.length > 0) {
      await store.root.close();
      throw new Error(
        `the database in ${dataDir} is open in process ${others.join(', ')}: stop the server before \`paycode master-key ${command}\``,
      );
    }
  }
  return { secrets, store };
}

/**
 * Processes other than this one that have the LMDB environment open, from its reader table after the
 * entries of dead processes are cleared. A server takes a reader slot with its first read at start-up, so
 * a running server shows up; one that starts after this check does not, which is why the procedure says
 * to keep the server stopped until the command has finished.
 */
function otherProcesses(store: Store): number[] {
  store.root.readerCheck();
  const pids = new Set<number>();
  for (const line of store.root.readerList().split('\n')) {
    const match = /^\s*([0-9]+)\s+[0-9a-f]+\s+\S+\s*$/.exec(line);
    if (match) pids.add(Number(match[1]));
  }
  pids.delete(process.pid);
  return [...pids];
}

// ---------------------------------------------------------------------------------------------------
// Sealed values.

interface SealedLocation {
  database: string;
  /**
   * The sealed values of the database in key order, a page of at most `limit` records at a time, each
   * with the record it is bound to (core/seal.ts `SEALED_FOR`).
   */
  pages(store: Store, limit: number): Generator<{ key: Key; sealed: string; record: string }[]>;
  /** Inside a write transaction: replaces the sealed value, unless it changed since it was read. */
  replace(store: Store, key: Key, sealed: string, resealed: string): void;
}

function location<V, K extends Key>(
  database: string,
  db: (store: Store) => Database<V, K>,
  sealedOf: (value: V) => string | null,
  withSealed: (value: V, sealed: string) => V,
  recordOf: (key: K, value: V) => string,
): SealedLocation {
  return {
    database,
    *pages(store, limit) {
      for (const page of pagesOf(db(store), limit)) {
        const found: { key: Key; sealed: string; record: string }[] = [];
        for (const { key, value } of page) {
          const sealed = sealedOf(value);
          if (sealed) found.push({ key, sealed, record: recordOf(key as K, value) });
        }
        yield found;
      }
    },
    replace(store, key, sealed, resealed) {
      const value = db(store).get(key as K);
      if (value !== undefined && sealedOf(value) === sealed)
        db(store).put(key as K, withSealed(value, resealed));
    },
  };
}

/** The sealed free texts of a table of queued texts (the outbox, and those the provider refused). */
function textsIn<V extends OutboxRecord>(
  database: string,
  db: (store: Store) => Database<V, [number, number, number]>,
): SealedLocation {
  return location(
    database,
    db,
    (record) => (record.message.kind === 'text' ? record.message.sealedText : null),
    (record, sealedText) => ({ ...record, message: { kind: 'text' as const, sealedText } }),
    (_, record) => SEALED_FOR.text(record.consumerId),
  );
}

/** Every value sealed under the master key (see store.ts); the test of the rotation checks each. */
const SEALED: SealedLocation[] = [
  location(
    'merchants',
    (store) => store.merchants,
    (merchant) => merchant.sealedBank,
    (merchant, sealedBank) => ({ ...merchant, sealedBank }),
    (merchantId) => SEALED_FOR.bank(merchantId),
  ),
  location(
    'terminals',
    (store) => store.terminals,
    (terminal) => terminal.sealedKey,
    (terminal, sealedKey) => ({ ...terminal, sealedKey }),
    (terminalId) => SEALED_FOR.terminalKey(terminalId),
  ),
  location(
    'phones',
    (store) => store.phones,
    (phone) => phone,
    (_, sealed) => sealed,
    (consumerId) => SEALED_FOR.phone(consumerId),
  ),
  textsIn('outbox', (store) => store.outbox),
  textsIn('deadTexts', (store) => store.deadTexts),
  location(
    'settlements',
    (store) => store.settlements,
    (record) => record.sealedAch,
    (record, sealedAch) => ({ ...record, sealedAch }),
    (businessDate) => SEALED_FOR.ach(businessDate),
  ),
];

/**
 * Re-seals under `keys[0]` every value that another of `keys` opens, a batch per write transaction
 * (each re-checked inside it), and waits until all of it is durable.
 */
async function reseal(
  store: Store,
  keys: readonly Buffer[],
  options: MasterKeyOptions,
): Promise<{ resealed: Record<string, number> }> {
  const [masterKey] = keys as [Buffer, ...Buffer[]];
  const resealed: Record<string, number> = {};
  for (const { database, pages, replace } of SEALED) {
    resealed[database] = 0;
    for (const page of pages(store, options.batchMax ?? BATCH_MAX)) {
      const changes: { key: Key; sealed: string; resealed: string }[] = [];
      for (const { key, sealed, record } of page) {
        const opened = unsealWithAny(keys, sealed, record);
        // Under a retired key, or not yet bound to its record (sealed before records were bound).
        if (opened && (opened.keyIndex > 0 || !isBound(sealed)))
          changes.push({ key, sealed, resealed: seal(masterKey, opened.text, record) });
      }
      if (changes.length === 0) continue;
      await store.root.transaction(() => {
        for (const change of changes) replace(store, change.key, change.sealed, change.resealed);
      });
      resealed[database] += changes.length;
      options.onProgress?.({ database, resealed: resealed[database] });
    }
  }
  await whenDurable(store);
  return { resealed };
}

/** How many sealed values each of `keys` opens, and which open with none. */
function sealedByKey(
  store: Store,
  keys: readonly Buffer[],
): { counts: number[]; unreadable: Unreadable[]; unreadableCount: number } {
  store.root.resetReadTxn();
  const counts = keys.map(() => 0);
  const unreadable: Unreadable[] = [];
  let unreadableCount = 0;
  for (const { database, pages } of SEALED) {
    for (const page of pages(store, BATCH_MAX)) {
      for (const { key, sealed, record } of page) {
        const opened = unsealWithAny(keys, sealed, record);
        if (opened) counts[opened.keyIndex] = (counts[opened.keyIndex] ?? 0) + 1;
        else if (++unreadableCount <= UNREADABLE_LISTED_MAX) unreadable.push({ database, key });
      }
    }
  }
  return { counts, unreadable, unreadableCount };
}

// ---------------------------------------------------------------------------------------------------
// Hashes.

/**
 * Lists under `keyId` every live hash not listed yet: credentials, pending verification codes and the
 * stored operator token hash. A hash listed by an earlier rotation keeps the key it was listed with; an
 * expired credential or code is left out, since nothing can use it any more.
 */
async function listHashes(store: Store, keyId: string, nowMs: number, batchMax = BATCH_MAX): Promise<number> {
  store.root.resetReadTxn();
  let listed = 0;
  const put = async (entries: [RetiredHashKey, RetiredHash][]) => {
    if (entries.length === 0) return;
    await store.root.transaction(() => {
      for (const [key, value] of entries) store.retiredHashes.put(key, value);
    });
    listed += entries.length;
  };
  for (const page of pagesOf(store.credentials, batchMax)) {
    const entries: [RetiredHashKey, RetiredHash][] = [];
    for (const { key: hash, value } of page) {
      if (unusable(store, value, nowMs)) continue;
      if (store.retiredHashes.get(['credential', hash]) !== undefined) continue;
      entries.push([['credential', hash], { masterKeyId: keyId, hash }]);
    }
    await put(entries);
  }
  for (const page of pagesOf(store.otps, batchMax)) {
    const entries: [RetiredHashKey, RetiredHash][] = [];
    for (const { key: consumerId, value } of page) {
      if (value.otpHash === '' || value.expiresAtMs <= nowMs) continue;
      if (store.retiredHashes.get(['otp', consumerId])?.hash === value.otpHash) continue;
      entries.push([['otp', consumerId], { masterKeyId: keyId, hash: value.otpHash }]);
    }
    await put(entries);
  }
  const operator = readMeta(store, META.operatorTokenHash);
  if (typeof operator === 'string' && store.retiredHashes.get(OPERATOR)?.hash !== operator)
    await put([[OPERATOR, { masterKeyId: keyId, hash: operator }]]);
  return listed;
}

const OPERATOR: RetiredHashKey = ['operator', 'operatorTokenHash'];

/**
 * A credential nothing can use any more: expired, or of an earlier generation of its subject (revoked,
 * see `isCurrentGeneration`). Neither keeps a retired key needed.
 */
function unusable(store: Store, credential: CredentialRecord, nowMs: number): boolean {
  if (credential.expiresAtMs !== null && credential.expiresAtMs <= nowMs) return true;
  return !isCurrentGeneration(store, credential);
}

type Dependent = { kind: DependentKind; subject: string; expiresAtMs: number | null };

/**
 * What a listed hash still stands for, or null when the entry is stale: its key is no longer retired, or
 * the credential was migrated, used up, revoked or expired, or the code or token hash was replaced.
 */
function dependentOf(
  store: Store,
  [kind, id]: RetiredHashKey,
  entry: RetiredHash,
  retiredIds: ReadonlySet<string>,
  nowMs: number,
): Dependent | null {
  if (!retiredIds.has(entry.masterKeyId)) return null;
  if (kind === 'credential') {
    const credential = store.credentials.get(id);
    if (!credential || unusable(store, credential, nowMs)) return null;
    return { kind: credential.kind, subject: credential.subject, expiresAtMs: credential.expiresAtMs };
  }
  if (kind === 'otp') {
    const otp = store.otps.get(id);
    if (!otp || otp.otpHash !== entry.hash || otp.expiresAtMs <= nowMs) return null;
    return { kind: 'otp', subject: id, expiresAtMs: otp.expiresAtMs };
  }
  return readMeta(store, META.operatorTokenHash) === entry.hash
    ? { kind: 'operator', subject: 'operator', expiresAtMs: null }
    : null;
}

/**
 * Deletes stale entries, and the entries under a key in `dropped` together with what only that key could
 * match: the credential, or the stored operator token hash (a pending verification code simply expires).
 */
async function prune(
  store: Store,
  retiredIds: ReadonlySet<string>,
  dropped: ReadonlySet<string>,
  nowMs: number,
): Promise<Record<DependentKind, number>> {
  store.root.resetReadTxn();
  const lost = noDependents();
  for (const page of pagesOf(store.retiredHashes, BATCH_MAX)) {
    await store.root.transaction(() => {
      for (const { key, value } of page) {
        const dependent = dependentOf(store, key, value, retiredIds, nowMs);
        if (dependent && !dropped.has(value.masterKeyId)) continue;
        store.retiredHashes.remove(key);
        if (!dependent) continue;
        lost[dependent.kind] += 1;
        if (key[0] === 'credential') store.credentials.remove(key[1]);
        if (key[0] === 'operator') store.meta.remove(META.operatorTokenHash);
      }
    });
  }
  return lost;
}

// ---------------------------------------------------------------------------------------------------
// Reports.

/** Which key opens each sealed value, and what still depends on each retired key. */
function report(store: Store, secrets: Secrets, secretsFile: string, nowMs: number): MasterKeyReport {
  const keys = [secrets.masterKey, ...secrets.retiredMasterKeys];
  const { counts, unreadable } = sealedByKey(store, keys);
  const retired = secrets.retiredMasterKeys.map(
    (key, index): RetiredKeyReport => ({
      masterKeyId: masterKeyId(key),
      sealedValues: counts[index + 1] ?? 0,
      dependents: noDependents(),
      merchantIds: [],
      lastExpiresAtMs: null,
    }),
  );
  const byId = new Map(retired.map((entry) => [entry.masterKeyId, entry]));
  const retiredIds = new Set(byId.keys());
  for (const { key, value } of store.retiredHashes.getRange()) {
    const dependent = dependentOf(store, key, value, retiredIds, nowMs);
    const entry = byId.get(value.masterKeyId);
    if (!dependent || !entry) continue;
    entry.dependents[dependent.kind] += 1;
    if (dependent.kind === 'merchant') entry.merchantIds.push(dependent.subject);
    if (dependent.expiresAtMs !== null)
      entry.lastExpiresAtMs = Math.max(entry.lastExpiresAtMs ?? 0, dependent.expiresAtMs);
  }
  return { secretsFile, masterKeyId: masterKeyId(secrets.masterKey), retired, unreadable };
}

function noDependents(): Record<DependentKind, number> {
  return { merchant: 0, device: 0, activation: 0, otp: 0, operator: 0 };
}

/** A database in key order, a page of at most `limit` records at a time (writes may come in between). */
function* pagesOf<V, K extends Key>(db: Database<V, K>, limit: number): Generator<{ key: K; value: V }[]> {
  let after: K | undefined;
  for (;;) {
    const range = db.getRange(
      after === undefined ? { limit } : { start: after, exclusiveStart: true, limit },
    );
    const page = Array.from(range, ({ key, value }) => ({ key, value }));
    if (page.length > 0) yield page;
    if (page.length < limit) return;
    after = page[page.length - 1]?.key;
  }
}
