import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
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

/** A self-signed certificate for 127.0.0.1 and its key (made with openssl), in a temp directory. */
export function selfSignedCertificate(): { certFile: string; keyFile: string; cert: string } {
  const dir = tempDir();
  const certFile = join(dir, 'cert.pem');
  const keyFile = join(dir, 'key.pem');
  execFileSync(
    'openssl',
    [
      'req',
      '-x509',
      '-newkey',
      'ec',
      '-pkeyopt',
      'ec_paramgen_curve:prime256v1',
      '-nodes',
      '-days',
      '1',
      '-subj',
      '/CN=127.0.0.1',
      '-addext',
      'subjectAltName=IP:127.0.0.1',
      '-keyout',
      keyFile,
      '-out',
      certFile,
    ],
    { stdio: 'ignore' },
  );
  return { certFile, keyFile, cert: readFileSync(certFile, 'utf8') };
}

/** Waits for a condition without asserting how long it takes (the machine is shared and noisy). */
export async function waitUntil(what: string, condition: () => boolean): Promise<void> {
  for (let attempt = 0; attempt < 3_000; attempt++) {
    if (condition()) return;
    await new Promise((resolve) => setTimeout(resolve, 10));
  }
  throw new Error(`gave up waiting for ${what}`);
}

/** Loads a merchant-funded gift card (default $50 at m1) onto a phone through the engine; its consumer id. */
export async function fund(engine: Engine, phone: string, amountCents = 5_000, merchantId = 'm1') {
  const loaded = await engine.loadValue({
    merchantId,
    phone,
    kind: 'gift',
    funding: 'merchant',
    amountCents,
    idempotencyKey: `load-${phone.slice(1)}-${merchantId}`,
  });
  expect(loaded.status).toBe('approved');
  return engine.consumerIdFor(phone);
}
