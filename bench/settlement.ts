import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { ConsumerId, MerchantId } from '../core/ids.ts';
import { LIMITS } from '../core/limits.ts';
import { Registry } from '../gateway/registry.ts';
import { randomSecrets } from '../persistence/secrets.ts';
import { openStore, whenDurable } from '../persistence/store.ts';
import { Settlements } from '../settlement/settlements.ts';

/**
 * One business day with `postings` redemptions spread over `merchants` merchants, written straight into
 * the journal, then settled the way the server does it (a piscina worker reads and nets, the main
 * thread stores the result and marks every posting). Reports the run's wall time and postings per
 * second, the file's size and a second, idempotent run.
 */
export interface SettlementBenchOptions {
  postings: number;
  merchants: number;
}

export interface SettlementBenchResult {
  postings: number;
  merchants: number;
  firstRunMs: number;
  postingsPerSec: number;
  secondRunMs: number;
  achBytes: number;
  reconciled: boolean;
}

const DAY_MS = 86_400_000;

export async function runSettlementBench(options: SettlementBenchOptions): Promise<SettlementBenchResult> {
  const dataDir = mkdtempSync(join(tmpdir(), 'paycode-bench-settle-'));
  const store = openStore(dataDir);
  try {
    const dayStartMs = Math.floor(Date.now() / DAY_MS) * DAY_MS - DAY_MS;
    const businessDate = new Date(dayStartMs).toISOString().slice(0, 10);
    const { masterKey } = randomSecrets();
    const registry = new Registry(store, masterKey, { ...LIMITS }, Date.now, 'op_bench_token_0123456789');
    const merchantIds: MerchantId[] = [];
    for (let i = 0; i < options.merchants; i++) {
      const created = await registry.merchants.create({
        name: `Merchant ${i}`,
        keyword: null,
        feeBps: 150,
        feeFixedCents: 5,
        bank: { routingNumber: '021000021', accountNumber: String(10_000_000 + i), accountType: 'checking' },
      });
      if ('status' in created) throw new Error(created.message);
      merchantIds.push(created.merchantId);
    }
    const batch = 10_000;
    for (let start = 0; start < options.postings; start += batch) {
      await store.root.transaction(() => {
        for (let seq = start; seq < Math.min(options.postings, start + batch); seq++) {
          const merchantId = merchantIds[seq % merchantIds.length] as MerchantId;
          const atMs = dayStartMs + Math.floor((seq / options.postings) * (DAY_MS - 1));
          const cents = 100 + (seq % 5_000);
          store.journal.put([atMs, 0, seq], {
            atMs,
            kind: 'redeem',
            consumerId: `cu_${seq % 64}_bench` as ConsumerId,
            merchantId,
            ref: `au_${seq}`,
            legs: [
              { account: `card:cd_${seq}`, cents: -cents },
              { account: `merchant:${merchantId}:payable`, cents },
            ],
          });
        }
      });
    }
    await whenDurable(store);
    const settlements = new Settlements(
      store,
      dataDir,
      registry.sealedRecords,
      masterKey,
      {
        cutoff: { timeZone: 'UTC', time: '00:00' },
        originator: {
          odfiRoutingNumber: '121042882',
          immediateDestination: '121042882',
          immediateDestinationName: 'BENCH ODFI',
          immediateOrigin: '1000000000',
          immediateOriginName: 'PAYCODE',
          companyName: 'PAYCODE',
          companyId: '1000000000',
          offsetAccount: {
            routingNumber: '121042882',
            accountNumber: '1000000001',
            accountType: 'checking',
            name: 'PAYCODE SETTLEMENT',
          },
        },
        balanced: false,
        stragglerWindowMs: LIMITS.settlementStragglerWindowMs,
      },
      Date.now,
      (line) => console.log(line),
    );
    let started = performance.now();
    const first = await settlements.settle(businessDate);
    const firstRunMs = performance.now() - started;
    started = performance.now();
    const second = await settlements.settle(businessDate);
    const secondRunMs = performance.now() - started;
    await settlements.close();
    if (!first.ok || !second.ok) throw new Error('the settlement was refused');
    const achText = settlements.ach(first.record);
    if (settlements.ach(second.record) !== achText) throw new Error('the second run returned another file');
    return {
      postings: first.record.summary.postings,
      merchants: first.record.merchants.length,
      firstRunMs,
      postingsPerSec: (first.record.summary.postings / firstRunMs) * 1000,
      secondRunMs,
      achBytes: achText.length,
      reconciled: first.record.summary.reconciled,
    };
  } finally {
    await store.root.close();
    rmSync(dataDir, { recursive: true, force: true });
  }
}

export function printSettlementBench(result: SettlementBenchResult): void {
  console.log(
    `settlement: ${result.postings.toLocaleString('en-US')} postings, ${result.merchants} merchants: ` +
      `first run ${(result.firstRunMs / 1000).toFixed(2)} s (${Math.round(result.postingsPerSec).toLocaleString('en-US')} postings/s, ` +
      `ACH file ${result.achBytes.toLocaleString('en-US')} bytes, ${result.reconciled ? 'reconciled' : 'NOT reconciled'}); ` +
      `second run ${result.secondRunMs.toFixed(1)} ms (the stored result)`,
  );
}
