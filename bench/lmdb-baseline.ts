import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { type Database, type Key, open, type RootDatabase } from 'lmdb';
import { fmtInt, fmtMs, otherLoad, processCpuMs, summarize, table } from './measure.ts';

/**
 * The storage ceiling under the engine's durability discipline: raw lmdb-js, one environment opened
 * as persistence/store.ts opens it (overlappingSync), batched puts inside `root.transaction(() => ...)`,
 * each batch acknowledged only once `root.flushed` resolves (as `whenDurable` does), with a fixed
 * number of batches in flight. Two variants:
 * - `puts`: batches of `batch` account-like values (~200 bytes of msgpack) overwriting a key pool;
 * - `redemption`: batches of `batch` redemption-equivalents, 7 puts each into 7 databases, with the
 *   shapes the engine writes per redemption (account snapshot, auth, idempotency record, journal
 *   entry, history line, code index entry, meta counter).
 */
export interface LmdbBaselineOptions {
  /** Seconds measured per variant (after a short warm-up). */
  seconds: number;
  /** Puts per batch (`puts`), redemption-equivalents per batch (`redemption`). */
  batch: number;
  /** Batches in flight. */
  inFlight: number;
  /** Size of the account key pool. */
  accounts: number;
}

export interface LmdbVariantResult {
  variant: 'puts' | 'redemption';
  batches: number;
  puts: number;
  /** Redemption-equivalents (the `redemption` variant), else puts. */
  units: number;
  elapsedMs: number;
  putsPerSec: number;
  batchesPerSec: number;
  unitsPerSec: number;
  batchLatency: ReturnType<typeof summarize>;
  cpuMsPer1000Units: number;
  cpuSystemMsPer1000Units: number;
  valueBytes: number;
  /** Cores other processes kept busy meanwhile (should be ~0 for a clean run). */
  otherCores: number;
}

export interface LmdbBaselineResult {
  options: LmdbBaselineOptions;
  puts: LmdbVariantResult;
  redemption: LmdbVariantResult;
}

const MERCHANTS = ['m0', 'm1', 'm2', 'm3'];

function consumerId(i: number): string {
  return `cu_${i % 64}_${randomBytes(16).toString('base64url')}`;
}

function accountRecord(id: string, i: number, balanceCents: number) {
  const merchantId = MERCHANTS[i % MERCHANTS.length] as string;
  return {
    value: { code: 'redeemed', funds: 'funded', access: 'active' },
    context: {
      consumerId: id,
      cards: [
        {
          cardId: `cd_${i % 64}_${randomBytes(12).toString('base64url')}`,
          merchantId,
          kind: 'gift',
          balanceCents,
          heldCents: 0,
          lots: [],
        },
      ],
      code: null,
      lastCode: {
        codeHash: randomBytes(20).toString('base64url').slice(0, 27),
        merchantId,
        fate: 'redeemed',
        expiresAtMs: Date.now() + 1_200_000,
      },
      frozen: false,
    },
  };
}

interface Dbs {
  root: RootDatabase;
  accounts: Database<unknown, Key>;
  auths: Database<unknown, Key>;
  idempotency: Database<unknown, Key>;
  journal: Database<unknown, Key>;
  history: Database<unknown, Key>;
  codes: Database<unknown, Key>;
  meta: Database<unknown, Key>;
}

/** Bytes of a value as the database's own encoder (msgpackr, as lmdb-js configures it) writes it. */
function encodedSize(db: Database<unknown, Key>, value: unknown): number {
  const { encoder } = db as unknown as { encoder?: { encode(value: unknown): Uint8Array } };
  return encoder ? encoder.encode(value).length : 0;
}

/** Opens a fresh environment with the engine's options (persistence/store.ts). */
function openDbs(path: string): Dbs {
  const root = open({ path, maxDbs: 16, mapSize: 64 * 1024 ** 3, overlappingSync: true });
  const db = (name: string) => root.openDB<unknown, Key>({ name });
  return {
    root,
    accounts: db('accounts'),
    auths: db('auths'),
    idempotency: db('idempotency'),
    journal: db('journal'),
    history: db('history'),
    codes: db('codes'),
    meta: db('meta'),
  };
}

/**
 * Runs `writeBatch` inside root.transaction, then waits for root.flushed, keeping `inFlight` batches
 * outstanding, until `seconds` have passed. Returns batch latencies and counts.
 */
