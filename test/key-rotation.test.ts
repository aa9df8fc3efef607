/**
 * Master key rotation (docs/key-rotation.md) against a real server and the real `paycode master-key`
 * command. A merchant with bank details, an activated terminal, a terminal waiting for activation, a
 * consumer with a device token, the stored operator token, a settled day and a queued verification text
 * are made under the first key; after `rotate`, no value in any database opens with the old key and every
 * sealed one opens with the new key; after a restart with the rewritten file the terminal still
 * handshakes with its old key, the API key, device token, operator token, activation code and texted
 * verification code still work and move under the new key, the bank details and the settled ACH file are
 * unchanged and the next day settles to the same account. `drop` keeps a retired key while anything
 * depends on it and removes it once nothing does (a device token revoked since does not count); a second
 * rotation works. A rotation interrupted after its first committed batch leaves everything readable, and
 * running it again finishes. A forced drop loses exactly the credentials it reported. The commands refuse
 * a running server and a master key in the environment that is not the file's, and a server refuses a
 * retired key given as its master key.
 */
import { execFile } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { describe, expect, it, onTestFinished } from 'vitest';
import { isBound, SEALED_FOR, seal, unseal } from '../core/seal.ts';
import { type DropReport, type RotationReport, rotateMasterKey } from '../persistence/key-rotation.ts';
import { createSecretsFile, loadSecrets, masterKeyId } from '../persistence/secrets.ts';
import { type MerchantRecord, openStore, type Store } from '../persistence/store.ts';
import { readAchEntries } from '../settlement/nacha.ts';
import { ROUTING, startTestServer, type TestServer, waitFor } from './server-helpers.ts';

const CLI = join(import.meta.dirname, '..', 'cli', 'paycode.mjs');
const DAY_MS = 86_400_000;
const ACCOUNT = '1234567890';
const [ALICE, BOB, CAROL] = ['+15555550301', '+15555550302', '+15555550303'];
const production = { production: true };

interface Setup {
  dataDir: string;
  secretsFile: string;
  /** The servers' clock: it starts at the next noon (UTC), so a business day is never cut short. */
  now: () => number;
  /** Moves the servers' clock to `ms` after the noon it started at. */
  advance(ms: number): void;
}

function setup(): Setup {
  const dir = mkdtempSync(join(tmpdir(), 'paycode-rotation-'));
  onTestFinished(() => rmSync(dir, { recursive: true, force: true }));
  const secretsFile = join(dir, 'secrets.json');
  createSecretsFile(secretsFile);
  // Ahead of the real clock, never behind it: the commands judge expiry by the real clock, and must see
  // as live what the server sees as live.
  const toNoonMs = (DAY_MS * 1.5 - (Date.now() % DAY_MS)) % DAY_MS;
  let shiftMs = toNoonMs;
  return {
    dataDir: join(dir, 'data'),
    secretsFile,
    now: () => Date.now() + shiftMs,
    advance: (ms) => {
      shiftMs = toNoonMs + ms;
    },
  };
}

/** A server on the keys of the file, as production loads them; the operator token is the stored one. */
function start(s: Setup): Promise<TestServer> {
  return startTestServer({
    dataDir: s.dataDir,
    secrets: loadSecrets(s.secretsFile, {}, production),
    env: { PAYCODE_ADMIN_TOKEN: '' },
    now: s.now,
  });
}

/** Runs `paycode` in its own process; a failure resolves too, with the exit code and stderr. */
async function cli(
  s: Setup,
  args: string[],
  env: Record<string, string> = {},
): Promise<{ code: number; json: Partial<RotationReport & DropReport>; stderr: string }> {
  const base: NodeJS.ProcessEnv = {
    ...process.env,
    PAYCODE_DATA_DIR: s.dataDir,
    PAYCODE_SECRETS_FILE: s.secretsFile,
  };
  delete base.PAYCODE_MASTER_KEY;
  delete base.PAYCODE_ADMIN_TOKEN;
  try {
    const { stdout, stderr } = await promisify(execFile)(process.execPath, [CLI, ...args], {
      env: { ...base, ...env },
    });
    return { code: 0, json: JSON.parse(stdout), stderr };
  } catch (error) {
    const { code, stdout, stderr } = error as { code: number; stdout: string; stderr: string };
    return { code, json: stdout ? JSON.parse(stdout) : {}, stderr };
  }
}

