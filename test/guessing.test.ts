/**
 * Code guessing against a live server: a terminal gets exactly the guesses a day the limits allow,
 * however often its merchant unlocks it; a merchant's terminals together, and all terminals together,
 * never get more than their windows, even when they all guess at once, nor after a restart; a guess of
 * any length (6 to 10 digits) at a busy merchant counts the same, and a code of another shape counts as
 * none; honest sales running at once are never held back by the windows. The number of guesses counted here
 * is the one core/guessing.ts computes the published probability from, and docs/security.md shows the
 * figures for the defaults, which meet the target of 1e-4 per terminal-day.
 */
import { execFile } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { promisify } from 'node:util';
import { describe, expect, it } from 'vitest';
import {
  GUESSING_TARGET_PER_TERMINAL_DAY,
  guessingBound,
  hitPerGuessMax,
  merchantGuessingBound,
  platformGuessingBound,
} from '../core/guessing.ts';
import type { MerchantId, TerminalId } from '../core/ids.ts';
import { LIMITS, type Limits } from '../core/limits.ts';
import type { Reply } from '../core/wallet.ts';
import { CodeAttempts } from '../gateway/code-attempts.ts';
import { CodeFailureWindows, oneSlipApart } from '../gateway/code-windows.ts';
import { createMetrics } from '../gateway/metrics.ts';
import { createLogger } from '../log/logger.ts';
import type { PosClient } from '../sdk/pos-client.ts';
import { posMac, requestFields } from '../sdk/pos-protocol.ts';
import { readConfig } from '../server/config.ts';
import { OPERATOR_TOKEN, posHandshake, startTestServer, type TestServer } from './server-helpers.ts';

const DAY_MS = 24 * 60 * 60_000;

async function terminals(t: TestServer, merchant: { merchantId: string; apiKey: string }, count: number) {
  const made = await Promise.all(Array.from({ length: count }, () => t.terminal(merchant)));
  return Promise.all(made.map(async (terminal) => ({ ...terminal, pos: await t.pos(terminal) })));
}

/** Sends `count` inquiries with fresh digits at once; returns how many were tried (answered invalid_code). */
async function guess(pos: PosClient, count: number, from: number): Promise<number> {
  const answers = await Promise.all(
    Array.from({ length: count }, (_, i) => pos.inquire(String(from + i).padStart(6, '0'))),
  );
  for (const answer of answers)
    expect(['invalid_code', 'terminal_locked', 'rate_limited']).toContain(answer.status);
  return answers.filter((answer) => answer.status === 'invalid_code').length;
}

