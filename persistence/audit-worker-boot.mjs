// One part of the start-up audit in its own thread (see auditInParallel in audit.ts): registers the
// TypeScript loader, audits its part on its own read transaction, answers with the report.
import { parentPort, workerData } from 'node:worker_threads';
import { register } from 'tsx/esm/api';

register();
const { auditStore } = await import('./audit.ts');
const { openStore } = await import('./store.ts');
const store = openStore(workerData.dataDir);
try {
  parentPort.postMessage(auditStore(store, workerData.nowMs, workerData.part));
} finally {
  await store.root.close();
}
