import { pbkdf2 } from 'node:crypto';
import { readdirSync, readFileSync } from 'node:fs';

/**
 * Small measuring helpers shared by the benchmarks: bounded-concurrency runs with per-request latency,
 * latency percentiles, and CPU time of the whole process and of each of its threads (Linux /proc).
 */

export interface LatencySummary {
  count: number;
  meanMs: number;
  p50Ms: number;
  p99Ms: number;
  p999Ms: number;
  maxMs: number;
}

/** Percentiles by sorting every sample (exact; a few hundred thousand samples sort in milliseconds). */
export function summarize(samples: Float64Array): LatencySummary {
  const sorted = Float64Array.from(samples).sort();
  const at = (q: number) => sorted[Math.min(sorted.length - 1, Math.ceil(q * sorted.length) - 1)] ?? 0;
  let sum = 0;
  for (const value of sorted) sum += value;
  return {
    count: sorted.length,
    meanMs: sorted.length > 0 ? sum / sorted.length : 0,
    p50Ms: at(0.5),
    p99Ms: at(0.99),
    p999Ms: at(0.999),
    maxMs: sorted[sorted.length - 1] ?? 0,
  };
}

export interface BoundedRun {
  elapsedMs: number;
  /** Per request, in request order. */
  latenciesMs: Float64Array;
  /** Completion times from the start, in completion order (for a steady-state window). */
  completedAtMs: Float64Array;
}

/**
 * Calls `call(i)` for i in [0, total) keeping `inFlight` calls outstanding: each completion starts the
 * next call. `check` sees every result (and may throw to abort the run).
 */
export function runBounded<T>(
  total: number,
  inFlight: number,
  call: (i: number) => Promise<T>,
  check: (i: number, result: T) => void,
): Promise<BoundedRun> {
  const latenciesMs = new Float64Array(total);
  const completedAtMs = new Float64Array(total);
  if (total === 0) return Promise.resolve({ elapsedMs: 0, latenciesMs, completedAtMs });
  let next = 0;
  let done = 0;
  let failed = false;
  const started = performance.now();
  return new Promise((resolve, reject) => {
    const fail = (error: unknown): void => {
      failed = true; // launch nothing more; calls already in flight finish unobserved
      reject(error);
    };
    const launch = (): void => {
      const i = next++;
      const sent = performance.now();
      call(i).then((result) => {
        if (failed) return;
        const now = performance.now();
        latenciesMs[i] = now - sent;
        completedAtMs[done++] = now - started;
        try {
          check(i, result);
        } catch (error) {
          fail(error);
          return;
        }
        if (next < total) launch();
        else if (done === total) resolve({ elapsedMs: now - started, latenciesMs, completedAtMs });
      }, fail);
    };
    for (let k = 0; k < Math.min(inFlight, total); k++) launch();
  });
}

/** Requests per second between the completions at fractions `from` and `to` of the run (ramp excluded). */
export function steadyRate(run: BoundedRun, from = 0.1, to = 0.9): number {
  const n = run.completedAtMs.length;
  const a = Math.floor(from * (n - 1));
  const b = Math.floor(to * (n - 1));
  const span = (run.completedAtMs[b] ?? 0) - (run.completedAtMs[a] ?? 0);
  return span > 0 ? ((b - a) / span) * 1000 : 0;
}

// ---------------------------------------------------------------------------------------------------
// CPU time.

/** Whole-process CPU (all threads), in milliseconds, from process.cpuUsage(). */
export function processCpuMs(): { userMs: number; systemMs: number } {
  const { user, system } = process.cpuUsage();
  return { userMs: user / 1000, systemMs: system / 1000 };
}

/** CPU time all processes used, machine-wide (every core's busy time), in ms; null off Linux. */
export function machineBusyMs(): number | null {
  try {
    const line = readFileSync('/proc/stat', 'utf8').split('\n', 1)[0] ?? '';
    const ticks = line.trim().split(/\s+/).slice(1).map(Number);
    const total = ticks.reduce((sum, t) => sum + t, 0);
    const idle = (ticks[3] ?? 0) + (ticks[4] ?? 0); // idle + iowait
    return (total - idle) * 10; // USER_HZ is 100
  } catch {
    return null;
  }
}

/**
 * Measures what other processes take from the machine while `ourCpuMs` is spent in this one: the
 * machine's busy time minus ours, as cores busy over the wall time. Start with `begin()`, end with
 * `end(wallMs)`.
 */
