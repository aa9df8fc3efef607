import { randomBytes } from 'node:crypto';
import { readFileSync } from 'node:fs';
import pg from 'pg';
import {
  type BaselineSeed,
  baselineCode,
  CARD_BALANCE_CENTS,
  CODE_CAP_CENTS,
  CODE_TTL_MS,
  codeHash,
  decline,
  type Redeemer,
  type RedeemOutcome,
  type RedeemRequest,
} from './seed.ts';

/**
 * The PostgreSQL baseline: the redeem as one READ COMMITTED transaction of row locks and small writes,
 * answered after COMMIT returns (synchronous_commit=on, so the WAL is flushed by then).
 */

const SCHEMA = readFileSync(new URL('./schema.sql', import.meta.url), 'utf8');
const SEED_BATCH = 10_000;

/** Creates the schema and seeds codes and cards in bulk (unnest of array parameters), then vacuums. */
export async function seedPostgres(url: string, seed: BaselineSeed, hashKey: Buffer): Promise<void> {
  const client = new pg.Client({ connectionString: url });
  await client.connect();
  try {
    await client.query(SCHEMA);
    await client.query('BEGIN');
    await client.query(
      `INSERT INTO cards (consumer_id, merchant_id, balance_cents)
       SELECT 'c' || a, 'm' || m, $3
       FROM generate_series(0, $1::int - 1) AS a, generate_series(0, $2::int - 1) AS m`,
      [seed.accounts, seed.merchants, CARD_BALANCE_CENTS],
    );
    const expiresAt = new Date(Date.now() + CODE_TTL_MS);
    for (let start = 0; start < seed.codes; start += SEED_BATCH) {
      const end = Math.min(seed.codes, start + SEED_BATCH);
      const merchants: string[] = [];
      const hashes: string[] = [];
      const consumers: string[] = [];
      for (let i = start; i < end; i++) {
        const { merchantId, code, consumerId } = baselineCode(i, seed);
        merchants.push(merchantId);
        hashes.push(codeHash(hashKey, merchantId, code));
        consumers.push(consumerId);
      }
      await client.query(
        `INSERT INTO codes (merchant_id, code_hash, consumer_id, cap_cents, expires_at)
         SELECT m, h, c, $4, $5 FROM unnest($1::text[], $2::text[], $3::text[]) AS t(m, h, c)`,
        [merchants, hashes, consumers, CODE_CAP_CENTS, expiresAt],
      );
    }
    await client.query('COMMIT');
    // Steady state before measuring: statistics, visibility map and hint bits, and no seed WAL left
    // for a checkpoint to write during the run.
    await client.query('VACUUM ANALYZE');
    await client.query('CHECKPOINT');
  } finally {
    await client.end();
  }
}

// Named statements: parsed once per connection, then only bound and executed.
const SQL = {
  storedResult: 'SELECT result FROM idempotency WHERE terminal_id = $1 AND key = $2',
  lockCode: `SELECT consumer_id, state, cap_cents, expires_at > now() AS fresh
             FROM codes WHERE merchant_id = $1 AND code_hash = $2 FOR UPDATE`,
  lockCard: 'SELECT balance_cents FROM cards WHERE consumer_id = $1 AND merchant_id = $2 FOR UPDATE',
  debitCard:
    'UPDATE cards SET balance_cents = balance_cents - $3 WHERE consumer_id = $1 AND merchant_id = $2',
  redeemCode: `UPDATE codes SET state = 'redeemed', auth_id = $3 WHERE merchant_id = $1 AND code_hash = $2`,
  journal: `INSERT INTO journal (auth_id, account, amount_cents)
            VALUES ($1, 'card:' || $2 || ':' || $3, -$4::bigint), ($1, 'merchant:' || $3, $4::bigint)`,
  storeResult: 'INSERT INTO idempotency (terminal_id, key, result) VALUES ($1, $2, $3)',
} as const;

type Statement = keyof typeof SQL;

