import { writeFileSync } from 'node:fs';
import type { LoadResult } from './load.ts';
import { fmtInt, fmtMs, table } from './measure.ts';
import type { PosBenchResult } from './pos.ts';

/** The POS benchmark's table, its figures against the targets, and the latency chart (SVG). */
export function printPosBench(result: PosBenchResult): void {
  for (const baseline of result.baselines) console.log(`baseline ${baseline.kind}: ${baseline.describe}`);
  console.log(`paycode setup (server start, fleet over HTTP): ${result.setupSeconds.toFixed(1)} s\n`);
  const echo = maxOf(result.runs, 'echo baseline');
  const rows = result.runs.map((run) => [
    run.label,
    run.mode === 'closed'
      ? `closed, ${fmtInt(run.clients ?? 0)} clients`
      : `open, ${fmtInt(run.offeredPerSec ?? 0)}/s`,
    fmtInt(run.completed),
    fmtInt(run.perSec),
    fmtMs(run.latency.p50Ms),
    fmtMs(run.latency.p99Ms),
    fmtMs(run.latency.p999Ms),
    fmtMs(run.latency.maxMs),
    fmtInt(run.errors),
    run.settleMs > 0 ? fmtInt(run.settleMs) : '',
    fmtMs(run.serverCpuMsPer1k),
    fmtInt(run.perServerCpuSec),
    run.machineCores.toFixed(2),
    echo && run.mode === 'closed' ? (run.perSec / echo.perSec).toFixed(3) : '',
  ]);
  console.log(
    table(
      [
        'workload',
        'loop',
        'done',
        'per s',
        'p50 ms',
        'p99 ms',
        'p99.9 ms',
        'max ms',
        'errors',
        'texts after ms',
        'server CPU ms/1k',
        'per server CPU s',
        'cores busy',
        '× echo',
      ],
      rows,
    ),
  );
  for (const run of result.runs) {
    if (run.errorSamples.length > 0) console.log(`errors in ${run.label}: ${run.errorSamples.join('; ')}`);
  }
  for (const failure of result.failures) console.log(`FAILED: ${failure.workload}: ${failure.message}`);
  for (const line of codeDigitLines(result.runs)) console.log(line);
  console.log('');
  for (const line of targetLines(result)) console.log(line);
}

/** Per paycode workload, the mix of code lengths its payments used (a busy merchant's codes are longer). */
export function codeDigitLines(runs: readonly LoadResult[]): string[] {
  const lines = new Map<string, string>();
  for (const run of runs) {
    const counts = Object.entries(run.codeDigits ?? {});
    const total = counts.reduce((sum, [, count]) => sum + count, 0);
    if (total === 0 || lines.has(run.label)) continue;
    const mix = counts.map(([digits, count]) => `${digits} digits ${((100 * count) / total).toFixed(1)}%`);
    lines.set(run.label, `code lengths in ${run.label}: ${mix.join(', ')} (${fmtInt(total)} codes)`);
  }
  return [...lines.values()];
}

function maxOf(runs: readonly LoadResult[], label: string): LoadResult | undefined {
  return runs.find((run) => run.label === label && run.mode === 'closed');
}

/**
 * The open-loop point of `label` offered at `fraction` of its closed-loop maximum (within 5 points);
 * none when the run measured no such point, so no target is judged on another load.
 */
function pointAt(runs: readonly LoadResult[], label: string, fraction: number): LoadResult | undefined {
  const max = maxOf(runs, label);
  if (!max) return undefined;
  const off = (run: LoadResult) => Math.abs((run.offeredPerSec ?? 0) / max.perSec - fraction);
  const points = runs.filter((run) => run.label === label && run.mode === 'open' && off(run) <= 0.05);
  return points.sort((a, b) => off(a) - off(b))[0];
}

export function targetLines(result: PosBenchResult): string[] {
  const { runs } = result;
  const lines: string[] = [];
  const verdict = (met: boolean) => (met ? 'met' : 'NOT met');
  lines.push(`wallet pushes received: ${fmtInt(result.walletPushes)}`);
  const redeem = maxOf(runs, 'paycode redeem');
  if (!redeem) return lines;
  lines.push(
    `redemptions/s end to end: ${fmtInt(redeem.perSec)} (target 50,000: ${verdict(redeem.perSec >= 50_000)}; ` +
      `${fmtInt(redeem.perServerCpuSec)} per second of server CPU)`,
  );
  const ratio = (label: string, target: number) => {
    const other = maxOf(runs, label);
    if (!other) return;
    const value = redeem.perSec / other.perSec;
    lines.push(
      `paycode redeem ÷ ${label}: ${fmtInt(redeem.perSec)} ÷ ${fmtInt(other.perSec)} = ${value.toFixed(3)} ` +
        `(target ≥ ${target}: ${verdict(value >= target)})`,
    );
  };
  ratio('echo baseline', 0.33);
  ratio('postgres baseline', 4);
  ratio('redis baseline', 1.3);
  const at70 = pointAt(runs, 'paycode redeem', 0.7);
  if (at70) {
    lines.push(
      `at ${fmtInt(at70.offeredPerSec ?? 0)}/s offered (≈70% of max): p99 ${fmtMs(at70.latency.p99Ms)} ms ` +
        `(target ≤ 5: ${verdict(at70.latency.p99Ms <= 5)}), p99.9 ${fmtMs(at70.latency.p999Ms)} ms ` +
        `(target ≤ 20: ${verdict(at70.latency.p999Ms <= 20)})`,
    );
  } else if (redeem) {
    lines.push(
      'at ≈70% of max: no point measured (see --rates), so the latency target is NOT met by this run',
    );
  }
  const hot = maxOf(runs, 'paycode hot');
  if (hot) {
    const value = hot.perSec / redeem.perSec;
    lines.push(`one hot merchant ÷ uniform: ${value.toFixed(3)} (target ≥ 0.8: ${verdict(value >= 0.8)})`);
  }
  const uniform = maxOf(runs, 'paycode issue-redeem');
  const zipf = maxOf(runs, 'paycode zipf');
  if (uniform && zipf) {
    const value = zipf.perSec / uniform.perSec;
    lines.push(
      `Zipf phones ÷ uniform phones (issue-redeem): ${value.toFixed(3)} (target ≥ 0.8: ${verdict(value >= 0.8)})`,
    );
  }
  return lines;
}

