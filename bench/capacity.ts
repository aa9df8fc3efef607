import { type ChildProcess, execFileSync, fork } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { request } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { Engine } from '../engine/engine.ts';
import type { ShardStats } from '../engine/shard-worker.ts';
import { loadSecrets } from '../persistence/secrets.ts';
import { openStore, type Store } from '../persistence/store.ts';
import {
  type ChildArgs,
  type ChildMessage,
  type ChildTimeline,
  type MemorySample,
  type ParentMessage,
  phoneOf,
  type TouchResult,
} from './capacity-child.ts';
import { epochMs, fmtInt, fmtMs, machineBusyMs, median, sleep, table } from './measure.ts';

/**
 * Memory per idle account and restart time with many accounts and live codes.
 *
 * 1. Seed: a fresh data dir (the secrets file written by persistence/secrets.ts), `accounts`
 *    consumers with one merchant-funded gift card each (engine.loadValue), then `liveCodes` live codes
 *    (engine.issueCode) on distinct consumers, with a code lifetime of two hours so they are still
 *    live at the restarts; the engine is closed and the store's size on disk reported.
 * 2. Restarts: each in a fresh child process (bench/capacity-child.ts, with --expose-gc), the real
 *    server (`startServer`) on that data dir; the parent times spawn → first accepted GET /healthz and
 *    the child the steps in between. First an empty data dir (the memory baseline), then `restarts`
 *    warm ones (the OS page cache holds the store), then one after dropping the page cache (cold).
 * 3. Memory: after listening and a full GC in every thread, the heap of the main thread and of each
 *    shard thread and the process's RSS; (1M accounts − empty) / accounts is the cost of an idle
 *    account. In the last warm run every account is then read once (engine.wallet), which fills the
 *    shards' live-actor LRU, and memory is measured again: the growth per live actor.
 * 4. Temp dirs are removed unless `keep`.
 */
export interface CapacityOptions {
  accounts: number;
  liveCodes: number;
  shards: number;
  merchants: number;
  /**
   * Seed here instead of a temp dir (created if missing). A directory this benchmark seeded before
   * with the same figures is reused without seeding while its codes have at least 20 minutes to live.
   * A directory passed in is never removed.
   */
  dataDir?: string;
  /** Keep the temp data dir (its path is printed). */
  keep?: boolean;
  /** Warm restarts timed (default 3). */
  restarts?: number;
  /** Also restart once after dropping the OS page cache (default true; skipped if not permitted). */
  cold?: boolean;
  /** One more warm restart under --cpu-prof writing profiles here; it is left out of the timings. */
  cpuProfDir?: string;
}

export interface DiskUsage {
  /** data.mdb: apparent size, and blocks allocated on disk. */
  fileBytes: number;
  allocatedBytes: number;
  pageSize: number;
  /** Pages up to the environment's last used page (what the file needs). */
  usedPages: number;
  /** Pages in the B-trees of the named databases (branch, leaf and overflow). */
  treePages: number;
  databases: { name: string; entries: number; pages: number }[];
}

export interface SeedResult {
  /** The data dir was seeded by an earlier run and reused. */
  reused: boolean;
  loadMs: number;
  issueMs: number;
  totalMs: number;
  disk: DiskUsage;
}

export interface RestartRun {
  label: string;
  kind: 'empty' | 'warm' | 'cold' | 'profiled';
  accounts: number;
  spawnMs: number;
  timeline: ChildTimeline;
  /** When the first GET /healthz was answered 200, and how long that request took. */
  healthzMs: number;
  healthzRequestMs: number;
  /** CPU the child used until listening, and what other processes kept busy meanwhile (cores). */
  childCpuMs: number;
  otherCores: number | null;
  memory: MemorySample;
  touch?: { result: TouchResult; memory: MemorySample };
}

export interface PerUnit {
  heapUsedBytes: number;
  heapTotalBytes: number;
  rssBytes: number;
  rssAnonBytes: number;
}

export interface CapacityResult {
  options: CapacityOptions;
  date: string;
  dataDir: string;
  codeTtlMs: number;
  seed: SeedResult;
  runs: RestartRun[];
  /** Why the cold run was skipped, or null. */
  coldSkipped: string | null;
  /** (median warm run − empty run) / accounts. */
  perIdleAccount: PerUnit | null;
  /** (after touching every account − before, same run) / live actors added. */
  perLiveActor: (PerUnit & { liveActors: number }) | null;
  wallMs: number;
}

