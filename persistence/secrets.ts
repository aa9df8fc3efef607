import { randomBytes } from 'node:crypto';
import { chmodSync, existsSync, mkdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';

/**
 * Keys that must never be in the database: the code hash key, the code sealing key and the key that
 * turns a phone number into a consumer id. They come from `PAYCODE_SECRETS_FILE` or, in development,
 * from `<dataDir>/secrets.json`, generated on first start with mode 0600. A copy of the LMDB files
 * alone therefore reveals no live code and no phone number.
 */
export interface Secrets {
  codeHashKey: Buffer;
  codeSealKey: Buffer;
  consumerIdKey: Buffer;
}

const NAMES = ['codeHashKey', 'codeSealKey', 'consumerIdKey'] as const;

export function secretsPath(dataDir: string): string {
  return process.env.PAYCODE_SECRETS_FILE ?? join(dataDir, 'secrets.json');
}

export function loadSecrets(path: string): Secrets {
  if (!existsSync(path)) {
    mkdirSync(dirname(path), { recursive: true });
    const fresh = Object.fromEntries(NAMES.map((name) => [name, randomBytes(32).toString('base64url')]));
    writeFileSync(path, `${JSON.stringify(fresh, null, 2)}\n`, { mode: 0o600, flag: 'wx' });
  }
  if ((statSync(path).mode & 0o077) !== 0) chmodSync(path, 0o600);
  const raw = JSON.parse(readFileSync(path, 'utf8')) as Record<string, unknown>;
  const keys = NAMES.map((name) => {
    const value = raw[name];
    const key = typeof value === 'string' ? Buffer.from(value, 'base64url') : Buffer.alloc(0);
    if (key.length !== 32) throw new Error(`${path}: ${name} must be 32 bytes in base64url`);
    return key;
  });
  return { codeHashKey: keys[0] as Buffer, codeSealKey: keys[1] as Buffer, consumerIdKey: keys[2] as Buffer };
}
