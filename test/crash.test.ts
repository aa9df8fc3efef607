// Proves durability before acknowledgement: a child process runs the engine under redeem load and is
// killed with SIGKILL right after a batch of acknowledged redeems; after a restart on the same data
// directory every acknowledged redeem is present exactly once, no code redeems twice, and the ledger
// sums to zero. Repeated for several kill instants.
import { type ChildProcess, spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { describe, expect, it, onTestFinished } from 'vitest';
import { Engine } from '../engine/engine.ts';
import { loadSecrets } from '../persistence/secrets.ts';

interface Line {
  op: string;
  status?: string;
  key?: string;
  code?: string;
  phone?: string;
  authId?: string;
  approvedCents?: number;
}

/** Starts the child and resolves with its acknowledged lines once `acks` redeems were acknowledged. */
function runUntilKilled(dataDir: string, acks: number): Promise<Line[]> {
  const child: ChildProcess = spawn(
    process.execPath,
    ['--import', 'tsx', join(import.meta.dirname, 'fixtures', 'crash-child.ts'), dataDir, '40'],
    { stdio: ['ignore', 'pipe', 'inherit'] },
  );
  onTestFinished(() => {
    child.kill('SIGKILL');
  });
  const lines: Line[] = [];
  return new Promise((resolve, reject) => {
    let redeems = 0;
    child.once('exit', (code, signal) =>
      signal === 'SIGKILL' ? resolve(lines) : reject(new Error(`child exited ${code}`)),
    );
    createInterface({ input: child.stdout as NodeJS.ReadableStream }).on('line', (text) => {
      const line = JSON.parse(text) as Line;
      lines.push(line);
      if (line.op === 'redeem' && ++redeems === acks) child.kill('SIGKILL');
    });
  });
}

describe('crash recovery', () => {
  it.each([25, 120, 400])('keeps every acknowledged redeem after SIGKILL (%i acknowledged)', async (acks) => {
    const dataDir = mkdtempSync(join(tmpdir(), 'paycode-crash-'));
    onTestFinished(() => rmSync(dataDir, { recursive: true, force: true }));
    const lines = await runUntilKilled(dataDir, acks);

    const engine = await Engine.open({
      dataDir,
      secrets: loadSecrets(join(dataDir, 'secrets.json')),
      shards: 2,
    });
    onTestFinished(() => engine.close());
    const audit = await engine.audit();
    expect(audit.problems).toEqual([]);

    const approved = lines.filter((line) => line.op === 'redeem' && line.status === 'approved');
    expect(approved.length).toBeGreaterThan(0);
    const { auths, journal } = engine.store;
    const redeemRefs = new Map<string, number>();
    for (const { value } of journal.getRange())
      if (value.kind === 'redeem') redeemRefs.set(value.ref, (redeemRefs.get(value.ref) ?? 0) + 1);
    for (const line of approved) {
      // Present, exactly once, with the acknowledged amount.
      expect(auths.get(line.authId as string)?.capturedCents).toBe(line.approvedCents);
      expect(redeemRefs.get(line.authId as string)).toBe(1);
      // The same key replays the stored answer; the used code never redeems again.
      const replay = await engine.redeem({
        merchantId: 'm1',
        terminalId: 't1',
        key: line.key as string,
        code: line.code as string,
        amountCents: 250,
        partial: false,
      });
      expect(replay.authId).toBe(line.authId);
      const again = await engine.redeem({
        merchantId: 'm1',
        terminalId: 't1',
        key: `again-${line.key}`,
        code: line.code as string,
        amountCents: 250,
        partial: false,
      });
      expect(again.status).not.toBe('approved');
    }
    // Every acknowledged load is there, and each balance is its load minus the redeems on record.
    const redeemsBy = new Map<string, number>();
    for (const { value } of journal.getRange()) {
      if (value.kind === 'redeem')
        redeemsBy.set(value.consumerId, (redeemsBy.get(value.consumerId) ?? 0) + 1);
    }
    const loads = lines.filter((line) => line.op === 'load' && line.status === 'approved');
    expect(loads).toHaveLength(40);
    for (const line of loads) {
      const consumerId = engine.consumerIdFor(line.phone as string);
      const wallet = await engine.wallet(consumerId);
      expect(wallet?.cards[0]?.balanceCents).toBe(1_000 - 250 * (redeemsBy.get(consumerId) ?? 0));
    }
  });
});
