import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { serialize } from 'node:v8';
import type { Worker } from 'node:worker_threads';
import { shardOfSlot, slotOfId } from '../core/ids.ts';
import { LIMITS } from '../core/limits.ts';
import { Engine } from '../engine/engine.ts';
import type { AuditReport } from '../persistence/audit.ts';
import { randomSecrets } from '../persistence/secrets.ts';
import { phoneOf } from './capacity-child.ts';
import {
  type BoundedRun,
  findThreadpool,
  fmtInt,
  fmtMs,
  type LatencySummary,
  median,
  monotonicUs,
  otherLoad,
  processCpuMs,
  runBounded,
  steadyRate,
  summarize,
  type ThreadCpu,
  table,
  threadCpuDelta,
  threadCpuMs,
} from './measure.ts';

/**
 * Engine-only redemption throughput with durable acknowledgement: a real Engine (shard worker
 * threads, group commit on LMDB, answers only after flush) on a fresh temp data dir, driven through
 * its promise API with no gateway in front.
 *
 * 1. preload `accounts` consumers: one merchant-funded gift card each (loadValue), spread over
 *    `merchants` merchants;
 * 2. warm-up: one code per account (issueCode), then a round of redemptions, not counted;
 * 3. for each in-flight bound in `concurrency`: rounds of [issue one code per account, redeem every
 *    code] until `redemptions` redemptions were made; only the redeem phases are timed.
 * Every reply must be `approved`, the journal must hold one entry per load and redemption, and the
 * ledger audit must pass at the end.
 */
export interface EngineBenchOptions {
  accounts: number;
  /** Redemptions measured per in-flight bound. */
  redemptions: number;
  /** In-flight bounds to try; the best is reported as the result. */
  concurrency: number[];
  shards: number;
  merchants: number;
  /** Redemptions in the untimed warm-up round (at most `accounts`). */
  warmup: number;
  /** In-flight bound for loads and code issuing. */
  setupConcurrency: number;
  /** Overrides the engine's liveActorsPerShardMax (the default when undefined). */
  liveActors?: number;
}

export interface PhaseResult {
  count: number;
  elapsedMs: number;
  perSec: number;
}

export interface LevelResult {
  concurrency: number;
  rounds: number;
  redemptions: number;
  redeemMs: number;
  /** Redemptions over the summed redeem-phase time, ramp-up and drain of each round included. */
  perSec: number;
  /** Median over rounds of the rate between 10% and 90% of a round's completions. */
  steadyPerSec: number;
  latency: LatencySummary;
  issue: PhaseResult;
  cpuMsPer1000: number;
  cpuUserMsPer1000: number;
  cpuSystemMsPer1000: number;
  threads: ThreadCpu[];
  /** Group commits observed (shard reports) and outcomes per report, during redeem phases. */
  reports: number;
  outcomesPerReport: number;
  /** Cores other processes kept busy during the redeem phases (should be ~0 for a clean run). */
  otherCores: number;
  /** Notices the shards shipped to the main thread per redemption (with no notice listener). */
  noticesPerRedemption: number;
  /** Structured-clone bytes of one sampled report message, per outcome in it. */
  reportBytesPerOutcome: number;
}

export interface EngineBenchResult {
  options: EngineBenchOptions;
  load: PhaseResult;
  levels: LevelResult[];
  best: LevelResult;
  audit: AuditReport;
  journalExpected: number;
  /** Encoded size of the newest record in each database the redemptions wrote. */
  recordBytes: Record<string, number>;
  /** Timer records left in LMDB at the end, and codes issued during the run (all of them redeemed). */
  timersPending: number;
  codesIssued: number;
  /**
   * The measured redeem phases as [start, end] in microseconds of the monotonic clock, the clock of
   * V8 CPU profiles (`--cpu-prof`), so bench/profile-summary.ts can keep only their samples.
   */
  redeemWindowsUs: [number, number][];
}

const REDEEM_CENTS = 500;
const TERMINALS_PER_MERCHANT = 64;

