import { parentPort, workerData } from 'node:worker_threads';
import { auditStore } from './audit.ts';
import { openStore } from './store.ts';

/**
 * One part of the start-up audit in its own thread (see auditInParallel in audit.ts): audits its part
 * on its own read transaction and answers with the report.
 *
 * @module
 */

const { dataDir, nowMs, part } = workerData as {
  dataDir: string;
  nowMs: number;
  part: Parameters<typeof auditStore>[2];
};
const store = openStore(dataDir);
try {
  parentPort?.postMessage(auditStore(store, nowMs, part));
} finally {
  await store.root.close();
}
