// Engine nodes in their own processes on a real three-server NATS JetStream cluster: a node killed with
// SIGKILL mid-load, then a NATS server; a node paused (SIGSTOP) past its lease while another takes its
// shards over. Afterwards every acknowledged approval is there exactly once, balances are the funding
// less the acknowledged approvals, no code is approved twice and the ledger audit is clean.
import { type ChildProcess, fork } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it, onTestFinished } from 'vitest';
import { type NatsCluster, startNatsCluster } from '../bench/nats-servers.ts';
import type { Reply } from '../core/wallet.ts';
import { createSecretsFile } from '../persistence/secrets.ts';

// Each test gets a JetStream cluster of its own (its nodes' shard count is the cluster's).
let nats: NatsCluster;
beforeEach(async () => {
  nats = await startNatsCluster(3);
}, 60_000);
afterEach(async () => {
  await nats?.stop();
});

interface Node {
  id: string;
  dataDir: string;
  process: ChildProcess;
  call<T>(method: string, ...args: unknown[]): Promise<T>;
}

const NODE = join(import.meta.dirname, '..', 'bench', 'cluster-node.ts');

async function startNode(id: string, dataDir: string, secretsFile: string, shards: number): Promise<Node> {
  // A short lease keeps the test quick; the failover bench measures the default one.
  const child = fork(NODE, [dataDir, secretsFile, id, nats.urls.join(','), String(shards), '3000,500'], {
    execArgv: ['--import', 'tsx'],
    stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
  });
  onTestFinished(() => {
    child.kill('SIGKILL');
  });
  const waiting = new Map<number, { resolve: (value: never) => void; reject: (error: Error) => void }>();
  let nextId = 0;
  const ready = new Promise<void>((resolve, reject) => {
    child.once('exit', (code) => reject(new Error(`node ${id} exited with ${code} before it was ready`)));
    child.on('message', (message: { ready?: true; id?: number; result?: never; error?: string }) => {
      if (message.ready) return resolve();
      const call = waiting.get(message.id as number);
      waiting.delete(message.id as number);
      if (message.error !== undefined) call?.reject(new Error(message.error));
      else call?.resolve(message.result as never);
    });
  });
  child.on('exit', () => {
    for (const call of waiting.values()) call.reject(new Error(`node ${id} exited`));
    waiting.clear();
  });
  await ready;
  return {
    id,
    dataDir,
    process: child,
    call: <T>(method: string, ...args: unknown[]) =>
      new Promise<T>((resolve, reject) => {
        const callId = nextId++;
        if (!child.connected) return reject(new Error(`node ${id} is gone`));
        waiting.set(callId, { resolve: resolve as (value: never) => void, reject });
        child.send({ id: callId, method, args });
      }),
  };
}