const CODE_TTL_MS = 2 * 60 * 60_000;
const CODES_LEFT_MS = 20 * 60_000;
const IN_FLIGHT = 4_000;
const LOAD_CENTS = 10_000;
const SEED_MARKER = 'capacity-seed.json';
const ROOT = fileURLToPath(new URL('..', import.meta.url));
const CHILD = fileURLToPath(new URL('./capacity-child.ts', import.meta.url));
const MB = 1024 * 1024;

const merchantOf = (i: number, merchants: number) => `m${i % merchants}`;

interface SeedMarker {
  accounts: number;
  liveCodes: number;
  merchants: number;
  /** Every code was issued after this; they expire a code lifetime later. */
  codesIssuedFromMs: number;
  codeTtlMs: number;
  result: Omit<SeedResult, 'reused'>;
}

/** Calls `call(i)` for i in [0, total), `inFlight` at a time, with a progress line every ~5 s. */
async function bounded<T>(
  what: string,
  total: number,
  inFlight: number,
  call: (i: number) => Promise<T>,
  check: (i: number, result: T) => void,
): Promise<number> {
  const started = performance.now();
  let next = 0;
  let done = 0;
  const progress = setInterval(() => {
    const rate = (done / (performance.now() - started)) * 1000;
    console.log(
      `  ${what}: ${fmtInt(done)}/${fmtInt(total)} (${((done / total) * 100).toFixed(0)}%), ` +
        `${fmtInt(rate)}/s, ETA ${rate > 0 ? fmtInt((total - done) / rate) : '?'} s`,
    );
  }, 5_000);
  const worker = async (): Promise<void> => {
    while (next < total) {
      const i = next++;
      check(i, await call(i));
      done++;
    }
  };
  try {
    await Promise.all(Array.from({ length: Math.min(inFlight, total) }, worker));
  } finally {
    clearInterval(progress);
  }
  return performance.now() - started;
}

function diskUsage(store: Store, dataDir: string): DiskUsage {
  store.root.resetReadTxn();
  const env = store.root.getStats() as { pageSize: number; lastPageNumber: number };
  const databases: DiskUsage['databases'] = [];
  for (const [name, db] of Object.entries(store)) {
    if (name === 'root') continue;
    const stats = (db as Store['accounts']).getStats() as {
      entryCount: number;
      treeBranchPageCount: number;
      treeLeafPageCount: number;
      overflowPages: number;
    };
    databases.push({
      name,
      entries: stats.entryCount,
      pages: stats.treeBranchPageCount + stats.treeLeafPageCount + stats.overflowPages,
    });
  }
  const file = statSync(join(dataDir, 'lmdb', 'data.mdb'));
  return {
    fileBytes: file.size,
    allocatedBytes: file.blocks * 512,
    pageSize: env.pageSize,
    usedPages: env.lastPageNumber + 1,
    treePages: databases.reduce((sum, db) => sum + db.pages, 0),
    databases: databases.filter((db) => db.entries > 0).sort((a, b) => b.pages - a.pages),
  };
}

