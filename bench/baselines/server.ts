import uWS from 'uWebSockets.js';
import { parseArgs } from 'node:util';
import { postgresRedeemer } from './postgres.ts';
import { redisRedeemer } from './redis.ts';
import { decline, parseRedeem, type Redeemer, type RedeemOutcome } from './seed.ts';

/**
 * A baseline server, run as its own process:
 *   node --import tsx bench/baselines/server.ts --kind echo|postgres|redis --port 0
 *     [--pg-url URL] [--redis-port N] [--pool N] [--exit-with-stdin]
 * Serves WebSockets on 127.0.0.1 at any path and prints `listening <port>` once ready. `echo` sends each
 * message back as it came; `postgres` and `redis` answer redeem frames with redeemResult frames, in
 * completion order. The code hash key comes from the environment (BASELINE_HASH_KEY, hex).
 * SIGTERM closes the listener and every socket, then the database connections, and exits; so does the
 * end of stdin with --exit-with-stdin (the parent's way to take the server down with it if it dies).
 */

const { values } = parseArgs({
  options: {
    kind: { type: 'string' },
    port: { type: 'string', default: '0' },
    'pg-url': { type: 'string' },
    'redis-port': { type: 'string' },
    pool: { type: 'string' },
    'exit-with-stdin': { type: 'boolean', default: false },
  },
});

function fail(message: string): never {
  console.error(`baseline server: ${message}`);
  process.exit(2);
}

const kind = values.kind;
if (kind !== 'echo' && kind !== 'postgres' && kind !== 'redis')
  fail('--kind must be echo, postgres or redis');
const port = Number(values.port);
if (!Number.isInteger(port) || port < 0 || port > 65_535) fail('--port must be a port number');
const pool = Number(values.pool ?? (kind === 'redis' ? 4 : 32));
if (!Number.isInteger(pool) || pool < 1) fail('--pool must be a positive integer');

async function redeemer(): Promise<Redeemer | null> {
  if (kind === 'echo') return null;
  const hashKey = Buffer.from(process.env.BASELINE_HASH_KEY ?? '', 'hex');
  if (hashKey.length < 16) fail('BASELINE_HASH_KEY must hold at least 16 bytes, hex');
  if (kind === 'postgres') {
    if (!values['pg-url']) fail('--pg-url is required');
    return postgresRedeemer({ url: values['pg-url'], pool, hashKey });
  }
  const redisPort = Number(values['redis-port']);
  if (!Number.isInteger(redisPort) || redisPort <= 0) fail('--redis-port is required');
  return redisRedeemer({ url: `redis://127.0.0.1:${redisPort}`, pool, hashKey });
}

interface Session {
  closed: boolean;
}

const backend = await redeemer();
const sockets = new Set<uWS.WebSocket<Session>>();

function answer(ws: uWS.WebSocket<Session>, seq: number | null, outcome: RedeemOutcome): void {
  if (ws.getUserData().closed) return;
  ws.send(JSON.stringify({ type: 'redeemResult', seq, ...outcome }), false);
}

async function onRedeem(ws: uWS.WebSocket<Session>, text: string, db: Redeemer): Promise<void> {
  const request = parseRedeem(text);
  if (!('code' in request)) return answer(ws, request.seq, decline('bad_request'));
  let outcome: RedeemOutcome;
  try {
    outcome = await db.redeem(request);
  } catch (error) {
    console.error('baseline server: redeem failed', error);
    outcome = decline('error');
  }
  answer(ws, request.seq, outcome);
}

const decoder = new TextDecoder();
const app = uWS.App();
app.ws<Session>('/*', {
  compression: uWS.DISABLED,
  maxPayloadLength: 16 * 1024,
  maxBackpressure: 16 * 1024 * 1024,
  idleTimeout: 120,
  sendPingsAutomatically: true,
  upgrade: (res, req, context) =>
    res.upgrade<Session>(
      { closed: false },
      req.getHeader('sec-websocket-key'),
      req.getHeader('sec-websocket-protocol'),
      req.getHeader('sec-websocket-extensions'),
      context,
    ),
  open: (ws) => {
    sockets.add(ws);
  },
  message: (ws, message, isBinary) => {
    if (!backend) {
      ws.send(message, isBinary);
      return;
    }
    // The message buffer is only valid during this call: decode it now.
    void onRedeem(ws, decoder.decode(message), backend);
  },
  close: (ws) => {
    ws.getUserData().closed = true;
    sockets.delete(ws);
  },
});

const listenSocket = await new Promise<uWS.us_listen_socket>((resolve) =>
  app.listen('127.0.0.1', port, (token) => (token ? resolve(token) : fail(`cannot listen on port ${port}`))),
);
console.log(`listening ${uWS.us_socket_local_port(listenSocket as unknown as uWS.us_socket)}`);

let stopping = false;
function shutdown(): void {
  if (stopping) return;
  stopping = true;
  uWS.us_listen_socket_close(listenSocket);
  for (const ws of sockets) ws.end(1001, 'server shutting down');
  const timeout = setTimeout(() => process.exit(1), 10_000);
  void (backend?.close() ?? Promise.resolve()).then(
    () => {
      clearTimeout(timeout);
      process.exit(0);
    },
    (error: unknown) => {
      console.error('baseline server: close failed', error);
      process.exit(1);
    },
  );
}
process.on('SIGTERM', shutdown);
if (values['exit-with-stdin']) {
  process.stdin.on('end', shutdown);
  process.stdin.resume();
}
