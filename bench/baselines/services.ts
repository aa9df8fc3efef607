import { type ChildProcess, spawn, spawnSync } from 'node:child_process';
import {
  appendFileSync,
  chownSync,
  existsSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  rmSync,
} from 'node:fs';
import { createConnection, createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { sleep } from '../measure.ts';
import { childrenOf, isAlive } from '../proc.ts';

/**
 * The database servers the baselines run against, each in a fresh temp dir on loopback, started and
 * stopped by the bench itself (installed from Debian's archive first when missing, which needs root).
 */
export interface Service {
  host: string;
  port: number;
  /** e.g. `postgres://postgres@127.0.0.1:5433/postgres` or `redis://127.0.0.1:6380`. */
  url: string;
  /** The server's version, e.g. `15.18` or `7.0.15`. */
  version: string;
  /** Every process of the database server now (the main process and its children), for CPU accounting. */
  pids(): number[];
  /** Stops the server and removes its temp dir. */
  stop(): Promise<void>;
}

const HOST = '127.0.0.1';

/**
 * Synchronous cleanups for services still running when the process exits without stopping them (say,
 * on an uncaught error): kill the server, remove its temp dir.
 */
const leftovers = new Set<() => void>();
let exitHooked = false;

function leaveCleanup(cleanup: () => void): () => void {
  if (!exitHooked) {
    exitHooked = true;
    process.once('exit', () => {
      for (const leftover of leftovers) leftover();
    });
  }
  leftovers.add(cleanup);
  return () => leftovers.delete(cleanup);
}

function log(line: string): void {
  console.error(`baselines: ${line}`);
}

interface RunResult {
  code: number | null;
  stdout: string;
  stderr: string;
}

/** Runs a command to its end, collecting its output (or, with `toStderr`, passing it on to our stderr). */
function run(command: string, args: string[], options: { toStderr?: boolean } = {}): Promise<RunResult> {
  return new Promise((resolve, reject) => {
    const child = spawn(command, args, {
      stdio: options.toStderr ? ['ignore', 2, 2] : ['ignore', 'pipe', 'pipe'],
      env: { ...process.env, DEBIAN_FRONTEND: 'noninteractive' },
    });
    let stdout = '';
    let stderr = '';
    child.stdout?.on('data', (chunk) => {
      stdout += chunk;
    });
    child.stderr?.on('data', (chunk) => {
      stderr += chunk;
    });
    child.on('error', reject);
    child.on('close', (code) => resolve({ code, stdout, stderr }));
  });
}

async function mustRun(
  command: string,
  args: string[],
  options: { toStderr?: boolean } = {},
): Promise<string> {
  const result = await run(command, args, options);
  if (result.code !== 0) {
    throw new Error(
      `${command} ${args.join(' ')} exited ${result.code}: ${result.stderr.trim() || result.stdout.trim()}`,
    );
  }
  return result.stdout;
}

function isRoot(): boolean {
  return process.getuid?.() === 0;
}

let aptUpdated = false;

/** Installs Debian packages (as root): `apt-get update` once, then `apt-get install -y`. */
async function aptInstall(packages: string[]): Promise<void> {
  if (!isRoot()) {
    throw new Error(
      `${packages.join(' ')} is not installed; as root run: apt-get install -y ${packages.join(' ')}`,
    );
  }
  if (!aptUpdated) {
    log('running apt-get update');
    await mustRun('apt-get', ['update', '-q'], { toStderr: true });
    aptUpdated = true;
  }
  log(`running apt-get install -y ${packages.join(' ')}`);
  await mustRun('apt-get', ['install', '-y', '-q', ...packages], { toStderr: true });
}

/** A TCP port free on loopback right now. */
export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.on('error', reject);
    server.listen(0, HOST, () => {
      const address = server.address();
      const port = typeof address === 'object' && address ? address.port : 0;
      server.close(() => resolve(port));
    });
  });
}

async function waitUntilGone(pids: number[], timeoutMs: number): Promise<boolean> {
  const deadline = Date.now() + timeoutMs;
  while (pids.some(isAlive)) {
    if (Date.now() > deadline) return false;
    await sleep(20);
  }
  return true;
}

// ---------------------------------------------------------------------------------------------------
// PostgreSQL

