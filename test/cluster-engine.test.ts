// Engines as nodes of a cluster on a real three-server NATS JetStream cluster (Debian's nats-server on
// loopback): shards owned by leases and rebalanced when a node joins, commands served from any node,
// every change in the shard's replicated log, a node's shards taken over by another when it leaves, and
// a replaced writer fenced off the log.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Packr } from 'msgpackr';
import { afterEach, beforeEach, describe, expect, it, onTestFinished } from 'vitest';
import { type NatsCluster, startNatsCluster } from '../bench/nats-servers.ts';
import { LIMITS, type Limits } from '../core/limits.ts';
import { Engine } from '../engine/engine.ts';
import {
  connectCluster,
  followLog,
  LogWriter,
  logEnd,
  SHARED_LOG,
  shardLog,
} from '../engine/replicated-log.ts';
import type { ShardEvent } from '../engine/shard-client.ts';
import { createLogger } from '../log/logger.ts';
import { randomSecrets, type Secrets } from '../persistence/secrets.ts';
import { openStore, readMeta, type Store, whenDurable } from '../persistence/store.ts';
import { fund } from './helpers.ts';

// Each test gets a JetStream cluster of its own: the logs of one test's nodes are not another's.
let nats: NatsCluster;
/** The test's nodes, closed before its NATS servers stop (a node leaving gives its leases back). */
let closers: (() => Promise<void>)[] = [];
beforeEach(async () => {
  nats = await startNatsCluster(3);
}, 60_000);
afterEach(async () => {
  for (const close of closers.reverse()) await close();
  closers = [];
  await nats?.stop();
}, 60_000);

const SHARDS = 4;
const quiet = createLogger({ level: 'error' });

/** A node: an engine with its own data directory on the shared NATS cluster. */
async function openNode(
  nodeId: string,
  secrets: Secrets,
  dataDir = mkdtempSync(join(tmpdir(), 'paycode-node-')),
  onShardEvent?: (event: ShardEvent) => void,
  limits: Partial<Limits> = {},
) {
  const engine = await Engine.open({
    dataDir,
    secrets,
    shards: SHARDS,
    logger: quiet,
    testHooks: true,
    ...(onShardEvent ? { onShardEvent } : {}),
    limits: { shardLeaseMs: 3_000, shardLeaseRenewMs: 500, ...limits },
    cluster: { link: { servers: nats.urls, nodeId }, replicas: 3 },
  });
  let closed = false;
  const close = async () => {
    if (closed) return;
    closed = true;
    await engine.close();
  };
  closers.push(async () => {
    await close();
    rmSync(dataDir, { recursive: true, force: true });
  });
  return { engine, dataDir, close };
}

type Sale = Parameters<Engine['redeem']>[0];

/** A code for the phone at merchant m1, redeemed at its till t1: approved (asserted). */
async function pay(engine: Engine, phone: string, key: string, amountCents: number) {
  const issued = await engine.issueCode({ consumerId: engine.consumerIdFor(phone), merchantId: 'm1' });
  const request = {
    merchantId: 'm1',
    terminalId: 't1',
    key,
    code: issued.code as string,
    amountCents,
    partial: false,
  };
  const redeemed = await engine.redeem(request);
  expect(redeemed.status).toBe('approved');
  return { request, authId: redeemed.authId as string };
}