const phase = (run: BoundedRun, count: number): PhaseResult => ({
  count,
  elapsedMs: run.elapsedMs,
  perSec: (count / run.elapsedMs) * 1000,
});

/**
 * Counts the shard workers' report messages (one per durable group commit) and what they carry,
 * without touching them; `sampleBytes` re-serializes the next report to size it.
 */
function watchReports(engine: Engine): {
  reports: number;
  outcomes: number;
  notices: number;
  sampleBytes: { bytes: number; outcomes: number } | null;
  sampleNext: boolean;
} {
  const counter = {
    reports: 0,
    outcomes: 0,
    notices: 0,
    sampleBytes: null as { bytes: number; outcomes: number } | null,
    sampleNext: false,
  };
  // The shard clients are private; this only adds a listener to their workers, for a diagnostic.
  const { shards } = engine as unknown as { shards: { worker: Worker }[] };
  for (const shard of shards) {
    shard.worker.on(
      'message',
      (message: { type: string; report?: { outcomes: unknown[]; notices: unknown[] } }) => {
        if (message.type !== 'report' || !message.report) return;
        counter.reports++;
        counter.outcomes += message.report.outcomes.length;
        counter.notices += message.report.notices.length;
        if (counter.sampleNext && message.report.outcomes.length > 100) {
          counter.sampleNext = false;
          counter.sampleBytes = {
            bytes: serialize(message).length,
            outcomes: message.report.outcomes.length,
          };
        }
      },
    );
  }
  return counter;
}

/** Encoded bytes of the newest value of each database a redemption writes (for the lmdb comparison). */
function sampleRecordBytes(engine: Engine): Record<string, number> {
  const { store } = engine;
  store.root.resetReadTxn();
  const sizes: Record<string, number> = {};
  const dbs = {
    accounts: store.accounts,
    auths: store.auths,
    idempotency: store.idempotency,
    journal: store.journal,
    history: store.history,
  };
  for (const [name, db] of Object.entries(dbs)) {
    const { encoder } = db as unknown as { encoder?: { encode(value: unknown): Uint8Array } };
    for (const { value } of db.getRange({ reverse: true, limit: 1 })) {
      sizes[name] = encoder ? encoder.encode(value).length : 0;
    }
  }
  return sizes;
}

