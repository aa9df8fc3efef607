// Three paycode servers as one service on a real three-server NATS JetStream cluster (Debian's
// nats-server on loopback): a merchant made on one node, its terminal on another, a consumer verified on
// the third; payments redeemed through any node; each confirmation text sent by exactly one node; and
// after the node serving the consumer's shard leaves, the others take over with the balance intact.
import { expect, it, onTestFinished } from 'vitest';
import { startNatsCluster } from '../bench/nats-servers.ts';
import { shardOfSlot, slotOfId } from '../core/ids.ts';
import { randomSecrets } from '../persistence/secrets.ts';
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
