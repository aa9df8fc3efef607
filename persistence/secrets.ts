import { createHmac, randomBytes } from 'node:crypto';
import {
  chmodSync,
  closeSync,
  existsSync,
  fsyncSync,
  linkSync,
  mkdirSync,
  openSync,
  readFileSync,
  realpathSync,
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
 *
 * After a rotation (docs/key-rotation.md) the file also lists `retiredMasterKeys`, newest first: master
 * keys that no longer seal or hash anything new but still open values and match hashes made under them,
 * until `paycode master-key drop` finds that nothing depends on them any more.
 *
 * @module
 */

export interface Secrets {
  codeHashKey: Buffer;
  codeSealKey: Buffer;
  consumerIdKey: Buffer;
  masterKey: Buffer;
  /** Earlier master keys, newest first; empty until the first rotation. */
  retiredMasterKeys: Buffer[];
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
  const retiredMasterKeys = decodeRetired(raw.retiredMasterKeys, path);
  const masterKey = env.PAYCODE_MASTER_KEY
    ? decodeKey(env.PAYCODE_MASTER_KEY, 'PAYCODE_MASTER_KEY')
    : key('masterKey');
  // A master key set in the environment that the file lists as retired is one a rotation replaced: the
  // server would seal new values under it while the values re-sealed under the new key stay unreadable.
  if (retiredMasterKeys.some((retired) => retired.equals(masterKey)))
    throw new Error(
      env.PAYCODE_MASTER_KEY
        ? `PAYCODE_MASTER_KEY is a retired master key of ${path}: set it to the file's masterKey or unset it (docs/key-rotation.md)`
        : `${path}: masterKey is also listed in retiredMasterKeys`,
    );
  return {
    codeHashKey: key('codeHashKey'),
    codeSealKey: key('codeSealKey'),
    consumerIdKey: key('consumerIdKey'),
    masterKey,
    retiredMasterKeys,
  };
}

function decodeRetired(value: unknown, path: string): Buffer[] {
  if (value === undefined) return [];
  if (!Array.isArray(value)) throw new Error(`${path}: retiredMasterKeys must be a list of keys`);
  return value.map((item, index) => decodeKey(item, `${path}: retiredMasterKeys[${index}]`));
}

/**
 * A short name of a master key that reveals nothing about it (a keyed hash of a constant), stored next to
 * hashes made under a key that was retired and printed in rotation reports, so keys can be told apart.
 */
export function masterKeyId(key: Buffer): string {
  return createHmac('sha256', key).update('paycode master key id').digest('base64url').slice(0, 16);
}

/**
 * Replaces the master key and the retired keys of an existing file, keeping every other key and field.
 * The file is written aside, flushed and renamed, and the directory flushed: once this returns, a crash
 * leaves the new file, and before it the old one; never a file without a key that sealed something.
 */
export function writeMasterKeys(path: string, masterKey: Buffer, retiredMasterKeys: readonly Buffer[]): void {
  const raw: Record<string, unknown> = JSON.parse(readFileSync(path, 'utf8'));
  raw.masterKey = masterKey.toString('base64url');
  if (retiredMasterKeys.length > 0)
    raw.retiredMasterKeys = retiredMasterKeys.map((key) => key.toString('base64url'));
  else delete raw.retiredMasterKeys;
  writeSecretsFile(realpathSync(path), raw);
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
  // The rename is durable only once the directory is flushed; a rotation seals values under the new key
  // right after this, so the file that holds it must survive a power loss.
  const directory = openSync(dirname(path), 'r');
  try {
    fsyncSync(directory);
  } finally {
    closeSync(directory);
  }
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
  return { codeHashKey, codeSealKey, consumerIdKey, masterKey, retiredMasterKeys: [] };
}
