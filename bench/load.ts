import * as hdr from 'hdr-histogram-js';
import { fmtInt, machineBusyMs, monotonicUs, processCpuMs } from './measure.ts';
import { cpuMsOf } from './proc.ts';

/**
 * The load generator's core: a transaction is an async function; the drivers run it closed-loop (a
 * fixed number of clients, each starting its next transaction when the last one ends: the maximum
 * rate) or open-loop (transactions start on a fixed schedule whatever happened to earlier ones, and
 * latency counts from the scheduled start, so a stalled server cannot hide its queue: no coordinated
 * omission). Latencies go into HDR histograms (µs, 3 significant digits).
 */

export type Tx = (i: number) => Promise<void>;

export interface LoadResult {
  label: string;
  mode: 'closed' | 'open';
  /** Clients (closed loop) or the offered rate per second (open loop). */
  clients?: number;
  offeredPerSec?: number;
  completed: number;
  errors: number;
  /** First error messages, for the report. */
  errorSamples: string[];
  elapsedMs: number;
  perSec: number;
  latency: LatencyFigures;
  /** How long the run's leftover work took after its last transaction (`settle`), in ms. */
  settleMs: number;
  /** CPU the measured server processes used (through `settle`), in ms, and per 1,000 completed transactions. */
  serverCpuMs: number;
  serverCpuMsPer1k: number;
  /** Transactions per second of server CPU time (the load generator shares the machine). */
  perServerCpuSec: number;
  generatorCpuMs: number;
  /** Cores busy machine-wide, on average, during the run. */
  machineCores: number;
  /** When it ran, in µs of the monotonic clock (the clock of V8 CPU profiles), per round. */
  windowsUs: [number, number][];
  /** The latencies themselves (left out of JSON output). */
  histogram: hdr.Histogram;
  /** Paycode workloads: the payment codes the run used, counted by their number of digits. */
  codeDigits?: Record<number, number>;
}

export interface LatencyFigures {
  p50Ms: number;
  p90Ms: number;
  p99Ms: number;
  p999Ms: number;
  maxMs: number;
  meanMs: number;
}

function newHistogram(): hdr.Histogram {
  return hdr.build({
    lowestDiscernibleValue: 1,
    highestTrackableValue: 120_000_000,
    numberOfSignificantValueDigits: 3,
  });
}

function latencyFigures(histogram: hdr.Histogram): LatencyFigures {
  const ms = (us: number) => us / 1000;
  return {
    p50Ms: ms(histogram.getValueAtPercentile(50)),
    p90Ms: ms(histogram.getValueAtPercentile(90)),
    p99Ms: ms(histogram.getValueAtPercentile(99)),
    p999Ms: ms(histogram.getValueAtPercentile(99.9)),
    maxMs: ms(histogram.maxValue),
    meanMs: ms(histogram.mean),
  };
}

export interface RunOptions {
  label: string;
  total: number;
  tx: Tx;
  /** The server's processes, for CPU accounting. */
  serverPids: () => readonly number[];
  /** Progress lines every few seconds (stderr); off when quiet. */
  quiet?: boolean;
  /**
   * Waits for the work the transactions left behind (a paycode server's texts still in its outbox), so
   * its CPU counts in this run and not in the next one; the rate and latencies stop before it.
   */
  settle?: () => Promise<void>;
}

/** Runs `total` transactions with `clients` running one after another each. */
export function closedLoop(options: RunOptions & { clients: number }): Promise<LoadResult> {
  const { total, tx, clients } = options;
  return measured(options, 'closed', { clients }, (record, fail) => {
    let next = 0;
    return new Promise<void>((resolve) => {
      let running = 0;
      const client = async (): Promise<void> => {
        running++;
        while (next < total) {
          const i = next++;
          const started = performance.now();
          try {
            await tx(i);
            record(performance.now() - started);
          } catch (error) {
            fail(error);
          }
        }
        if (--running === 0) resolve();
      };
      for (let c = 0; c < Math.min(clients, total); c++) void client();
      if (total === 0) resolve();
    });
  });
}

/**
 * Starts transaction i at `i / offeredPerSec` seconds, whatever is still outstanding; latency is
 * measured from that scheduled moment. At most `outstandingMax` may be outstanding: a transaction
 * that finds the limit reached is not sent and counts as an error (the server fell behind).
 */
export function openLoop(
  options: RunOptions & { offeredPerSec: number; outstandingMax: number },
): Promise<LoadResult> {
  const { total, tx, offeredPerSec, outstandingMax } = options;
  return measured(options, 'open', { offeredPerSec }, (record, fail) => {
    const intervalMs = 1000 / offeredPerSec;
    const start = performance.now();
    let next = 0;
    let outstanding = 0;
    let finished = 0;
    return new Promise<void>((resolve) => {
      const settle = () => {
        if (++finished === total) resolve();
      };
      const dispatch = () => {
        const now = performance.now();
        while (next < total && start + next * intervalMs <= now) {
          const i = next++;
          const scheduled = start + i * intervalMs;
          if (outstanding >= outstandingMax) {
            fail(new Error(`not sent: ${outstandingMax} outstanding`));
            settle();
            continue;
          }
          outstanding++;
          tx(i)
            .then(
              () => record(performance.now() - scheduled),
              (error: unknown) => fail(error),
            )
            .finally(() => {
              outstanding--;
              settle();
            });
        }
        if (next < total) setTimeout(dispatch, Math.max(0, Math.min(1, start + next * intervalMs - now)));
      };
      if (total === 0) resolve();
      else dispatch();
    });
  });
}