async function seed(dataDir: string, options: CapacityOptions): Promise<SeedResult> {
  const { accounts, liveCodes, merchants, shards } = options;
  const started = performance.now();
  // The secrets file the server will load (loadSecrets writes a missing file, mode 0600).
  const secrets = loadSecrets(join(dataDir, 'secrets.json'), {});
  const engine = await Engine.open({
    dataDir,
    secrets,
    shards,
    codeTtlMs: CODE_TTL_MS,
  });
  let loadMs: number;
  let issueMs: number;
  let codesIssuedFromMs: number;
  let disk: DiskUsage;
  try {
    console.log(`seeding ${fmtInt(accounts)} accounts (${fmtInt(IN_FLIGHT)} in flight) in ${dataDir}`);
    loadMs = await bounded(
      'loadValue',
      accounts,
      IN_FLIGHT,
      (i) =>
        engine.loadValue({
          merchantId: merchantOf(i, merchants),
          phone: phoneOf(i),
          kind: 'gift',
          funding: 'merchant',
          amountCents: LOAD_CENTS,
          idempotencyKey: `load-${i}`,
        }),
      (i, reply) => {
        if (reply.status !== 'approved') throw new Error(`loadValue #${i}: ${JSON.stringify(reply)}`);
      },
    );
    console.log(`  loaded ${fmtInt(accounts)} accounts in ${fmtMs(loadMs / 1000)} s`);
    const stride = Math.floor(accounts / liveCodes);
    codesIssuedFromMs = Date.now();
    issueMs = await bounded(
      'issueCode',
      liveCodes,
      IN_FLIGHT,
      (k) =>
        engine.issueCode({
          consumerId: engine.consumerIdFor(phoneOf(k * stride)),
          merchantId: merchantOf(k * stride, merchants),
        }),
      (k, reply) => {
        if (reply.status !== 'approved' || !reply.code)
          throw new Error(`issueCode #${k}: ${JSON.stringify(reply)}`);
      },
    );
    console.log(`  issued ${fmtInt(liveCodes)} codes in ${fmtMs(issueMs / 1000)} s`);
  } finally {
    await engine.close();
  }
  // Reopen the store alone for its page counts, after every shard has committed and closed.
  const store = openStore(dataDir);
  try {
    disk = diskUsage(store, dataDir);
  } finally {
    await store.root.close();
  }
  const result = { loadMs, issueMs, totalMs: performance.now() - started, disk };
  const marker: SeedMarker = {
    accounts,
    liveCodes,
    merchants,
    codesIssuedFromMs,
    codeTtlMs: CODE_TTL_MS,
    result,
  };
  writeFileSync(join(dataDir, SEED_MARKER), `${JSON.stringify(marker, null, 2)}\n`);
  return { reused: false, ...result };
}

/** The earlier seed in `dataDir` if it matches and its codes live long enough; else null. */
function reusableSeed(dataDir: string, options: CapacityOptions): SeedResult | null {
  const path = join(dataDir, SEED_MARKER);
  if (!existsSync(path)) {
    if (existsSync(join(dataDir, 'lmdb')))
      throw new Error(`${dataDir} holds a store this benchmark did not seed`);
    return null;
  }
  const marker = JSON.parse(readFileSync(path, 'utf8')) as SeedMarker;
  if (
    marker.accounts !== options.accounts ||
    marker.liveCodes !== options.liveCodes ||
    marker.merchants !== options.merchants
  ) {
    throw new Error(`${dataDir} was seeded with other figures (${JSON.stringify(marker)}); use another dir`);
  }
  if (marker.codesIssuedFromMs + marker.codeTtlMs < Date.now() + CODES_LEFT_MS)
    throw new Error(
      `the live codes in ${dataDir} expire within ${CODES_LEFT_MS / 60_000} minutes; seed again`,
    );
  return { reused: true, ...marker.result };
}

/** GET url once over a fresh connection; resolves with the status, rejects on a connection error. */
function get(url: string): Promise<number> {
  return new Promise((resolve, reject) => {
    const req = request(url, { agent: false }, (response) => {
      response.resume();
      response.on('end', () => resolve(response.statusCode ?? 0));
    });
    req.on('error', reject);
    req.end();
  });
}

/** One forked child, its messages awaited in order; a child that fails or exits rejects the wait. */
class ChildSession {
  private readonly received: ChildMessage[] = [];
  private waiter: ((message: ChildMessage) => void) | null = null;
  private failure: Error | null = null;
  private onFailure: ((error: Error) => void) | null = null;
  readonly exited: Promise<number | null>;

  constructor(readonly child: ChildProcess) {
    child.on('message', (message: ChildMessage) => {
      if (message.type === 'failed') this.fail(new Error(`capacity child failed: ${message.error}`));
      else if (this.waiter) this.waiter(message);
      else this.received.push(message);
    });
    this.exited = new Promise((resolve) =>
      child.once('exit', (code) => {
        this.fail(new Error(`capacity child exited (code ${code})`));
        resolve(code);
      }),
    );
  }

  private fail(error: Error): void {
    this.failure ??= error;
    this.onFailure?.(error);
  }