export async function runEngineBench(options: EngineBenchOptions): Promise<EngineBenchResult> {
  const { accounts, merchants, shards } = options;
  const rounds = options.concurrency.map((c) => ({ c, rounds: Math.ceil(options.redemptions / accounts) }));
  const totalRounds = 1 + rounds.reduce((sum, r) => sum + r.rounds, 0);
  const loadCents = Math.max(10_000, totalRounds * REDEEM_CENTS * 2);
  if (loadCents > 1_000_000) {
    throw new Error(
      `${totalRounds} rounds of ${REDEEM_CENTS} cents exceed a card's limit; raise --accounts or lower --redemptions`,
    );
  }

  const dataDir = mkdtempSync(join(tmpdir(), 'paycode-bench-engine-'));
  const threadpool = await findThreadpool();
  const threadsBefore = new Set(threadCpuMs()?.keys() ?? []);
  const limits = options.liveActors === undefined ? {} : { liveActorsPerShardMax: options.liveActors };
  const engine = await Engine.open({ dataDir, secrets: randomSecrets(), shards, limits }).catch(
    (error: unknown) => {
      rmSync(dataDir, { recursive: true, force: true });
      throw error;
    },
  );
  try {
    // Thread names are all "node" on Node 20: threads are labelled by when they appeared, by probing
    // (the libuv threadpool) and by CPU use (shard workers, below).
    const labels = new Map<number, string>([[process.pid, 'main thread (Engine API + driver)']]);
    for (const tid of threadpool) labels.set(tid, 'libuv threadpool (lmdb-js commits + flush)');
    const cpuAtOpen = threadCpuMs();
    const started = [...(cpuAtOpen?.keys() ?? [])].filter((tid) => !threadsBefore.has(tid));
    for (const tid of threadsBefore) {
      if (!labels.has(tid)) labels.set(tid, 'V8/Node helper thread (GC, JIT, ...)');
    }
    // Each shard worker is one thread, and starts one more for the tsx loader hooks (shard-worker-boot.mjs).
    const labelWorkers = () => {
      const used = threadCpuDelta(cpuAtOpen, threadCpuMs(), new Map()).filter((row) =>
        started.includes(row.tid),
      );
      for (const tid of started) labels.set(tid, 'thread started by Engine.open (tsx loader hooks, ...)');
      for (const row of used.slice(0, shards)) labels.set(row.tid, 'shard worker thread');
    };
    const counter = watchReports(engine);
    const merchantOf = (i: number) => `m${i % merchants}`;
    const phones = Array.from({ length: accounts }, (_, i) => phoneOf(i));
    const consumers = phones.map((phone) => engine.consumerIdFor(phone));
    const perShard = new Array<number>(shards).fill(0);
    for (const id of consumers) {
      const shard = shardOfSlot(slotOfId(id), shards);
      perShard[shard] = (perShard[shard] ?? 0) + 1;
    }
    console.log(
      `accounts per shard: ${perShard.map(fmtInt).join(', ')} ` +
        `(live actors per shard at most ${fmtInt(options.liveActors ?? LIMITS.liveActorsPerShardMax)})`,
    );

    const expect = (what: string) => (i: number, reply: { status: string }) => {
      if (reply.status !== 'approved') throw new Error(`${what} #${i}: ${JSON.stringify(reply)}`);
    };

    // 1. Preload.
    const loadRun = await runBounded(
      accounts,
      options.setupConcurrency,
      (i) =>
        engine.loadValue({
          merchantId: merchantOf(i),
          phone: phones[i] as string,
          kind: 'gift',
          funding: 'merchant',
          amountCents: loadCents,
          idempotencyKey: `load-${i}`,
        }),
      expect('loadValue'),
    );
    const load = phase(loadRun, accounts);
    console.log(`preloaded ${fmtInt(accounts)} accounts: ${fmtInt(load.perSec)} loads/s`);

    let round = 0;
    const codes: string[] = new Array(accounts);
    const issueRound = async (count: number): Promise<BoundedRun> =>
      runBounded(
        count,
        options.setupConcurrency,
        (i) => engine.issueCode({ consumerId: consumers[i] as string, merchantId: merchantOf(i) }),
        (i, reply) => {
          expect('issueCode')(i, reply);
          if (!reply.code) throw new Error(`issueCode #${i} answered no code`);
          codes[i] = reply.code;
        },
      );
    const redeemRound = async (count: number, inFlight: number): Promise<BoundedRun> => {
      const r = round++;
      return runBounded(
        count,
        inFlight,
        (i) =>
          engine.redeem({
            merchantId: merchantOf(i),
            terminalId: `t${i % merchants}-${Math.floor(i / merchants) % TERMINALS_PER_MERCHANT}`,
            key: `r${r}-${i}`,
            code: codes[i] as string,
            amountCents: REDEEM_CENTS,
            partial: false,
          }),
        (i, reply) => {
          expect('redeem')(i, reply);
          if (reply.approvedCents !== REDEEM_CENTS) throw new Error(`redeem #${i}: ${JSON.stringify(reply)}`);
        },
      );
    };

    // 2. Warm-up.
    const warmup = Math.min(options.warmup, accounts);
    let redeemed = 0;
    if (warmup > 0) {
      await issueRound(warmup);
      await redeemRound(warmup, options.concurrency[0] ?? 4000);
      redeemed += warmup;
    }

    labelWorkers(); // the busiest threads Engine.open started, over the preload and the warm-up

    // 3. Measured levels.
    const levels: LevelResult[] = [];
    const windows: [number, number][] = [];
    for (const { c, rounds: levelRounds } of rounds) {
      const latencies: Float64Array[] = [];
      const steady: number[] = [];
      let redeemMs = 0;
      let issueMs = 0;
      let issued = 0;
      let count = 0;
      let cpuUser = 0;
      let cpuSystem = 0;
      let reports = 0;
      let outcomes = 0;
      let otherCoreMs = 0;
      let notices = 0;
      const threadTotals = new Map<number, ThreadCpu>();
      for (let k = 0; k < levelRounds; k++) {
        const n = Math.min(accounts, options.redemptions - count);
        const issue = await issueRound(n);
        issueMs += issue.elapsedMs;
        issued += n;
        const threads0 = threadCpuMs();
        const cpu0 = processCpuMs();
        const reports0 = { ...counter };
        counter.sampleNext = k === 0;
        const others = otherLoad();
        const windowStart = monotonicUs();
        const run = await redeemRound(n, c);
        windows.push([windowStart, monotonicUs()]);
        otherCoreMs += others.end(run.elapsedMs) * run.elapsedMs;
        const cpu1 = processCpuMs();
        const threads1 = threadCpuMs();
        reports += counter.reports - reports0.reports;
        outcomes += counter.outcomes - reports0.outcomes;
        notices += counter.notices - reports0.notices;
        cpuUser += cpu1.userMs - cpu0.userMs;
        cpuSystem += cpu1.systemMs - cpu0.systemMs;
        for (const row of threadCpuDelta(threads0, threads1, labels)) {
          const total = threadTotals.get(row.tid);
          if (total) total.cpuMs += row.cpuMs;
          else threadTotals.set(row.tid, { ...row });
        }
        redeemMs += run.elapsedMs;
        latencies.push(run.latenciesMs);
        steady.push(steadyRate(run));
        count += n;
      }
      redeemed += count;
      const all = new Float64Array(count);
      let offset = 0;
      for (const part of latencies) {
        all.set(part, offset);
        offset += part.length;
      }
      const level: LevelResult = {
        concurrency: c,
        rounds: levelRounds,
        redemptions: count,
        redeemMs,
        perSec: (count / redeemMs) * 1000,
        steadyPerSec: median(steady),
        latency: summarize(all),
        issue: { count: issued, elapsedMs: issueMs, perSec: (issued / issueMs) * 1000 },
        cpuMsPer1000: ((cpuUser + cpuSystem) / count) * 1000,
        cpuUserMsPer1000: (cpuUser / count) * 1000,
        cpuSystemMsPer1000: (cpuSystem / count) * 1000,
        threads: [...threadTotals.values()].sort((a, b) => b.cpuMs - a.cpuMs),
        reports,
        outcomesPerReport: reports > 0 ? outcomes / reports : 0,
        otherCores: otherCoreMs / redeemMs,
        noticesPerRedemption: notices / count,
        reportBytesPerOutcome: counter.sampleBytes
          ? counter.sampleBytes.bytes / counter.sampleBytes.outcomes
          : 0,
      };
      levels.push(level);
      console.log(
        `in flight ${fmtInt(c)}: ${fmtInt(level.perSec)} redemptions/s (steady ${fmtInt(level.steadyPerSec)}/s), ` +
          `p50 ${fmtMs(level.latency.p50Ms)} ms, p99 ${fmtMs(level.latency.p99Ms)} ms; ` +
          `issueCode ${fmtInt(level.issue.perSec)}/s`,
      );
    }

    const audit = await engine.audit();
    const journalExpected = accounts + redeemed;
    const recordBytes = sampleRecordBytes(engine);
    engine.store.root.resetReadTxn();
    const timersPending = engine.store.timers.getCount();
    const codesIssued = warmup + levels.reduce((sum, level) => sum + level.issue.count, 0);
    const best = levels.reduce((a, b) => (b.perSec > a.perSec ? b : a));
    return {
      options,
      load,
      levels,
      best,
      audit,
      journalExpected,
      recordBytes,
      timersPending,
      codesIssued,
      redeemWindowsUs: windows,
    };
  } finally {
    await engine.close();
    rmSync(dataDir, { recursive: true, force: true });
  }
}

