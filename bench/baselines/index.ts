import { type ChildProcess, spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { fileURLToPath } from 'node:url';
import { Redis } from 'ioredis';
import pg from 'pg';
import { isAlive } from '../proc.ts';
import { seedPostgres } from './postgres.ts';
import { seedRedis } from './redis.ts';
import { type BaselineSeed, validateSeed } from './seed.ts';
import { type Service, startPostgres, startRedis } from './services.ts';

/**
 * Baseline servers for the benchmark, speaking the same redeem protocol as paycode's load generator
 * expects, each a child process on 127.0.0.1:
 * - `echo`: raw uWebSockets.js echo, the gateway's ceiling;
 * - `postgres`: a thin uWS server running each redeem as one PostgreSQL transaction on a pg Pool;
 * - `redis`: the same redeem as one Lua script on Redis with an fsynced append-only file.
 */

export { type BaselineSeed, baselineCode, type SeededCode } from './seed.ts';

export type BaselineKind = 'echo' | 'postgres' | 'redis';

export interface Baseline {
  kind: BaselineKind;
  /** ws://127.0.0.1:PORT/ */
  url: string;
  /** e.g. 'PostgreSQL 15.18, synchronous_commit=on, fsync=on, pool 32'. */
  describe: string;
  /** The database's URL (postgres://… or redis://…), for checks; null for echo. */
  databaseUrl: string | null;
  /** How long creating the schema and seeding took, in ms (0 for echo). */
  seedMs: number;
  /** The thin node server and every database process now, for CPU accounting via /proc/<pid>/stat. */
  serverPids(): number[];
  /** Stops the server and the database and removes their temp dirs. */
  stop(): Promise<void>;
}

export interface BaselineOptions {
  /** pg Pool size (default 32) or Redis connections (default 4). */
  pool?: number;
}

const SERVER = fileURLToPath(new URL('./server.ts', import.meta.url));
const REPO_ROOT = fileURLToPath(new URL('../../', import.meta.url));
const READY_TIMEOUT_MS = 60_000;

export async function startBaseline(
  kind: BaselineKind,
  seed: BaselineSeed,
  options: BaselineOptions = {},
): Promise<Baseline> {
  validateSeed(seed);
  const pool = options.pool ?? (kind === 'redis' ? 4 : 32);
  if (!Number.isInteger(pool) || pool < 1) throw new RangeError('options.pool must be a positive integer');
  const hashKey = randomBytes(32);
  let service: Service | null = null;
  try {
    const args = ['--kind', kind, '--port', '0', '--pool', String(pool)];
    let describe = `uWebSockets.js echo, node ${process.version}`;
    let seedMs = 0;
    if (kind === 'postgres') {
      service = await startPostgres({ maxConnections: pool + 20 });
      const settings = await postgresSettings(service.url);
      if (settings.fsync !== 'on' || settings.synchronous_commit !== 'on') {
        throw new Error(`PostgreSQL is not durable: ${JSON.stringify(settings)}`);
      }
      const started = performance.now();
      await seedPostgres(service.url, seed, hashKey);
      seedMs = performance.now() - started;
      args.push('--pg-url', service.url);
      describe =
        `PostgreSQL ${service.version}, synchronous_commit=${settings.synchronous_commit}, ` +
        `fsync=${settings.fsync}, pool ${pool}`;
    } else if (kind === 'redis') {
      service = await startRedis();
      const settings = await redisSettings(service.url);
      if (settings.appendonly !== 'yes' || settings.appendfsync !== 'always') {
        throw new Error(`Redis is not durable: ${JSON.stringify(settings)}`);
      }
      const started = performance.now();
      await seedRedis(service.url, seed, hashKey);
      seedMs = performance.now() - started;
      args.push('--redis-port', String(service.port));
      describe =
        `Redis ${service.version}, appendonly ${settings.appendonly}, appendfsync ${settings.appendfsync}, ` +
        `Lua EVALSHA, ${pool} auto-pipelined connections`;
    }
    const child = await startServer(args, hashKey);
    const db = service;
    let stopping: Promise<void> | null = null;
    return {
      kind,
      url: `ws://127.0.0.1:${child.port}/`,
      describe,
      databaseUrl: db?.url ?? null,
      seedMs,
      serverPids: () => [
        ...(child.process.pid !== undefined && isAlive(child.process.pid) ? [child.process.pid] : []),
        ...(db?.pids() ?? []),
      ],
      stop: () => {
        stopping ??= (async () => {
          await stopChild(child.process);
          await db?.stop();
        })();
        return stopping;
      },
    };
  } catch (error) {
    await service?.stop().catch(() => {});
    throw error;
  }
}

async function postgresSettings(url: string): Promise<Record<string, string>> {
  const client = new pg.Client({ connectionString: url });
  await client.connect();
  try {
    const result = await client.query(
      `SELECT name, setting FROM pg_settings WHERE name IN ('fsync', 'synchronous_commit', 'full_page_writes')`,
    );
    return Object.fromEntries(result.rows.map((row) => [row.name, row.setting]));
  } finally {
    await client.end();
  }
}

async function redisSettings(url: string): Promise<Record<string, string>> {
  const redis = new Redis(url);
  try {
    const pairs = [
      ...((await redis.config('GET', 'append*')) as string[]),
      ...((await redis.config('GET', 'save')) as string[]),
    ];
    const settings: Record<string, string> = {};
    for (let i = 0; i + 1 < pairs.length; i += 2) settings[pairs[i] as string] = pairs[i + 1] as string;
    return settings;
  } finally {
    redis.disconnect();
  }
}

/** Starts server.ts and waits for its `listening <port>` line. */
function startServer(args: string[], hashKey: Buffer): Promise<{ process: ChildProcess; port: number }> {
  // The server exits when its stdin closes, so it does not outlive this process even if this one dies.
  const child = spawn(process.execPath, ['--import', 'tsx', SERVER, ...args, '--exit-with-stdin'], {
    cwd: REPO_ROOT,
    stdio: ['pipe', 'pipe', 'inherit'],
    env: { ...process.env, BASELINE_HASH_KEY: hashKey.toString('hex') },
  });
  return new Promise((resolve, reject) => {
    let output = '';
    let ready = false;
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      reject(new Error('baseline server did not start in time'));
    }, READY_TIMEOUT_MS);
    const onExit = (code: number | null) => {
      clearTimeout(timer);
      reject(new Error(`baseline server exited (${code}) before listening`));
    };
    child.once('exit', onExit);
    child.stdout?.setEncoding('utf8');
    child.stdout?.on('data', (chunk: string) => {
      if (ready) return;
      output += chunk;
      const port = output.match(/^listening (\d+)$/m)?.[1];
      if (!port) return;
      ready = true;
      clearTimeout(timer);
      child.off('exit', onExit);
      resolve({ process: child, port: Number(port) });
    });
  });
}

/** SIGTERM, then SIGKILL after 10 s; resolves once the process has exited. */
function stopChild(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return Promise.resolve();
  return new Promise((resolve) => {
    const timer = setTimeout(() => child.kill('SIGKILL'), 10_000);
    child.once('exit', () => {
      clearTimeout(timer);
      resolve();
    });
    child.kill('SIGTERM');
  });
}
