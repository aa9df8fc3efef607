import { randomBytes } from 'node:crypto';

/**
 * Branded ids. Every id the engine mints carries the slot that owns it (`<prefix>_<slot>_<random>`),
 * so any request can be routed to its shard from the id alone, without a global lookup. Slots are a
 * fixed partition of the keyspace; shards own slots (`slot % shardCount`), so the shard count may
 * change between restarts without moving data.
 *
 * @module
 */

export type ConsumerId = string & { readonly __brand: 'ConsumerId' };
export type MerchantId = string & { readonly __brand: 'MerchantId' };
export type TerminalId = string & { readonly __brand: 'TerminalId' };
export type CardId = string & { readonly __brand: 'CardId' };
export type AuthId = string & { readonly __brand: 'AuthId' };
export type RefundId = string & { readonly __brand: 'RefundId' };
export type GiftId = string & { readonly __brand: 'GiftId' };

/** 64 divides both 256 (one random byte) and 10^6 (the code space), so both map uniformly. */
export const SLOT_COUNT = 64;

export const ID_PREFIX = { card: 'cd', auth: 'au', refund: 'rf', gift: 'gf', consumer: 'cu' } as const;

// One CSPRNG call per 4 KiB of ids instead of one per id (a call costs about 2 µs).
const POOL_BYTES = 4096;
let pool = randomBytes(POOL_BYTES);
let poolOffset = 0;

function randomChunk(bytes: number): Buffer {
  if (poolOffset + bytes > POOL_BYTES) {
    pool = randomBytes(POOL_BYTES);
    poolOffset = 0;
  }
  poolOffset += bytes;
  return pool.subarray(poolOffset - bytes, poolOffset);
}

/**
 * Ids start with the time they were minted (base36, fixed width), so new records append to the end of
 * their slot's range in LMDB instead of dirtying a random page; 9 random bytes keep them unguessable.
 */
export function mintId<T extends string>(prefix: string, slot: number): T {
  return `${prefix}_${slot}_${Date.now().toString(36).padStart(9, '0')}${randomChunk(9).toString('base64url')}` as T;
}

/** The slot of an engine-minted id, or -1 when the string is not one. */
export function slotOfId(id: string): number {
  const first = id.indexOf('_');
  const second = id.indexOf('_', first + 1);
  if (first < 1 || second < 0 || second - first > 3) return -1;
  const slot = Number(id.slice(first + 1, second));
  return Number.isInteger(slot) && slot >= 0 && slot < SLOT_COUNT ? slot : -1;
}

export function shardOfSlot(slot: number, shardCount: number): number {
  return slot % shardCount;
}
