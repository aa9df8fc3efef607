import { writeFileSync } from 'node:fs';
import { cpus, totalmem } from 'node:os';
import { parseArgs } from 'node:util';
import { type CapacityResult, printCapacity, runCapacityBench } from './capacity.ts';
import { PHONES_MAX } from './capacity-child.ts';
import { type ClusterBenchResult, printClusterBench, runClusterBench } from './cluster.ts';
import { type CodesBenchResult, printCodesBench, runCodesBench } from './codes.ts';
import { type CrashReport, crashRun } from './crash.ts';
import { type EngineBenchOptions, printEngineBench, runEngineBench } from './engine.ts';
import { type HandoffRow, printHandoffsBench, runHandoffsBench } from './handoffs.ts';
import { type LmdbBaselineOptions, printLmdbBaseline, runLmdbBaseline } from './lmdb-baseline.ts';
import { withoutHistograms } from './load.ts';
import { runLogLinesBench } from './log-lines.ts';
import { type MachineBenchResult, printMachineBench, runMachineBench } from './machine.ts';
import { fmtInt, median } from './measure.ts';
import {
  BASELINES,
  type BaselineKind,
  POS_WORKLOADS,
  type PosBenchResult,
  type PosWorkload,
  runPosBench,
} from './pos.ts';
import { printPosBench, writeLatencyChart } from './pos-report.ts';
import { printSettlementBench, runSettlementBench, type SettlementBenchResult } from './settlement.ts';
import { runWebBench } from './web.ts';

/**
 * `npm run bench -- <workload> [--flag value ...]`
 *
 * Workloads:
 *   engine  the lmdb-js baseline, then engine-only redemptions with durable answers, then their ratio
 *   lmdb    the lmdb-js baseline only
 *   settlement  one business day of journal postings settled end to end
 *   pos     the POS network: paycode end to end over WebSockets and the baselines, same run
 *   capacity  memory per idle account and restart time with 1M accounts and 100k live codes
 *   crash   SIGKILL of the server under POS and wallet load, restarted again and again, then checked
 *   web     page weight and load time of the web apps, and what a merchant report costs the main thread
 *   codes   what drawing one payment code costs, by length, beside the drawing it replaced
 *   handoffs  the CPU of a thread wake-up, a worker message and a durable commit, one at a time
 *   log     what one access line costs the main thread
 *   cluster payments on one node without NATS, one and three nodes on JetStream; failover time
 */
const WORKLOADS: Record<string, string> = {
  engine: 'lmdb-js baseline + engine-only redemptions/s with durable answers, and their ratio',
  lmdb: 'lmdb-js durable batched puts only (the storage ceiling)',
  settlement: 'one business day of postings settled: nets, ACH file, marks (--postings, --merchants)',
  pos: 'POS terminals over WebSockets against the real server, and the echo/PostgreSQL/Redis baselines',
  capacity: 'heap and RSS per idle account, restart time (--idle-accounts, --live-codes)',
  crash:
    'the server killed (SIGKILL) under load and restarted, --cycles times, then every acknowledged answer checked',
  web: 'web apps: page weight, load time in Chromium (--loads), merchant report cost (--postings, --merchants)',
  codes: 'CPU per payment code drawn, by length, beside the drawing by rejection it replaced (--draws)',
  machine: 'CPU of the account machine alone per payment: a code issued and redeemed (--payments)',
  handoffs:
    'CPU of a timer wake-up, a worker message round trip and a durable LMDB commit at 400/s and 4,000/s',
  log: 'µs of main-thread time per access log line (redaction and JSON)',
  cluster:
    'payments on one node without NATS, one node and three nodes on JetStream R3, then failover time (--kills)',
};

