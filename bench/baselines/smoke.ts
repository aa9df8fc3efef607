import { Redis } from 'ioredis';
import pg from 'pg';
import WebSocket from 'ws';
import { cpuMsOf, isAlive } from '../proc.ts';
import { type Baseline, type BaselineKind, baselineCode, startBaseline } from './index.ts';
import { cardKey, JOURNAL_KEY } from './redis.ts';
import { CARD_BALANCE_CENTS } from './seed.ts';

/**
 * Smoke test of the baselines, end to end:
 *   node --import tsx bench/baselines/smoke.ts [echo] [postgres] [redis]
 * Each starts with 20,000 codes, redeems them all over 50 connections (several in flight on each),
 * checks every answer, a decline, a retry and the database's totals, then stops and checks that its
 * processes are gone.
 */

const SEED = { codes: 20_000, merchants: 4, accounts: 5_000 };
const CONNECTIONS = 50;
const IN_FLIGHT_PER_CONNECTION = 8;
const AMOUNT_CENTS = 100;

interface Answer {
  type: string;
  seq: number;
  status: string;
  authId?: string;
  approvedCents: number;
  balanceCents?: number;
}

/** One WebSocket connection; answers are matched to requests by seq. */
class Connection {
  private nextSeq = 1;
  private readonly pending = new Map<number, { text: string; resolve: (answer: string) => void }>();

  private constructor(private readonly ws: WebSocket) {
    ws.on('message', (data) => {
      const text = data.toString();
      const seq = (JSON.parse(text) as { seq: number }).seq;
      const waiter = this.pending.get(seq);
      if (!waiter) throw new Error(`answer to unknown seq ${seq}`);
      this.pending.delete(seq);
      waiter.resolve(text);
    });
  }

  static open(url: string): Promise<Connection> {
    return new Promise((resolve, reject) => {
      const ws = new WebSocket(url);
      ws.once('open', () => resolve(new Connection(ws)));
      ws.once('error', reject);
    });
  }

  /** Sends a redeem; resolves with the raw answer text and the text sent. */
  redeem(i: number, key: string, amountCents = AMOUNT_CENTS): Promise<{ sent: string; answer: string }> {
    const { merchantId, code } = baselineCode(i, SEED);
    const seq = this.nextSeq++;
    const text = JSON.stringify({
      type: 'redeem',
      seq,
      terminalId: `t${i % CONNECTIONS}`,
      key,
      merchantId,
      code,
      amountCents,
    });
    return new Promise((resolve) => {
      this.pending.set(seq, { text, resolve: (answer) => resolve({ sent: text, answer }) });
      this.ws.send(text);
    });
  }

  close(): void {
    this.ws.close();
  }
}

function check(condition: boolean, message: string): void {
  if (!condition) throw new Error(`check failed: ${message}`);
}

async function redeemOne(
  connection: Connection,
  i: number,
  key: string,
  amountCents?: number,
): Promise<Answer> {
  const { answer } = await connection.redeem(i, key, amountCents);
  return JSON.parse(answer) as Answer;
}

async function checkDatabase(baseline: Baseline): Promise<string> {
  const url = baseline.databaseUrl;
  if (!url) return '';
  const debited = SEED.codes * AMOUNT_CENTS;
  if (baseline.kind === 'postgres') {
    const client = new pg.Client({ connectionString: url });
    await client.connect();
    try {
      const { rows } = await client.query(
        `SELECT (SELECT count(*) * $1::bigint - sum(balance_cents) FROM cards) AS debited,
                (SELECT count(*) FROM journal) AS legs,
                (SELECT coalesce(sum(amount_cents), 0) FROM journal) AS journal_sum,
                (SELECT count(*) FROM codes WHERE state = 'redeemed') AS redeemed,
                (SELECT count(*) FROM idempotency) AS results`,
        [CARD_BALANCE_CENTS],
      );
      const row = rows[0];
      check(Number(row.debited) === debited, `cards debited ${row.debited}, expected ${debited}`);
      check(Number(row.legs) === 2 * SEED.codes, `journal rows ${row.legs}, expected ${2 * SEED.codes}`);
      check(Number(row.journal_sum) === 0, `journal legs sum to ${row.journal_sum}, expected 0`);
      check(Number(row.redeemed) === SEED.codes, `redeemed codes ${row.redeemed}`);
      check(Number(row.results) === SEED.codes, `idempotency rows ${row.results}`);
      return `db: debited ${row.debited} cents, ${row.legs} journal rows, ${row.redeemed} codes redeemed`;
    } finally {
      await client.end();
    }
  }
  const redis = new Redis(url);
  try {
    const keys: string[] = [];
    for (let a = 0; a < SEED.accounts; a++) {
      for (let m = 0; m < SEED.merchants; m++) keys.push(cardKey(`c${a}`, `m${m}`));
    }
    const balances = await redis.mget(keys);
    const total = balances.reduce((sum, balance) => sum + CARD_BALANCE_CENTS - Number(balance), 0);
    const entries = await redis.xlen(JOURNAL_KEY);
    const size = await redis.dbsize();
    check(total === debited, `cards debited ${total}, expected ${debited}`);
    check(entries === SEED.codes, `journal entries ${entries}, expected ${SEED.codes}`);
    // Cards, codes, one idempotency key per redeem, the journal stream.
    const expected = keys.length + 2 * SEED.codes + 1;
    check(size === expected, `keys ${size}, expected ${expected}`);
    return `db: debited ${total} cents, ${entries} journal entries, ${size} keys`;
  } finally {
    redis.disconnect();
  }
}