  next<T extends ChildMessage['type']>(type: T): Promise<Extract<ChildMessage, { type: T }>> {
    const take = (message: ChildMessage) => {
      if (message.type !== type) throw new Error(`expected ${type} from the child, got ${message.type}`);
      return message as Extract<ChildMessage, { type: T }>;
    };
    const queued = this.received.shift();
    if (queued) return Promise.resolve(take(queued));
    if (this.failure) return Promise.reject(this.failure);
    return new Promise((resolve, reject) => {
      this.onFailure = reject;
      this.waiter = (message) => {
        this.waiter = null;
        this.onFailure = null;
        try {
          resolve(take(message));
        } catch (error) {
          reject(error);
        }
      };
    });
  }

  send(message: ParentMessage): void {
    this.child.send(message);
  }
}

async function restart(
  label: string,
  kind: RestartRun['kind'],
  dataDir: string,
  accounts: number,
  options: CapacityOptions,
  extra: { touch?: boolean; cpuProfDir?: string } = {},
): Promise<RestartRun> {
  const args: ChildArgs = { dataDir, shards: options.shards, codeTtlMs: CODE_TTL_MS };
  const env = { ...process.env };
  delete env.PAYCODE_SECRETS_FILE; // the server must read the secrets file of this data dir
  delete env.PAYCODE_MASTER_KEY;
  const execArgv = ['--expose-gc', '--import', 'tsx'];
  if (extra.cpuProfDir) execArgv.push('--cpu-prof', `--cpu-prof-dir=${extra.cpuProfDir}`);
  const busy0 = machineBusyMs();
  const cpu0 = process.cpuUsage();
  const spawnMs = epochMs();
  const child = fork(CHILD, [JSON.stringify(args)], {
    cwd: ROOT,
    env,
    execArgv,
    stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
  });
  const session = new ChildSession(child);
  try {
    const { url, timeline } = await session.next('listening');
    // The first accepted request: poll until the server answers 200.
    let healthzMs = 0;
    let healthzRequestMs = 0;
    for (let attempt = 0; ; attempt++) {
      const sent = epochMs();
      const status = await get(`${url}/healthz`).catch(() => 0);
      if (status === 200) {
        healthzMs = epochMs();
        healthzRequestMs = healthzMs - sent;
        break;
      }
      if (attempt > 5_000) throw new Error(`${url}/healthz never answered 200`);
      await sleep(2);
    }
    const busy1 = machineBusyMs();
    const cpu1 = process.cpuUsage(cpu0);
    const ownMs = timeline.cpuMs + (cpu1.user + cpu1.system) / 1000;
    const otherCores =
      busy0 === null || busy1 === null ? null : Math.max(0, busy1 - busy0 - ownMs) / (healthzMs - spawnMs);
    session.send({ type: 'memory' });
    const { memory } = await session.next('memory');
    const run: RestartRun = {
      label,
      kind,
      accounts,
      spawnMs,
      timeline,
      healthzMs,
      healthzRequestMs,
      childCpuMs: timeline.cpuMs,
      otherCores,
      memory,
    };
    console.log(
      `${label}: first /healthz 200 after ${fmtMs(healthzMs - spawnMs)} ms; ` +
        `heap all threads ${fmtMs(heapUsed(memory) / MB)} MB, RSS ${fmtMs(memory.status.rssBytes / MB)} MB`,
    );
    if (extra.touch) {
      console.log(`${label}: reading every wallet once (${fmtInt(IN_FLIGHT)} in flight)`);
      session.send({ type: 'touch', accounts, concurrency: IN_FLIGHT });
      const touched = await session.next('touched');
      run.touch = { result: touched.touch, memory: touched.memory };
    }
    session.send({ type: 'close' });
    const code = await session.exited;
    if (code !== 0) throw new Error(`capacity child exited with code ${code}`);
    return run;
  } catch (error) {
    if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
    await session.exited;
    throw error;
  }
}

/** Empties the OS page cache (root only); returns why it could not, or null. */
function dropPageCache(): string | null {
  try {
    execFileSync('sync');
    writeFileSync('/proc/sys/vm/drop_caches', '3');
    return null;
  } catch (error) {
    return (error as Error).message;
  }
}

const heapUsed = (m: MemorySample) =>
  m.main.heapUsedBytes + m.shards.reduce((s, x) => s + x.heapUsedBytes, 0);
const heapTotal = (m: MemorySample) =>
  m.main.heapTotalBytes + m.shards.reduce((s, x) => s + x.heapTotalBytes, 0);
const liveActors = (m: MemorySample) => m.shards.reduce((s, x) => s + x.liveActors, 0);