const FLAGS = {
  draws: { type: 'string', default: '100000', help: 'codes drawn per row (codes)' },
  payments: { type: 'string', default: '100000', help: 'payments through one account (machine)' },
  accounts: { type: 'string', default: '20000', help: 'consumer accounts preloaded (engine)' },
  redemptions: {
    type: 'string',
    default: '100000',
    help: 'redemptions measured per in-flight bound (engine)',
  },
  concurrency: {
    type: 'string',
    default: '2000,4000,8000',
    help: 'redeem() calls kept in flight, comma-separated list; the best is reported (engine)',
  },
  shards: {
    type: 'string',
    default: process.env.PAYCODE_SHARDS || '2',
    help: 'shard worker threads (engine)',
  },
  merchants: {
    type: 'string',
    default: '4',
    help: 'merchants the accounts are spread over (engine, settlement), the postings are of (web)',
  },
  postings: {
    type: 'string',
    default: '200000',
    help: 'journal postings of the settled day (settlement), in the journal (web)',
  },
  warmup: { type: 'string', default: '20000', help: 'untimed warm-up redemptions (engine)' },
  'setup-concurrency': {
    type: 'string',
    default: '4000',
    help: 'loads and issueCode calls in flight (engine)',
  },
  'live-actors': {
    type: 'string',
    default: '',
    help: "overrides the engine's liveActorsPerShardMax (engine)",
  },
  seconds: { type: 'string', default: '5', help: 'seconds measured per lmdb baseline variant' },
  batch: { type: 'string', default: '1000', help: 'puts / redemption-equivalents per lmdb batch' },
  'lmdb-in-flight': { type: 'string', default: '2', help: 'lmdb batches in flight' },
  terminals: { type: 'string', default: '1000', help: 'terminals, one WebSocket each (pos)' },
  consumers: { type: 'string', default: '20000', help: 'consumers with a card and a device token (pos)' },
  wallets: { type: 'string', default: '2000', help: 'phones with a wallet socket in issue-redeem (pos)' },
  'idle-wallets': {
    type: 'string',
    default: '15000',
    help: 'idle wallet sockets in fanout; each costs a file descriptor on both sides (pos)',
  },
  transactions: { type: 'string', default: '60000', help: 'transactions per closed-loop measurement (pos)' },
  rates: {
    type: 'string',
    default: '0.1,0.3,0.5,0.7,0.9',
    help: 'open-loop offered rates as fractions of the closed-loop maximum (pos)',
  },
  'open-seconds': { type: 'string', default: '5', help: 'seconds per open-loop point (pos)' },
  encoding: { type: 'string', default: 'json', help: 'json or msgpack frames (pos)' },
  only: {
    type: 'string',
    default: '',
    help: `pos workloads to run, comma-separated (default all: ${Object.keys(POS_WORKLOADS).join(', ')})`,
  },
  baselines: {
    type: 'string',
    default: [...BASELINES, 'lmdb'].join(','),
    help: 'baselines to measure first, comma-separated, or "none" (pos)',
  },
  'idle-accounts': { type: 'string', default: '1000000', help: 'accounts seeded (capacity)' },
  'live-codes': { type: 'string', default: '100000', help: 'live codes seeded (capacity)' },
  restarts: { type: 'string', default: '3', help: 'warm restarts timed (capacity)' },
  'data-dir': {
    type: 'string',
    default: '',
    help: 'seed here, or reuse a directory seeded before with the same figures; never removed (capacity)',
  },
  'no-cold': {
    type: 'boolean',
    default: false,
    help: 'skip the restart after dropping the page cache (capacity)',
  },
  'server-node-options': {
    type: 'string',
    default: '',
    help: 'extra node options of the paycode server, space-separated, to compare settings (pos)',
  },
  'server-prof': {
    type: 'string',
    default: '',
    help: 'profile the paycode server (--cpu-prof of every thread) into this directory (pos, capacity)',
  },
  cycles: { type: 'string', default: '50', help: 'kills and restarts (crash)' },
  kills: {
    type: 'string',
    default: '20',
    help: 'nodes killed, one at a time, for the failover time (cluster)',
  },
  'cluster-shards': {
    type: 'string',
    default: '6',
    help: 'shards of the cluster, the same in every setup (cluster)',
  },
  'cluster-payments': { type: 'string', default: '20000', help: 'payments measured per setup (cluster)' },
  'cluster-in-flight': { type: 'string', default: '400', help: 'payments in flight (cluster)' },
  loads: { type: 'string', default: '10', help: 'timed loads of each page (web)' },
  'crash-terminals': {
    type: 'string',
    default: '16',
    help: 'terminals redeeming, voiding, refunding (crash)',
  },
  'crash-consumers': { type: 'string', default: '2000', help: 'consumers paying (crash)' },
  'crash-wallets': { type: 'string', default: '200', help: 'wallet sockets held open (crash)' },
  seed: {
    type: 'string',
    default: '',
    help: 'seed of the kill instants and amounts (crash; default random)',
  },
  chart: { type: 'string', default: '', help: 'write the latency chart (SVG) to this file (pos)' },
  json: { type: 'string', default: '', help: 'also write the results as JSON to this file' },
  'skip-baseline': {
    type: 'boolean',
    default: false,
    help: 'engine without the lmdb baseline (for profiling)',
  },
} as const;