function keysOf(s: Setup): { masterKey: string; retiredMasterKeys?: string[]; codeHashKey: string } {
  return JSON.parse(readFileSync(s.secretsFile, 'utf8'));
}

/**
 * Every string in every value of every database that could be a sealed value, with how many open under
 * each key: an auditor independent of the rotation's own list of sealed fields.
 */
async function sealedStrings(dataDir: string, keys: string[]): Promise<number[]> {
  const store = openStore(dataDir);
  const counts = keys.map(() => 0);
  const visit = (value: unknown): void => {
    if (typeof value === 'string') {
      // Plain, or bound to a record (`2.<record>.<sealed>`, core/seal.ts).
      if (!/^(?:2\.[A-Za-z0-9_-]+\.)?[A-Za-z0-9_-]{38,}$/.test(value)) return;
      for (const [index, key] of keys.entries()) {
        try {
          unseal(Buffer.from(key, 'base64url'), value);
          counts[index] = (counts[index] ?? 0) + 1;
        } catch {}
      }
    } else if (Array.isArray(value)) value.forEach(visit);
    else if (value && typeof value === 'object') Object.values(value).forEach(visit);
  };
  try {
    for (const [name, db] of Object.entries(store)) {
      if (name === 'root') continue;
      for (const { value } of (db as Store['meta']).getRange()) visit(value);
    }
  } finally {
    await store.root.close();
  }
  return counts;
}

interface World {
  operatorToken: string;
  merchant: { merchantId: string; apiKey: string };
  terminal: { terminalId: string; terminalKey: string };
  pendingActivation: string;
  alice: { consumerId: string; deviceToken: string };
  /** Alice's second device, signed in before the rotation and never used after it. */
  aliceTablet: { deviceToken: string };
  day: string;
  ach: string;
}

/**
 * Everything the master key seals or hashes: a merchant (bank details, API key), an activated terminal
 * (terminal key) and one waiting for activation (activation code), Alice (phone, two device tokens), a sale
 * settled the next midnight (the sealed ACH file), the stored operator token, and Bob's verification
 * text left queued (phone, verification code hash, sealed text). The server is stopped at the end.
 */
async function populate(s: Setup): Promise<World> {
  const t = await start(s);
  const tokenLine = await waitFor(() => t.lines.find((line) => line.includes('operator token')));
  const operatorToken = /: (op_\S+)$/.exec(tokenLine)?.[1] as string;
  const created = await t.http(
    'POST',
    '/v1/merchants',
    { name: 'Corner Cafe', routingNumber: ROUTING, accountNumber: ACCOUNT, accountType: 'checking' },
    operatorToken,
  );
  expect(created.status).toBe(201);
  const merchant = created.body as { merchantId: string; apiKey: string };
  const terminal = await t.terminal(merchant);
  await t.load(merchant, ALICE, 5_000);
  const alice = await t.consumer(ALICE);
  const aliceTablet = await t.consumer(ALICE);
  const pos = await t.pos(terminal);
  const code = (
    await t.http('POST', '/v1/wallet/codes', { merchantId: merchant.merchantId }, alice.deviceToken)
  ).body.code;
  expect((await pos.redeem({ code, amountCents: 1_000 })).status).toBe('approved');

  const day = new Date(s.now()).toISOString().slice(0, 10);
  s.advance(DAY_MS / 2 + 60_000); // a minute after midnight: the day is over
  expect((await t.http('POST', '/v1/settlements', { businessDate: day }, operatorToken)).status).toBe(200);
  const ach = (await t.http('GET', `/v1/settlements/${day}/ach`, undefined, operatorToken)).body as string;
  expect(readAchEntries(ach)).toEqual([
    expect.objectContaining({ routingNumber: ROUTING, accountNumber: ACCOUNT, amountCents: 4_000 }),
  ]);

  // Made after the clock moved, so that they are still live after the restart.
  const pending = await t.http(
    'POST',
    `/v1/merchants/${merchant.merchantId}/terminals`,
    { label: 'spare' },
    merchant.apiKey,
  );
  expect(pending.status).toBe(201);
  await waitFor(() => t.server.outbox.pending() === 0 || undefined);
  await t.server.outbox.stop();
  expect((await t.http('POST', '/v1/consumers', { phone: BOB })).status).toBe(202);
  expect(t.server.outbox.pending()).toBe(1);
  await t.server.close();
  return {
    operatorToken,
    merchant,
    terminal,
    pendingActivation: pending.body.activationCode,
    alice,
    aliceTablet,
    day,
    ach,
  };
}