/** Waits until `check` holds, polling; fails after `timeoutMs`. */
async function eventually(check: () => boolean | Promise<boolean>, timeoutMs = 15_000): Promise<number> {
  const startedAt = Date.now();
  while (!(await check())) {
    if (Date.now() - startedAt > timeoutMs) throw new Error(`not within ${timeoutMs} ms`);
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
  return Date.now() - startedAt;
}

/**
 * The shards' logs without engines: a node joins once to make the streams and leaves; then a NATS
 * connection and a fresh store per name, to write and read the logs directly.
 */
async function logsAlone(names: string[]) {
  const dir = mkdtempSync(join(tmpdir(), 'paycode-logs-'));
  onTestFinished(() => rmSync(dir, { recursive: true, force: true }));
  const node = await openNode('maker', randomSecrets());
  await node.close();
  const { nc, js } = await connectCluster(
    { servers: nats.urls, nodeId: 'logs-test' },
    LIMITS.clusterPublishTimeoutMs,
  );
  const stores = names.map((name) => openStore(join(dir, name)));
  onTestFinished(async () => {
    for (const store of stores) await store.root.close();
    await nc.close();
  });
  return { nc, js, stores };
}

const served = (engine: Engine) => engine.health().shards.filter((shard) => shard.state === 'serving').length;

const phones = Array.from({ length: 12 }, (_, index) => `+1555555${String(1000 + index)}`);

describe('cluster of engines', () => {
  it('serves every account from any node, rebalances when a node joins, and takes over when one leaves', async () => {
    const secrets = randomSecrets();
    const a = await openNode('a', secrets);
    await eventually(() => served(a.engine) === SHARDS);
    for (const phone of phones) {
      await fund(a.engine, phone, 1_000);
    }

    // A node that would split accounts otherwise is refused.
    await expect(
      Engine.open({
        dataDir: mkdtempSync(join(tmpdir(), 'paycode-node-')),
        secrets,
        shards: SHARDS / 2,
        logger: quiet,
        cluster: { link: { servers: nats.urls, nodeId: 'odd' }, replicas: 3 },
      }),
    ).rejects.toThrow(`set PAYCODE_SHARDS=${SHARDS}`);

    const b = await openNode('b', secrets);
    await eventually(() => served(a.engine) === SHARDS / 2 && served(b.engine) === SHARDS / 2);

    // Each payment: a code issued through one node, redeemed through the other.
    const approvals: string[] = [];
    for (const [index, phone] of phones.entries()) {
      const [issuer, redeemer] = index % 2 === 0 ? [a.engine, b.engine] : [b.engine, a.engine];
      const consumerId = issuer.consumerIdFor(phone);
      const issued = await issuer.issueCode({ consumerId, merchantId: 'm1' });
      expect(issued.status).toBe('approved');
      const request = {
        merchantId: 'm1',
        terminalId: 't1',
        key: `pay-${index}`,
        code: issued.code as string,
        amountCents: 250,
        partial: false,
      };
      const redeemed = await redeemer.redeem(request);
      expect(redeemed.status).toBe('approved');
      approvals.push(redeemed.authId as string);
      // A replay through the other node gets the stored answer, and the code is not approved twice.
      const replayed = await issuer.redeem(request);
      expect(replayed).toEqual(redeemed);
    }
    expect(new Set(approvals).size).toBe(phones.length);

    // Node a leaves; b serves every shard within the lease time, with every balance as acknowledged.
    await a.close();
    const tookMs = await eventually(() => served(b.engine) === SHARDS);
    expect(tookMs).toBeLessThan(10_000);
    for (const phone of phones) {
      const wallet = await b.engine.wallet(b.engine.consumerIdFor(phone));
      expect(wallet?.cards.reduce((sum, card) => sum + card.balanceCents, 0)).toBe(750);
    }
    const audit = await b.engine.audit();
    expect(audit.problems).toEqual([]);
    expect(audit.ledgerSumCents).toBe(0);
  }, 90_000);

  it('comes back whole after the whole cluster stopped, on its disks or rebuilt from JetStream alone', async () => {
    const secrets = randomSecrets();
    const a = await openNode('a', secrets);
    const b = await openNode('b', secrets);
    await eventually(() => served(a.engine) === SHARDS / 2 && served(b.engine) === SHARDS / 2);
    const sales: { phone: string; request: Sale; authId: string }[] = [];
    for (const [index, phone] of phones.entries()) {
      const node = index % 2 === 0 ? a : b;
      await fund(node.engine, phone, 1_000);
      sales.push({ phone, ...(await pay(node.engine, phone, `pay-${index}`, 300)) });
    }
    await a.close();
    await b.close();

    // Node a on its own disk, and a node c with an empty one: both from JetStream's logs.
    const again = await openNode('a', secrets, a.dataDir);
    const fresh = await openNode('c', secrets);
    await eventually(() => served(again.engine) + served(fresh.engine) === SHARDS);
    for (const { phone } of sales)
      for (const node of [again, fresh]) {
        const wallet = await node.engine.wallet(node.engine.consumerIdFor(phone));
        expect(
          wallet?.cards.reduce((sum, card) => sum + card.balanceCents, 0),
          phone,
        ).toBe(700);
      }
    // A retry under a key gets the stored result; the code is not approved again under another key.
    for (const { request, authId } of sales.slice(0, 3)) {
      expect((await fresh.engine.redeem(request)).authId).toBe(authId);
      expect((await again.engine.redeem({ ...request, key: `${request.key}-again` })).status).not.toBe(
        'approved',
      );
    }
    for (const node of [again, fresh]) expect((await node.engine.audit()).problems).toEqual([]);
  }, 120_000);

  it('stores a snapshot and truncates the logs; a new node and one that was away start from it', async () => {
    const secrets = randomSecrets();
    // Node a takes a snapshot every second while it serves shard 0 (the default is an hour).
    const a = await openNode('a', secrets, undefined, undefined, { clusterSnapshotIntervalMs: 1_000 });
    await eventually(() => served(a.engine) === SHARDS);
    const b = await openNode('b', secrets);
    await eventually(() => served(a.engine) === SHARDS / 2 && served(b.engine) === SHARDS / 2);
    const sales: Sale[] = [];
    for (const [index, phone] of phones.entries()) {
      await fund((index % 2 === 0 ? a : b).engine, phone, 1_000);
      sales.push((await pay((index % 2 === 0 ? b : a).engine, phone, `first-${index}`, 100)).request);
    }
    // Node b goes away; a serves alone, and its snapshots let the logs go below what it applied.
    await b.close();
    await eventually(() => served(a.engine) === SHARDS);
    for (const [index, phone] of phones.entries()) await pay(a.engine, phone, `then-${index}`, 100);
    // A write of a's main thread, as the registry makes: it goes through the shared log.
    await a.engine.store.meta.put('written-alone', 'a');
    await whenDurable(a.engine.store);
    // Every log is truncated past all it held while b was there (b's heartbeat no longer holds it).
    const conn = await connectCluster(
      { servers: nats.urls, nodeId: 'reader' },
      LIMITS.clusterPublishTimeoutMs,
    );
    onTestFinished(() => conn.nc.close());
    const jsm = await conn.js.jetstreamManager();
    const logs = [...Array.from({ length: SHARDS }, (_, index) => shardLog(index).stream), 'paycode-shared'];
    const ends = await Promise.all(
      logs.map(async (stream) => (await jsm.streams.info(stream)).state.last_seq),
    );
    await eventually(async () => {
      const infos = await Promise.all(logs.map((stream) => jsm.streams.info(stream)));
      // (A log nothing was written to has nothing to truncate.)
      return infos.every((info, index) => !ends[index] || info.state.first_seq > (ends[index] as number));
    }, 30_000);

    // A new node, and b on its disk of before: both start from the snapshot, then the logs.
    const fresh = await openNode('c', secrets);
    const back = await openNode('b', secrets, b.dataDir);
    await eventually(() => served(a.engine) + served(fresh.engine) + served(back.engine) === SHARDS);
    for (const node of [a, fresh, back]) {
      for (const phone of phones) {
        const wallet = await node.engine.wallet(node.engine.consumerIdFor(phone));
        expect(
          wallet?.cards.reduce((sum, card) => sum + card.balanceCents, 0),
          phone,
        ).toBe(800);
      }
      expect((await node.engine.audit()).problems).toEqual([]);
      expect(node.engine.store.meta.get('written-alone')).toBe('a');
    }
    // A payment made before the snapshot replays to the same answer through the new node.
    const replayed = await fresh.engine.redeem(sales[0] as Sale);
    expect(replayed.status).toBe('approved');
  }, 120_000);

  it('keeps as many copies as the NATS cluster has servers, up to 3, when not told how many', async () => {
    const dataDir = mkdtempSync(join(tmpdir(), 'paycode-node-'));
    const engine = await Engine.open({
      dataDir,
      secrets: randomSecrets(),
      shards: SHARDS,
      logger: quiet,
      // One server's URL only: the others are learnt from it.
      cluster: { link: { servers: [nats.urls[0] as string], nodeId: 'a' }, replicas: null },
    });
    closers.push(async () => {
      await engine.close();
      rmSync(dataDir, { recursive: true, force: true });
    });
    const conn = await connectCluster(
      { servers: nats.urls, nodeId: 'reader' },
      LIMITS.clusterPublishTimeoutMs,
    );
    onTestFinished(() => conn.nc.close());
    const jsm = await conn.js.jetstreamManager();
    for (const stream of [shardLog(0).stream, 'paycode-shared', 'KV_paycode-leases'])
      expect((await jsm.streams.info(stream)).config.num_replicas, stream).toBe(3);
  }, 60_000);

  it('hands shards over between nodes that start together without a shard ever having two writers', async () => {
    const secrets = randomSecrets();
    const deaths: ShardEvent[] = [];
    const onEvent = (event: ShardEvent) => {
      if (event.type === 'died') deaths.push(event);
    };
    // Node a takes every shard and starts their threads; b joins at once, so a gives shards back while
    // they are still starting.
    const a = await openNode('a', secrets, undefined, onEvent);
    const b = await openNode('b', secrets, undefined, onEvent);
    for (const [index, phone] of phones.entries()) {
      await fund((index % 2 === 0 ? a : b).engine, phone, 1_000);
    }
    await eventually(() => served(a.engine) === SHARDS / 2 && served(b.engine) === SHARDS / 2);
    expect(deaths).toEqual([]);
  }, 90_000);

  it('gives the lease of a shard whose thread keeps dying to another node', async () => {
    const secrets = randomSecrets();
    const a = await openNode('a', secrets);
    const b = await openNode('b', secrets);
    await eventually(() => served(a.engine) === SHARDS / 2 && served(b.engine) === SHARDS / 2);
    const shard = a.engine.health().shards.findIndex((health) => health.state === 'serving');
    // Each death is restarted after a growing delay, until the restart budget of the window is spent.
    for (let death = 0; death <= LIMITS.shardRestartsPerWindowMax; death++) {
      await eventually(() => a.engine.health().shards[shard]?.state === 'serving');
      a.engine.injectShardFaultForTest(shard, 'exit');
      await eventually(() => a.engine.health().shards[shard]?.state !== 'serving');
    }
    // Node b takes it beyond its share; the shares even out again without a gives it back to a.
    await eventually(() => b.engine.health().shards[shard]?.state === 'serving', 20_000);
    await eventually(() => served(a.engine) + served(b.engine) === SHARDS, 30_000);
    expect(a.engine.health().shards[shard]?.state).toBe('remote');
  }, 90_000);

  it('ignores a replaced writer: its record after the successor marker is refused and never applied', async () => {
    const { nc, js, stores } = await logsAlone(['a', 'b', 'c']);
    const [storeA, storeB, storeC] = stores as [Store, Store, Store];
    const first = await LogWriter.open(js, storeA, 0, 'a');
    const put = (value: string) => [[storeA.meta, `fence-${value}`, value]] as never;
    await first.append(put('first-1'));
    const second = await LogWriter.open(js, storeB, 0, 'b');
    await expect(first.append(put('first-2'))).rejects.toThrow(/wrong last sequence|another writer/);
    expect(await second.append(put('second-1'))).toBe(second.epoch + 1);
    // A third store following the whole log holds the first writer's record before the second's marker
    // and the second's record, never the refused one.
    await followLog(js, storeC, shardLog(0), await logEnd(nc, shardLog(0))).done;
    expect(storeC.meta.get('fence-first-1')).toBe('first-1');
    expect(storeC.meta.get('fence-first-2')).toBeUndefined();
    expect(storeC.meta.get('fence-second-1')).toBe('second-1');
  }, 60_000);

  it('stores a commit larger than a message in parts, applied whole, and drops the parts of a writer that died midway', async () => {
    const { nc, js, stores } = await logsAlone(['a', 'c']);
    const [storeA, storeC] = stores as [Store, Store];
    const writer = await LogWriter.open(js, storeA, 1, 'a');
    const big = Array.from({ length: 3_000 }, (_, i) => [storeA.meta, `big-${i}`, 'x'.repeat(200)]) as never;
    const last = await writer.append(big);
    expect(last - writer.epoch).toBeGreaterThan(1);
    // The first part of a commit whose writer died before its last part, then a new writer's marker.
    const part = { epoch: writer.epoch, node: 'a', writes: [['meta', 'partial', 'x']], more: true };
    await js.publish(shardLog(1).subject, new Packr({ useRecords: false }).pack(part));
    await LogWriter.open(js, storeA, 1, 'b');
    await followLog(js, storeC, shardLog(1), await logEnd(nc, shardLog(1))).done;
    expect(storeC.meta.get('big-0')).toBe('x'.repeat(200));
    expect(storeC.meta.get('big-2999')).toBe('x'.repeat(200));
    expect(storeC.meta.get('partial')).toBeUndefined();
  }, 60_000);

  it("goes on applying the shared log past a commit whose writer died midway, and drops it at the node's next run", async () => {
    const { nc, js, stores } = await logsAlone(['c']);
    const [storeC] = stores as [Store];
    const packr = new Packr({ useRecords: false });
    const publish = (node: string, key: string, more?: true) =>
      js.publish(
        SHARED_LOG.subject,
        packr.pack({ epoch: 0, node, writes: [['meta', key, 'x']], ...(more ? { more } : {}) }),
      );
    // Node a's first run dies after the first part of a commit; node b goes on writing.
    const open = await publish('a:run1', 'a-partial', true);
    await publish('b:run1', 'b-first');
    await followLog(js, storeC, SHARED_LOG, await logEnd(nc, SHARED_LOG)).done;
    expect(storeC.meta.get('b-first')).toBe('x');
    expect(storeC.meta.get('a-partial')).toBeUndefined();
    // Applied, but not past the open part: it is read again next time.
    expect(readMeta(storeC, SHARED_LOG.position)?.seq).toBe(open.seq - 1);
    // Node a's next run writes: the dead run's commit is dropped, and the position moves on.
    await publish('a:run2', 'a-second');
    await followLog(js, storeC, SHARED_LOG, await logEnd(nc, SHARED_LOG)).done;
    expect(storeC.meta.get('a-second')).toBe('x');
    expect(storeC.meta.get('a-partial')).toBeUndefined();
    expect(readMeta(storeC, SHARED_LOG.position)?.seq).toBe(await logEnd(nc, SHARED_LOG));
  }, 60_000);
});