function usage(): string {
  const workloads = Object.entries(WORKLOADS).map(([name, text]) => `  ${name.padEnd(10)} ${text}`);
  const flags = Object.entries(FLAGS).map(([name, flag]) =>
    flag.type === 'boolean'
      ? `  --${name.padEnd(22)} ${flag.help}`
      : `  --${`${name} N`.padEnd(22)} ${flag.help}${flag.default ? ` (default ${flag.default})` : ''}`,
  );
  return [
    'usage: npm run bench -- <workload> [flags]',
    '',
    'workloads:',
    ...workloads,
    '',
    'flags:',
    ...flags,
  ].join('\n');
}

function fail(message: string): never {
  console.error(`${message}\n\n${usage()}`);
  process.exit(1);
}

let parsed: ReturnType<typeof parseArgs<{ options: typeof FLAGS; allowPositionals: true }>>;
try {
  parsed = parseArgs({ args: process.argv.slice(2), options: FLAGS, allowPositionals: true, strict: true });
} catch (error) {
  fail((error as Error).message);
}
const { values, positionals } = parsed;
const workload = positionals[0];
if (!workload || !(workload in WORKLOADS) || positionals.length > 1) {
  fail(workload ? `unknown workload: ${positionals.join(' ')}` : 'no workload given');
}

const int = (name: keyof typeof FLAGS, min: number): number => {
  const raw = String(values[name]);
  const value = Number(raw.replaceAll('_', ''));
  if (!Number.isSafeInteger(value) || value < min)
    fail(`--${name} must be an integer >= ${min}, not "${raw}"`);
  return value;
};

const lmdbOptions: LmdbBaselineOptions = {
  seconds: int('seconds', 1),
  batch: int('batch', 1),
  inFlight: int('lmdb-in-flight', 1),
  accounts: int('accounts', 1),
};

const concurrency = String(values.concurrency)
  .split(',')
  .map((part) => Number(part.trim()));
if (concurrency.some((c) => !Number.isSafeInteger(c) || c < 1)) fail('--concurrency must list integers >= 1');

const engineOptions: EngineBenchOptions = {
  accounts: int('accounts', 1),
  redemptions: int('redemptions', 1),
  concurrency,
  shards: int('shards', 1),
  merchants: int('merchants', 1),
  warmup: int('warmup', 0),
  setupConcurrency: int('setup-concurrency', 1),
  liveActors: values['live-actors'] ? int('live-actors', 1) : undefined,
};

console.log(
  `paycode bench: ${workload} — node ${process.version}, ${cpus().length} CPUs (${cpus()[0]?.model ?? '?'}), ` +
    `${(totalmem() / 1024 ** 3).toFixed(1)} GiB, ${new Date().toISOString()}`,
);

const list = (name: keyof typeof FLAGS): string[] =>
  String(values[name])
    .split(',')
    .map((part) => part.trim())
    .filter((part) => part && part !== 'none');
const posWorkloads = list('only');
for (const name of posWorkloads) if (!(name in POS_WORKLOADS)) fail(`unknown pos workload: ${name}`);
const baselineKinds = list('baselines');
for (const name of baselineKinds)
  if (name !== 'lmdb' && !(BASELINES as readonly string[]).includes(name)) fail(`unknown baseline: ${name}`);
for (const flag of ['idle-accounts', 'accounts'] as const)
  if (int(flag, 1) > PHONES_MAX)
    fail(`--${flag} must be at most ${fmtInt(PHONES_MAX)} (phones are +1555 and 7 digits)`);
