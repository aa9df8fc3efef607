import { randomBytes } from 'node:crypto';
import {
  chmodSync,
  closeSync,
  existsSync,
  fsyncSync,
  linkSync,
  mkdirSync,
  openSync,
  readFileSync,
  renameSync,
  statSync,
  unlinkSync,
  writeSync,
} from 'node:fs';
import { dirname, join } from 'node:path';

/**
 * Keys that must never be in the database: the code hash key, the code sealing key, the key that turns
 * a phone number into a consumer id, and the master key that seals terminal keys, bank details, phone
 * numbers and queued texts and keys the hashes of tokens. They come from `PAYCODE_SECRETS_FILE` or, in
 * development, from `<dataDir>/secrets.json`, generated with mode 0600 (a key missing from an older file
 * is added). `PAYCODE_MASTER_KEY` (32 bytes, base64url) overrides the file's master key. A copy of the
 * LMDB files alone therefore reveals no live code, key, token or phone number.
 */
export interface Secrets {
  codeHashKey: Buffer;
  codeSealKey: Buffer;
  consumerIdKey: Buffer;
  masterKey: Buffer;
}

const NAMES = ['codeHashKey', 'codeSealKey', 'consumerIdKey', 'masterKey'] as const;

export function secretsPath(dataDir: string): string {
  return process.env.PAYCODE_SECRETS_FILE ?? join(dataDir, 'secrets.json');
}

function decodeKey(value: unknown, where: string): Buffer {
  const key = typeof value === 'string' ? Buffer.from(value, 'base64url') : Buffer.alloc(0);
  if (key.length !== 32) throw new Error(`${where} must be 32 bytes in base64url`);
  return key;
}

/**
 * Reads the keys. In development a missing file or key is generated and a file others can read is made
 * private; in production the operator provides the file, and one that is missing,
 * incomplete or readable by group or others is refused: keys are never made up or silently fixed there.
 */
export function loadSecrets(
  path: string,
  env: NodeJS.ProcessEnv = process.env,
  options: { production?: boolean } = {},
): Secrets {
  if (options.production) {
    if (!existsSync(path))
      throw new Error(`${path} does not exist: create it with \`paycode secrets --out ${path}\``);
    if ((statSync(path).mode & 0o077) !== 0)
      throw new Error(`${path} is readable by others: chmod 600 it (and check who copied it)`);
  }
  const raw: Record<string, unknown> = existsSync(path) ? JSON.parse(readFileSync(path, 'utf8')) : {};
  const missing = NAMES.filter(
    (name) => raw[name] === undefined && !(name === 'masterKey' && env.PAYCODE_MASTER_KEY),
  );
  if (missing.length > 0 && options.production) throw new Error(`${path} lacks ${missing.join(', ')}`);
  if (missing.length > 0) {
    for (const name of missing) raw[name] = randomBytes(32).toString('base64url');
    writeSecretsFile(path, raw);
  }
  if ((statSync(path).mode & 0o077) !== 0) chmodSync(path, 0o600);
  const key = (name: (typeof NAMES)[number]) => decodeKey(raw[name], `${path}: ${name}`);
  return {
    codeHashKey: key('codeHashKey'),
    codeSealKey: key('codeSealKey'),
    consumerIdKey: key('consumerIdKey'),
    masterKey: env.PAYCODE_MASTER_KEY
      ? decodeKey(env.PAYCODE_MASTER_KEY, 'PAYCODE_MASTER_KEY')
      : key('masterKey'),
  };
}

/** A new file of fresh keys (mode 0600) for a production server; an existing file is never replaced. */
export function createSecretsFile(path: string): void {
  const keys = Object.fromEntries(NAMES.map((name) => [name, randomBytes(32).toString('base64url')]));
  const aside = writeAside(path, keys);
  try {
    linkSync(aside, path); // fails if the file exists, even one that appeared a moment ago
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'EEXIST')
      throw new Error(`${path} exists: keys are never replaced by new ones`);
    throw error;
  } finally {
    unlinkSync(aside);
  }
}

/** Written aside, flushed and renamed into place: a crash leaves the old file or the new one. */
function writeSecretsFile(path: string, keys: Record<string, unknown>): void {
  renameSync(writeAside(path, keys), path);
}

/** The keys in a new private file next to `path` (never an existing file or link), flushed. */
function writeAside(path: string, keys: Record<string, unknown>): string {
  mkdirSync(dirname(path), { recursive: true });
  const aside = `${path}.${process.pid}.${randomBytes(6).toString('hex')}.tmp`;
  const fd = openSync(aside, 'wx', 0o600);
  writeSync(fd, `${JSON.stringify(keys, null, 2)}\n`);
  fsyncSync(fd);
  closeSync(fd);
  return aside;
}

/** Fresh random keys, for tests and benchmarks that need no file. */
export function randomSecrets(): Secrets {
  const [codeHashKey, codeSealKey, consumerIdKey, masterKey] = NAMES.map(() => randomBytes(32)) as [
    Buffer,
    Buffer,
    Buffer,
    Buffer,
  ];
  return { codeHashKey, codeSealKey, consumerIdKey, masterKey };
}
