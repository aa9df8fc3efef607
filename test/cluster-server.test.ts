// Three paycode servers as one service on a real three-server NATS JetStream cluster (Debian's
// nats-server on loopback): a merchant made on one node, its terminal on another, a consumer verified on
// the third; payments redeemed through any node; each confirmation text sent by exactly one node; and
// after the node serving the consumer's shard leaves, the others take over with the balance intact.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { expect, it, onTestFinished } from 'vitest';
import { freePort, startNatsCluster } from '../bench/nats-servers.ts';
import { CARD_CENTS, http, type PaycodeServer, setupFleet, startPaycode } from '../bench/pos-server.ts';
import { shardOfSlot, slotOfId } from '../core/ids.ts';
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

const serving = (t: TestServer) =>
  t.server.engine.health().shards.filter((shard) => shard.state === 'serving').length;

it('serves one network from three nodes: any node for any client, each text sent once, a node leaving', async () => {
  const nats = await startNatsCluster(3);
  onTestFinished(() => nats.stop());
  const secrets = randomSecrets();
  const node = (id: string) =>
    startTestServer({
      secrets,
      env: { PAYCODE_NATS: nats.urls.join(','), PAYCODE_NODE_ID: id, PAYCODE_SHARDS: String(SHARDS) },
      limits: { shardLeaseMs: 3_000, shardLeaseRenewMs: 500 },
    });
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

it('keeps every acknowledged payment when a server node is killed under POS load', async () => {
  const nats = await startNatsCluster(3);
  onTestFinished(() => nats.stop());
  const root = mkdtempSync(join(tmpdir(), 'paycode-cluster-load-'));
  onTestFinished(() => rmSync(root, { recursive: true, force: true }));
  const secretsFile = join(root, 'secrets.json');
  createSecretsFile(secretsFile);
  const node = (id: string, dataDir?: string) =>
    startPaycode({
      shards: SHARDS,
      ...(dataDir ? { dataDir } : {}),
      env: { PAYCODE_NATS: nats.urls.join(','), PAYCODE_NODE_ID: id, PAYCODE_SECRETS_FILE: secretsFile },
    });
  const nodes = [await node('a'), await node('b'), await node('c')];
  onTestFinished(async () => {
    for (const server of nodes) await server.kill();
  });
  const [a, b, c] = nodes as [PaycodeServer, PaycodeServer, PaycodeServer];
  const fleet = await setupFleet(a.url, { merchants: 2, terminals: 6, consumers: 12, hotMerchant: false });
  const urls = nodes.map((server) => server.url);

  // Each till pays for two consumers of its merchant in turn: a code asked for on one node, redeemed
  // through its POS connection (all three nodes' URLs, starting at its own), retried under its key.
  type Sale = { code: string; amountCents: number; key: string };
  const paid = new Map<string, { phone: string; authId: string; amountCents: number; request: Sale }>();
  const unknown = new Map<
    string,
    { request: { code: string; amountCents: number; key: string }; phone: string }
  >();
  let killed = false;
  const paidAfterKill = new Set<string>();
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
    const mine = fleet.consumers.filter((consumer) => consumer.merchantId === terminal.merchantId);
    for (let sale = 0; !stop; sale++) {
      const consumer = mine[(t + sale) % mine.length] as (typeof mine)[number];
      const nodeUrl = killed ? (sale % 2 === 0 ? a.url : c.url) : (urls[sale % 3] as string);
      const issued = await fetch(`${nodeUrl}/v1/wallet/codes`, {
        method: 'POST',
        headers: { 'content-type': 'application/json', authorization: `Bearer ${consumer.deviceToken}` },
        body: JSON.stringify({ merchantId: terminal.merchantId }),
      }).then(
        async (response) =>
          response.status === 201 ? ((await response.json()) as { code: string }).code : null,
        () => null,
      );
      if (!issued) continue;
      const request = { code: issued, amountCents: 100 + t, key: `till-${t}-${sale}` };
      const answer = await pos.redeem(request).catch(() => null);
      if (answer?.status === 'approved')
        paid.set(request.key, {
          phone: consumer.phone,
          authId: answer.authId as string,
          amountCents: request.amountCents,
          request,
        });
      if (answer?.status === 'approved' && killed) paidAfterKill.add(consumer.phone);
      else if (!answer || answer.status === 'internal' || answer.status === 'overloaded')
        unknown.set(request.key, { request, phone: consumer.phone });
    }
    return pos;
  });
  await new Promise((resolve) => setTimeout(resolve, 2_000));
  const before = paid.size;
  await b.kill();
  killed = true;
  // Payments go on through the survivors: every consumer, whichever node served its shard, pays again.
  await eventually(() => fleet.consumers.every((consumer) => paidAfterKill.has(consumer.phone)), 30_000);
  stop = true;
  const tillClients = await Promise.all(tills);

  // A retry under the key of an unknown outcome gets the stored result (or runs now).
  for (const [key, { request, phone }] of unknown) {
    const answer = await (tillClients[Number(key.split('-')[1])] as PosClient).redeem(request);
    if (answer.status === 'approved')
      paid.set(key, { phone, authId: answer.authId as string, amountCents: request.amountCents, request });
  }
  expect(paid.size).toBeGreaterThan(before);
  // Every acknowledged payment is there exactly once: a replay gives its authorization.
  for (const [key, { authId, request }] of paid) {
    const replay = await (tillClients[Number(key.split('-')[1])] as PosClient).redeem(request);
    expect(replay.authId, key).toBe(authId);
  }
  // Balances: the funding less the acknowledged payments, through both survivors.
  for (const consumer of fleet.consumers) {
    const spent = [...paid.values()]
      .filter((payment) => payment.phone === consumer.phone)
      .reduce((sum, payment) => sum + payment.amountCents, 0);
    for (const server of [a, c]) {
      const wallet = (await http(server.url, 'GET', '/v1/wallet', undefined, consumer.deviceToken)).body as {
        cards: { balanceCents: number }[];
      };
      expect(
        wallet.cards.reduce((sum, card) => sum + card.balanceCents, 0),
        consumer.phone,
      ).toBe(CARD_CENTS - spent);
    }
  }
  // The killed node comes back on its disk and catches up.
  nodes[1] = await node('b', b.dataDir);
  const back = nodes[1] as PaycodeServer;
  const sample = fleet.consumers[0] as (typeof fleet.consumers)[number];
  const fromBack = await eventually(async () => {
    const wallet = await http(back.url, 'GET', '/v1/wallet', undefined, sample.deviceToken);
    return wallet.status === 200 ? wallet.body : undefined;
  });
  const fromA = (await http(a.url, 'GET', '/v1/wallet', undefined, sample.deviceToken)).body;
  expect(fromBack).toEqual(fromA);
}, 180_000);

it('sends the verification text a node queued but could not send, once that node is gone', async () => {
  const nats = await startNatsCluster(3);
  onTestFinished(() => nats.stop());
  const secrets = randomSecrets();
  const env = (id: string) => ({
    PAYCODE_NATS: nats.urls.join(','),
    PAYCODE_NODE_ID: id,
    PAYCODE_SHARDS: String(SHARDS),
  });
  const limits = { shardLeaseMs: 3_000, shardLeaseRenewMs: 500 };
  const a = await startTestServer({ secrets, env: env('a'), limits });
  // Node b's SMS provider never answers: its texts stay queued.
  const silent = `smpp://paycode:secret@127.0.0.1:${await freePort()}`;
  const b = await startTestServer({ secrets, env: { ...env('b'), PAYCODE_SMS: silent }, limits });
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
