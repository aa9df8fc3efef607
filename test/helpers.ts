import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { expect, onTestFinished } from 'vitest';
import { Engine, type EngineOptions } from '../engine/engine.ts';
import { randomSecrets } from '../persistence/secrets.ts';

/** A fresh data directory, removed when the test finishes. */
export function tempDir(): string {
  const dir = mkdtempSync(join(tmpdir(), 'paycode-test-'));
  onTestFinished(() => rmSync(dir, { recursive: true, force: true }));
  return dir;
}

/**
 * A real engine (worker threads, LMDB) on a fresh directory. The ledger is audited after every group
 * commit; the test fails if any audit found a problem. Closed and removed when the test finishes.
 */
export async function openEngine(options: Partial<EngineOptions> = {}): Promise<Engine> {
  const dataDir = mkdtempSync(join(tmpdir(), 'paycode-test-'));
  const engine = await Engine.open({
    dataDir,
    secrets: randomSecrets(),
    shards: 2,
    auditEachCommit: true,
    ...options,
  });
  onTestFinished(async () => {
    await engine.close();
    rmSync(dataDir, { recursive: true, force: true });
    expect(engine.auditFailures).toEqual([]);
  });
  return engine;
}