/** The newest PostgreSQL server binaries of Debian's layout, /usr/lib/postgresql/<major>/bin. */
function postgresBinDir(): string | null {
  const root = '/usr/lib/postgresql';
  if (!existsSync(root)) return null;
  const majors = readdirSync(root)
    .filter((name) => existsSync(join(root, name, 'bin', 'initdb')))
    .sort((a, b) => Number(b) - Number(a));
  return majors[0] ? join(root, majors[0], 'bin') : null;
}

/** uid and gid of a system user, from /etc/passwd; null if there is none. */
function systemUser(name: string): { uid: number; gid: number } | null {
  for (const line of readFileSync('/etc/passwd', 'utf8').split('\n')) {
    const [user, , uid, gid] = line.split(':');
    if (user === name) return { uid: Number(uid), gid: Number(gid) };
  }
  return null;
}

export interface PostgresOptions {
  /** max_connections (the pool plus a few for seeding and checks); default 100. */
  maxConnections?: number;
  /** shared_buffers; default 256MB. */
  sharedBuffers?: string;
}

/**
 * A fresh PostgreSQL cluster: initdb into a temp dir and a server on 127.0.0.1:<free port> with the
 * durable defaults made explicit (fsync=on, synchronous_commit=on, full_page_writes=on). initdb refuses
 * to run as root, so as root both run as the `postgres` system user. Trust authentication: the server
 * listens on loopback only and its unix socket lives in the temp dir.
 */
export async function startPostgres(options: PostgresOptions = {}): Promise<Service> {
  let bin = postgresBinDir();
  if (!bin) {
    await aptInstall(['postgresql']);
    bin = postgresBinDir();
    if (!bin) throw new Error('postgresql installed but no /usr/lib/postgresql/*/bin/initdb found');
  }
  // [command, args] running a server binary as the postgres user when we are root.
  const asServerUserArgs = (command: string, args: string[]): [string, string[]] =>
    isRoot()
      ? ['runuser', ['-u', 'postgres', '--', join(bin, command), ...args]]
      : [join(bin, command), args];
  const asServerUser = (command: string, args: string[]) => mustRun(...asServerUserArgs(command, args));

  const dir = mkdtempSync(join(tmpdir(), 'paycode-pg-'));
  const data = join(dir, 'data');
  let started = false;
  try {
    if (isRoot()) {
      let user = systemUser('postgres');
      if (!user) {
        log('creating the postgres system user');
        await mustRun('useradd', ['--system', '--user-group', '--no-create-home', 'postgres']);
        user = systemUser('postgres');
      }
      if (!user) throw new Error('no postgres user');
      chownSync(dir, user.uid, user.gid);
    }
    const version = (await mustRun(join(bin, 'postgres'), ['--version'])).match(/\d+(\.\d+)+/)?.[0] ?? '?';
    // --no-sync only skips initdb's own final flush of the template files, not the server's fsyncs.
    await asServerUser('initdb', [
      '-D',
      data,
      '-U',
      'postgres',
      '--auth=trust',
      '-E',
      'UTF8',
      '--no-locale',
      '--no-sync',
    ]);
    const port = await freePort();
    appendFileSync(
      join(data, 'postgresql.conf'),
      [
        '',
        '# paycode bench baseline',
        `listen_addresses = '${HOST}'`,
        `port = ${port}`,
        `unix_socket_directories = '${dir}'`,
        `max_connections = ${options.maxConnections ?? 100}`,
        `shared_buffers = ${options.sharedBuffers ?? '256MB'}`,
        'fsync = on',
        'synchronous_commit = on',
        'full_page_writes = on',
        // Room for a benchmark's WAL between checkpoints, as a tuned production server would have.
        'max_wal_size = 2GB',
        '',
      ].join('\n'),
    );
    log(`starting PostgreSQL ${version} on ${HOST}:${port} in ${dir}`);
    await asServerUser('pg_ctl', ['-D', data, '-l', join(dir, 'server.log'), '-w', '-t', '60', 'start']);
    started = true;
    const forget = leaveCleanup(() => {
      spawnSync(...asServerUserArgs('pg_ctl', ['-D', data, '-m', 'immediate', 'stop']), { stdio: 'ignore' });
      rmSync(dir, { recursive: true, force: true });
    });
    const postmaster = Number(readFileSync(join(data, 'postmaster.pid'), 'utf8').split('\n', 1)[0]);

    let stopping: Promise<void> | null = null;
    return {
      host: HOST,
      port,
      url: `postgres://postgres@${HOST}:${port}/postgres`,
      version,
      pids: () => (isAlive(postmaster) ? [postmaster, ...childrenOf(postmaster)] : []),
      stop: () => {
        stopping ??= (async () => {
          forget();
          const pids = [postmaster, ...childrenOf(postmaster)];
          await asServerUser('pg_ctl', ['-D', data, '-m', 'fast', '-w', 'stop']);
          if (!(await waitUntilGone(pids, 10_000))) throw new Error('PostgreSQL processes still running');
          rmSync(dir, { recursive: true, force: true });
        })();
        return stopping;
      },
    };
  } catch (error) {
    if (started) await asServerUser('pg_ctl', ['-D', data, '-m', 'immediate', 'stop']).catch(() => {});
    else if (existsSync(join(dir, 'server.log'))) log(readFileSync(join(dir, 'server.log'), 'utf8'));
    rmSync(dir, { recursive: true, force: true });
    throw error;
  }
}

