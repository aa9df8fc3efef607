// Proves how the storage running out of room is handled, on a real LMDB in a temp directory. First, what
// lmdb-js 3.5 does with a small map: it grows the map by itself, so the map size never refuses a write and
// the disk is what fills. Then a full disk on a real server: the process is forbidden to write past the
// first 8 KiB of any file (RLIMIT_FSIZE, set with prlimit), so every commit fails in the kernel the way a
// full disk fails it; writes are answered `overloaded` (nothing applied, retry with the same key), reads
// are still answered, `/healthz` answers 503 degraded and the metrics count it, nothing crashes, the
// ledger audit stays clean; once writes are allowed again the shards serve, the same keys apply exactly
// once, and the store reopens with a clean audit. Last, a disk that fills under a stream of writes sent
// at once: every answer is approved, refused (`overloaded`) or, for a batch committed just before the
// refusal, `internal`; nothing hangs or crashes, and every key retried afterwards is applied exactly once.
import { execFileSync, spawnSync } from 'node:child_process';
import { statSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it, onTestFinished } from 'vitest';
import { type ConsumerId, shardOfSlot, slotOfId } from '../core/ids.ts';
import type { Engine } from '../engine/engine.ts';
import { openStore } from '../persistence/store.ts';
import { tempDir, waitUntil } from './helpers.ts';
import { startTestServer } from './server-helpers.ts';

const hasPrlimit = spawnSync('prlimit', ['--version']).status === 0;

/**
 * Sets this process's soft limit on the size a file may be written to (all threads share it); null lifts
 * it. Node ignores SIGXFSZ, so a write past the limit fails with EFBIG or writes short.
 */
function limitFileSize(bytes: number | null): void {
  execFileSync('prlimit', ['--pid', String(process.pid), `--fsize=${bytes ?? 'unlimited'}:`]);
}