/** What must work after a restart on the rotated keys, whichever key each value or hash is under. */
async function expectWorking(t: TestServer, w: World): Promise<void> {
  const pos = await t.pos(w.terminal);
  expect((await pos.ping()).status).toBe('approved');
  pos.close();
  const wallet = await t.http('GET', '/v1/wallet', undefined, w.alice.deviceToken);
  expect(wallet.status).toBe(200);
  expect(wallet.body.cards).toEqual([expect.objectContaining({ merchantId: w.merchant.merchantId })]);
  const terminals = await t.http(
    'POST',
    `/v1/merchants/${w.merchant.merchantId}/terminals`,
    { label: 'another' },
    w.merchant.apiKey,
  );
  expect(terminals.status).toBe(201);
  const ach = await t.http('GET', `/v1/settlements/${w.day}/ach`, undefined, w.operatorToken);
  expect(ach).toEqual({ status: 200, body: w.ach });
  const { registry } = t.server;
  expect(
    registry.merchants.bankDetails(registry.merchants.get(w.merchant.merchantId) as MerchantRecord),
  ).toEqual({
    routingNumber: ROUTING,
    accountNumber: ACCOUNT,
    accountType: 'checking',
  });
}

/** Hashes listed under a retired key whose credential has not moved to the master key yet. */
function unmigrated(t: TestServer): number {
  const store = t.server.engine.store;
  store.root.resetReadTxn();
  let count = 0;
  for (const { key, value } of store.retiredHashes.getRange()) {
    if (key[0] === 'credential' && store.credentials.get(key[1]) !== undefined) count += 1;
    if (key[0] === 'operator' && store.meta.get('operatorTokenHash') === value.hash) count += 1;
  }
  return count;
}