const rates = list('rates').map(Number);
if (rates.some((r) => !(r > 0 && r <= 1))) fail('--rates must list fractions in (0, 1]');
if (values.encoding !== 'json' && values.encoding !== 'msgpack') fail('--encoding must be json or msgpack');

const started = performance.now();
const lmdb =
  (workload === 'engine' && !values['skip-baseline']) ||
  workload === 'lmdb' ||
  (workload === 'pos' && baselineKinds.includes('lmdb'))
    ? await runLmdbBaseline(lmdbOptions)
    : undefined;
if (lmdb) printLmdbBaseline(lmdb);

let engine: Awaited<ReturnType<typeof runEngineBench>> | undefined;
let ok = true;
if (workload === 'engine') {
  console.log('');
  engine = await runEngineBench(engineOptions).catch((error: unknown) => {
    // A refused request or a configuration problem: the run proves nothing, say why.
    console.error(`engine benchmark failed: ${error instanceof Error ? error.message : String(error)}`);
    process.exit(1);
  });
  printEngineBench(engine);
  if (lmdb) {
    const ratio = engine.best.perSec / lmdb.redemption.unitsPerSec;
    console.log(
      `\nengine redemptions/s ÷ lmdb redemption-equivalents/s = ${fmt(engine.best.perSec)} ÷ ` +
        `${fmt(lmdb.redemption.unitsPerSec)} = ${ratio.toFixed(3)}`,
    );
  }
  const target = 100_000;
  console.log(
    `target ${fmt(target)} engine-only redemptions/s: ${engine.best.perSec >= target ? 'met' : 'NOT met'} ` +
      `(best ${fmt(engine.best.perSec)}/s at ${fmt(engine.best.concurrency)} in flight)`,
  );
  ok = engine.audit.ok && engine.audit.journalEntries === engine.journalExpected;
}
let settlement: SettlementBenchResult | undefined;
if (workload === 'settlement') {
  settlement = await runSettlementBench({ postings: int('postings', 1), merchants: int('merchants', 1) });
  printSettlementBench(settlement);
  ok = settlement.reconciled;
}
let pos: PosBenchResult | undefined;
if (workload === 'pos') {
  pos = await runPosBench({
    shards: int('shards', 1),
    merchants: int('merchants', 1),
    terminals: int('terminals', 1),
    consumers: int('consumers', 1),
    wallets: int('wallets', 1),
    idleWallets: int('idle-wallets', 1),
    transactions: int('transactions', 1),
    rates,
    openSeconds: int('open-seconds', 1),
    encoding: values.encoding as 'json' | 'msgpack',
    workloads: (posWorkloads.length > 0 ? posWorkloads : Object.keys(POS_WORKLOADS)) as PosWorkload[],
    baselines: baselineKinds.filter((kind) => kind !== 'lmdb') as BaselineKind[],
    serverNodeArgs: [
      ...String(values['server-node-options']).split(' ').filter(Boolean),
      ...(values['server-prof'] ? ['--cpu-prof', `--cpu-prof-dir=${values['server-prof']}`] : []),
    ],
  });
  printPosBench(pos);
  const redeem = pos.runs.find((run) => run.label === 'paycode redeem' && run.mode === 'closed');
  if (lmdb && redeem) {
    console.log(
      `paycode redeem ÷ lmdb-js redemption-equivalents/s: ${fmt(redeem.perSec)} ÷ ` +
        `${fmt(lmdb.redemption.unitsPerSec)} = ${(redeem.perSec / lmdb.redemption.unitsPerSec).toFixed(3)}`,
    );
  }
  if (values.chart) writeLatencyChart(pos, values.chart);
  ok =
    pos.failures.length === 0 &&
    pos.runs.every((run) => !run.label.startsWith('paycode') || run.errors === 0);
}
let capacity: CapacityResult | undefined;
if (workload === 'capacity') {
  capacity = await runCapacityBench({
    accounts: int('idle-accounts', 1),
    liveCodes: int('live-codes', 0),
    shards: int('shards', 1),
    merchants: int('merchants', 1),
    restarts: int('restarts', 1),
    dataDir: values['data-dir'] || undefined,
    cold: !values['no-cold'],
    cpuProfDir: values['server-prof'] || undefined,
  });
  printCapacity(capacity);
}
if (workload === 'web') {
  for (const line of await runWebBench({
    loads: int('loads', 1),
    postings: int('postings', 1),
    merchants: int('merchants', 1),
  }))
    console.log(line);
}
let codes: CodesBenchResult | undefined;
if (workload === 'codes') {
  codes = runCodesBench(int('draws', 1));
  printCodesBench(codes);
}
let machine: MachineBenchResult | undefined;
if (workload === 'machine') {
  machine = runMachineBench(int('payments', 1));
  printMachineBench(machine);
}
let cluster: ClusterBenchResult | undefined;
if (workload === 'cluster') {
  const options = {
    shards: Number(values['cluster-shards']),
    payments: Number(values['cluster-payments']),
    concurrency: Number(values['cluster-in-flight']),
    kills: Number(values.kills),
  };
  cluster = await runClusterBench(options);
  printClusterBench(cluster, options);
}

