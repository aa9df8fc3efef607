import { readdirSync, readFileSync } from 'node:fs';
import { basename, join } from 'node:path';
import { parseArgs } from 'node:util';
import { table } from './measure.ts';

/**
 * Summarizes the V8 CPU profiles of a benchmark run: self time per thread (main thread, shard
 * workers), grouped (xstate, msgpack/lmdb, crypto, structured clone/postMessage, our code, GC, ...),
 * and the top self-time functions. With --results (the JSON of `bench/run.ts --json`), only samples
 * inside the measured redeem phases (engine) or measured runs (pos, with --server-prof) count.
 *
 *   node --cpu-prof --cpu-prof-dir=/tmp/prof --import tsx bench/run.ts engine --json /tmp/prof/results.json
 *   node --import tsx bench/profile-summary.ts /tmp/prof --results /tmp/prof/results.json
 */

interface CallFrame {
  functionName: string;
  url: string;
  lineNumber: number;
}

interface ProfileNode {
  id: number;
  callFrame: CallFrame;
  children?: number[];
}

interface Profile {
  nodes: ProfileNode[];
  startTime: number;
  samples: number[];
  timeDeltas: number[];
}

export const GROUPS = [
  'idle',
  'our code (engine/, persistence/)',
  'xstate',
  'msgpack/lmdb',
  'crypto/HMAC',
  'structured clone/postMessage',
  'GC',
  '(program): V8/native, unattributed',
  'node internals (promises, timers, ...)',
  'bench driver',
  'builtins (Array, Map, JSON, RegExp, ...)',
  'other',
] as const;
type Group = (typeof GROUPS)[number];

const CRYPTO =
  /^(createHmac|Hmac|update|digest|randomBytes|randomInt|createCipheriv|Cipheriv|final|getAuthTag)$/;
const MESSAGING = /^(postMessage|emitMessage|receiveMessageOnPort|structuredClone|deserialize|serialize)$/;

export function groupOf(frame: CallFrame): Group {
  const { functionName: name, url } = frame;
  if (name === '(idle)') return 'idle';
  if (name === '(garbage collector)') return 'GC';
  if (name === '(program)') return '(program): V8/native, unattributed';
  if (url.includes('/node_modules/xstate/')) return 'xstate';
  if (url.includes('/node_modules/msgpackr/') || url.includes('/node_modules/lmdb/')) return 'msgpack/lmdb';
  if (url.includes('/node_modules/ordered-binary/')) return 'msgpack/lmdb';
  if (url.startsWith('node:internal/crypto') || url === 'node:crypto' || (url === '' && CRYPTO.test(name)))
    return 'crypto/HMAC';
  if (
    url.startsWith('node:internal/worker') ||
    url.startsWith('node:internal/per_context/messageport') ||
    (url === '' && MESSAGING.test(name))
  )
    return 'structured clone/postMessage';
  if (url.includes('/engine/') || url.includes('/persistence/')) return 'our code (engine/, persistence/)';
  if (url.includes('/bench/')) return 'bench driver';
  if (url.startsWith('node:')) return 'node internals (promises, timers, ...)';
  if (url === '') return 'builtins (Array, Map, JSON, RegExp, ...)';
  return 'other';
}

export interface ThreadSummary {
  file: string;
  thread: string;
  sampledMs: number;
  busyMs: number;
  groups: Map<Group, number>;
  functions: { name: string; where: string; group: Group; ms: number }[];
}

function threadKind(profile: Profile, file: string): string {
  const urls = profile.nodes.map((node) => node.callFrame.url);
  if (urls.some((url) => url.endsWith('/engine/shard-worker.ts'))) return 'shard worker';
  if (urls.some((url) => url.endsWith('/bench/run.ts'))) return 'main thread';
  // File names are CPU.<date>.<time>.<pid>.<thread id>.<seq>.cpuprofile; thread id 0 is the main thread.
  return basename(file).split('.')[4] === '0' ? 'main thread' : 'other thread (tsx loader, ...)';
}

