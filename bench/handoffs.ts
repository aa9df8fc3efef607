import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Worker } from 'node:worker_threads';
import { open } from 'lmdb';
import { fmtInt, table } from './measure.ts';

/**
 * What one step of a redemption costs at a low, steady rate, where nothing is batched: the process CPU
 * of a thread waking on a timer, a message to a worker thread and back, and a durable LMDB commit of
 * eight small records, made the way the shards make it (asynchronous, then waiting for the flush) and
 * synchronously in the calling thread. At a tenth of the closed-loop maximum every redemption pays each
 * of these alone; at the maximum a batch shares them.
 */
export interface HandoffRow {
  step: string;
  perSec: number;
  userMicros: number;
  systemMicros: number;
}

type Step = (i: number) => Promise<void>;

async function paced(perSec: number, count: number, step: Step): Promise<{ user: number; system: number }> {
  const started = performance.now();
  const cpu = process.cpuUsage();
  for (let i = 0; i < count; i++) {
    const waitMs = started + (i * 1000) / perSec - performance.now();
    if (waitMs > 0) await new Promise((resolve) => setTimeout(resolve, waitMs));
    await step(i);
  }
  const used = process.cpuUsage(cpu);
  return { user: used.user / count, system: used.system / count };
}

export async function runHandoffsBench(perSecList: readonly number[], count: number): Promise<HandoffRow[]> {
  const dir = mkdtempSync(join(tmpdir(), 'paycode-handoffs-'));
  const asyncRoot = open({ path: join(dir, 'async'), overlappingSync: true });
  // overlappingSync off: the commit returns only once it is flushed, in the calling thread.
  const syncRoot = open({ path: join(dir, 'sync'), overlappingSync: false });
  const asyncRecords = asyncRoot.openDB('records', {});
  const syncRecords = syncRoot.openDB('records', {});
  const worker = new Worker(
    "require('node:worker_threads').parentPort.on('message', (m) => require('node:worker_threads').parentPort.postMessage(m));",
    { eval: true },
  );
  const record = (i: number, k: number) => ({ i, k, text: 'x'.repeat(100) });
  const message = {
    type: 'batch',
    commands: [{ id: 1, op: 'redeem', code: 'x'.repeat(43), amountCents: 500 }],
  };
  const steps: [string, Step][] = [
    ['timer wake only', async () => {}],
    [
      'message to a worker and back',
      () =>
        new Promise((resolve) => {
          worker.once('message', () => resolve());
          worker.postMessage(message);
        }),
    ],
    [
      'LMDB commit, asynchronous, then its flush',
      async (i) => {
        await asyncRoot.transaction(() => {
          for (let k = 0; k < 8; k++) asyncRecords.put(`${i}-${k}`, record(i, k));
        });
        await asyncRoot.flushed;
      },
    ],
    [
      'LMDB commit, synchronous, in the calling thread',
      async (i) => {
        syncRoot.transactionSync(() => {
          for (let k = 0; k < 8; k++) syncRecords.put(`${i}-${k}`, record(i, k));
        });
      },
    ],
  ];
  const rows: HandoffRow[] = [];
  try {
    for (const perSec of perSecList)
      for (const [name, step] of steps) {
        const { user, system } = await paced(perSec, count, step);
        rows.push({ step: name, perSec, userMicros: user, systemMicros: system });
      }
  } finally {
    await worker.terminate();
    await asyncRoot.close();
    await syncRoot.close();
    rmSync(dir, { recursive: true, force: true });
  }
  return rows;
}

export function printHandoffsBench(rows: readonly HandoffRow[]): void {
  console.log(
    table(
      ['step', 'per s', 'user µs', 'system µs', 'CPU µs each'],
      rows.map((row) => [
        row.step,
        fmtInt(row.perSec),
        row.userMicros.toFixed(0),
        row.systemMicros.toFixed(0),
        (row.userMicros + row.systemMicros).toFixed(0),
      ]),
    ),
  );
}