/** Turns one driven run into per-unit figures (a unit is one put, or one 7-put redemption-equivalent). */
function variantResult(
  variant: LmdbVariantResult['variant'],
  run: Awaited<ReturnType<typeof drive>>,
  unitsPerBatch: number,
  putsPerUnit: number,
  valueBytes: number,
): LmdbVariantResult {
  const units = run.batches * unitsPerBatch;
  const perSec = (count: number) => (count / run.elapsedMs) * 1000;
  return {
    variant,
    batches: run.batches,
    puts: units * putsPerUnit,
    units,
    elapsedMs: run.elapsedMs,
    putsPerSec: perSec(units * putsPerUnit),
    batchesPerSec: perSec(run.batches),
    unitsPerSec: perSec(units),
    batchLatency: summarize(Float64Array.from(run.latencies)),
    cpuMsPer1000Units: (run.cpuMs / units) * 1000,
    cpuSystemMsPer1000Units: (run.systemMs / units) * 1000,
    valueBytes,
    otherCores: run.otherCores,
  };
}

async function drive(
  dbs: Dbs,
  seconds: number,
  inFlight: number,
  writeBatch: () => void,
): Promise<{
  batches: number;
  elapsedMs: number;
  latencies: number[];
  cpuMs: number;
  systemMs: number;
  otherCores: number;
}> {
  const latencies: number[] = [];
  const others = otherLoad();
  let batches = 0;
  const cpu0 = processCpuMs();
  const started = performance.now();
  const deadline = started + seconds * 1000;
  const lane = async () => {
    while (performance.now() < deadline) {
      const sent = performance.now();
      await dbs.root.transaction(writeBatch);
      await new Promise<void>((resolve, reject) => dbs.root.flushed.then(() => resolve(), reject));
      latencies.push(performance.now() - sent);
      batches++;
    }
  };
  await Promise.all(Array.from({ length: inFlight }, lane));
  const elapsedMs = performance.now() - started;
  const cpu1 = processCpuMs();
  return {
    batches,
    elapsedMs,
    latencies,
    cpuMs: cpu1.userMs - cpu0.userMs + (cpu1.systemMs - cpu0.systemMs),
    systemMs: cpu1.systemMs - cpu0.systemMs,
    otherCores: others.end(elapsedMs),
  };
}

