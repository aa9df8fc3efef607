// Proves durability before acknowledgement: a child process runs the engine under redeem load and is
// killed with SIGKILL right after a batch of acknowledged redeems, with gift sagas in flight and
// accounts passivating; after a restart on the same data directory every acknowledged redeem and gift
// is present exactly once, interrupted gifts complete, no code redeems twice, and the ledger sums to
// zero. Repeated for several kill instants.
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
  giftId?: string;
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
  it.each([25, 120, 400])(
    'keeps every acknowledged redeem and gift after SIGKILL (%i acknowledged)',
    async (acks) => {
      const dataDir = mkdtempSync(join(tmpdir(), 'paycode-crash-'));
      onTestFinished(() => rmSync(dataDir, { recursive: true, force: true }));
      const lines = await runUntilKilled(dataDir, acks);

      const engine = await Engine.open({
        dataDir,
        secrets: loadSecrets(join(dataDir, 'secrets.json')),
        shards: 2,
      });
      onTestFinished(() => engine.close());
      // Opening re-drives the gift sagas the kill interrupted; the audit waits for them.
      const audit = await engine.audit();
      expect(audit.problems).toEqual([]);
      const { auths, journal, sagas } = engine.store;
      expect(Array.from(sagas.getRange())).toEqual([]);

      const entries = Array.from(journal.getRange(), ({ value }) => value);
      const count = (kind: string, ref: string) =>
        entries.filter((e) => e.kind === kind && e.ref === ref).length;
      const approved = lines.filter((line) => line.op === 'redeem' && line.status === 'approved');
      expect(approved.length).toBeGreaterThan(0);
      for (const line of approved) {
        // Present exactly once, with the acknowledged amount.
        expect(auths.get(line.authId as string)?.capturedCents).toBe(line.approvedCents);
        expect(count('redeem', line.authId as string)).toBe(1);
      }
      // An acknowledged gift left the sender and reached the receiver, each exactly once.
      for (const line of lines.filter((l) => l.op === 'gift' && l.status === 'approved')) {
        expect(count('gift', line.giftId as string)).toBe(2);
      }

      // Every acknowledged load is there, and each balance is its load plus its card's journal entries.
      const loads = lines.filter((line) => line.op === 'load' && line.status === 'approved');
      expect(loads).toHaveLength(40);
      for (const line of loads) {
        const consumerId = engine.consumerIdFor(line.phone as string);
        const moved = entries
          .filter((e) => e.consumerId === consumerId && e.kind !== 'load')
          .reduce((sum, e) => sum + (e.legs.find((leg) => leg.account.startsWith('card:'))?.cents ?? 0), 0);
        expect((await engine.wallet(consumerId))?.cards[0]?.balanceCents).toBe(1_000 + moved);
      }

      // The same key replays the stored answer; a used code never redeems again, unless the same digits
      // were drawn again later, for anyone in the slot (about one draw in 15,625).
      const drawn = (code?: string) => lines.filter((l) => l.op === 'issue' && l.code === code).length;
      for (const line of approved) {
        const request = {
          merchantId: 'm1',
          terminalId: 't1',
          code: line.code as string,
          amountCents: 100,
          partial: false,
        };
        expect((await engine.redeem({ ...request, key: line.key as string })).authId).toBe(line.authId);
        if (drawn(line.code) > 1) continue;
        expect((await engine.redeem({ ...request, key: `again-${line.key}` })).status).not.toBe('approved');
      }
    },
  );
});