async function smoke(kind: BaselineKind): Promise<void> {
  const started = performance.now();
  const baseline = await startBaseline(kind, SEED);
  console.log(
    `${kind}: ${baseline.describe}; ready in ${(performance.now() - started).toFixed(0)} ms ` +
      `(seeding ${baseline.seedMs.toFixed(0)} ms) at ${baseline.url}`,
  );
  const pids = baseline.serverPids();
  try {
    const connections = await Promise.all(
      Array.from({ length: CONNECTIONS }, () => Connection.open(baseline.url)),
    );
    const first = connections[0] as Connection;
    if (kind !== 'echo') {
      // Index 3,999,996 is merchant m0, code '999999': well-formed, never seeded.
      const unknown = await redeemOne(first, 3_999_996, 'k-unknown');
      check(unknown.status === 'invalid_code', `an unknown code answers ${unknown.status}`);
      const tooMuch = await redeemOne(first, 0, 'k-over-cap', 2_000_000);
      check(tooMuch.status === 'over_cap' && tooMuch.approvedCents === 0, `over the cap: ${tooMuch.status}`);
    }

    const authIds: (string | undefined)[] = [];
    let next = 0;
    const cpu0 = cpuMsOf(pids, { reapedChildren: true });
    const t0 = performance.now();
    const worker = async (connection: Connection) => {
      while (next < SEED.codes) {
        const i = next++;
        const { sent, answer } = await connection.redeem(i, `k-${i}`);
        if (kind === 'echo') {
          check(answer === sent, `echo of ${i} differs`);
          continue;
        }
        const result = JSON.parse(answer) as Answer;
        check(result.type === 'redeemResult', `answer type ${result.type}`);
        check(
          result.status === 'approved' && result.approvedCents === AMOUNT_CENTS,
          `code ${i}: ${result.status}, approvedCents ${result.approvedCents}`,
        );
        authIds[i] = result.authId;
      }
    };
    await Promise.all(
      connections.flatMap((connection) =>
        Array.from({ length: IN_FLIGHT_PER_CONNECTION }, () => worker(connection)),
      ),
    );
    const elapsedMs = performance.now() - t0;
    const cpuMs = cpuMsOf(pids, { reapedChildren: true }) - cpu0;
    console.log(
      `${kind}: ${SEED.codes} ${kind === 'echo' ? 'echoes' : 'redemptions'} in ${elapsedMs.toFixed(0)} ms = ` +
        `${Math.round((SEED.codes / elapsedMs) * 1000)}/s over ${CONNECTIONS} connections x ` +
        `${IN_FLIGHT_PER_CONNECTION} in flight; server CPU ${((cpuMs / SEED.codes) * 1000).toFixed(0)} ms per 1000`,
    );

    if (kind !== 'echo') {
      const again = await redeemOne(first, 0, 'k-again');
      check(again.status !== 'approved' && again.approvedCents === 0, `code 0 again: ${again.status}`);
      const retry = await redeemOne(first, 1, 'k-1');
      check(
        retry.status === 'approved' && retry.authId === authIds[1],
        'a retry with the same key answers the same',
      );
      console.log(`${kind}: code 0 again -> ${again.status}; retry of code 1 with its key -> same authId`);
      console.log(`${kind}: ${await checkDatabase(baseline)}`);
    }
    for (const connection of connections) connection.close();
  } finally {
    await baseline.stop();
  }
  const alive = pids.filter(isAlive);
  check(alive.length === 0, `processes still running: ${alive.join(' ')}`);
  console.log(`${kind}: stopped; all ${pids.length} server processes gone`);
}

const kinds = process.argv.slice(2) as BaselineKind[];
for (const kind of kinds.length > 0 ? kinds : (['echo', 'postgres', 'redis'] as const)) await smoke(kind);
