import { type ChildProcess, spawn } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { freePort } from './baselines/services.ts';

/**
 * A JetStream cluster of real `nats-server` processes (Debian's package) on 127.0.0.1, each with its
 * own store in a temporary directory. Tests and benchmarks start it themselves and stop it.
 */
export interface NatsCluster {
  /** Client URLs, one per server. */
  readonly urls: string[];
  /** The running servers' process ids (for their CPU time). */
  pids(): number[];
  /** Ends server `index` with SIGKILL (its store stays, so `start(index)` brings it back). */
  kill(index: number): Promise<void>;
  start(index: number): Promise<void>;
  stop(): Promise<void>;
}

const NATS_SERVER = process.env.PAYCODE_NATS_SERVER ?? 'nats-server';

async function waitForPort(port: number, child: ChildProcess, output: () => string): Promise<void> {
  const deadline = Date.now() + 15_000;
  while (Date.now() < deadline) {
    if (child.exitCode !== null || child.pid === undefined)
      throw new Error(`nats-server did not run: ${output()}`);
    const open = await new Promise<boolean>((resolve) => {
      const socket = new Socket();
      socket.once('connect', () => resolve(true)).once('error', () => resolve(false));
      socket.connect(port, '127.0.0.1');
      setTimeout(() => resolve(false), 500).unref();
    }).finally(() => undefined);
    if (open) return;
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
  throw new Error(`nats-server did not listen on ${port}: ${output()}`);
}

export async function startNatsCluster(size = 3): Promise<NatsCluster> {
  const dir = mkdtempSync(join(tmpdir(), 'paycode-nats-'));
  const clientPorts = await Promise.all(Array.from({ length: size }, freePort));
  const routePorts = await Promise.all(Array.from({ length: size }, freePort));
  const children: (ChildProcess | null)[] = Array.from({ length: size }, () => null);
  const configs = clientPorts.map((port, index) => {
    const store = join(dir, `n${index}`);
    mkdirSync(store, { recursive: true });
    const routes = routePorts.map((routePort) => `nats-route://127.0.0.1:${routePort}`).join(', ');
    const file = join(dir, `n${index}.conf`);
    writeFileSync(
      file,
      [
        `server_name: n${index}`,
        `listen: 127.0.0.1:${port}`,
        `jetstream { store_dir: "${store}" }`,
        size > 1
          ? `cluster { name: paycode, listen: 127.0.0.1:${routePorts[index]}, routes: [${routes}] }`
          : '',
      ].join('\n'),
    );
    return file;
  });
  const start = async (index: number) => {
    let output = '';
    const child = spawn(NATS_SERVER, ['-c', configs[index] as string], { stdio: ['ignore', 'pipe', 'pipe'] });
    child.stdout?.on('data', (chunk: Buffer) => {
      output = (output + chunk.toString()).slice(-4000);
    });
    child.stderr?.on('data', (chunk: Buffer) => {
      output = (output + chunk.toString()).slice(-4000);
    });
    child.once('error', (error) => {
      output += `${error.message}: install Debian's nats-server (scripts/ensure-nats.sh) or set PAYCODE_NATS_SERVER`;
    });
    children[index] = child;
    await waitForPort(clientPorts[index] as number, child, () => output);
  };
  const kill = async (index: number) => {
    const child = children[index];
    children[index] = null;
    if (!child || child.exitCode !== null) return;
    const exited = new Promise((resolve) => child.once('exit', resolve));
    child.kill('SIGKILL');
    await exited;
  };
  await Promise.all(clientPorts.map((_, index) => start(index)));
  return {
    urls: clientPorts.map((port) => `nats://127.0.0.1:${port}`),
    pids: () => children.flatMap((child) => (child?.pid === undefined ? [] : [child.pid])),
    kill,
    start,
    async stop() {
      await Promise.all(children.map((_, index) => kill(index)));
      rmSync(dir, { recursive: true, force: true });
    },
  };
}