describe('storage faults', () => {
  it('grows a small LMDB map by itself instead of refusing writes (lmdb-js 3.5)', async () => {
    const store = openStore(tempDir(), { mapSizeBytes: 64 * 1024 });
    onTestFinished(() => store.root.close());
    const value = 'x'.repeat(1_000);
    for (let round = 0; round < 40; round++) {
      await store.root.transaction(() => {
        for (let n = 0; n < 100; n++) store.meta.put(`filler:${round}:${n}`, value);
      });
    }
    store.root.resetReadTxn();
    expect(store.meta.get('filler:39:99')).toBe(value);
    // About 4 MB written into a map that began at 64 KiB.
    expect(store.root.getStats()).toHaveProperty('mapSize');
    expect((store.root.getStats() as { mapSize: number }).mapSize).toBeGreaterThan(4_000_000);
  });

  it.skipIf(!hasPrlimit)(
    'refuses writes while the disk is full, answers reads, reports degraded, and recovers once writes work',
    async () => {
      const t = await startTestServer({ limits: { storageProbeDelayMs: 20, storageProbeDelayMaxMs: 100 } });
      const engine: Engine = t.server.engine;
      // A consumer on each shard, funded, one of them with a live code (a hold).
      const phones: string[] = [];
      for (let n = 0; phones.length < 2; n++) {
        const phone = `+1555300${String(n).padStart(4, '0')}`;
        if (shardOfSlot(slotOfId(engine.consumerIdFor(phone)), 2) === phones.length) phones.push(phone);
      }
      const ids = phones.map((phone) => engine.consumerIdFor(phone)) as [ConsumerId, ConsumerId];
      const load = (phone: string, key: string) =>
        engine.loadValue({
          merchantId: 'm1',
          phone,
          kind: 'gift',
          funding: 'merchant',
          amountCents: 1_000,
          idempotencyKey: key,
        });
      for (const [index, phone] of phones.entries())
        expect((await load(phone, `before-${index}`)).status).toBe('approved');
      const issued = await engine.issueCode({ consumerId: ids[0], merchantId: 'm1', capCents: 400 });
      expect(issued.status).toBe('approved');

      limitFileSize(8 * 1024);
      onTestFinished(() => limitFileSize(null));

      // Writes on both shards: refused with a status that says "retry with the same key".
      const refused = await Promise.all(phones.map((phone, index) => load(phone, `during-${index}`)));
      expect(refused.map((reply) => reply.status)).toEqual(['overloaded', 'overloaded']);
      await waitUntil('both shards to report the refusal', () =>
        engine.health().shards.every((shard) => !shard.writable),
      );
      expect((await engine.issueCode({ consumerId: ids[1], merchantId: 'm1' })).status).toBe('overloaded');
      expect((await load(phones[0] as string, 'during-0')).status).toBe('overloaded');

      // Reads are answered from what is on disk.
      const wallet = await engine.wallet(ids[0]);
      expect(wallet?.cards.map((card) => card.balanceCents)).toEqual([1_000]);
      expect(wallet?.activeCode).toMatchObject({ code: issued.code, capCents: 400 });
      expect((await engine.history(ids[1]))?.length).toBe(1);

      // Health and metrics say so; nothing crashed or restarted.
      const health = await t.http('GET', '/healthz');
      expect(health.status).toBe(503);
      expect(health.body).toMatchObject({ ok: false, status: 'degraded' });
      expect(health.body.shards).toEqual([
        { shardIndex: 0, state: 'serving', writable: false, restarts: 0 },
        { shardIndex: 1, state: 'serving', writable: false, restarts: 0 },
      ]);
      const metrics = (await t.http('GET', '/metrics')).body as string;
      expect(metrics).toMatch(/^paycode_shards_refusing_writes 2$/m);
      expect(metrics).toMatch(/^paycode_storage_refusals_total\{shard="0"\} 1$/m);
      expect(t.logs.some((line) => line.includes('storage refuses writes'))).toBe(true);
      const during = await engine.audit();
      expect(during.problems).toEqual([]);

      // Room again: the shards' probes succeed and writes are served.
      limitFileSize(null);
      await waitUntil('writes to be served again', () => engine.health().ok);
      expect(await t.http('GET', '/healthz')).toEqual({ status: 200, body: { ok: true } });
      const retried = await Promise.all(phones.map((phone, index) => load(phone, `during-${index}`)));
      expect(retried.map((reply) => reply.status)).toEqual(['approved', 'approved']);
      expect(await Promise.all(phones.map((phone, index) => load(phone, `during-${index}`)))).toEqual(
        retried,
      );
      for (const id of ids)
        expect((await engine.wallet(id))?.cards.map((card) => card.balanceCents)).toEqual([2_000]);
      expect((await engine.issueCode({ consumerId: ids[1], merchantId: 'm1' })).status).toBe('approved');
      expect(engine.health().shards.map((shard) => shard.restarts)).toEqual([0, 0]);

      // Nothing half-written: the store reopens and its start-up audit passes.
      await t.restart();
      expect(t.server.engine.openingAudit?.ok).toBe(true);
      expect((await t.server.engine.wallet(ids[0]))?.cards[0]?.balanceCents).toBe(2_000);
    },
  );

  it.skipIf(!hasPrlimit)(
    'applies each write once or refuses it when the disk fills under many writes at once',
    async () => {
      const t = await startTestServer({ limits: { storageProbeDelayMs: 20, storageProbeDelayMaxMs: 100 } });
      const engine: Engine = t.server.engine;
      const load = (n: number) =>
        engine.loadValue({
          merchantId: 'm1',
          phone: `+1555400${String(n).padStart(4, '0')}`,
          kind: 'gift',
          funding: 'merchant',
          amountCents: 100 + n,
          idempotencyKey: `fill-${n}`,
        });
      for (let n = 0; n < 50; n++) expect((await load(n)).status).toBe('approved');

      // The data file may grow by 256 KiB more: the first waves land, then commits are refused, except
      // those that fit in pages the file frees.
      limitFileSize(statSync(join(t.dataDir, 'lmdb', 'data.mdb')).size + 256 * 1024);
      onTestFinished(() => limitFileSize(null));
      // Waves of loads, each sent on its own turn, so a shard applies a batch while earlier ones commit.
      const statuses = new Map<number, string>();
      for (let round = 0; round < 40 && ![...statuses.values()].includes('overloaded'); round++) {
        const pending: Promise<void>[] = [];
        for (let wave = 0; wave < 8; wave++) {
          for (let i = 0; i < 10; i++) {
            const n = 50 + round * 80 + wave * 10 + i;
            pending.push(load(n).then((reply) => void statuses.set(n, reply.status)));
          }
          await new Promise((resolve) => setImmediate(resolve));
        }
        await Promise.all(pending);
      }
      // `internal` is a batch LMDB committed before the refusal whose flush lmdb-js never reported.
      const seen = [...statuses.values()];
      expect(seen).toContain('overloaded');
      expect(seen.filter((status) => !['approved', 'overloaded', 'internal'].includes(status))).toEqual([]);
      expect((await engine.audit()).problems).toEqual([]);
      // `overloaded` means nothing was done: no posting under those keys before the retry.
      engine.store.root.resetReadTxn();
      const refused = Array.from(engine.store.journal.getRange(), ({ value }) => value.ref);
      for (const [n, status] of statuses)
        if (status === 'overloaded') expect(refused.filter((ref) => ref.endsWith(`/fill-${n}`))).toEqual([]);

      limitFileSize(null);
      await waitUntil('writes to be served again', () => engine.health().ok);
      // Every key again: the committed ones answer from their stored result, the refused ones apply now.
      const again = await Promise.all([...statuses.keys()].map((n) => load(n)));
      expect(again.filter((reply) => reply.status !== 'approved')).toEqual([]);
      engine.store.root.resetReadTxn();
      const refs = Array.from(engine.store.journal.getRange(), ({ value }) => value.ref);
      for (const n of statuses.keys())
        expect(refs.filter((ref) => ref.endsWith(`/fill-${n}`))).toHaveLength(1);
      expect((await engine.audit()).problems).toEqual([]);
      expect(engine.health().shards.map((shard) => shard.restarts)).toEqual([0, 0]);
    },
  );
});