export function summarizeProfile(file: string, windows: [number, number][] | null): ThreadSummary {
  const profile = JSON.parse(readFileSync(file, 'utf8')) as Profile;
  const byId = new Map(profile.nodes.map((node) => [node.id, node]));
  const parentOf = new Map<number, number>();
  for (const node of profile.nodes) for (const child of node.children ?? []) parentOf.set(child, node.id);
  // tsx output keeps no line numbers, so an anonymous function is named after its nearest named caller.
  const nameOf = (id: number): string => {
    const frame = (byId.get(id) as ProfileNode).callFrame;
    if (frame.functionName) return frame.functionName;
    for (let up = parentOf.get(id); up !== undefined; up = parentOf.get(up)) {
      const caller = (byId.get(up) as ProfileNode).callFrame;
      if (caller.functionName && !caller.functionName.startsWith('('))
        return `(anonymous, in ${caller.functionName})`;
    }
    return '(anonymous)';
  };
  const self = new Map<number, number>();
  let t = profile.startTime;
  let window = 0;
  let sampledMs = 0;
  for (let i = 0; i < profile.samples.length; i++) {
    const delta = profile.timeDeltas[i] ?? 0;
    t += delta;
    if (windows) {
      while (window < windows.length && t > (windows[window] as [number, number])[1]) window++;
      const current = windows[window];
      if (!current || t < current[0]) continue;
    }
    const id = profile.samples[i] as number;
    self.set(id, (self.get(id) ?? 0) + delta / 1000);
    sampledMs += delta / 1000;
  }
  const groups = new Map<Group, number>();
  const functions = new Map<string, { name: string; where: string; group: Group; ms: number }>();
  for (const [id, ms] of self) {
    const frame = (byId.get(id) as ProfileNode).callFrame;
    const group = groupOf(frame);
    groups.set(group, (groups.get(group) ?? 0) + ms);
    const where = frame.url
      ? `${frame.url.replace(/^.*\/(node_modules|work\/main)\//, '')}:${frame.lineNumber + 1}`
      : '';
    const name = nameOf(id);
    const key = `${name}@${where}`;
    const entry = functions.get(key);
    if (entry) entry.ms += ms;
    else functions.set(key, { name, where, group, ms });
  }
  return {
    file,
    thread: threadKind(profile, file),
    sampledMs,
    busyMs: sampledMs - (groups.get('idle') ?? 0),
    groups,
    functions: [...functions.values()].sort((a, b) => b.ms - a.ms),
  };
}

const pct = (part: number, whole: number) => (whole > 0 ? `${((part / whole) * 100).toFixed(1)}%` : '-');

export function printSummaries(summaries: ThreadSummary[], top: number): void {
  const threads = summaries.filter((s) => s.busyMs > 0).sort((a, b) => b.busyMs - a.busyMs);
  const total = threads.reduce((sum, s) => sum + s.busyMs, 0);
  console.log(`busy (non-idle) sampled time, all threads: ${(total / 1000).toFixed(2)} s`);
  console.log(
    table(
      ['group', ...threads.map((s) => `${s.thread} ${basename(s.file).split('.')[4]}`), 'all threads'],
      GROUPS.filter((g) => g !== 'idle').map((group) => {
        const all = threads.reduce((sum, s) => sum + (s.groups.get(group) ?? 0), 0);
        return [group, ...threads.map((s) => pct(s.groups.get(group) ?? 0, s.busyMs)), pct(all, total)];
      }),
    ),
  );
  console.log(
    table(
      ['thread', 'busy s', 'idle s', 'share of busy time'],
      threads.map((s) => [
        `${s.thread} ${basename(s.file)}`,
        (s.busyMs / 1000).toFixed(2),
        ((s.groups.get('idle') ?? 0) / 1000).toFixed(2),
        pct(s.busyMs, total),
      ]),
    ),
  );
  for (const s of threads) {
    if (s.busyMs < total * 0.02) continue;
    console.log(`\n${s.thread} (${basename(s.file)}): top ${top} self-time functions (% of its busy time)`);
    console.log(
      table(
        ['function', 'where', 'group', 'ms', '%'],
        s.functions
          .filter((f) => f.group !== 'idle')
          .slice(0, top)
          .map((f) => [f.name, f.where, f.group, f.ms.toFixed(0), pct(f.ms, s.busyMs)]),
      ),
    );
  }
}

if (import.meta.url === `file://${process.argv[1]}`) {
  const { values, positionals } = parseArgs({
    args: process.argv.slice(2),
    options: { results: { type: 'string' }, top: { type: 'string', default: '20' } },
    allowPositionals: true,
  });
  const dir = positionals[0];
  if (!dir) {
    console.error(
      'usage: node --import tsx bench/profile-summary.ts <dir of .cpuprofile> [--results results.json]',
    );
    process.exit(1);
  }
  // The engine workload's redeem phases, or the measured runs of the pos workload (its server profiles).
  const results = values.results
    ? (JSON.parse(readFileSync(values.results, 'utf8')) as {
        engine?: { redeemWindowsUs: [number, number][] };
        pos?: { runs: { windowsUs: [number, number][] }[] };
      })
    : null;
  const windows =
    results?.engine?.redeemWindowsUs ?? results?.pos?.runs.flatMap((run) => run.windowsUs) ?? null;
  if (windows) {
    const span = windows.reduce((sum, [a, b]) => sum + (b - a), 0) / 1e6;
    console.log(
      `only samples inside the ${windows.length} measured redeem phases (${span.toFixed(2)} s wall)`,
    );
  }
  const files = readdirSync(dir).filter((file) => file.endsWith('.cpuprofile'));
  printSummaries(
    files.map((file) => summarizeProfile(join(dir, file), windows)),
    Number(values.top),
  );
}