const COLORS: Record<string, string> = {
  'paycode redeem': '#0b6e4f',
  'echo baseline': '#888888',
  'postgres baseline': '#336791',
  'redis baseline': '#d82c20',
};

/** p99 (solid) and p50 (dashed) latency against offered load, one line per system, log-scale y. */
export function writeLatencyChart(result: PosBenchResult, path: string): void {
  const width = 760;
  const height = 420;
  const left = 70;
  const right = 180;
  const top = 30;
  const bottom = 50;
  const series = Object.keys(COLORS)
    .map((label) => ({
      label,
      points: result.runs
        .filter((run) => run.label === label && run.mode === 'open')
        .sort((a, b) => (a.offeredPerSec ?? 0) - (b.offeredPerSec ?? 0)),
    }))
    .filter((s) => s.points.length > 0);
  const xs = series.flatMap((s) => s.points.map((p) => p.offeredPerSec ?? 0));
  const ys = series.flatMap((s) => s.points.flatMap((p) => [p.latency.p50Ms, p.latency.p99Ms]));
  const xMax = niceCeil(Math.max(1, ...xs));
  const yMin = 10 ** Math.floor(Math.log10(Math.max(0.01, Math.min(...ys))));
  const yMax = 10 ** Math.ceil(Math.log10(Math.max(yMin * 10, ...ys)));
  const x = (v: number) => left + (v / xMax) * (width - left - right);
  const y = (v: number) =>
    top + (1 - Math.log10(Math.max(v, yMin) / yMin) / Math.log10(yMax / yMin)) * (height - top - bottom);
  const parts: string[] = [
    `<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${height}" font-family="sans-serif" font-size="12">`,
    `<rect width="${width}" height="${height}" fill="white"/>`,
    `<text x="${left}" y="18" font-size="14">Latency against offered load (open loop; p99 solid, p50 dashed)</text>`,
  ];
  for (let v = yMin; v <= yMax; v *= 10) {
    parts.push(
      `<line x1="${left}" x2="${width - right}" y1="${y(v)}" y2="${y(v)}" stroke="#ddd"/>`,
      `<text x="${left - 6}" y="${y(v) + 4}" text-anchor="end">${v >= 1 ? v : v.toFixed(2)} ms</text>`,
    );
  }
  for (let k = 0; k <= 5; k++) {
    const v = (xMax * k) / 5;
    parts.push(
      `<line x1="${x(v)}" x2="${x(v)}" y1="${top}" y2="${height - bottom}" stroke="#eee"/>`,
      `<text x="${x(v)}" y="${height - bottom + 16}" text-anchor="middle">${fmtInt(v)}</text>`,
    );
  }
  parts.push(
    `<text x="${(left + width - right) / 2}" y="${height - 12}" text-anchor="middle">offered load (transactions/s)</text>`,
  );
  series.forEach((s, i) => {
    const color = COLORS[s.label] ?? 'black';
    for (const [pick, dash] of [
      [(p: LoadResult) => p.latency.p99Ms, ''],
      [(p: LoadResult) => p.latency.p50Ms, ' stroke-dasharray="5 4"'],
    ] as const) {
      const path = s.points
        .map((p) => `${x(p.offeredPerSec ?? 0).toFixed(1)},${y(pick(p)).toFixed(1)}`)
        .join(' ');
      parts.push(`<polyline points="${path}" fill="none" stroke="${color}" stroke-width="2"${dash}/>`);
      for (const p of s.points)
        parts.push(`<circle cx="${x(p.offeredPerSec ?? 0)}" cy="${y(pick(p))}" r="3" fill="${color}"/>`);
    }
    const ly = top + 20 + i * 20;
    parts.push(
      `<line x1="${width - right + 15}" x2="${width - right + 40}" y1="${ly}" y2="${ly}" stroke="${color}" stroke-width="2"/>`,
      `<text x="${width - right + 46}" y="${ly + 4}">${s.label}</text>`,
    );
  });
  parts.push('</svg>');
  writeFileSync(path, `${parts.join('\n')}\n`);
}

function niceCeil(v: number): number {
  const power = 10 ** Math.floor(Math.log10(v));
  for (const step of [1, 2, 2.5, 5, 10]) if (step * power >= v) return step * power;
  return 10 * power;
}