async function measured(
  options: RunOptions,
  mode: 'closed' | 'open',
  shape: { clients?: number; offeredPerSec?: number },
  run: (record: (ms: number) => void, fail: (error: unknown) => void) => Promise<void>,
): Promise<LoadResult> {
  const histogram = newHistogram();
  let errors = 0;
  const errorSamples: string[] = [];
  const record = (ms: number) => histogram.recordValue(Math.max(1, Math.round(ms * 1000)));
  const fail = (error: unknown) => {
    errors++;
    const message = error instanceof Error ? error.message : String(error);
    if (errorSamples.length < 5 && !errorSamples.includes(message)) errorSamples.push(message);
  };
  // One list for both samples: a database's worker that exits meanwhile leaves its time to its parent.
  const serverPids = [...options.serverPids()];
  const serverCpu = () => cpuMsOf(serverPids, { reapedChildren: true });
  const server0 = serverCpu();
  const own0 = processCpuMs();
  const busy0 = machineBusyMs();
  const started = performance.now();
  const startedUs = monotonicUs();
  const progress = options.quiet
    ? undefined
    : setInterval(() => {
        const seconds = (performance.now() - started) / 1000;
        process.stderr.write(
          `  ${options.label}: ${fmtInt(histogram.totalCount)}/${fmtInt(options.total)} in ${seconds.toFixed(0)} s ` +
            `(${fmtInt(histogram.totalCount / seconds)}/s, p99 ${(histogram.getValueAtPercentile(99) / 1000).toFixed(1)} ms, ` +
            `${errors} errors)\n`,
        );
      }, 2_000);
  try {
    await run(record, fail);
  } finally {
    clearInterval(progress);
  }
  const elapsedMs = performance.now() - started;
  const settleStarted = performance.now();
  await options.settle?.();
  const settleMs = performance.now() - settleStarted;
  const serverCpuMs = serverCpu() - server0;
  const own1 = processCpuMs();
  const busy1 = machineBusyMs();
  const completed = histogram.totalCount;
  return {
    label: options.label,
    mode,
    ...shape,
    completed,
    errors,
    errorSamples,
    latency: latencyFigures(histogram),
    ...rates(completed, elapsedMs, serverCpuMs),
    generatorCpuMs: own1.userMs - own0.userMs + own1.systemMs - own0.systemMs,
    machineCores: busy0 !== null && busy1 !== null ? (busy1 - busy0) / (elapsedMs + settleMs) : 0,
    settleMs,
    windowsUs: [[startedUs, monotonicUs()]],
    histogram,
  };
}

function rates(completed: number, elapsedMs: number, serverCpuMs: number) {
  return {
    elapsedMs,
    perSec: (completed / elapsedMs) * 1000,
    serverCpuMs,
    serverCpuMsPer1k: completed > 0 ? (serverCpuMs / completed) * 1000 : 0,
    perServerCpuSec: serverCpuMs > 0 ? (completed / serverCpuMs) * 1000 : 0,
  };
}

/** Several runs of one measurement (rounds) as one: counts, times and CPU summed, latencies merged. */
export function combine(results: readonly LoadResult[]): LoadResult {
  const first = results[0];
  if (!first) throw new Error('nothing to combine');
  const histogram = newHistogram();
  for (const result of results) histogram.add(result.histogram);
  const sum = (pick: (result: LoadResult) => number) => results.reduce((total, r) => total + pick(r), 0);
  const completed = sum((r) => r.completed);
  const elapsedMs = sum((r) => r.elapsedMs);
  const serverCpuMs = sum((r) => r.serverCpuMs);
  return {
    ...first,
    completed,
    errors: sum((r) => r.errors),
    errorSamples: [...new Set(results.flatMap((r) => r.errorSamples))].slice(0, 5),
    latency: latencyFigures(histogram),
    ...rates(completed, elapsedMs, serverCpuMs),
    generatorCpuMs: sum((r) => r.generatorCpuMs),
    settleMs: sum((r) => r.settleMs),
    machineCores:
      sum((r) => r.machineCores * (r.elapsedMs + r.settleMs)) / (elapsedMs + sum((r) => r.settleMs)),
    windowsUs: results.flatMap((r) => r.windowsUs),
    histogram,
  };
}

/** JSON.stringify replacer that leaves histograms out. */
export function withoutHistograms(key: string, value: unknown): unknown {
  return key === 'histogram' ? undefined : value;
}