describe('master key rotation', () => {
  it('re-seals everything, keeps old hashes working until they migrate, drops the old key after', async () => {
    const s = setup();
    const world = await populate(s);
    const first = keysOf(s);

    const rotated = await cli(s, ['master-key', 'rotate']);
    expect(rotated.code).toBe(0);
    const second = keysOf(s);
    expect(statSync(s.secretsFile).mode & 0o777).toBe(0o600);
    expect(second.masterKey).not.toBe(first.masterKey);
    expect(second.retiredMasterKeys).toEqual([first.masterKey]);
    expect(second.codeHashKey).toBe(first.codeHashKey);
    const [firstId, secondId] = [first.masterKey, second.masterKey].map((key) =>
      masterKeyId(Buffer.from(key, 'base64url')),
    );
    expect(rotated.json).toMatchObject({
      masterKeyId: secondId,
      resealed: { merchants: 1, terminals: 1, phones: 2, outbox: 1, settlements: 1 },
      unreadable: [],
      retired: [
        {
          masterKeyId: firstId,
          sealedValues: 0,
          dependents: { merchant: 1, device: 2, activation: 1, otp: 1, operator: 1 },
          merchantIds: [world.merchant.merchantId],
        },
      ],
    });
    // No value anywhere opens with the old key any more; the six sealed ones open with the new key.
    expect(await sealedStrings(s.dataDir, [first.masterKey, second.masterKey])).toEqual([0, 6]);

    // The old key cannot be dropped yet: the report says what would be lost, and the file keeps it.
    const early = await cli(s, ['master-key', 'drop']);
    expect(early.code).toBe(1);
    expect(early.json).toMatchObject({ dropped: [], retired: [{ masterKeyId: firstId }] });
    expect(keysOf(s)).toEqual(second);

    const t = await start(s);
    await expectWorking(t, world);
    expect(
      (await t.http('POST', '/v1/terminals/activate', { activationCode: world.pendingActivation })).status,
    ).toBe(200);
    // Bob's text was queued under the old key: it is delivered now, and its code (hashed under the old
    // key) verifies his phone.
    const text = await waitFor(() => t.server.devInbox?.inbox.find((entry) => entry.phone === BOB));
    const verified = await t.http('POST', '/v1/consumers/verify', {
      phone: BOB,
      otp: /([0-9]{6})/.exec(text.text)?.[1],
    });
    expect(verified.status).toBe(200);
    // Alice signs every device out (a lost phone): her tablet's token, still under the old key, is dead
    // now, and must not keep the old key needed. Everything else used since the restart has moved.
    expect((await t.http('POST', '/v1/consumers', { phone: ALICE })).status).toBe(202);
    const aliceText = await waitFor(() =>
      t.server.devInbox?.inbox.findLast((entry) => entry.phone === ALICE),
    );
    const revoked = await t.http('POST', '/v1/consumers/verify', {
      phone: ALICE,
      otp: /([0-9]{6})/.exec(aliceText.text)?.[1],
      revokeOtherDevices: true,
    });
    expect(revoked.status).toBe(200);
    expect((await t.http('GET', '/v1/wallet', undefined, world.aliceTablet.deviceToken)).status).toBe(401);
    world.alice.deviceToken = revoked.body.deviceToken;
    await waitFor(() => (unmigrated(t) === 1 ? true : undefined));

    // The next day settles to the same account, from the bank details re-sealed under the new key.
    const alicePos = await t.pos(world.terminal);
    const code = (
      await t.http(
        'POST',
        '/v1/wallet/codes',
        { merchantId: world.merchant.merchantId },
        world.alice.deviceToken,
      )
    ).body.code;
    expect((await alicePos.redeem({ code, amountCents: 500 })).status).toBe('approved');
    const nextDay = new Date(s.now()).toISOString().slice(0, 10);
    s.advance(DAY_MS * 1.5 + 60_000);
    expect(
      (await t.http('POST', '/v1/settlements', { businessDate: nextDay }, world.operatorToken)).status,
    ).toBe(200);
    const nextAch = (await t.http('GET', `/v1/settlements/${nextDay}/ach`, undefined, world.operatorToken))
      .body;
    expect(readAchEntries(nextAch)).toEqual([
      expect.objectContaining({ routingNumber: ROUTING, accountNumber: ACCOUNT, amountCents: 500 }),
    ]);

    // The status runs beside a server, and refuses nothing; rotation and drop refuse a running server.
    const status = await cli(s, ['master-key', 'status']);
    expect(status.json.retired).toEqual([
      {
        masterKeyId: firstId,
        sealedValues: 0,
        dependents: { merchant: 0, device: 0, activation: 0, otp: 0, operator: 0 },
        merchantIds: [],
        lastExpiresAtMs: null,
      },
    ]);
    const busy = await cli(s, ['master-key', 'rotate']);
    expect(busy.code).toBe(1);
    expect(busy.stderr).toMatch(
      /is open in process [0-9]+: stop the server before `paycode master-key rotate`/,
    );
    expect(keysOf(s)).toEqual(second);
    await t.server.close();

    const dropped = await cli(s, ['master-key', 'drop']);
    expect(dropped.code).toBe(0);
    expect(dropped.json).toMatchObject({ dropped: [firstId], retired: [] });
    expect(keysOf(s).retiredMasterKeys).toBeUndefined();
    expect(keysOf(s).masterKey).toBe(second.masterKey);

    // Without the old key everything still works; then a second rotation.
    const afterDrop = await start(s);
    await expectWorking(afterDrop, world);
    await afterDrop.server.close();
    const again = await cli(s, ['master-key', 'rotate']);
    expect(again.code).toBe(0);
    const third = keysOf(s);
    expect(third.retiredMasterKeys).toEqual([second.masterKey]);
    // Now also the activated spare terminal and the second day's file; Bob's text was delivered.
    expect(await sealedStrings(s.dataDir, [first.masterKey, second.masterKey, third.masterKey])).toEqual([
      0, 0, 7,
    ]);
    const afterSecond = await start(s);
    await expectWorking(afterSecond, world);
    await afterSecond.server.close();
  });

  it('binds a value sealed before values were bound to their record, at the next rotation', async () => {
    const s = setup();
    const world = await populate(s);
    const first = Buffer.from(keysOf(s).masterKey, 'base64url');
    const { merchantId } = world.merchant;
    const before = openStore(s.dataDir);
    const record = before.merchants.get(merchantId) as MerchantRecord;
    const bank = unseal(first, record.sealedBank);
    await before.merchants.put(merchantId, { ...record, sealedBank: seal(first, bank) });
    await before.root.close();

    expect((await cli(s, ['master-key', 'rotate'])).code).toBe(0);
    const second = Buffer.from(keysOf(s).masterKey, 'base64url');
    const after = openStore(s.dataDir);
    try {
      const { sealedBank } = after.merchants.get(merchantId) as MerchantRecord;
      expect(isBound(sealedBank)).toBe(true);
      expect(unseal(second, sealedBank, SEALED_FOR.bank(merchantId))).toBe(bank);
      expect(() => unseal(second, sealedBank, SEALED_FOR.bank('mc_another'))).toThrow();
    } finally {
      await after.root.close();
    }
  });

  it('leaves everything readable when interrupted, finishes when run again, and loses only what a forced drop reports', async () => {
    const s = setup();
    const world = await populate(s);
    const first = keysOf(s);

    // A crash after the first committed batch: the file has the new key, one value is re-sealed.
    await expect(
      rotateMasterKey({
        dataDir: s.dataDir,
        secretsFile: s.secretsFile,
        batchMax: 1,
        onProgress: () => {
          throw new Error('crashed');
        },
      }),
    ).rejects.toThrow('crashed');
    const second = keysOf(s);
    expect(second.retiredMasterKeys).toEqual([first.masterKey]);
    expect(await sealedStrings(s.dataDir, [first.masterKey, second.masterKey])).toEqual([5, 1]);

    const t = await start(s);
    await expectWorking(t, world);
    const text = await waitFor(() => t.server.devInbox?.inbox.find((entry) => entry.phone === BOB));
    expect(text.text).toMatch(/verification code is [0-9]{6}/);
    // Carol gets her device token under the new key while values of the old one are still around.
    const carol = await t.consumer(CAROL);
    // Everything used since the restart has moved to the new key; the spare activation code and Alice's
    // tablet token, not used, have not.
    await waitFor(() => (unmigrated(t) === 2 ? true : undefined));
    await t.server.close();

    // Run again: a third key, and nothing left under either earlier key.
    const rerun = await cli(s, ['master-key', 'rotate']);
    expect(rerun.code).toBe(0);
    const third = keysOf(s);
    expect(third.retiredMasterKeys).toEqual([second.masterKey, first.masterKey]);
    // Carol's phone is the one sealed value more; Bob's text was delivered.
    expect(await sealedStrings(s.dataDir, [first.masterKey, second.masterKey, third.masterKey])).toEqual([
      0, 0, 6,
    ]);
    const [firstId, secondId] = [first.masterKey, second.masterKey].map((key) =>
      masterKeyId(Buffer.from(key, 'base64url')),
    );
    // Alice's token, the API key and the operator token moved to the second key when used after the
    // restart; Carol's token and the other terminal's activation code were made under it. Alice's tablet
    // token, the spare activation code and Bob's verification code, never used, still need the first.
    expect(rerun.json.retired).toEqual([
      expect.objectContaining({
        masterKeyId: secondId,
        dependents: { merchant: 1, device: 2, activation: 1, otp: 0, operator: 1 },
      }),
      expect.objectContaining({
        masterKeyId: firstId,
        dependents: { merchant: 0, device: 1, activation: 1, otp: 1, operator: 0 },
      }),
    ]);

    // A forced drop removes both retired keys and deletes exactly what it reports as lost.
    const forced = await cli(s, ['master-key', 'drop', '--force']);
    expect(forced.code).toBe(0);
    expect(forced.json).toMatchObject({
      dropped: [secondId, firstId],
      lost: { merchant: 1, device: 3, activation: 2, otp: 1, operator: 1 },
      retired: [],
    });
    expect(keysOf(s).retiredMasterKeys).toBeUndefined();
    const after = await start(s);
    // The sealed values are all under the master key: the terminal still handshakes.
    const pos = await after.pos(world.terminal);
    expect((await pos.ping()).status).toBe('approved');
    const tokens = [
      world.alice.deviceToken,
      world.aliceTablet.deviceToken,
      carol.deviceToken,
      world.merchant.apiKey,
    ];
    for (const token of tokens) {
      expect((await after.http('GET', '/v1/wallet', undefined, token)).status).toBe(401);
    }
    expect(
      (await after.http('POST', '/v1/terminals/activate', { activationCode: world.pendingActivation }))
        .status,
    ).not.toBe(200);
    // The lost operator token hash was deleted, so this start made and printed a new one.
    expect(after.lines.some((line) => line.includes('operator token'))).toBe(true);
    await after.server.close();
  });

  it('refuses a running server, a master key in the environment that is not the file one, and a retired key', async () => {
    const s = setup();
    const t = await start(s);
    const { masterKey } = keysOf(s);
    const running = await cli(s, ['master-key', 'rotate']);
    expect(running.code).toBe(1);
    expect(running.stderr).toMatch(/open in process [0-9]+: stop the server/);
    await t.server.close();

    const other = Buffer.alloc(32, 7).toString('base64url');
    const differs = await cli(s, ['master-key', 'rotate'], { PAYCODE_MASTER_KEY: other });
    expect(differs.code).toBe(1);
    expect(differs.stderr).toMatch(/PAYCODE_MASTER_KEY differs from the masterKey of/);
    expect(keysOf(s).masterKey).toBe(masterKey);

    // The same key in the environment and the file: the rotation goes ahead, and a server still given
    // the old key in the environment refuses to start instead of sealing under a retired key.
    const same = await cli(s, ['master-key', 'rotate'], { PAYCODE_MASTER_KEY: masterKey });
    expect(same.code).toBe(0);
    expect(keysOf(s).retiredMasterKeys).toEqual([masterKey]);
    expect(() => loadSecrets(s.secretsFile, { PAYCODE_MASTER_KEY: masterKey }, production)).toThrow(
      /PAYCODE_MASTER_KEY is a retired master key/,
    );
    expect(
      loadSecrets(s.secretsFile, { PAYCODE_MASTER_KEY: keysOf(s).masterKey }, production).masterKey,
    ).toEqual(Buffer.from(keysOf(s).masterKey, 'base64url'));

    const elsewhere = await cli(s, ['master-key', 'rotate'], {
      PAYCODE_DATA_DIR: join(s.dataDir, 'missing'),
    });
    expect(elsewhere.code).toBe(1);
    expect(elsewhere.stderr).toMatch(/no database in .*missing: set PAYCODE_DATA_DIR/);
  });
});