async function eventually(check: () => Promise<boolean>, timeoutMs = 30_000): Promise<number> {
  const startedAt = Date.now();
  while (!(await check().catch(() => false))) {
    if (Date.now() - startedAt > timeoutMs) throw new Error(`not within ${timeoutMs} ms`);
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
  return Date.now() - startedAt;
}

/**
 * A keyed request sent again under its key while its outcome is unknown (`internal`: it may have run;
 * `overloaded`: it did not), as a client does: the answer once one is stored.
 */
async function settled(node: Node, method: string, request: object): Promise<Reply> {
  const deadline = Date.now() + 30_000;
  for (;;) {
    const reply = await node.call<Reply>(method, request);
    if ((reply.status !== 'internal' && reply.status !== 'overloaded') || Date.now() > deadline) return reply;
    await new Promise((resolve) => setTimeout(resolve, 200));
  }
}

const servedBy = async (nodes: Node[]) =>
  (await Promise.all(nodes.map((node) => node.call<number>('served')))).reduce((sum, n) => sum + n, 0);

function cluster(shards: number) {
  const root = mkdtempSync(join(tmpdir(), 'paycode-cluster-'));
  onTestFinished(() => rmSync(root, { recursive: true, force: true }));
  const secretsFile = join(root, 'secrets.json');
  createSecretsFile(secretsFile);
  return (id: string) => startNode(id, join(root, id), secretsFile, shards);
}

const balanceOf = async (node: Node, phone: string) =>
  (await node.call<{ cards: { balanceCents: number }[] } | null>('wallet', phone))?.cards.reduce(
    (sum, card) => sum + card.balanceCents,
    0,
  ) ?? 0;

describe('cluster faults', () => {
  it('keeps every acknowledged payment when a node and then a NATS server are killed mid-load', async () => {
    const SHARDS = 6;
    const start = cluster(SHARDS);
    const nodes = [await start('a'), await start('b'), await start('c')];
    for (const node of nodes)
      await eventually(async () => (await node.call<number>('served')) === SHARDS / 3);
    const phones = Array.from({ length: 24 }, (_, index) => `+1555200${String(index).padStart(4, '0')}`);
    for (const [index, phone] of phones.entries()) {
      const loaded = await settled(nodes[index % 3] as Node, 'loadValue', {
        merchantId: 'm1',
        phone,
        kind: 'gift',
        funding: 'merchant',
        amountCents: 2_000,
        idempotencyKey: `load-${index}`,
      });
      expect(loaded.status).toBe('approved');
    }

    let alive = [...nodes];
    const acknowledged = new Map<string, { phone: string; authId: string; code: string }>();
    const unknown = new Map<string, { phone: string; code: string }>();
    const pay = async (round: number, index: number) => {
      const phone = phones[index] as string;
      const key = `pay-${round}-${index}`;
      const issuer = alive[(round + index) % alive.length] as Node;
      const redeemer = alive[(round + index + 1) % alive.length] as Node;
      const consumerId = await issuer.call<string>('consumerIdOf', phone).catch(() => null);
      if (!consumerId) return;
      const issued = await issuer
        .call<Reply & { code?: string }>('issueCode', { consumerId, merchantId: 'm1' })
        .catch(() => null);
      if (issued?.status !== 'approved') return;
      const code = issued.code as string;
      const request = { merchantId: 'm1', terminalId: 't1', key, code, amountCents: 100, partial: false };
      const redeemed = await redeemer.call<Reply>('redeem', request).catch(() => null);
      if (redeemed?.status === 'approved')
        acknowledged.set(key, { phone, authId: redeemed.authId as string, code });
      else if (!redeemed || redeemed.status === 'internal' || redeemed.status === 'overloaded') {
        unknown.set(key, { phone, code });
        // Not knowing, the till charges the same code again under a new key, through another node.
        const again = { ...request, key: `${key}-again` };
        const second = await alive[(round + index + 2) % alive.length]
          ?.call<Reply>('redeem', again)
          .catch(() => null);
        if (second?.status === 'approved')
          acknowledged.set(again.key, { phone, authId: second.authId as string, code });
      }
    };
    // Within 10 s of each kill, the surviving nodes serve every shard again (measured while paying).
    const recoveries: Promise<number>[] = [];
    for (let round = 0; round < 6; round++) {
      const payments = Promise.all(phones.map((_, index) => pay(round, index)));
      if (round === 2) {
        (nodes[1] as Node).process.kill('SIGKILL');
        alive = [nodes[0] as Node, nodes[2] as Node];
        await new Promise((resolve) => setTimeout(resolve, 100));
        const recovery = eventually(async () => (await servedBy(alive)) === SHARDS);
        recovery.catch(() => {});
        recoveries.push(recovery);
      }
      if (round === 4) {
        await recoveries[0];
        await nats.kill(1);
        const recovery = eventually(async () => (await servedBy(alive)) === SHARDS);
        recovery.catch(() => {});
        recoveries.push(recovery);
      }
      await payments;
    }
    for (const recovery of recoveries) expect(await recovery).toBeLessThan(10_000);

    // A retry under the key of an unknown outcome gets the stored result, or runs now.
    for (const [key, { phone, code }] of unknown) {
      const request = { merchantId: 'm1', terminalId: 't1', key, code, amountCents: 100, partial: false };
      const replayed = await settled(alive[0] as Node, 'redeem', request);
      if (replayed.status === 'approved')
        acknowledged.set(key, { phone, authId: replayed.authId as string, code });
    }
    expect(acknowledged.size).toBeGreaterThan(phones.length * 3);
    for (const [key, { authId, code }] of acknowledged) {
      const request = { merchantId: 'm1', terminalId: 't1', key, code, amountCents: 100, partial: false };
      const replayed = await settled(alive[1] as Node, 'redeem', request);
      expect(replayed.authId, key).toBe(authId);
    }
    // No code was approved twice: of a payment's key and the key it was charged again under, one at most.
    expect([...acknowledged.keys()].filter((key) => acknowledged.has(`${key}-again`))).toEqual([]);
    for (const phone of phones) {
      const paid = [...acknowledged.values()].filter((payment) => payment.phone === phone).length;
      expect(await balanceOf(alive[0] as Node, phone), phone).toBe(2_000 - 100 * paid);
    }

    // The killed node and the NATS server come back; the node catches up and takes its share again.
    await nats.start(1);
    const back = await start('b');
    await eventually(async () => (await back.call<number>('served')) > 0);
    for (const phone of phones)
      expect(await balanceOf(back, phone)).toBe(await balanceOf(alive[1] as Node, phone));
    for (const node of [...alive, back]) {
      await eventually(async () => (await node.call<{ problems: string[] }>('audit')).problems.length === 0);
    }
  }, 180_000);

  it('never lets a node paused past its lease approve what its successor already decided', async () => {
    const start = cluster(2);
    const a = await start('a');
    const b = await start('b');
    await eventually(
      async () => (await a.call<number>('served')) === 1 && (await b.call<number>('served')) === 1,
    );
    const phone = await (async () => {
      for (let index = 0; ; index++) {
        const candidate = `+1555300${String(index).padStart(4, '0')}`;
        if (await a.call<boolean>('servesPhone', candidate)) return candidate;
      }
    })();
    const loaded = await settled(a, 'loadValue', {
      merchantId: 'm1',
      phone,
      kind: 'gift',
      funding: 'merchant',
      amountCents: 1_000,
      idempotencyKey: 'load',
    });
    expect(loaded.status).toBe('approved');
    const consumerId = await a.call<string>('consumerIdOf', phone);
    const issued = await a.call<Reply & { code?: string }>('issueCode', { consumerId, merchantId: 'm1' });
    const code = issued.code as string;

    a.process.kill('SIGSTOP');
    const takeoverMs = await eventually(async () => (await b.call<number>('served')) === 2);
    expect(takeoverMs).toBeLessThan(10_000);
    const sale = { merchantId: 'm1', terminalId: 't1', code, amountCents: 600, partial: false };
    expect((await b.call<Reply>('redeem', { ...sale, key: 'at-b' })).status).toBe('approved');

    // The same code through the paused node, sent while it is paused: it resumes believing it serves the
    // shard, with the code still live and the balance whole in its memory.
    const atA = a.call<Reply>('redeem', { ...sale, key: 'at-a' });
    a.process.kill('SIGCONT');
    expect((await atA).status).not.toBe('approved');
    expect(await balanceOf(b, phone)).toBe(400);
    expect(await balanceOf(a, phone)).toBe(400);
    await eventually(async () => (await servedBy([a, b])) === 2 && (await a.call<number>('served')) === 1);
    for (const node of [a, b])
      expect((await node.call<{ problems: string[] }>('audit')).problems).toEqual([]);
  }, 120_000);
});