export async function runLmdbBaseline(options: LmdbBaselineOptions): Promise<LmdbBaselineResult> {
  const dir = mkdtempSync(join(tmpdir(), 'paycode-bench-lmdb-'));
  const dbs = openDbs(join(dir, 'lmdb'));
  try {
    const ids = Array.from({ length: options.accounts }, (_, i) => consumerId(i));
    const records = ids.map((id, i) => accountRecord(id, i, 100_000));
    // Pre-populate the account pool so the measured puts overwrite, as account snapshots do.
    await dbs.root.transaction(() => {
      for (let i = 0; i < ids.length; i++) dbs.accounts.put(ids[i] as string, records[i]);
    });
    await dbs.root.flushed;

    const accountBytes = encodedSize(dbs.accounts, records[0]);

    // Variant 1: plain puts of account-like values.
    let cursor = 0;
    const putBatch = () => {
      for (let k = 0; k < options.batch; k++) {
        const i = cursor++ % ids.length;
        const record = records[i] as ReturnType<typeof accountRecord>;
        (record.context.cards[0] as { balanceCents: number }).balanceCents -= 1;
        dbs.accounts.put(ids[i] as string, record);
      }
    };
    await drive(dbs, Math.min(0.5, options.seconds / 4), options.inFlight, putBatch); // warm-up
    const plain = await drive(dbs, options.seconds, options.inFlight, putBatch);
    const puts = variantResult('puts', plain, options.batch, 1, accountBytes);

    // Variant 2: 7 puts per redemption-equivalent, into 7 databases.
    let seq = 0;
    let redemptionBytes = 0;
    const redemptionBatch = () => {
      const nowMs = Date.now();
      // Random ids as the engine mints them (auth ids, input hashes), drawn in bulk for the batch.
      const random = randomBytes(28 * options.batch).toString('base64url');
      for (let k = 0; k < options.batch; k++) {
        const i = cursor++ % ids.length;
        const id = ids[i] as string;
        const record = records[i] as ReturnType<typeof accountRecord>;
        const card = record.context.cards[0] as { cardId: string; merchantId: string; balanceCents: number };
        card.balanceCents -= 500;
        const authId = `au_${i % 64}_${random.slice(k * 37, k * 37 + 16)}`;
        const inputHash = random.slice(k * 37 + 16, k * 37 + 37) + String(k % 10);
        const terminal = `t:t${i % 256}`;
        const key = `r${seq}`;
        const auth = {
          authId,
          consumerId: id,
          merchantId: card.merchantId,
          terminalId: terminal.slice(2),
          atMs: nowMs,
          capturedCents: 500,
          giftCents: 500,
          rewardLots: [],
          refundedCents: 0,
          refundedGiftCents: 0,
          state: 'approved',
        };
        const reply = { status: 'approved', authId, approvedCents: 500, balanceCents: card.balanceCents };
        const idem = { op: 'redeem', inputHash, reply, atMs: nowMs };
        const journal = {
          atMs: nowMs,
          kind: 'redeem',
          consumerId: id,
          merchantId: card.merchantId,
          ref: authId,
          legs: [
            { account: `card:${card.cardId}`, cents: -500 },
            { account: `merchant:${card.merchantId}:payable`, cents: 500 },
          ],
        };
        const history = {
          atMs: nowMs,
          kind: 'redeem',
          merchantId: card.merchantId,
          ref: authId,
          cardId: card.cardId,
          amountCents: -500,
          balanceCents: card.balanceCents,
        };
        const code = { consumerId: id, expiresAtMs: nowMs + 1_200_000 };
        const codeHash = record.context.lastCode.codeHash;
        seq += 2;
        dbs.accounts.put(id, record);
        dbs.auths.put(authId, auth);
        dbs.idempotency.put([terminal, key], idem);
        dbs.journal.put([nowMs, 0, seq - 1], journal);
        dbs.history.put([id, nowMs, 0, seq], history);
        dbs.codes.put([card.merchantId, codeHash], code);
        dbs.meta.put('journalSeq:0', seq);
        if (redemptionBytes === 0) {
          redemptionBytes =
            encodedSize(dbs.accounts, record) +
            encodedSize(dbs.auths, auth) +
            encodedSize(dbs.idempotency, idem) +
            encodedSize(dbs.journal, journal) +
            encodedSize(dbs.history, history) +
            encodedSize(dbs.codes, code) +
            encodedSize(dbs.meta, seq);
        }
      }
    };
    await drive(dbs, Math.min(0.5, options.seconds / 4), options.inFlight, redemptionBatch); // warm-up
    const red = await drive(dbs, options.seconds, options.inFlight, redemptionBatch);
    const redemption = variantResult('redemption', red, options.batch, 7, redemptionBytes);
    return { options, puts, redemption };
  } finally {
    await dbs.root.close();
    rmSync(dir, { recursive: true, force: true });
  }
}

export function printLmdbBaseline(result: LmdbBaselineResult): void {
  const { options, puts, redemption } = result;
  console.log(
    `\nlmdb-js baseline (overlappingSync, transaction + flushed per batch, ${options.inFlight} batches in flight, ${options.seconds}s per variant)`,
  );
  const row = (r: LmdbVariantResult, what: string) => [
    what,
    fmtInt(r.unitsPerSec),
    fmtInt(r.putsPerSec),
    r.batchesPerSec.toFixed(1),
    fmtMs(r.batchLatency.p50Ms),
    fmtMs(r.batchLatency.p99Ms),
    `${fmtMs(r.cpuMsPer1000Units)} (sys ${fmtMs(r.cpuSystemMsPer1000Units)})`,
    String(r.valueBytes),
    r.otherCores.toFixed(2),
  ];
  console.log(
    table(
      [
        'variant',
        'units/s',
        'puts/s',
        'batches/s',
        'batch p50 ms',
        'batch p99 ms',
        'CPU ms/1k units (user+sys)',
        'bytes/unit',
        'other procs (cores)',
      ],
      [
        row(puts, `puts (${fmtInt(options.batch)} puts/batch; unit = put)`),
        row(redemption, `redemption-equivalents (${fmtInt(options.batch)}×7 puts/batch; unit = 7 puts)`),
      ],
    ),
  );
}