function perUnit(after: MemorySample[], before: MemorySample, units: number): PerUnit {
  const med = (f: (m: MemorySample) => number) => median(after.map(f));
  return {
    heapUsedBytes: (med(heapUsed) - heapUsed(before)) / units,
    heapTotalBytes: (med(heapTotal) - heapTotal(before)) / units,
    rssBytes: (med((m) => m.status.rssBytes) - before.status.rssBytes) / units,
    rssAnonBytes: (med((m) => m.status.rssAnonBytes) - before.status.rssAnonBytes) / units,
  };
}

export async function runCapacityBench(options: CapacityOptions): Promise<CapacityResult> {
  const started = performance.now();
  const date = new Date().toISOString();
  const restarts = options.restarts ?? 3;
  if (options.liveCodes > options.accounts) throw new Error('liveCodes must not exceed accounts');
  const ownDir = options.dataDir === undefined;
  const dataDir = options.dataDir ?? mkdtempSync(join(tmpdir(), 'paycode-bench-capacity-'));
  const emptyDir = mkdtempSync(join(tmpdir(), 'paycode-bench-capacity-empty-'));
  const cleanUp = () => {
    rmSync(emptyDir, { recursive: true, force: true });
    if (ownDir && !options.keep) rmSync(dataDir, { recursive: true, force: true });
  };
  // Interrupted: the forked child gets the same signal from the terminal; remove the temp dirs too.
  const onSignal = (signal: NodeJS.Signals) => {
    cleanUp();
    process.exit(signal === 'SIGINT' ? 130 : 143);
  };
  process.once('SIGINT', onSignal);
  process.once('SIGTERM', onSignal);
  try {
    mkdirSync(dataDir, { recursive: true });
    const seeded = reusableSeed(dataDir, options) ?? (await seed(dataDir, options));
    if (seeded.reused) console.log(`reusing the seeded data dir ${dataDir}`);

    const runs: RestartRun[] = [];
    // Memory baseline: the same server on an empty data dir with its own secrets file.
    loadSecrets(join(emptyDir, 'secrets.json'), {});
    runs.push(await restart('empty (0 accounts)', 'empty', emptyDir, 0, options));
    for (let k = 1; k <= restarts; k++) {
      const touch = k === restarts;
      runs.push(await restart(`warm ${k}`, 'warm', dataDir, options.accounts, options, { touch }));
    }
    let coldSkipped: string | null = null;
    if (options.cold ?? true) {
      coldSkipped = dropPageCache();
      if (coldSkipped === null) runs.push(await restart('cold', 'cold', dataDir, options.accounts, options));
      else console.log(`cold restart skipped: cannot drop the page cache (${coldSkipped})`);
    } else {
      coldSkipped = 'not requested';
    }
    if (options.cpuProfDir) {
      mkdirSync(options.cpuProfDir, { recursive: true });
      runs.push(
        await restart('profiled (--cpu-prof)', 'profiled', dataDir, options.accounts, options, {
          cpuProfDir: options.cpuProfDir,
        }),
      );
    }

    const empty = runs.find((r) => r.kind === 'empty');
    const warm = runs.filter((r) => r.kind === 'warm');
    const perIdleAccount =
      empty && warm.length > 0 && options.accounts > 0
        ? perUnit(
            warm.map((r) => r.memory),
            empty.memory,
            options.accounts,
          )
        : null;
    const touched = warm.find((r) => r.touch);
    let perLiveActor: CapacityResult['perLiveActor'] = null;
    if (touched?.touch) {
      const added = liveActors(touched.touch.memory) - liveActors(touched.memory);
      if (added > 0)
        perLiveActor = { ...perUnit([touched.touch.memory], touched.memory, added), liveActors: added };
    }
    if (options.keep || !ownDir) console.log(`data dir kept: ${dataDir}`);
    return {
      options,
      date,
      dataDir,
      codeTtlMs: CODE_TTL_MS,
      seed: seeded,
      runs,
      coldSkipped,
      perIdleAccount,
      perLiveActor,
      wallMs: performance.now() - started,
    };
  } finally {
    process.off('SIGINT', onSignal);
    process.off('SIGTERM', onSignal);
    cleanUp();
  }
}

// ---------------------------------------------------------------------------------------------------
// Report.

