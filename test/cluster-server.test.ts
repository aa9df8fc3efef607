// Three paycode servers as one service on a real three-server NATS JetStream cluster (Debian's
// nats-server on loopback): a merchant made on one node, its terminal on another, a consumer verified on
// the third; payments redeemed through any node; each confirmation text sent by exactly one node; and
// after the node serving the consumer's shard leaves, the others take over with the balance intact. Then
// three server processes under POS and wallet load: one killed with SIGKILL, then a NATS server, then the
// node back under load; every acknowledged payment is there once and every node and phone agrees.
import { mkdirSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { expect, it, onTestFinished } from 'vitest';
import { freePort } from '../bench/baselines/services.ts';
import { type NatsCluster, startNatsCluster } from '../bench/nats-servers.ts';
import {
  CARD_CENTS,
  type Consumer,
  http,
  type PaycodeServer,
  setupFleet,
  startPaycode,
  WalletSocket,
} from '../bench/pos-server.ts';
import { shardOfSlot, slotOfId } from '../core/ids.ts';
import type { Limits } from '../core/limits.ts';
import { createSecretsFile, randomSecrets } from '../persistence/secrets.ts';
import { PosClient } from '../sdk/pos-client.ts';
import {
  OPERATOR_TOKEN,
  openSocket,
  posHandshake,
  startTestServer,
  type TestServer,
} from './server-helpers.ts';

const SHARDS = 6;

async function eventually<T>(
  check: () => T | undefined | Promise<T | undefined>,
  timeoutMs = 20_000,
): Promise<T> {
  const startedAt = Date.now();
  for (;;) {
    const value = await check();
    if (value !== undefined && value !== false) return value;
    if (Date.now() - startedAt > timeoutMs) throw new Error(`not within ${timeoutMs} ms`);
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
}

const health = (server: PaycodeServer) =>
  fetch(`${server.url}/healthz`).then(
    (response) => response.status,
    () => 0,
  );

/** `paycode_shards_served` of a server node. */
async function shardsServed(server: PaycodeServer): Promise<number> {
  const metrics = await (await fetch(`${server.url}/metrics`)).text();
  return Number(/^paycode_shards_served (\d+)$/m.exec(metrics)?.[1] ?? Number.NaN);
}

/**
 * Servers of one cluster in this process: each call starts a node with its own data directory, and the
 * short lease that keeps the tests quick (the benchmarks measure the default one).
 */
function clusterNodes(nats: NatsCluster, limits: Partial<Limits> = {}) {
  const secrets = randomSecrets();
  return (id: string, env: Record<string, string> = {}) =>
    startTestServer({
      secrets,
      env: { PAYCODE_NATS: nats.urls.join(','), PAYCODE_NODE_ID: id, PAYCODE_SHARDS: String(SHARDS), ...env },
      limits: { shardLeaseMs: 3_000, shardLeaseRenewMs: 500, ...limits },
    });
}

const serving = (t: TestServer) =>
  t.server.engine.health().shards.filter((shard) => shard.state === 'serving').length;

it('serves one network from three nodes: any node for any client, each text sent once, a node leaving', async () => {
  const nats = await startNatsCluster(3);
  onTestFinished(() => nats.stop());
  const node = clusterNodes(nats);
  const [a, b, c] = [await node('a'), await node('b'), await node('c')] as [
    TestServer,
    TestServer,
    TestServer,
  ];
  await eventually(() => [a, b, c].every((t) => serving(t) === SHARDS / 3));

  // The merchant is made on a, its terminal on b (with the API key a issued), activated there.
  const merchant = await a.merchant('Cluster Cafe');
  const created = await eventually(async () => {
    const answer = await b.http(
      'POST',
      `/v1/merchants/${merchant.merchantId}/terminals`,
      { label: 'till' },
      merchant.apiKey,
    );
    return answer.status === 201 ? answer.body : undefined;
  });
  const activated = await b.http('POST', '/v1/terminals/activate', {
    activationCode: created.activationCode,
  });
  expect(activated.status).toBe(200);
  const terminal = activated.body as { terminalId: string; terminalKey: string };

  // The consumer registers on c; the merchant loads value through a.
  const phone = '+15555550177';
  const consumer = await c.consumer(phone);
  const loaded = await a.http(
    'POST',
    `/v1/merchants/${merchant.merchantId}/cards`,
    { phone, amountCents: 5_000, kind: 'gift', idempotencyKey: 'cluster-load' },
    merchant.apiKey,
  );
  expect(loaded.status).toBe(201);

  // A wallet socket on every node: each hears the payments, whichever node serves the consumer's shard.
  const wallets = await Promise.all(
    [a, b, c].map(async (t) => {
      const wallet = await openSocket(t.server.url, '/v1/wallet');
      wallet.send({ type: 'auth', token: consumer.deviceToken });
      expect(await wallet.next((frame) => frame.type === 'snapshot')).toMatchObject({ frozen: false });
      return wallet;
    }),
  );

  // Payments: a code asked for on c, redeemed at a till connected to b, then to a.
  const receipts = () => [a, b, c].flatMap((t) => t.textsTo(phone).filter((text) => /paid at/.test(text)));
  for (const [index, till] of [b, a].entries()) {
    const code = await c.code(merchant, consumer.deviceToken);
    const pos = await till.pos(terminal);
    const sale = await pos.redeem({ code, amountCents: 1_000, key: `sale-${index}` });
    expect(sale.status).toBe('approved');
    await eventually(() => receipts().length === index + 1);
    for (const wallet of wallets)
      expect(
        await wallet.next((frame) => frame.type === 'balance' && frame.cause === 'redeem'),
      ).toMatchObject({ balanceCents: 4_000 - 1_000 * index });
  }
  await new Promise((resolve) => setTimeout(resolve, 1_000));
  expect(receipts()).toHaveLength(2);
  const wallet = await b.http('GET', '/v1/wallet', undefined, consumer.deviceToken);
  expect(wallet.status).toBe(200);
  expect(wallet.body.cards[0].balanceCents).toBe(3_000);

  // The day is settled once, whichever nodes are asked at once, and every node serves the same file.
  const businessDate = new Date().toISOString().slice(0, 10);
  const settle = (t: TestServer) => t.http('POST', '/v1/settlements', { businessDate }, OPERATOR_TOKEN);
  const [first, second] = await Promise.all([settle(a), settle(c)]);
  expect(first.status).toBe(200);
  expect(second.body).toEqual(first.body);
  expect(first.body.merchants.map((net: { merchantId: string }) => net.merchantId)).toEqual([
    merchant.merchantId,
  ]);
  const files = await Promise.all(
    [a, b, c].map((t) =>
      eventually(async () => {
        const file = await t.http('GET', `/v1/settlements/${businessDate}/ach`, undefined, OPERATOR_TOKEN);
        return file.status === 200 ? file.body : undefined;
      }),
    ),
  );
  expect(new Set(files).size).toBe(1);

  // The node serving the consumer's shard leaves; the others serve every shard, the balance intact.
  const shard = shardOfSlot(slotOfId(consumer.consumerId), SHARDS);
  const owner = [a, b, c].find(
    (t) => t.server.engine.health().shards[shard]?.state === 'serving',
  ) as TestServer;
  const others = [a, b, c].filter((t) => t !== owner);
  await owner.server.close();
  await eventually(() => others.reduce((sum, t) => sum + serving(t), 0) === SHARDS);
  const code = await (others[0] as TestServer).code(merchant, consumer.deviceToken);
  // A till given every node's address skips the one that is gone.
  const pos = await PosClient.connect({
    url: [owner.server.url, ...others.map((t) => t.server.url)],
    ...terminal,
    timeoutMs: 5_000,
  });
  onTestFinished(() => pos.close());
  expect((await pos.redeem({ code, amountCents: 500, key: 'sale-after' })).status).toBe('approved');
  const after = await (others[0] as TestServer).http('GET', '/v1/wallet', undefined, consumer.deviceToken);
  expect(after.body.cards[0].balanceCents).toBe(2_500);

  // A terminal revoked through one node loses its session on another at once.
  const [revoking, holding] = others as [TestServer, TestServer];
  const session = await posHandshake(
    holding.server.url,
    terminal.terminalId,
    Buffer.from(terminal.terminalKey, 'base64url'),
  );
  expect(session.answer.type).toBe('welcome');
  const revoked = await revoking.http(
    'POST',
    `/v1/merchants/${merchant.merchantId}/terminals/${terminal.terminalId}/revoke`,
    {},
    merchant.apiKey,
  );
  expect(revoked.status).toBe(200);
  expect(await session.socket.closed).toBe(4001);
}, 120_000);

it('keeps every acknowledged payment through a node kill and a NATS server kill under POS and wallet load, and takes the node back under load', async () => {
  const nats = await startNatsCluster(3);
  onTestFinished(() => nats.stop());
  const root = mkdtempSync(join(tmpdir(), 'paycode-cluster-load-'));
  onTestFinished((context) => {
    // What went wrong, from the nodes' own logs, before they are removed with the test's directory.
    if (context.task.result?.state === 'fail')
      for (const id of ['a', 'b', 'c'])
        for (const line of readFileSync(join(root, id, 'server.log'), 'utf8').split('\n'))
          if (/"level":"(warn|error)"|lease/.test(line)) console.error(`node ${id}: ${line.slice(0, 300)}`);
    rmSync(root, { recursive: true, force: true });
  });
  const secretsFile = join(root, 'secrets.json');
  createSecretsFile(secretsFile);
  const node = (id: string, port?: number) => {
    const dataDir = join(root, id);
    mkdirSync(dataDir, { recursive: true });
    return startPaycode({
      shards: SHARDS,
      dataDir,
      ...(port ? { port } : {}),
      env: { PAYCODE_NATS: nats.urls.join(','), PAYCODE_NODE_ID: id, PAYCODE_SECRETS_FILE: secretsFile },
    });
  };
  const nodes = [await node('a'), await node('b'), await node('c')];
  onTestFinished(async () => {
    for (const server of nodes) await server.kill();
  });

  const [a, b] = nodes as [PaycodeServer, PaycodeServer, PaycodeServer];
  const fleet = await setupFleet(a.url, { merchants: 2, terminals: 6, consumers: 24, hotMerchant: false });
  const urls = nodes.map((server) => server.url);
  for (const server of nodes) await eventually(async () => (await shardsServed(server)) === SHARDS / 3);
  const shardOf = (consumer: Consumer) => shardOfSlot(slotOfId(consumer.consumerId), SHARDS);

  // Each phone holds a wallet socket on a node the clients may use; when it drops, it opens on another.
  let live = [...nodes];
  const wallets = new Map<string, WalletSocket>();
  onTestFinished(() => {
    for (const wallet of wallets.values()) wallet.close();
  });
  const walletOf = async (consumer: Consumer, turn: number) => {
    const open = wallets.get(consumer.phone);
    if (open && !open.isClosed) return open;
    const server = live[turn % live.length] as PaycodeServer;
    const wallet = await WalletSocket.open(server.wsUrl, consumer.deviceToken).catch(() => null);
    if (wallet) wallets.set(consumer.phone, wallet);
    return wallet;
  };
  for (const [index, consumer] of fleet.consumers.entries())
    expect(await walletOf(consumer, index)).not.toBeNull();
  const codeFor = async (consumer: Consumer, turn: number, reqId: string) => {
    const wallet = await walletOf(consumer, turn);
    if (!wallet) return null;
    return Promise.race([
      wallet.requestCode(consumer.merchantId, reqId).catch(() => null),
      wallet.closed.then(() => null),
      new Promise<null>((resolve) => setTimeout(resolve, 10_000, null).unref()),
    ]);
  };

  // Each till charges its own consumers in turn: a code asked for on the phone's socket, redeemed
  // through the till's POS connection (every node's URL, starting at its own), retried under its key.
  type Sale = { code: string; amountCents: number; key: string };
  const paid = new Map<string, { consumer: Consumer; authId: string; request: Sale; atMs: number }>();
  const unknown = new Map<string, { consumer: Consumer; request: Sale }>();
  let stop = false;
  const tills = fleet.terminals.map(async (terminal, t) => {
    const pos = await PosClient.connect({
      url: [...urls.slice(t % 3), ...urls.slice(0, t % 3)],
      terminalId: terminal.terminalId,
      terminalKey: terminal.terminalKey,
      timeoutMs: 8_000,
      attemptsMax: 5,
    });
    onTestFinished(() => pos.close());
    // Consumers of its merchant (consumer c's merchant is c mod 2, till t's t mod 2) no other till charges.
    const mine = fleet.consumers.filter((_, c) => c % fleet.terminals.length === t);
    for (let sale = 0; !stop; sale++) {
      const consumer = mine[(t + sale) % mine.length] as Consumer;
      const code = await codeFor(consumer, t + sale, `till-${t}-${sale}`);
      if (!code) {
        await new Promise((resolve) => setTimeout(resolve, 200));
        continue;
      }
      const request = { code, amountCents: 100 + t, key: `till-${t}-${sale}` };
      const answer = await pos.redeem(request).catch(() => null);
      if (answer?.status === 'approved')
        paid.set(request.key, { consumer, authId: answer.authId as string, request, atMs: Date.now() });
      else if (!answer || answer.status === 'internal' || answer.status === 'overloaded') {
        unknown.set(request.key, { consumer, request });
        // The cashier, not knowing, charges the same code again under a new key.
        const again = { ...request, key: `${request.key}-again` };
        const second = await pos.redeem(again).catch(() => null);
        if (second?.status === 'approved')
          paid.set(again.key, {
            consumer,
            authId: second.authId as string,
            request: again,
            atMs: Date.now(),
          });
      }
    }
    return pos;
  });
  const paymentsOf = (consumer: Consumer) => [...paid.values()].filter((p) => p.consumer === consumer);
  const everyonePaysAfter = (sinceMs: number) =>
    eventually(
      () => fleet.consumers.every((consumer) => paymentsOf(consumer).some((p) => p.atMs > sinceMs)),
      30_000,
    );
  await new Promise((resolve) => setTimeout(resolve, 2_000));

  // A node is killed: once its leases ran out, every node says degraded until the survivors serve its
  // shards, within 10 s of the kill; then every consumer pays again.
  const nodeKilledAt = Date.now();
  await b.kill();
  live = nodes.filter((server) => server !== b);
  let degraded = false;
  const recoveredMs = await eventually(async () => {
    const statuses = await Promise.all(live.map((server) => health(server)));
    if (statuses.includes(503)) degraded = true;
    return degraded && statuses.every((status) => status === 200) ? Date.now() - nodeKilledAt : undefined;
  }, 30_000);
  expect(degraded).toBe(true);
  expect(recoveredMs).toBeLessThan(10_000);
  await everyonePaysAfter(nodeKilledAt);

  // A NATS server is killed: every consumer pays again within 10 s.
  const natsKilledAt = Date.now();
  await nats.kill(1);
  await everyonePaysAfter(natsKilledAt);
  for (const consumer of fleet.consumers) {
    const first = Math.min(...paymentsOf(consumer).map((p) => (p.atMs > natsKilledAt ? p.atMs : Infinity)));
    expect(first - natsKilledAt, consumer.phone).toBeLessThan(10_000);
  }

  // The NATS server and the killed node come back under load; the node catches up and takes its share
  // while every shard keeps taking payments: a shard that moves waits for the next lease round of the
  // node taking it, never as long as a failover (10 s).
  await nats.start(1);
  const rejoinedAt = Date.now();
  nodes[1] = await node('b', Number(new URL(b.url).port));
  live = [...nodes];
  await eventually(async () => (await shardsServed(nodes[1] as PaycodeServer)) === SHARDS / 3, 30_000);
  const balancedAt = Date.now();
  await everyonePaysAfter(balancedAt);
  for (let shard = 0; shard < SHARDS; shard++) {
    const times = [...paid.values()]
      .filter((p) => shardOf(p.consumer) === shard && p.atMs > rejoinedAt && p.atMs < balancedAt)
      .map((p) => p.atMs);
    if (!fleet.consumers.some((consumer) => shardOf(consumer) === shard)) continue;
    const marks = [rejoinedAt, ...times.sort((x, y) => x - y), balancedAt];
    const longest = Math.max(...marks.slice(1).map((at, index) => at - (marks[index] as number)));
    expect(longest, `shard ${shard}`).toBeLessThan(10_000);
  }
  stop = true;
  const tillClients = await Promise.all(tills);
  const tillOf = (key: string) => tillClients[Number(key.split('-')[1])] as PosClient;

  // A retry under the key of an unknown outcome gets the stored result (or runs now).
  for (const [key, { request, consumer }] of unknown) {
    const answer = await tillOf(key).redeem(request);
    if (answer.status === 'approved')
      paid.set(key, { consumer, authId: answer.authId as string, request, atMs: Date.now() });
  }
  // Every acknowledged payment is there exactly once: a replay gives its authorization. No code was
  // approved twice: of a sale's key and the key it was charged again under, at most one is approved.
  for (const [key, { authId, request }] of paid) {
    const replay = await tillOf(key).redeem(request);
    expect(replay.authId, key).toBe(authId);
  }
  expect([...paid.keys()].filter((key) => paid.has(`${key}-again`))).toEqual([]);
  // Balances: the funding less the acknowledged payments, on every node and on every phone's socket.
  const expected = (consumer: Consumer) =>
    CARD_CENTS - paymentsOf(consumer).reduce((sum, p) => sum + p.request.amountCents, 0);
  const balancesOn = async (servers: PaycodeServer[]) => {
    for (const consumer of fleet.consumers)
      for (const server of servers) {
        const wallet = (await http(server.url, 'GET', '/v1/wallet', undefined, consumer.deviceToken))
          .body as {
          cards: { balanceCents: number }[];
        };
        const total = wallet.cards.reduce((sum, card) => sum + card.balanceCents, 0);
        expect(total, `${consumer.phone} on ${server.url}`).toBe(expected(consumer));
      }
  };
  await balancesOn(nodes);
  for (const consumer of fleet.consumers)
    await eventually(() => {
      const told = wallets.get(consumer.phone)?.balances.values() ?? [];
      return [...told].reduce((sum, cents) => sum + cents, 0) === expected(consumer);
    }, 5_000);

  // Every node stops, and starts again on its disk only if its ledger audit is clean.
  for (const server of nodes) expect(await server.stop()).toBe(0);
  nodes.splice(0, 3, ...(await Promise.all(['a', 'b', 'c'].map((id) => node(id)))));
  await balancesOn(nodes);
}, 240_000);

it('sends the verification text a node queued but could not send, once that node is gone', async () => {
  const nats = await startNatsCluster(3);
  onTestFinished(() => nats.stop());
  const node = clusterNodes(nats);
  const a = await node('a');
  // Node b's SMS provider never answers: its texts stay queued.
  const b = await node('b', { PAYCODE_SMS: `smpp://paycode:secret@127.0.0.1:${await freePort()}` });
  const phone = '+15555550188';
  expect((await b.http('POST', '/v1/consumers', { phone }, OPERATOR_TOKEN)).status).toBe(202);
  await new Promise((resolve) => setTimeout(resolve, 500));
  expect(a.textsTo(phone)).toEqual([]);
  await b.server.close();
  const texts = await eventually(() => {
    const found = a.textsTo(phone);
    return found.length > 0 ? found : undefined;
  });
  expect(texts).toHaveLength(1);
  expect(texts[0]).toMatch(/verification/);
}, 60_000);

it("counts the missed codes of a merchant's tills on every node in every node's windows", async () => {
  const nats = await startNatsCluster(3);
  onTestFinished(() => nats.stop());
  const node = clusterNodes(nats, { merchantCodeFailuresPerWindowMax: 4 });
  const [a, b] = [await node('a'), await node('b')] as [TestServer, TestServer];
  const merchant = await a.merchant('Guarded Cafe');
  const [first, second] = [await a.terminal(merchant), await a.terminal(merchant)];
  const atA = await a.pos(first);
  const atB = await eventually(() => b.pos(second).catch(() => undefined));
  // Two misses through each node (each till stays under its own lock): the merchant's minute is full.
  for (const [pos, from] of [
    [atA, 100_000],
    [atB, 200_000],
  ] as const)
    for (let n = 0; n < 2; n++) expect((await pos.inquire(String(from + n))).status).toBe('invalid_code');
  const refused = (t: TestServer) =>
    eventually(async () => {
      const list = await t.http(
        'GET',
        `/v1/merchants/${merchant.merchantId}/terminals`,
        undefined,
        merchant.apiKey,
      );
      return list.body.codeAttempts.refused === true ? list.body.codeAttempts : undefined;
    }, 5_000);
  for (const t of [a, b]) expect(await refused(t)).toMatchObject({ window: 'merchant, per minute' });
  for (const pos of [atA, atB]) expect((await pos.inquire('300000')).status).toBe('rate_limited');
  // The operator's unlock of one till through a takes its misses out of both nodes' windows.
  const unlocked = await a.http(
    'POST',
    `/v1/merchants/${merchant.merchantId}/terminals/${second.terminalId}/unlock`,
    {},
    OPERATOR_TOKEN,
  );
  expect(unlocked.status).toBe(200);
  await eventually(async () => {
    const list = await b.http(
      'GET',
      `/v1/merchants/${merchant.merchantId}/terminals`,
      undefined,
      merchant.apiKey,
    );
    return list.body.codeAttempts.refused === false;
  }, 5_000);
}, 60_000);
