/**
 * What a newcomer does after `npm start`: the real `paycode serve` process starts on a fresh data
 * directory, prints the listening line, the operator token and demo data; the demo consumer signs in
 * with the texted code, asks for a payment code, and the `paycode pos` command charges it with the
 * printed terminal key. The operator CLI adds a merchant and a terminal, and gives a merchant longer
 * codes, which `paycode pos` charges. SIGTERM stops the server with
 * exit code 0, and a restart on the same directory creates no second demo.
 */
import { type ChildProcess, execFile, spawn, spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { promisify } from 'node:util';
import { describe, expect, it, onTestFinished } from 'vitest';
import { waitFor } from './server-helpers.ts';

const CLI = join(import.meta.dirname, '..', 'cli', 'paycode.mjs');

interface Running {
  child: ChildProcess;
  lines: string[];
  url: string;
}

async function serve(dataDir: string, entry = CLI): Promise<Running> {
  const env: NodeJS.ProcessEnv = {
    ...process.env,
    PAYCODE_PORT: '0',
    PAYCODE_DATA_DIR: dataDir,
    PAYCODE_SHARDS: '1',
  };
  delete env.PAYCODE_ADMIN_TOKEN;
  const child = spawn(process.execPath, [entry, 'serve'], { env, stdio: ['ignore', 'pipe', 'inherit'] });
  onTestFinished(() => {
    child.kill('SIGKILL');
  });
  const lines: string[] = [];
  createInterface({ input: child.stdout as NodeJS.ReadableStream }).on('line', (line) => lines.push(line));
  const listening = await waitFor(
    () => lines.find((line) => line.startsWith('paycode listening on ')),
    20_000,
  );
  return { child, lines, url: listening.slice('paycode listening on '.length) };
}

const run = async (args: string[], env: Record<string, string> = {}) => {
  const { stdout } = await promisify(execFile)(process.execPath, [CLI, ...args], {
    env: { ...process.env, ...env },
  });
  return JSON.parse(stdout);
};

const post = async (url: string, body: unknown, token?: string) => {
  const response = await fetch(url, {
    method: 'POST',
    headers: token ? { authorization: `Bearer ${token}` } : {},
    body: JSON.stringify(body),
  });
  return response.json();
};

describe('paycode serve and the CLI', () => {
  it('prints its commands on --help, and the usage without a stack trace on an unknown option', async () => {
    const help = spawnSync(process.execPath, [CLI, '--help'], { encoding: 'utf8' });
    expect(help.status).toBe(0);
    expect(help.stdout).toContain('paycode settle --date YYYY-MM-DD --out DIR');
    const wrong = spawnSync(process.execPath, [CLI, 'settle', '--dates', '2026-12-01'], { encoding: 'utf8' });
    expect(wrong.status).toBe(2);
    expect(wrong.stderr).toContain("paycode: Unknown option '--dates'");
    expect(wrong.stderr).toContain('usage: paycode serve');
    expect(wrong.stderr).not.toContain('    at ');
    // A command missing what it needs says what, before it calls any server.
    const noId = spawnSync(process.execPath, [CLI, 'texts', 'resend', '--url', 'http://127.0.0.1:9'], {
      encoding: 'utf8',
    });
    expect(noId.status).toBe(1);
    expect(noId.stderr).toBe('paycode: texts resend needs --id ID (from texts dead)\n');
  });

  it('runs compiled (npm start): the build serves a payment with no TypeScript loader in any thread', async () => {
    const root = join(import.meta.dirname, '..');
    await promisify(execFile)(process.execPath, [join(root, 'scripts', 'build.mjs')]);
    const dist = join(root, 'dist');
    // No loader and no import of a TypeScript module (the web apps' sources are bundled at start-up by
    // esbuild, which reads them as files).
    for (const file of ['paycode.mjs', 'shard-worker-boot.mjs', 'worker-boot.mjs', 'audit-worker-boot.mjs'])
      expect(readFileSync(join(dist, file), 'utf8'), file).not.toMatch(
        /\btsx\b|(?:from |import\()["'][^"']+\.ts["']/,
      );
    const dataDir = mkdtempSync(join(tmpdir(), 'paycode-dist-'));
    onTestFinished(() => rmSync(dataDir, { recursive: true, force: true }));
    // The compiled server: its shards, its start-up audit and its demo data all run from dist/.
    const server = await serve(dataDir, join(dist, 'paycode.mjs'));
    const [, terminalId, terminalKey] = server.lines
      .map((line) => /terminal (tm_\S+), terminal key (\S+)$/.exec(line))
      .find(Boolean) as RegExpExecArray;
    await post(`${server.url}/v1/consumers`, { phone: '+15555550100' });
    const otpLine = await waitFor(() => server.lines.find((line) => line.includes('verification code is')));
    const otp = /is ([0-9]{6})/.exec(otpLine)?.[1];
    const { deviceToken } = await post(`${server.url}/v1/consumers/verify`, { phone: '+15555550100', otp });
    const wallet = await (
      await fetch(`${server.url}/v1/wallet`, { headers: { authorization: `Bearer ${deviceToken}` } })
    ).json();
    const { code } = await post(
      `${server.url}/v1/wallet/codes`,
      { merchantId: wallet.cards[0].merchantId },
      deviceToken,
    );
    const { stdout } = await promisify(execFile)(process.execPath, [
      join(dist, 'paycode.mjs'),
      'pos',
      '--url',
      server.url,
      '--terminal',
      terminalId as string,
      `--key=${terminalKey}`,
      'redeem',
      code,
      '700',
    ]);
    expect(JSON.parse(stdout)).toMatchObject({ status: 'approved', approvedCents: 700, balanceCents: 4_300 });
    server.child.kill('SIGTERM');
    expect(await new Promise((resolve) => server.child.once('exit', resolve))).toBe(0);
  });

  it('starts with demo data a newcomer can pay with, and stops cleanly on SIGTERM', async () => {
    const dataDir = mkdtempSync(join(tmpdir(), 'paycode-cli-'));
    onTestFinished(() => rmSync(dataDir, { recursive: true, force: true }));
    const first = await serve(dataDir);
    const find = (pattern: RegExp) =>
      first.lines.map((line) => pattern.exec(line)).find(Boolean) as RegExpExecArray;
    expect(first.url).toMatch(/^http:\/\/127\.0\.0\.1:[0-9]+$/);
    const operatorToken = find(/operator token .*: (op_\S+)$/)[1] as string;
    const [, terminalId, terminalKey] = find(/terminal (tm_\S+), terminal key (\S+)$/);
    expect(find(/consumer (\+1555\d+) holds a \$50\.00/)).toBeTruthy();

    await post(`${first.url}/v1/consumers`, { phone: '+15555550100' });
    const otpLine = await waitFor(() => first.lines.find((line) => line.includes('verification code is')));
    const otp = /is ([0-9]{6})/.exec(otpLine)?.[1];
    const { deviceToken } = await post(`${first.url}/v1/consumers/verify`, { phone: '+15555550100', otp });
    const wallet = await (
      await fetch(`${first.url}/v1/wallet`, { headers: { authorization: `Bearer ${deviceToken}` } })
    ).json();
    expect(wallet.cards).toEqual([
      expect.objectContaining({ merchantName: 'Demo Coffee', balanceCents: 5_000 }),
    ]);
    const { code } = await post(
      `${first.url}/v1/wallet/codes`,
      { merchantId: wallet.cards[0].merchantId },
      deviceToken,
    );

    /** `paycode pos redeem` with the printed terminal key. */
    const charge = (digits: string, cents: string) =>
      run([
        'pos',
        '--url',
        first.url,
        '--terminal',
        terminalId as string,
        // As the demo prints it: a key may begin with '-', which only the `=` form passes.
        `--key=${terminalKey}`,
        'redeem',
        digits,
        cents,
      ]);
    const sale = await charge(code, '1250');
    expect(sale).toMatchObject({
      type: 'redeemResult',
      status: 'approved',
      approvedCents: 1_250,
      balanceCents: 3_750,
    });
    await waitFor(() => first.lines.find((line) => line.includes('$12.50 paid at Demo Coffee')));

    const merchant = await run(
      [
        'merchants',
        'add',
        '--url',
        first.url,
        '--name',
        'Tea Stall',
        '--routing',
        '021000021',
        '--account',
        '55512345',
      ],
      { PAYCODE_ADMIN_TOKEN: operatorToken },
    );
    expect(merchant.merchantId).toMatch(/^mc_/);
    const terminal = await run([
      'terminals',
      'add',
      '--url',
      first.url,
      '--merchant',
      merchant.merchantId,
      '--label',
      'front',
      '--token',
      merchant.apiKey,
    ]);
    expect(terminal).toEqual({
      terminalId: expect.stringMatching(/^tm_/),
      activationCode: expect.any(String),
    });

    // The operator gives the demo store longer codes; `paycode pos` charges one of 9 digits.
    const merchantId = wallet.cards[0].merchantId;
    const setting = await run(
      ['merchants', 'code-digits', '--url', first.url, '--merchant', merchantId, '--code-digits-min', '9'],
      { PAYCODE_ADMIN_TOKEN: operatorToken },
    );
    expect(setting).toEqual({ merchantId, codeDigitsMin: 9 });
    await expect(
      run(
        ['merchants', 'code-digits', '--url', first.url, '--merchant', merchantId, '--code-digits-min', '11'],
        {
          PAYCODE_ADMIN_TOKEN: operatorToken,
        },
      ),
    ).rejects.toThrow(/codeDigitsMin must be an integer from 6 to 10/);
    const long = await post(`${first.url}/v1/wallet/codes`, { merchantId }, deviceToken);
    expect(long.code).toMatch(/^[0-9]{9}$/);
    const longSale = await charge(long.code, '250');
    expect(longSale).toMatchObject({ status: 'approved', approvedCents: 250, balanceCents: 3_500 });

    first.child.kill('SIGTERM');
    expect(await new Promise((resolve) => first.child.once('exit', resolve))).toBe(0);

    const second = await serve(dataDir);
    expect(second.lines.some((line) => line.startsWith('demo:') || line.includes('operator token'))).toBe(
      false,
    );
    const after = await (
      await fetch(`${second.url}/v1/wallet`, { headers: { authorization: `Bearer ${deviceToken}` } })
    ).json();
    expect(after.cards[0].balanceCents).toBe(3_500);
  });
});