// ---------------------------------------------------------------------------------------------------
// Redis

async function which(command: string): Promise<string | null> {
  const result = await run('which', [command]);
  return result.code === 0 ? result.stdout.trim() : null;
}

/** Sends PING over a raw connection; true on +PONG. */
function ping(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = createConnection({ host: HOST, port });
    const done = (ok: boolean) => {
      socket.destroy();
      resolve(ok);
    };
    socket.setTimeout(1000, () => done(false));
    socket.on('error', () => done(false));
    socket.on('connect', () => socket.write('PING\r\n'));
    socket.on('data', (chunk) => done(chunk.toString().startsWith('+PONG')));
  });
}

/**
 * A fresh redis-server in a temp dir on 127.0.0.1:<free port>, durable per command: append-only file
 * fsynced before each reply (`appendfsync always`), no RDB snapshots.
 */
export async function startRedis(): Promise<Service> {
  let binary = await which('redis-server');
  if (!binary) {
    await aptInstall(['redis-server']);
    binary = await which('redis-server');
    if (!binary) throw new Error('redis-server installed but not on PATH');
  }
  const version = (await mustRun(binary, ['--version'])).match(/v=(\S+)/)?.[1] ?? '?';
  const dir = mkdtempSync(join(tmpdir(), 'paycode-redis-'));
  const port = await freePort();
  const args = [
    '--port',
    String(port),
    '--bind',
    HOST,
    '--appendonly',
    'yes',
    '--appendfsync',
    'always',
    '--save',
    '',
    '--dir',
    dir,
    '--logfile',
    join(dir, 'redis.log'),
    '--daemonize',
    'no',
  ];
  log(`starting Redis ${version} on ${HOST}:${port} in ${dir}`);
  const child: ChildProcess = spawn(binary, args, { stdio: 'ignore' });
  child.once('error', (error) => log(`redis-server: ${error.message}`));
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  const pid = child.pid;
  try {
    if (pid === undefined) throw new Error('redis-server did not start');
    const deadline = Date.now() + 15_000;
    while (!(await ping(port))) {
      if (child.exitCode !== null || Date.now() > deadline) {
        throw new Error(
          `redis-server did not come up: ${readFileSync(join(dir, 'redis.log'), 'utf8').slice(-2000)}`,
        );
      }
      await sleep(20);
    }
  } catch (error) {
    child.kill('SIGKILL');
    await exited;
    rmSync(dir, { recursive: true, force: true });
    throw error;
  }

  const forget = leaveCleanup(() => {
    child.kill('SIGKILL');
    rmSync(dir, { recursive: true, force: true });
  });
  let stopping: Promise<void> | null = null;
  return {
    host: HOST,
    port,
    url: `redis://${HOST}:${port}`,
    version,
    pids: () => (isAlive(pid) ? [pid, ...childrenOf(pid)] : []),
    stop: () => {
      stopping ??= (async () => {
        forget();
        const pids = [pid, ...childrenOf(pid)];
        // SIGTERM: Redis flushes and fsyncs the append-only file, then exits.
        child.kill('SIGTERM');
        const timer = setTimeout(() => child.kill('SIGKILL'), 10_000);
        await exited;
        clearTimeout(timer);
        if (!(await waitUntilGone(pids, 5_000))) throw new Error('Redis processes still running');
        rmSync(dir, { recursive: true, force: true });
      })();
      return stopping;
    },
  };
}