const mb = (bytes: number) => fmtMs(bytes / MB);
const since = (from: number, to: number) => fmtMs(to - from);

/** The slowest shard's start-up steps (the shards boot in parallel, during the audit). */
function shardSteps(shards: ShardStats[]) {
  const max = (f: (s: ShardStats['startup']) => number) => Math.max(...shards.map((s) => f(s.startup)));
  return {
    firstThreadStartMs: Math.min(...shards.map((s) => s.startup.threadStartMs)),
    bootMs: max((s) => s.modulesLoadedMs - s.threadStartMs),
    storeMs: max((s) => s.storeOpenedMs - s.modulesLoadedMs),
    buildMs: max((s) => s.shardBuiltMs - s.storeOpenedMs),
    lastBuiltMs: max((s) => s.shardBuiltMs),
  };
}

export function printCapacity(result: CapacityResult): void {
  const { options, seed: s, runs } = result;
  console.log(
    `\ncapacity: ${fmtInt(options.accounts)} accounts (one merchant-funded gift card each) over ` +
      `${options.merchants} merchants, ${fmtInt(options.liveCodes)} live codes (lifetime ` +
      `${result.codeTtlMs / 60_000} min), ${options.shards} shards; started ${result.date}, ` +
      `${fmtMs(result.wallMs / 1000)} s in all`,
  );
  const seedRate = (count: number, ms: number) => fmtInt((count / ms) * 1000);
  console.log(
    `seeding${s.reused ? ' (reused from an earlier run; these are its figures)' : ''}: ` +
      `${fmtMs(s.totalMs / 1000)} s; loadValue ${fmtMs(s.loadMs / 1000)} s (${seedRate(options.accounts, s.loadMs)}/s), ` +
      `issueCode ${fmtMs(s.issueMs / 1000)} s (${seedRate(options.liveCodes, s.issueMs)}/s), ${fmtInt(IN_FLIGHT)} in flight`,
  );
  const d = s.disk;
  console.log(
    `on disk: data.mdb ${mb(d.fileBytes)} MB apparent, ${mb(d.allocatedBytes)} MB allocated; ` +
      `${fmtInt(d.usedPages)} pages used (${mb(d.usedPages * d.pageSize)} MB), ${fmtInt(d.treePages)} in the ` +
      `databases' trees (${mb(d.treePages * d.pageSize)} MB, ${fmtInt((d.treePages * d.pageSize) / Math.max(1, options.accounts))} B per account)`,
  );
  console.log(
    table(
      ['database', 'entries', 'pages', 'MB'],
      d.databases.map((db) => [db.name, fmtInt(db.entries), fmtInt(db.pages), mb(db.pages * d.pageSize)]),
    ),
  );

  console.log(
    '\nrestart: ms from spawning the process (shard columns: the slowest shard; the shards boot during the audit)',
  );
  console.log(
    table(
      [
        'run',
        'node+tsx up',
        'imports',
        'engine open',
        '↳ until shards start',
        '↳ audit (slowest part)',
        '↳ shard boot',
        '↳ shard store',
        '↳ code timers',
        'rest of start',
        'listening',
        'first /healthz 200',
        'CPU ms',
        'other procs (cores)',
      ],
      runs.map((r) => {
        const t = r.timeline;
        const sh = shardSteps(r.memory.shards);
        return [
          r.label,
          since(r.spawnMs, t.entryMs),
          since(t.entryMs, t.importedMs),
          since(t.engineOpenStartMs, t.engineOpenEndMs),
          since(t.engineOpenStartMs, sh.firstThreadStartMs),
          t.auditMs === null ? '-' : fmtMs(t.auditMs),
          fmtMs(sh.bootMs),
          fmtMs(sh.storeMs),
          fmtMs(sh.buildMs),
          since(t.engineOpenEndMs, t.listeningMs),
          since(r.spawnMs, t.listeningMs),
          since(r.spawnMs, r.healthzMs),
          fmtInt(r.childCpuMs),
          r.otherCores === null ? '-' : r.otherCores.toFixed(2),
        ];
      }),
    ),
  );
  const warm = runs.filter((r) => r.kind === 'warm');
  const warmTotals = warm.map((r) => r.healthzMs - r.spawnMs);
  const cold = runs.find((r) => r.kind === 'cold');
  if (warm.length > 0) {
    const worst = Math.max(...warmTotals);
    console.log(
      `restart target (≤ 5 s with ${fmtInt(options.accounts)} accounts and ${fmtInt(options.liveCodes)} live codes): ` +
        `warm ${warmTotals.map((t) => fmtMs(t / 1000)).join(', ')} s → ${worst <= 5_000 ? 'met' : 'MISSED'}` +
        (cold
          ? `; cold ${fmtMs((cold.healthzMs - cold.spawnMs) / 1000)} s → ${cold.healthzMs - cold.spawnMs <= 5_000 ? 'met' : 'MISSED'}`
          : `; cold: skipped (${result.coldSkipped})`),
    );
  }
  console.log(
    'warm: the OS page cache holds the store and the code (node_modules, sources); cold: the page cache was ' +
      'dropped just before (sync; echo 3 > /proc/sys/vm/drop_caches), so the store and the code come from disk',
  );

  console.log('\nmemory after listening and a full GC in every thread (MB; heap = V8 heap used):');
  const rows: string[][] = [];
  const row = (label: string, m: MemorySample) => {
    const timers = m.shards.reduce((sum, x) => sum + x.codeTimers, 0);
    const wheel = m.shards.reduce((sum, x) => sum + x.wheelTimers, 0);
    rows.push([
      label,
      mb(m.main.heapUsedBytes),
      m.shards.map((x) => mb(x.heapUsedBytes)).join(' + '),
      mb(heapUsed(m)),
      mb(heapTotal(m)),
      mb(m.main.externalBytes + m.shards.reduce((sum, x) => sum + x.externalBytes, 0)),
      mb(m.status.rssBytes),
      mb(m.status.rssAnonBytes),
      mb(m.status.rssFileBytes),
      mb(m.status.hwmBytes),
      fmtInt(liveActors(m)),
      `${fmtInt(timers)} / ${fmtInt(wheel)}`,
    ]);
  };
  for (const r of runs) {
    row(r.label, r.memory);
    if (r.touch) row(`${r.label}, every account read once`, r.touch.memory);
  }
  console.log(
    table(
      [
        'run',
        'main heap',
        'shard heaps',
        'heap all threads',
        'heap committed',
        'external',
        'RSS',
        'RssAnon',
        'RssFile',
        'peak RSS',
        'live actors',
        'code timers / wheel',
      ],
      rows,
    ),
  );
  const idle = result.perIdleAccount;
  if (idle) {
    console.log(
      `per idle account ((median of warm runs − empty) / ${fmtInt(options.accounts)}): heap ${fmtInt(idle.heapUsedBytes)} B ` +
        `(committed ${fmtInt(idle.heapTotalBytes)} B), RSS ${fmtInt(idle.rssBytes)} B, of it anonymous ` +
        `${fmtInt(idle.rssAnonBytes)} B → target ≤ 1 KB of heap: ${idle.heapUsedBytes <= 1024 ? 'met' : 'MISSED'}`,
    );
  }
  const touched = warm.find((r) => r.touch);
  if (touched?.touch) {
    const t = touched.touch.result;
    console.log(
      `touch: ${fmtInt(t.accounts)} wallets read in ${fmtMs(t.elapsedMs / 1000)} s ` +
        `(${fmtInt((t.accounts / t.elapsedMs) * 1000)}/s); ${fmtInt(t.liveCodesSeen)} showed a live code ` +
        `(${fmtInt(options.liveCodes)} seeded)`,
    );
  }
  const actor = result.perLiveActor;
  if (actor) {
    console.log(
      `per live actor ((after reading every account − before) / ${fmtInt(actor.liveActors)} actors added): ` +
        `heap ${fmtInt(actor.heapUsedBytes)} B (committed ${fmtInt(actor.heapTotalBytes)} B), ` +
        `RSS ${fmtInt(actor.rssBytes)} B, anonymous ${fmtInt(actor.rssAnonBytes)} B`,
    );
  }
  console.log(
    'RssFile is the store pages mapped by LMDB that the process touched (shared with the page cache, ' +
      'reclaimable); RssAnon is memory of the process itself (heaps of every thread, native allocations).',
  );
  if (result.runs.some((r) => r.kind === 'profiled'))
    console.log(`CPU profiles of the profiled restart: ${result.options.cpuProfDir}`);
}