function query(client: pg.PoolClient, name: Statement, values: unknown[]) {
  return client.query({ name, text: SQL[name], values });
}

const UNIQUE_VIOLATION = '23505';

interface CodeRow {
  consumer_id: string;
  state: string;
  cap_cents: string;
  fresh: boolean;
}

/** Why a locked code cannot pay `amountCents`, or null if it can. */
function codeRefusal(code: CodeRow | undefined, amountCents: number): string | null {
  if (code?.state !== 'live') return 'invalid_code';
  if (!code.fresh) return 'expired_code';
  if (amountCents > Number(code.cap_cents)) return 'over_cap';
  return null;
}

export interface PostgresRedeemerOptions {
  url: string;
  pool: number;
  hashKey: Buffer;
}

/** A pg Pool of `pool` connections, all opened before it returns. */
export async function postgresRedeemer(options: PostgresRedeemerOptions): Promise<Redeemer> {
  const pool = new pg.Pool({ connectionString: options.url, max: options.pool, idleTimeoutMillis: 0 });
  pool.on('error', (error) => console.error(`postgres baseline: idle connection failed: ${error.message}`));
  const warm = await Promise.all(Array.from({ length: options.pool }, () => pool.connect()));
  for (const client of warm) client.release();

  const transact = async (request: RedeemRequest): Promise<RedeemOutcome> => {
    const { terminalId, key, merchantId, amountCents } = request;
    const hash = codeHash(options.hashKey, merchantId, request.code);
    const client = await pool.connect();
    let broken: Error | undefined;
    try {
      await client.query('BEGIN');
      const stored = await query(client, 'storedResult', [terminalId, key]);
      if (stored.rows[0]) {
        await client.query('COMMIT');
        return stored.rows[0].result as RedeemOutcome;
      }
      const code = (await query(client, 'lockCode', [merchantId, hash])).rows[0] as CodeRow | undefined;
      if (code?.state === 'redeemed') {
        // Perhaps by a concurrent retry with this key that committed while we waited for the row lock.
        const again = await query(client, 'storedResult', [terminalId, key]);
        if (again.rows[0]) {
          await client.query('COMMIT');
          return again.rows[0].result as RedeemOutcome;
        }
      }
      const refusal = codeRefusal(code, amountCents);
      if (refusal || !code) {
        await client.query('ROLLBACK');
        return decline(refusal ?? 'invalid_code');
      }
      const consumerId = code.consumer_id;
      const card = (await query(client, 'lockCard', [consumerId, merchantId])).rows[0];
      if (!card || Number(card.balance_cents) < amountCents) {
        await client.query('ROLLBACK');
        return decline('insufficient_funds');
      }
      const authId = randomBytes(12).toString('base64url');
      await query(client, 'debitCard', [consumerId, merchantId, amountCents]);
      await query(client, 'redeemCode', [merchantId, hash, authId]);
      await query(client, 'journal', [authId, consumerId, merchantId, amountCents]);
      const result: RedeemOutcome = {
        status: 'approved',
        authId,
        approvedCents: amountCents,
        balanceCents: Number(card.balance_cents) - amountCents,
      };
      await query(client, 'storeResult', [terminalId, key, result]);
      await client.query('COMMIT');
      return result;
    } catch (error) {
      await client.query('ROLLBACK').catch((rollbackError: Error) => {
        broken = rollbackError;
      });
      throw error;
    } finally {
      client.release(broken);
    }
  };

  return {
    async redeem(request) {
      try {
        return await transact(request);
      } catch (error) {
        // A concurrent retry with the same key committed first: answer what it stored.
        if ((error as { code?: string }).code !== UNIQUE_VIOLATION) throw error;
        const stored = await pool.query(SQL.storedResult, [request.terminalId, request.key]);
        if (!stored.rows[0]) throw error;
        return stored.rows[0].result as RedeemOutcome;
      }
    },
    close: () => pool.end(),
  };
}