let handoffs: HandoffRow[] | undefined;
if (workload === 'handoffs') {
  handoffs = await runHandoffsBench([400, 4_000], 2_000);
  printHandoffsBench(handoffs);
}
let log: ReturnType<typeof runLogLinesBench> | undefined;
if (workload === 'log') {
  log = runLogLinesBench(200_000);
  console.log(`${fmtInt(log.lines)} access lines: ${log.microsPerLine.toFixed(2)} µs each`);
}
let crash: CrashReport | undefined;
if (workload === 'crash') {
  const seed = values.seed ? Number(values.seed) : Math.floor(Math.random() * 2 ** 31);
  console.log(`crash run, seed ${seed}`);
  crash = await crashRun({
    cycles: int('cycles', 1),
    terminals: int('crash-terminals', 2),
    consumers: int('crash-consumers', 2),
    wallets: int('crash-wallets', 0),
    shards: int('shards', 1),
    loadMsMin: 500,
    loadMsMax: 3_000,
    seed,
    log: (line) => console.log(line),
  });
  printCrash(crash);
  ok = crash.problems.length === 0 && crash.lossDetected;
}
console.log(`\ntotal ${((performance.now() - started) / 1000).toFixed(1)} s`);

if (values.json) {
  writeFileSync(
    values.json,
    `${JSON.stringify({ workload, lmdb, engine, settlement, pos, capacity, codes, machine, handoffs, log, crash, cluster }, withoutHistograms, 2)}\n`,
  );
}
if (!ok) {
  console.error('correctness check FAILED (audit, journal count, or a paycode transaction not approved)');
  process.exit(1);
}

function printCrash(report: CrashReport): void {
  const { acknowledged, restartMs } = report;
  console.log(
    `\n${report.options.cycles} kills under load (${report.options.terminals} terminals, ${report.options.wallets} wallet sockets) ` +
      `in ${(report.durationMs / 1000).toFixed(1)} s`,
  );
  console.log(
    `acknowledged: ${fmt(acknowledged.redeem)} redemptions, ${fmt(acknowledged.void)} voids, ${fmt(acknowledged.refund)} refunds, ` +
      `${fmt(acknowledged.reversed)} reversed, ${fmt(acknowledged.declined)} declined; ${fmt(report.unanswered)} without an answer`,
  );
  console.log(
    `restart after SIGKILL: median ${fmt(median(restartMs))} ms, max ${fmt(Math.max(...restartMs))} ms; ` +
      `SIGTERM at the end: exit code ${report.sigtermExitCode}`,
  );
  console.log(
    `spent codes shown again after a restart: ${report.spentShownAgain}, refused ${report.spentRefused}; ` +
      `a confirmation removed from a copy of the data: ${report.lossDetected ? 'reported' : 'NOT reported'}`,
  );
  console.log(
    report.problems.length === 0
      ? 'check: every acknowledged answer recovered exactly once, audits clean, one confirmation each'
      : `check FAILED:\n  ${report.problems.slice(0, 50).join('\n  ')}`,
  );
}

function fmt(n: number): string {
  return Math.round(n).toLocaleString('en-US');
}