export function printEngineBench(result: EngineBenchResult): void {
  const { options, levels, best, audit, load } = result;
  console.log(
    `\nengine: ${options.shards} shards, ${fmtInt(options.accounts)} accounts over ${options.merchants} merchants, ` +
      `${fmtInt(options.redemptions)} redemptions per in-flight bound, ${REDEEM_CENTS}-cent redemptions, durable answers`,
  );
  console.log(
    table(
      [
        'in flight',
        'redemptions/s',
        'steady/s (10-90%)',
        'p50 ms',
        'p99 ms',
        'p99.9 ms',
        'max ms',
        'CPU ms/1k (user+sys)',
        'commits',
        'outcomes/commit',
        'issueCode/s',
        'other procs (cores)',
      ],
      levels.map((l) => [
        fmtInt(l.concurrency),
        fmtInt(l.perSec),
        fmtInt(l.steadyPerSec),
        fmtMs(l.latency.p50Ms),
        fmtMs(l.latency.p99Ms),
        fmtMs(l.latency.p999Ms),
        fmtMs(l.latency.maxMs),
        `${fmtMs(l.cpuMsPer1000)} (${fmtMs(l.cpuUserMsPer1000)}+${fmtMs(l.cpuSystemMsPer1000)})`,
        fmtInt(l.reports),
        fmtInt(l.outcomesPerReport),
        fmtInt(l.issue.perSec),
        l.otherCores.toFixed(2),
      ]),
    ),
  );
  console.log(`loadValue (preload, ${fmtInt(options.setupConcurrency)} in flight): ${fmtInt(load.perSec)}/s`);
  const threadSeconds = best.threads.reduce((sum, t) => sum + t.cpuMs, 0);
  const redeemSeconds = best.redeemMs;
  console.log(
    `\nCPU by thread at in-flight ${fmtInt(best.concurrency)} (redeem phases, ${fmtMs(redeemSeconds / 1000)} s wall, ` +
      `${fmtMs(threadSeconds / 1000)} s CPU, ${(threadSeconds / redeemSeconds).toFixed(2)} cores busy; /proc/self/task):`,
  );
  console.log(
    table(
      ['thread', 'tid', 'CPU s', 'share', 'ms per 1k redemptions'],
      best.threads
        .filter((t) => t.cpuMs / threadSeconds >= 0.005)
        .map((t) => [
          t.label,
          String(t.tid),
          (t.cpuMs / 1000).toFixed(2),
          `${((t.cpuMs / threadSeconds) * 100).toFixed(1)}%`,
          fmtMs((t.cpuMs / best.redemptions) * 1000),
        ]),
    ),
  );
  console.log(
    `\naudit: ${audit.ok ? 'ok' : 'FAILED'}; journal entries ${fmtInt(audit.journalEntries)} ` +
      `(expected ${fmtInt(result.journalExpected)}), accounts ${fmtInt(audit.accounts)}, live codes ${audit.liveCodes}, ` +
      `ledger sum ${audit.ledgerSumCents} cents, ${fmtMs(audit.durationMs)} ms`,
  );
  for (const problem of audit.problems) console.log(`  audit problem: ${problem}`);
  const level = best;
  console.log(
    `reports to the main thread: ${level.noticesPerRedemption.toFixed(2)} notices per redemption (no listener registered); ` +
      `a sampled report message is ${fmtInt(level.reportBytesPerOutcome)} bytes per outcome (v8.serialize)`,
  );
  console.log(
    `timers left in LMDB after the run: ${fmtInt(result.timersPending)} for ${fmtInt(result.codesIssued)} codes issued, ` +
      'every one of them redeemed (code timers are kept in memory and cancelled when the code ends)',
  );
  const sizes = Object.entries(result.recordBytes);
  console.log(
    `engine record sizes (msgpack, newest of each): ${sizes.map(([name, bytes]) => `${name} ${bytes} B`).join(', ')}; ` +
      `sum ${sizes.reduce((sum, [, bytes]) => sum + bytes, 0)} B per redemption (+ code index delete, meta per commit)`,
  );
}
