import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { loadSecrets, secretsPath } from '../persistence/secrets.ts';
import { readConfig } from './config.ts';
import { Engine } from './engine.ts';

/**
 * `npm start`: opens the engine on the configured data directory (LMDB in ./data by default), audits
 * the ledger, and on a fresh directory creates demo data. The network gateway (HTTP, POS and wallet
 * WebSockets) attaches to this engine; until it does, this process runs the engine alone.
 */
const { config, problems } = readConfig();
if (problems.length > 0) {
  console.error(`paycode: bad configuration:\n  ${problems.join('\n  ')}`);
  process.exit(2);
}

const fresh = !existsSync(join(config.dataDir, 'lmdb'));
const engine = await Engine.open({
  dataDir: config.dataDir,
  secrets: loadSecrets(secretsPath(config.dataDir)),
  shards: config.shards,
  codeTtlMs: config.codeTtlMs,
  // A shard that cannot commit must not be answered from memory: stop, and recover from disk on restart.
  onFatal: () => process.exit(70),
});
const audit = engine.openingAudit ?? (await engine.audit());
console.log(
  `paycode engine ready: ${config.shards} shards, data in ${config.dataDir}; ledger audit ok ` +
    `(${audit.journalEntries} journal entries, ${audit.accounts} accounts, ${audit.durationMs.toFixed(0)} ms)`,
);

if (fresh && config.demo) {
  const phone = '+15555550100';
  const loaded = await engine.loadValue({
    merchantId: 'm_demo',
    phone,
    kind: 'gift',
    funding: 'merchant',
    amountCents: 5_000,
    idempotencyKey: 'demo-gift',
  });
  console.log(`demo: consumer ${phone} holds a $50.00 gift card (${loaded.cardId}) at merchant m_demo`);
}

let stopping = false;
for (const signal of ['SIGINT', 'SIGTERM'] as const) {
  process.on(signal, () => {
    if (stopping) return;
    stopping = true;
    void engine.close().then(() => process.exit(0));
  });
}