describe('code guessing', () => {
  it('gives a terminal its day of guesses and no more, whatever its merchant unlocks', async () => {
    const clock = { nowMs: Date.now() };
    const t = await startTestServer({ now: () => clock.nowMs });
    const merchant = await t.merchant();
    const [attacker] = await terminals(t, merchant, 1);
    if (!attacker) throw new Error('no terminal');
    const unlock = (token: string) =>
      t.http(
        'POST',
        `/v1/merchants/${merchant.merchantId}/terminals/${attacker.terminalId}/unlock`,
        {},
        token,
      );

    /** Guesses in rounds, the merchant unlocking after each, as a careless or complicit merchant would. */
    const day = async (from: number) => {
      let tried = 0;
      for (let round = 0; round < 6; round++) {
        const now = await guess(attacker.pos, 5, from + round * 10);
        // Each run of misses ends at the lock after a few in a row, the last at the day's budget.
        expect(now).toBeLessThanOrEqual(LIMITS.terminalCodeFailuresMax);
        tried += now;
        expect((await unlock(merchant.apiKey)).status).toBe(200);
      }
      expect((await attacker.pos.inquire('222222')).status).toBe('terminal_locked');
      return tried;
    };
    expect(await day(100_000)).toBe(LIMITS.terminalCodeFailuresPerDayMax);
    expect(LIMITS.terminalCodeFailuresPerDayMax).toBe(guessingBound(LIMITS, 1).guessesPerDay);

    // A day after the first misses the terminal may try again; only the operator clears the day at once.
    clock.nowMs += DAY_MS;
    expect(await day(300_000)).toBe(LIMITS.terminalCodeFailuresPerDayMax);
    expect((await unlock(OPERATOR_TOKEN)).status).toBe(200);
    expect((await attacker.pos.inquire('333333')).status).toBe('invalid_code');
  });

  it("bounds a merchant's terminals together, even when they all guess at once", async () => {
    const clock = { nowMs: Date.now() };
    const limits: Partial<Limits> = {
      terminalCodeFailuresMax: 3,
      terminalCodeFailuresPerDayMax: 3,
      merchantCodeFailuresPerDayMax: 10,
    };
    const t = await startTestServer({ now: () => clock.nowMs, limits });
    const merchant = await t.merchant();
    const fleet = await terminals(t, merchant, 8);
    const tried = await Promise.all(fleet.map((terminal, i) => guess(terminal.pos, 5, 100_000 + i * 10)));
    const total = tried.reduce((sum, count) => sum + count, 0);
    expect(total).toBe(10);
    expect(total).toBe(guessingBound({ ...LIMITS, ...limits }, fleet.length).guessesPerDay);

    // Another merchant is not held back; a day later the merchant's window is empty again.
    const [other] = await terminals(t, await t.merchant('Elsewhere'), 1);
    expect(await guess(other?.pos as PosClient, 1, 500_000)).toBe(1);
    // A restart refills the windows from the terminals' stored failures.
    await t.restart();
    const [fresh] = await terminals(t, merchant, 1);
    expect((await fresh?.pos.inquire('600000'))?.status).toBe('rate_limited');
    clock.nowMs += DAY_MS;
    expect(await guess(fresh?.pos as PosClient, 1, 600_001)).toBe(1);
  });

  it('counts a guess of any length in the same windows at a busy merchant, and a malformed code in none', async () => {
    const limits: Partial<Limits> = { merchantCodeFailuresPerDayMax: 10 };
    const t = await startTestServer({ limits });
    const merchant = await t.merchant('Busy');
    // Busy: 40 phones hold codes, so its live codes are of 6 and 7 digits (and 8 on a machine with more shards).
    const live = await Promise.all(
      Array.from({ length: 40 }, async (_, i) => {
        const phone = `+1555666${String(i).padStart(4, '0')}`;
        await t.load(merchant, phone, 1_000);
        return t.code(merchant, (await t.consumer(phone)).deviceToken);
      }),
    );
    expect(new Set(live.map((code) => code.length)).has(7)).toBe(true);
    const fleet = await terminals(t, merchant, 6);
    const [first] = fleet;
    if (!first) throw new Error('no terminal');

    // Codes that are not 6 to 10 digits are refused and tried by no one: the terminal does not lock.
    for (const code of ['12345', '12345678901', '1234567a', ' 1234567', '１２３４５６'])
      expect((await first.pos.inquire(code)).status).toBe('bad_request');
    expect((await first.pos.redeem({ code: '00001', amountCents: 100 })).status).toBe('bad_request');
    // Misses of 7, 8 and 10 digits are misses like any other: three in a row lock the terminal.
    const misses = ['0000001', '00000002', '0000000003'].filter((code) => !live.includes(code));
    for (const code of misses) expect((await first.pos.inquire(code)).status).toBe('invalid_code');
    expect(misses).toHaveLength(3);
    expect((await first.pos.inquire('00000004')).status).toBe('terminal_locked');

    // The other terminals guess at every length at once: the merchant's day holds 10 misses in all.
    const lengths = [6, 7, 8, 9, 10];
    const answers = await Promise.all(
      fleet.slice(1).flatMap((terminal, i) =>
        lengths.map((digits, j) => {
          let code = String(100 + i * 10 + j).padStart(digits, '0');
          if (live.includes(code)) code = code.replace(/^0/, '9');
          return terminal.pos.inquire(code);
        }),
      ),
    );
    const statuses = answers.map((answer) => answer.status);
    expect(statuses.filter((status) => status === 'invalid_code')).toHaveLength(10 - misses.length);
    expect(statuses).toContain('rate_limited');
    for (const status of statuses)
      expect(['invalid_code', 'rate_limited', 'terminal_locked']).toContain(status);
  });

  it('counts no malformed attempt and no expired code, and charges every counted miss to its terminal', async () => {
    const clock = { nowMs: Date.now() };
    const t = await startTestServer({
      now: () => clock.nowMs,
      limits: { merchantCodeFailuresPerWindowMax: 3 },
    });
    const merchant = await t.merchant();
    const [attacker, honest, third] = await terminals(t, merchant, 3);
    if (!attacker || !honest || !third) throw new Error('no terminals');
    const failedToday = async (terminalId: string) =>
      (
        await t.http('GET', `/v1/merchants/${merchant.merchantId}/terminals`, undefined, merchant.apiKey)
      ).body.terminals.find((terminal: { terminalId: string }) => terminal.terminalId === terminalId)
        .failedCodesToday;

    // Well-formed digits with a malformed field, MACed so they pass the session's checks: refused, and
    // counted nowhere (once they filled the merchant's window and stopped every till's sales).
    const { socket, sessionKey } = await posHandshake(
      t.server.url,
      attacker.terminalId,
      Buffer.from(attacker.terminalKey, 'base64url'),
    );
    const malformed = [{ amountCents: '100' }, { key: 'not a key!' }, { partial: 2 }, { amountCents: 0 }];
    for (let seq = 1; seq <= 25; seq++) {
      const message: Record<string, unknown> = {
        type: 'redeem',
        seq,
        key: `k${seq}`,
        code: String(100_000 + seq),
        amountCents: 100,
        partial: 0,
        ...malformed[seq % malformed.length],
      };
      message.mac = posMac(sessionKey, [
        'redeem',
        seq,
        ...(requestFields('redeem') ?? []).map((name) => message[name]),
      ]);
      socket.send(message);
      expect((await socket.next()).status).toBe('bad_request');
    }
    expect(await failedToday(attacker.terminalId)).toBe(0);

    // A customer who came late: the code expired, the till tries it again and again. Not a guess.
    await t.load(merchant, '+15558880001', 1_000);
    const late = await t.code(merchant, (await t.consumer('+15558880001')).deviceToken);
    clock.nowMs += 21 * 60_000;
    for (let i = 0; i < 10; i++)
      expect((await honest.pos.redeem({ code: late, amountCents: 100 })).status).toBe('expired_code');
    expect(await failedToday(honest.terminalId)).toBe(0);

    // So the merchant's window (3 a minute here) is untouched: three misses are tried and charged to the
    // till that made them, which locks after three in a row; then the window refuses every till, and the
    // log says why.
    expect(await guess(honest.pos, 3, 400_000)).toBe(3);
    expect(await failedToday(honest.terminalId)).toBe(3);
    expect((await honest.pos.inquire('400009')).status).toBe('terminal_locked');
    expect((await third.pos.inquire('400010')).status).toBe('rate_limited');
    // The merchant's terminal list says why, and until when (the dashboard shows it).
    const listed = await t.http(
      'GET',
      `/v1/merchants/${merchant.merchantId}/terminals`,
      undefined,
      merchant.apiKey,
    );
    expect(listed.body.codeAttempts).toEqual({
      refused: true,
      window: 'merchant, per minute',
      untilMs: clock.nowMs + LIMITS.merchantCodeFailureWindowMs,
    });
    // The operator's unlock of the till forgets its failures in the merchant's windows too: the other tills
    // may try codes again at once (a merchant's own unlock does not do this).
    const unlock = `/v1/merchants/${merchant.merchantId}/terminals/${honest.terminalId}/unlock`;
    expect((await t.http('POST', unlock, {}, merchant.apiKey)).status).toBe(200);
    expect((await third.pos.inquire('400011')).status).toBe('rate_limited');
    expect((await t.http('POST', unlock, {}, OPERATOR_TOKEN)).status).toBe(200);
    const after = await t.http(
      'GET',
      `/v1/merchants/${merchant.merchantId}/terminals`,
      undefined,
      merchant.apiKey,
    );
    expect(after.body.codeAttempts).toEqual({ refused: false });
    expect((await third.pos.inquire('400012')).status).toBe('invalid_code');
    const refusals = t.logs.filter((line) => line.includes('code attempts refused: too many failed codes'));
    expect(refusals).toHaveLength(1);
    expect(JSON.parse(refusals[0] as string)).toMatchObject({
      merchantId: merchant.merchantId,
      window: 'merchant, per minute',
    });
    const metrics = await (await fetch(`${t.server.url}/metrics`)).text();
    expect(metrics).toMatch(/paycode_code_attempts_throttled_total 2/);
  });

  it("explains a cashier's typo by the sale that follows, so a busy merchant's slips do not stop its sales", async () => {
    const clock = { nowMs: Date.now() };
    const limits: Partial<Limits> = {
      terminalCodeFailuresMax: 8,
      merchantCodeFailuresPerWindowMax: 2,
      merchantCodeFailuresPerDayMax: 6,
      merchantCodeTyposPerDayMax: 5,
    };
    const t = await startTestServer({ now: () => clock.nowMs, limits });
    const merchant = await t.merchant();
    let [till, other, fresh] = await terminals(t, merchant, 3);
    if (!till || !other || !fresh) throw new Error('no terminals');
    let customers = 0;
    const customerCode = async () => {
      const phone = `+1555777${String(++customers).padStart(4, '0')}`;
      await t.load(merchant, phone, 1_000);
      return t.code(merchant, (await t.consumer(phone)).deviceToken);
    };
    const failedToday = async (terminalId: string) =>
      (
        await t.http('GET', `/v1/merchants/${merchant.merchantId}/terminals`, undefined, merchant.apiKey)
      ).body.terminals.find((terminal: { terminalId: string }) => terminal.terminalId === terminalId)
        .failedCodesToday;
    const changed = (code: string) => `${(Number(code[0]) + 1) % 10}${code.slice(1)}`;
    const swapped = (code: string) => {
      const at = [...code].findIndex((digit, i) => digit !== code[i + 1]);
      return `${code.slice(0, at)}${code[at + 1]}${code[at]}${code.slice(at + 2)}`;
    };
    const added = (code: string) => `${code}0`;

    // Four customers, each code first mistyped, then typed right: four misses, more than the merchant's
    // minute holds (2), yet each is explained by the sale after it.
    for (const slip of [changed, swapped, added, changed]) {
      const code = await customerCode();
      expect((await till.pos.redeem({ code: slip(code), amountCents: 100 })).status).toBe('invalid_code');
      expect((await till.pos.redeem({ code, amountCents: 100 })).status).toBe('approved');
    }
    // The till still counts its own slips (its day's figure holds for anyone); the merchant's windows do not.
    expect(await failedToday(till.terminalId)).toBe(4);
    expect((await fresh.pos.inquire('100001')).status).toBe('invalid_code');
    // A restart puts the explained slips back in the typo budget, not the windows.
    await t.restart();
    type Till = typeof till;
    [till, other, fresh] = (await Promise.all(
      [till, other, fresh].map(async (terminal) => ({ ...terminal, pos: await t.pos(terminal) })),
    )) as [Till, Till, Till];
    expect((await fresh.pos.inquire('100002')).status).toBe('invalid_code');

    expect((await fresh.pos.inquire('100003')).status).toBe('rate_limited');

    // Misses no sale explains fill the windows as before: digits far from the code that follows...
    clock.nowMs += LIMITS.merchantCodeFailureWindowMs;
    const far = await customerCode();
    expect((await other.pos.redeem({ code: '999999', amountCents: 100 })).status).toBe('invalid_code');
    expect((await other.pos.redeem({ code: far, amountCents: 100 })).status).toBe('approved');
    expect((await fresh.pos.inquire('100004')).status).toBe('invalid_code');
    expect((await fresh.pos.inquire('100005')).status).toBe('rate_limited');
    // ...and a slip whose sale comes too late (a customer who went to fetch the phone's charger).
    clock.nowMs += LIMITS.merchantCodeFailureWindowMs;
    const late = await customerCode();
    expect((await till.pos.redeem({ code: changed(late), amountCents: 100 })).status).toBe('invalid_code');
    clock.nowMs += LIMITS.codeTypoExplainMs + 1;
    expect((await till.pos.redeem({ code: late, amountCents: 100 })).status).toBe('approved');
    // The day's window (6) now holds 100001, 100002, 999999, 100004, the late slip: room for one more.
    expect((await fresh.pos.inquire('100006')).status).toBe('invalid_code');
    expect((await fresh.pos.inquire('100007')).status).toBe('rate_limited');
    expect(await failedToday(till.terminalId)).toBe(5);
  });

  it("keeps a merchant's typos within its day's typo budget", () => {
    const limits: Limits = {
      ...LIMITS,
      merchantCodeFailuresPerWindowMax: 100,
      merchantCodeTyposPerDayMax: 2,
    };
    const windows = new CodeFailureWindows(limits, []);
    const nowMs = Date.now();
    for (let i = 0; i < 3; i++) windows.add('m', 't', nowMs + i, `12345${i}`);
    // Two slips are explained (the latest one slip away first); the third stays in the windows.
    expect(windows.explain('m', 't', '123459', nowMs + 3)).toBe(nowMs + 2);
    expect(windows.explain('m', 't', '123459', nowMs + 4)).toBe(nowMs + 1);
    expect(windows.explain('m', 't', '123459', nowMs + 5)).toBeNull();
    // Another terminal's sale explains none of this terminal's misses; a code far from them, none either.
    const fresh = new CodeFailureWindows(limits, []);
    fresh.add('m', 't', nowMs, '123450');
    expect(fresh.explain('m', 'u', '123459', nowMs + 1)).toBeNull();
    expect(fresh.explain('m', 't', '987654', nowMs + 1)).toBeNull();
    expect(fresh.explain('m', 't', '123459', nowMs + 1)).toBe(nowMs);
    // Restored failures: the explained ones fill the typo budget again, the others the windows.
    const strict = { ...limits, merchantCodeFailuresPerDayMax: 1 };
    const restored = new CodeFailureWindows(strict, [
      { merchantId: 'm' as MerchantId, terminalId: 't' as TerminalId, atMs: nowMs, explained: true },
      { merchantId: 'm' as MerchantId, terminalId: 't' as TerminalId, atMs: nowMs + 1, explained: true },
    ]);
    expect(restored.refusal('m', nowMs + 2)).toBeNull();
    restored.add('m', 't', nowMs + 2, '555555');
    expect(restored.explain('m', 't', '555556', nowMs + 3)).toBeNull();
    expect(restored.refusal('m', nowMs + 3)?.window).toBe('merchant, per day');
  });

  it('calls a typo one changed, left out, added or swapped digit, and nothing further', () => {
    expect(oneSlipApart('123457', '123456')).toBe(true);
    expect(oneSlipApart('213456', '123456')).toBe(true);
    expect(oneSlipApart('1234567', '123456')).toBe(true);
    expect(oneSlipApart('0123456', '123456')).toBe(true);
    expect(oneSlipApart('123456', '1234567')).toBe(true);
    expect(oneSlipApart('124567', '1234567')).toBe(true);
    expect(oneSlipApart('123456', '123456')).toBe(false);
    expect(oneSlipApart('123465', '123546')).toBe(false);
    expect(oneSlipApart('124356', '123465')).toBe(false);
    expect(oneSlipApart('223457', '123456')).toBe(false);
    expect(oneSlipApart('132456', '123465')).toBe(false);
    expect(oneSlipApart('12345', '1234567')).toBe(false);
    expect(oneSlipApart('1234578', '123456')).toBe(false);
  });

  it('does not hold back honest sales running at once, whatever the failure windows', async () => {
    const t = await startTestServer({
      limits: {
        merchantCodeFailuresPerWindowMax: 2,
        globalCodeFailuresPerWindowMax: 2,
        merchantLiveCodesMax: 100,
      },
    });
    const merchant = await t.merchant();
    const fleet = await terminals(t, merchant, 10);
    const codes = await Promise.all(
      fleet.map(async (_, i) => {
        const phone = `+1555555${String(i).padStart(4, '0')}`;
        const { deviceToken } = await t.consumer(phone);
        await t.load(merchant, phone, 1_000);
        return t.code(merchant, deviceToken);
      }),
    );
    const sales = await Promise.all(
      fleet.map((terminal, i) => terminal.pos.redeem({ code: codes[i] as string, amountCents: 500 })),
    );
    expect(sales.map((sale) => sale.status)).toEqual(fleet.map(() => 'approved'));
  });

  it('takes back the count of digits the index did not know once the answer shows they were a code, or did not run', async () => {
    // A node of a cluster may not know yet a code issued a moment ago through another node: only the
    // shard's answer makes the attempt a miss. The runs stand in for the shard's answers.
    const t = await startTestServer();
    const merchant = await t.merchant();
    const terminal = await t.terminal(merchant);
    const limits: Limits = { ...LIMITS, merchantCodeFailuresPerWindowMax: 2 };
    const windows = new CodeFailureWindows(limits, []);
    const attempts = new CodeAttempts({
      engine: t.server.engine,
      registry: t.server.registry,
      limits,
      metrics: createMetrics(),
      logger: createLogger({ write: () => {} }),
      codeWindows: windows,
      now: Date.now,
    });
    const attempt = (digits: string, reply: Reply) =>
      attempts.run(
        terminal.terminalId as TerminalId,
        merchant.merchantId as MerchantId,
        `key-${digits}`,
        digits,
        async (_, lookup) => {
          expect(lookup?.state).toBe('none');
          return reply;
        },
      );
    const locked = () =>
      t.server.registry.terminals.failures.locked(terminal.terminalId as TerminalId, Date.now());
    for (let n = 0; n < 4; n++) {
      expect(await attempt(`10000${n}`, { status: 'approved', authId: `au_${n}` } as Reply)).toMatchObject({
        status: 'approved',
      });
      await attempt(`20000${n}`, { status: 'insufficient_funds' });
      await attempt(`30000${n}`, { status: 'overloaded' });
    }
    expect(windows.refusal(merchant.merchantId, Date.now())).toBeNull();
    expect(locked()).toBe(false);
    // Misses stay counted: `invalid_code`, and `internal` (it may have run).
    await attempt('400000', { status: 'invalid_code' });
    await attempt('400001', { status: 'internal' });
    expect(windows.refusal(merchant.merchantId, Date.now())).toMatchObject({
      window: 'merchant, per minute',
    });
  });

  it('bounds all terminals together per window', async () => {
    const clock = { nowMs: Date.now() };
    const t = await startTestServer({
      now: () => clock.nowMs,
      limits: { globalCodeFailuresPerWindowMax: 4 },
    });
    const fleet = [
      ...(await terminals(t, await t.merchant('One'), 2)),
      ...(await terminals(t, await t.merchant('Two'), 2)),
    ];
    const tried = await Promise.all(fleet.map((terminal, i) => guess(terminal.pos, 3, 100_000 + i * 10)));
    expect(tried.reduce((sum, count) => sum + count, 0)).toBe(4);
    const [late] = await terminals(t, await t.merchant('Three'), 1);
    expect((await late?.pos.inquire('700000'))?.status).toBe('rate_limited');
    clock.nowMs += LIMITS.merchantCodeFailureWindowMs;
    expect(await guess(late?.pos as PosClient, 1, 700_001)).toBe(1);
  });

  it('takes the live-code cap from the configuration, and prints the bound for it', async () => {
    expect(readConfig({ PAYCODE_MERCHANT_LIVE_CODES_MAX: '40' }).config.merchantLiveCodesMax).toBe(40);
    expect(readConfig({ PAYCODE_SHARDS: '4', PAYCODE_MERCHANT_LIVE_CODES_MAX: '2' }).problems).toEqual([
      'PAYCODE_MERCHANT_LIVE_CODES_MAX (2) must be at least PAYCODE_SHARDS (4): each shard holds its share',
    ]);
    // Without PAYCODE_SHARDS, no more shards than the cap: the default configuration always starts.
    expect(readConfig({ PAYCODE_MERCHANT_LIVE_CODES_MAX: '1' }).config.shards).toBe(1);
    expect(readConfig({ PAYCODE_MERCHANT_LIVE_CODES_MAX: '0' }).problems).toHaveLength(1);
    expect(readConfig({ PAYCODE_MERCHANT_LIVE_CODES_MAX: '133333' }).problems).toHaveLength(1);
    // Every shard holds a share of the 12 six-digit codes: at most 12 shards.
    expect(readConfig({ PAYCODE_SHARDS: '13' }).problems).toHaveLength(1);
    expect(readConfig({}).config.merchantLiveCodesMax).toBe(133_332);

    const cli = new URL('../cli/paycode.mjs', import.meta.url).pathname;
    const guessing = (args: string[]) =>
      promisify(execFile)(process.execPath, [cli, 'guessing', ...args], {
        env: { ...process.env, PAYCODE_MERCHANT_LIVE_CODES_MAX: '40', PAYCODE_SHARDS: '2' },
      });
    const printed = JSON.parse((await guessing(['--terminals', '1,25'])).stdout);
    const limits = { ...LIMITS, merchantLiveCodesMax: 40 };
    expect(printed).toEqual({
      targetPerTerminalDay: GUESSING_TARGET_PER_TERMINAL_DAY,
      hitPerGuessMax: hitPerGuessMax(limits),
      bounds: [guessingBound(limits, 1), guessingBound(limits, 25)],
      merchantDay: merchantGuessingBound(limits),
      merchantDayWithTypos: merchantGuessingBound(limits, true),
      platformDay: platformGuessingBound(limits),
    });
    await expect(guessing(['--terminals', '0,x'])).rejects.toThrow(/--terminals takes positive integers/);
  });

  it('meets the published target with the defaults, and the threat model shows the computed figures', () => {
    const doc = readFileSync(new URL('../docs/security.md', import.meta.url), 'utf8');
    for (const count of [1, 2, 10, 25, 100, 1_000, 10_000]) {
      const bound = guessingBound(LIMITS, count);
      expect(bound.successPerTerminalDay).toBeLessThanOrEqual(GUESSING_TARGET_PER_TERMINAL_DAY);
      if ([1, 10, 100, 1_000].includes(count)) {
        expect(doc).toContain(`| ${count.toLocaleString('en-US')} | ${bound.guessesPerDay} |`);
        expect(doc).toContain(bound.successPerDay.toExponential(2));
        expect(doc).toContain(bound.successPerTerminalDay.toExponential(2));
      }
    }
    // The bound reads the limits: more misses allowed give a larger figure, an operator's lower cap on
    // live codes a smaller one, and however many codes a merchant may hold it does not grow (the density
    // of each length is fixed).
    const base = guessingBound(LIMITS, 1);
    const looser = guessingBound({ ...LIMITS, terminalCodeFailuresPerDayMax: 20 }, 1);
    expect(looser.successPerTerminalDay).toBeGreaterThan(GUESSING_TARGET_PER_TERMINAL_DAY);
    expect(guessingBound({ ...LIMITS, merchantLiveCodesMax: 6 }, 1).successPerDay).toBeLessThan(
      base.successPerDay,
    );
    expect(guessingBound({ ...LIMITS, merchantLiveCodesMax: 12 }, 1)).toEqual(base);
    expect(hitPerGuessMax(LIMITS)).toBeLessThan(1.21e-5);
    // The merchant-day and platform figures the threat model publishes.
    const merchantDay = merchantGuessingBound(LIMITS);
    expect(merchantDay.guessesPerDay).toBe(LIMITS.merchantCodeFailuresPerDayMax);
    expect(doc).toContain(merchantDay.successPerDay.toExponential(2));
    const withTypos = merchantGuessingBound(LIMITS, true);
    expect(withTypos.successPerTerminalDay).toBeLessThanOrEqual(GUESSING_TARGET_PER_TERMINAL_DAY);
    expect(doc).toContain(`at most ${withTypos.guessesPerDay.toLocaleString('en-US')} guesses`);
    expect(doc).toContain(withTypos.successPerDay.toExponential(2));
    expect(doc).toContain(`with ${withTypos.terminals} of its\nterminals`);
    const platform = platformGuessingBound(LIMITS);
    expect(doc).toContain(platform.guessesPerDay.toLocaleString('en-US'));
    expect(doc).toContain(platform.hitsPerDayExpected.toFixed(1));
    expect(doc).toContain(platform.merchantsNeeded.toLocaleString('en-US'));
  });
});