export function otherLoad(): { end(wallMs: number): number } {
  const busy0 = machineBusyMs();
  const cpu0 = processCpuMs();
  return {
    end(wallMs: number): number {
      const busy1 = machineBusyMs();
      const cpu1 = processCpuMs();
      if (busy0 === null || busy1 === null || wallMs <= 0) return 0;
      const ours = cpu1.userMs - cpu0.userMs + (cpu1.systemMs - cpu0.systemMs);
      return Math.max(0, busy1 - busy0 - ours) / wallMs;
    },
  };
}

/** CPU time per thread (utime + stime) in milliseconds, from /proc/self/task; null off Linux. */
export function threadCpuMs(): Map<number, number> | null {
  let tids: string[];
  try {
    tids = readdirSync('/proc/self/task');
  } catch {
    return null;
  }
  const ticksPerMs = 100 / 1000; // USER_HZ is 100 on Linux
  const result = new Map<number, number>();
  for (const tid of tids) {
    try {
      const stat = readFileSync(`/proc/self/task/${tid}/stat`, 'utf8');
      const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
      const ticks = Number(fields[11]) + Number(fields[12]);
      result.set(Number(tid), ticks / ticksPerMs);
    } catch {
      // the thread ended between readdir and read
    }
  }
  return result;
}

/**
 * The libuv threadpool's threads (where lmdb-js runs its write transactions and flushes, as napi async
 * work): the threads that gain CPU while async pbkdf2 calls, which run only there, keep the pool busy.
 */
export async function findThreadpool(): Promise<Set<number>> {
  const before = threadCpuMs();
  const size = Number(process.env.UV_THREADPOOL_SIZE) || 4;
  await Promise.all(
    Array.from(
      { length: size * 2 },
      () =>
        new Promise((resolve, reject) =>
          pbkdf2('x', 'y', 200_000, 32, 'sha256', (e) => (e ? reject(e) : resolve(0))),
        ),
    ),
  );
  const after = threadCpuMs();
  const pool = new Set<number>();
  for (const row of threadCpuDelta(before, after, new Map())) {
    if (row.tid !== process.pid && row.cpuMs >= 20) pool.add(row.tid);
  }
  return pool;
}

export interface ThreadCpu {
  tid: number;
  label: string;
  cpuMs: number;
}

/** CPU used per thread between two snapshots, largest first; threads that used none are left out. */
export function threadCpuDelta(
  before: Map<number, number> | null,
  after: Map<number, number> | null,
  labels: Map<number, string>,
): ThreadCpu[] {
  if (!before || !after) return [];
  const rows: ThreadCpu[] = [];
  for (const [tid, cpuMs] of after) {
    const used = cpuMs - (before.get(tid) ?? 0);
    if (used > 0) rows.push({ tid, label: labels.get(tid) ?? 'other', cpuMs: used });
  }
  return rows.sort((a, b) => b.cpuMs - a.cpuMs);
}

export function median(values: number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  const mid = Math.floor(sorted.length / 2);
  return sorted.length % 2 === 1 ? (sorted[mid] ?? 0) : ((sorted[mid - 1] ?? 0) + (sorted[mid] ?? 0)) / 2;
}

export const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));

/** Microseconds of the monotonic clock, the clock of V8 CPU profiles. */
export const monotonicUs = (): number => Number(process.hrtime.bigint() / 1000n);

/** Milliseconds since the epoch with the sub-millisecond part. */
export const epochMs = (): number => performance.timeOrigin + performance.now();

// ---------------------------------------------------------------------------------------------------
// Formatting.

export const fmtInt = (n: number): string => Math.round(n).toLocaleString('en-US');
export const fmtMs = (n: number): string => (n >= 100 ? n.toFixed(0) : n >= 10 ? n.toFixed(1) : n.toFixed(2));

export function table(header: string[], rows: string[][]): string {
  const widths = header.map((h, c) => Math.max(h.length, ...rows.map((row) => (row[c] ?? '').length)));
  const line = (cells: string[]) =>
    `| ${cells.map((cell, c) => (c === 0 ? cell.padEnd(widths[c] ?? 0) : cell.padStart(widths[c] ?? 0))).join(' | ')} |`;
  const rule = `|${widths.map((w, c) => (c === 0 ? '-'.repeat(w + 2) : `${'-'.repeat(w + 1)}:`)).join('|')}|`;
  return [line(header), rule, ...rows.map(line)].join('\n');
}

/** A small seeded PRNG (mulberry32), so a run's choices repeat. */
export function random(seed: number): () => number {
  let state = seed >>> 0;
  return () => {
    state = (state + 0x6d2b79f5) >>> 0;
    let t = state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 2 ** 32;
  };
}
