import { createHmac, randomBytes, timingSafeEqual } from 'node:crypto';
import { seal, unsealWithAny } from '../core/seal.ts';
import type { Logger } from '../log/logger.ts';
import { type CredentialRecord, type Store, whenDurable } from '../persistence/store.ts';

/**
 * The registry's tables under the master keys: how each part of the registry (credentials.ts,
 * merchants.ts, terminals.ts, verification.ts, phones.ts) hashes, seals and writes. Secrets are never
 * stored in the clear: tokens, API keys, activation and verification codes are stored as keyed hashes
 * (HMAC under the master key); terminal keys, bank details, phone numbers and queued texts are sealed
 * (AES-256-GCM under the master key). Every write is serialized with every other and waits until it is
 * durable. After a master key rotation, values and hashes made before it are still opened and matched
 * under the retired keys (docs/key-rotation.md).
 *
 * @module
 */

export class RegistryTables {
  /**
   * The master key first, then the retired ones newest first: a value sealed or a hash made before a
   * rotation is still opened or matched under the key it was made with.
   */
  readonly masterKeys: readonly Buffer[];
  /** Records kept as read; every write clears them once durable, so a record read meanwhile is not kept. */
  private readonly caches: Map<string, unknown>[] = [];

  constructor(
    readonly store: Store,
    readonly masterKey: Buffer,
    retiredMasterKeys: readonly Buffer[],
    readonly logger: Logger,
  ) {
    this.masterKeys = [masterKey, ...retiredMasterKeys];
  }

  /** A cache of records as read, cleared by every write. */
  cache<V>(): Map<string, V> {
    const cache = new Map<string, V>();
    this.caches.push(cache as Map<string, unknown>);
    return cache;
  }

  /** Forgets every record kept as read (another node wrote the tables: registry.ts `reread`). */
  clearCaches(): void {
    for (const cache of this.caches) cache.clear();
  }

  /** A record by id, from `cache` or else the database (and then kept); an id of another shape is none. */
  readThrough<V>(id: string, cache: Map<string, V>, db: { get(id: string): V | undefined }): V | undefined {
    if (!isRegistryId(id)) return undefined;
    const cached = cache.get(id);
    if (cached) return cached;
    const value = db.get(id);
    if (value) cache.set(id, value);
    return value;
  }

  /** Runs `body` in one write transaction (serialized with every other) and waits until it is durable. */
  async write<T>(body: () => T): Promise<T> {
    try {
      const result = (await this.store.root.transaction(body)) as T;
      await whenDurable(this.store);
      return result;
    } finally {
      for (const cache of this.caches) cache.clear();
    }
  }

  /** A write nobody waits for (moving a hash under the master key): a failure is logged, nothing else. */
  writeInBackground(what: string, body: () => void): Promise<void> {
    return this.write(body).catch((error: unknown) => this.logger.error(`${what} failed`, { err: error }));
  }

  hash(purpose: string, value: string, key: Buffer = this.masterKey): string {
    return createHmac('sha256', key).update(`${purpose}|${value}`).digest('base64url');
  }

  /** Whether a stored hash is `value`'s under the master key or under a retired one. */
  matchesHash(stored: string, purpose: string, value: string): boolean {
    return this.masterKeys.some((key) => safeEqual(stored, this.hash(purpose, value, key)));
  }

  /** The credential a token or code stands for, under the master key's hash or else a retired key's. */
  credentialOf(purpose: string, value: string): { hash: string; credential: CredentialRecord } | undefined {
    for (const key of this.masterKeys) {
      const hash = this.hash(purpose, value, key);
      const credential = this.store.credentials.get(hash);
      if (credential) return { hash, credential };
    }
    return undefined;
  }

  /** Seals `text` under the master key, bound to its record (core/seal.ts `SEALED_FOR`). */
  seal(text: string, record: string): string {
    return seal(this.masterKey, text, record);
  }

  /**
   * Opens a value of `record` sealed under the master key or, until a rotation re-sealed it, under a
   * retired one; a value bound to another record does not open.
   */
  open(sealed: string, record: string): string {
    const opened = unsealWithAny(this.masterKeys, sealed, record);
    if (!opened) throw new Error('a sealed value opens with none of the master keys');
    return opened.text;
  }
}

/** Ids the registry mints are short and plain; anything else is unknown without touching LMDB. */
export function isRegistryId(id: string): boolean {
  return typeof id === 'string' && /^[A-Za-z0-9_-]{1,64}$/.test(id);
}

/** A new secret token: its kind as a prefix, then 256 random bits. */
export function newToken(prefix: string): string {
  return `${prefix}_${randomBytes(32).toString('base64url')}`;
}

export function safeEqual(a: string, b: string): boolean {
  const left = Buffer.from(a);
  const right = Buffer.from(b);
  return left.length === right.length && timingSafeEqual(left, right);
}
