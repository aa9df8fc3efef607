import { randomBytes } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { Redis } from 'ioredis';
import {
  type BaselineSeed,
  baselineCode,
  CARD_BALANCE_CENTS,
  CODE_CAP_CENTS,
  CODE_TTL_MS,
  codeHash,
  type Redeemer,
  type RedeemOutcome,
} from './seed.ts';

/**
 * The Redis baseline: the redeem as one Lua script (redeem.lua), loaded once with SCRIPT LOAD and
 * called with EVALSHA over a few auto-pipelined ioredis connections.
 */

const SCRIPT = readFileSync(new URL('./redeem.lua', import.meta.url), 'utf8');
const IDEMPOTENCY_TTL_S = 86_400;
const SEED_BATCH = 5_000;

/** Seeds a batch of codes in one call: KEYS are code keys, ARGV capCents, expiresAtMs, then each consumer. */
const SEED_CODES = `
for i, key in ipairs(KEYS) do
  redis.call('HSET', key, 'consumer', ARGV[i + 2], 'state', 'live', 'capCents', ARGV[1], 'expiresAtMs', ARGV[2])
end
return #KEYS`;

export const JOURNAL_KEY = 'journal';
export const cardKey = (consumerId: string, merchantId: string) => `card:${consumerId}:${merchantId}`;
const codeKey = (merchantId: string, hash: string) => `code:${merchantId}:${hash}`;
const idempotencyKey = (terminalId: string, key: string) => `idem:${terminalId}:${key}`;

/** Seeds cards (one integer each, MSET in batches) and codes (one hash each, SEED_CODES in batches). */
export async function seedRedis(url: string, seed: BaselineSeed, hashKey: Buffer): Promise<void> {
  const redis = new Redis(url);
  try {
    for (let start = 0; start < seed.accounts; start += SEED_BATCH) {
      const pairs: (string | number)[] = [];
      for (let a = start; a < Math.min(seed.accounts, start + SEED_BATCH); a++) {
        for (let m = 0; m < seed.merchants; m++) pairs.push(cardKey(`c${a}`, `m${m}`), CARD_BALANCE_CENTS);
      }
      await redis.mset(pairs);
    }
    const expiresAtMs = Date.now() + CODE_TTL_MS;
    for (let start = 0; start < seed.codes; start += SEED_BATCH) {
      const keys: string[] = [];
      const consumers: string[] = [];
      for (let i = start; i < Math.min(seed.codes, start + SEED_BATCH); i++) {
        const { merchantId, code, consumerId } = baselineCode(i, seed);
        keys.push(codeKey(merchantId, codeHash(hashKey, merchantId, code)));
        consumers.push(consumerId);
      }
      await redis.eval(SEED_CODES, keys.length, ...keys, CODE_CAP_CENTS, expiresAtMs, ...consumers);
    }
  } finally {
    redis.disconnect();
  }
}

export interface RedisRedeemerOptions {
  url: string;
  /** Connections, used round-robin; each pipelines the commands issued in the same tick. */
  pool: number;
  hashKey: Buffer;
}

export async function redisRedeemer(options: RedisRedeemerOptions): Promise<Redeemer> {
  const connections = Array.from(
    { length: options.pool },
    () => new Redis(options.url, { enableAutoPipelining: true }),
  );
  let sha = '';
  const load = async () => {
    sha = String(await connections[0]?.script('LOAD', SCRIPT));
  };
  await load();
  await Promise.all(connections.map((redis) => redis.ping()));
  let next = 0;

  return {
    async redeem(request) {
      const { terminalId, key, merchantId, amountCents } = request;
      const redis = connections[next++ % connections.length] as Redis;
      const keys = [
        idempotencyKey(terminalId, key),
        codeKey(merchantId, codeHash(options.hashKey, merchantId, request.code)),
        JOURNAL_KEY,
      ];
      const args = [merchantId, amountCents, randomBytes(12).toString('base64url'), IDEMPOTENCY_TTL_S];
      let answer: unknown;
      try {
        answer = await redis.evalsha(sha, keys.length, ...keys, ...args);
      } catch (error) {
        // The server forgot the script (restarted or SCRIPT FLUSH): load it again, once.
        if (!String(error).includes('NOSCRIPT')) throw error;
        await load();
        answer = await redis.evalsha(sha, keys.length, ...keys, ...args);
      }
      return JSON.parse(String(answer)) as RedeemOutcome;
    },
    async close() {
      await Promise.all(connections.map((redis) => redis.quit()));
    },
  };
}
