import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { type ParseArgsConfig, parseArgs } from 'node:util';
import {
  GUESSING_TARGET_PER_TERMINAL_DAY,
  guessingBound,
  hitPerGuessMax,
  merchantGuessingBound,
  platformGuessingBound,
} from '../core/guessing.ts';
import { LIMITS, type Limits } from '../core/limits.ts';
import { dropRetiredMasterKeys, masterKeyStatus, rotateMasterKey } from '../persistence/key-rotation.ts';
import { createSecretsFile, secretsPath } from '../persistence/secrets.ts';
import { absorbLmdbCommitRejections } from '../persistence/store.ts';
import { PosClient } from '../sdk/pos-client.ts';
import { readConfig } from '../server/config.ts';
import { startServer } from '../server/server.ts';

/** The operator's command line: `paycode --help` prints what each command does. */
const HELP = `  paycode serve                                   run the server (configuration from PAYCODE_* variables)
  paycode merchants add --name N --routing R --account A [--type checking|savings] [--keyword K]
                        [--fee-bps B] [--fee-fixed-cents C] [--code-digits-min D]
  paycode merchants code-digits --merchant M --code-digits-min D
                                                  the shortest code the merchant's consumers get (6-10)
  paycode terminals add --merchant M --label L    prints the terminal id and its activation code
  paycode terminals lock|unlock|revoke|rekey --merchant M --terminal T
  paycode pos --terminal T --key K redeem CODE CENTS [--partial] | inquire CODE | void AUTH_ID
              | refund AUTH_ID CENTS | reverse KEY | ping
  paycode settle --date YYYY-MM-DD --out DIR      settles the day; writes the ACH file, the summary and
                                                  every merchant's statement (CSV and JSON) into DIR
  paycode texts dead                              lists the texts the SMS provider refused for good
  paycode texts resend --id ID                    puts one back in the outbox, once its cause is fixed
  paycode secrets --out FILE                      writes a new file of keys (mode 0600) for production;
                                                  never replaces an existing one
  paycode master-key rotate|status|drop [--force] rotates the master key, says what still depends on the
                                                  retired keys, drops those nothing depends on; offline,
                                                  on PAYCODE_DATA_DIR and its secrets file
                                                  (docs/key-rotation.md)
  paycode guessing [--terminals 1,10,100]         what the code-guessing limits allow an attacker with
                                                  that many terminals of one merchant in a day, with
                                                  all of a merchant's, and on the whole platform

Commands other than \`serve\`, \`secrets\`, \`master-key\` and \`guessing\` talk to a running server (\`--url\`,
default http://127.0.0.1:8080) with the bearer token in \`--token\` or PAYCODE_ADMIN_TOKEN (a merchant API
key works for its terminals).`;

const USAGE =
  'usage: paycode serve | merchants add|code-digits | terminals add|lock|unlock|revoke|rekey | pos <request> | settle | texts dead|resend | secrets | master-key rotate|status|drop | guessing (see docs/cli.md)';

const { values, positionals } = parsed({
  allowPositionals: true,
  options: {
    help: { type: 'boolean', short: 'h', default: false },
    url: { type: 'string', default: 'http://127.0.0.1:8080' },
    token: { type: 'string' },
    name: { type: 'string' },
    routing: { type: 'string' },
    account: { type: 'string' },
    type: { type: 'string', default: 'checking' },
    keyword: { type: 'string' },
    'fee-bps': { type: 'string' },
    'fee-fixed-cents': { type: 'string' },
    'code-digits-min': { type: 'string' },
    merchant: { type: 'string' },
    label: { type: 'string' },
    terminal: { type: 'string' },
    id: { type: 'string' },
    key: { type: 'string' },
    partial: { type: 'boolean', default: false },
    msgpack: { type: 'boolean', default: false },
    date: { type: 'string' },
    out: { type: 'string' },
    force: { type: 'boolean', default: false },
    terminals: { type: 'string', default: '1,10,100,1000' },
  },
});

/** The arguments, or the usage and exit status 2 for an unknown option or a missing value. */
function parsed<T extends ParseArgsConfig>(config: T): ReturnType<typeof parseArgs<T>> {
  try {
    return parseArgs(config);
  } catch (error) {
    console.error(`paycode: ${(error as Error).message.split('. ')[0]}\n${USAGE}`);
    process.exit(2);
  }
}

if (values.help || positionals[0] === 'help') {
  console.log(`usage: paycode <command> [options]\n\n${HELP}`);
  process.exit(0);
}

async function request(method: string, path: string, body?: unknown): Promise<string> {
  const token = values.token ?? process.env.PAYCODE_ADMIN_TOKEN;
  const response = await fetch(new URL(path, values.url), {
    method,
    headers: { 'content-type': 'application/json', ...(token ? { authorization: `Bearer ${token}` } : {}) },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  const text = await response.text();
  if (!response.ok) throw new Error(`${response.status} ${text}`);
  return text;
}

const call = async (method: string, path: string, body?: unknown): Promise<unknown> =>
  JSON.parse(await request(method, path, body));

/** Settles a day through the server and writes its file and reports into a directory. */
async function settle(): Promise<unknown> {
  const { date, out } = values;
  if (!date || !out) throw new Error('settle needs --date YYYY-MM-DD and --out DIR');
  console.error(`paycode: settling ${date} ...`);
  const result = (await call('POST', '/v1/settlements', { businessDate: date })) as {
    merchants: { merchantId: string }[];
    achFileId: string;
  };
  // The file and statements hold bank accounts and amounts: readable by this user only.
  mkdirSync(out, { recursive: true, mode: 0o700 });
  const written = [join(out, `${result.achFileId}.ach`), join(out, `settlement-${date}.json`)];
  writeFileSync(written[0] as string, await request('GET', `/v1/settlements/${date}/ach`), { mode: 0o600 });
  writeFileSync(written[1] as string, await request('GET', `/v1/settlements/${date}`), { mode: 0o600 });
  for (const [index, { merchantId }] of result.merchants.entries()) {
    const statement = `/v1/merchants/${merchantId}/statements/${date}`;
    for (const format of ['json', 'csv']) {
      const path = join(out, `statement-${date}-${merchantId}.${format}`);
      writeFileSync(path, await request('GET', `${statement}?format=${format}`), { mode: 0o600 });
      written.push(path);
    }
    console.error(`paycode: statements ${index + 1}/${result.merchants.length}`);
  }
  return { ...result, files: written };
}

/** `--code-digits-min` as sent: a number when it reads as one (the server checks the range), else as typed. */
const codeDigitsMin = (): unknown => {
  const text = values['code-digits-min'];
  return text !== undefined && /^[0-9]+$/.test(text) ? Number(text) : text;
};

const cents = (text: string | undefined): number => {
  if (!text || !/^[0-9]+$/.test(text)) throw new Error(`not an amount in cents: ${text}`);
  return Number(text);
};

async function serve(): Promise<void> {
  const { config, problems } = readConfig();
  if (problems.length > 0) {
    console.error(`paycode: bad configuration:\n  ${problems.join('\n  ')}`);
    process.exit(2);
  }
  // A full disk fails commits; the server refuses writes and reports it instead of ending the process.
  absorbLmdbCommitRejections();
  // A shard whose thread dies is restarted from disk; one that keeps dying is given up and `/healthz`
  // says failing, so the process stays up to say it (docs/engine.md).
  const server = await startServer({ config });
  let stopping = false;
  for (const signal of ['SIGINT', 'SIGTERM'] as const) {
    process.on(signal, () => {
      // A second signal does not wait for a shutdown that hangs (a refused write LMDB never settles):
      // what was answered is durable, and the next start recovers the rest.
      if (stopping) process.exit(1);
      stopping = true;
      void server.close().then(() => process.exit(0));
    });
  }
}

/** The code-guessing bound for the limits this configuration runs with (core/guessing.ts). */
function guessing(): unknown {
  const { config, problems } = readConfig();
  if (problems.length > 0) throw new Error(`bad configuration: ${problems.join('; ')}`);
  const limits: Limits = { ...LIMITS, merchantLiveCodesMax: config.merchantLiveCodesMax };
  const terminals = (values.terminals ?? '').split(',').map(Number);
  if (!terminals.every((count) => Number.isSafeInteger(count) && count > 0))
    throw new Error('--terminals takes positive integers separated by commas');
  return {
    targetPerTerminalDay: GUESSING_TARGET_PER_TERMINAL_DAY,
    hitPerGuessMax: hitPerGuessMax(limits),
    bounds: terminals.map((count) => guessingBound(limits, count)),
    merchantDay: merchantGuessingBound(limits),
    merchantDayWithTypos: merchantGuessingBound(limits, true),
    platformDay: platformGuessingBound(limits),
  };
}

/**
 * Master key rotation on the server's data directory and secrets file, while the server is stopped
 * (docs/key-rotation.md). A drop that keeps a retired key because something depends on it exits with 1.
 */
async function masterKey(action: string | undefined): Promise<unknown> {
  const { dataDir } = readConfig().config;
  const options = {
    dataDir,
    secretsFile: secretsPath(dataDir),
    env: process.env,
    force: values.force,
    onProgress: ({ database, resealed }: { database: string; resealed: number }) =>
      console.error(`paycode: ${resealed} values re-sealed in ${database}`),
  };
  if (action === 'rotate') return rotateMasterKey(options);
  if (action === 'status') return masterKeyStatus(options);
  if (action === 'drop') {
    const report = await dropRetiredMasterKeys(options);
    if (report.retired.length > 0) {
      console.error(
        'paycode: retired keys kept: credentials still depend on them (see "retired"; --force drops them)',
      );
      process.exitCode = 1;
    }
    return report;
  }
  throw new Error(USAGE);
}

async function pos(args: string[]): Promise<unknown> {
  if (!values.terminal || !values.key) throw new Error('pos needs --terminal and --key');
  const client = await PosClient.connect({
    // Several nodes of a cluster, separated by commas: the client moves on when one is lost.
    url: values.url.split(',').map((url) => url.trim()),
    terminalId: values.terminal,
    terminalKey: values.key,
    encoding: values.msgpack ? 'msgpack' : 'json',
  });
  try {
    const [request, first, second] = args;
    switch (request) {
      case 'redeem':
        return await client.redeem({
          code: first ?? '',
          amountCents: cents(second),
          partial: values.partial,
        });
      case 'inquire':
        return await client.inquire(first ?? '');
      case 'void':
        return await client.void(first ?? '');
      case 'refund':
        return await client.refund(first ?? '', cents(second));
      case 'reverse':
        return await client.reverse(first ?? '');
      case 'ping':
        return await client.ping();
      default:
        throw new Error(USAGE);
    }
  } finally {
    client.close();
  }
}

async function main(): Promise<unknown> {
  const [command, sub, ...rest] = positionals;
  if (command === 'serve') return serve();
  if (command === 'merchants' && sub === 'add') {
    return call('POST', '/v1/merchants', {
      name: values.name,
      routingNumber: values.routing,
      accountNumber: values.account,
      accountType: values.type,
      keyword: values.keyword,
      feeBps: values['fee-bps'] === undefined ? undefined : Number(values['fee-bps']),
      feeFixedCents: values['fee-fixed-cents'] === undefined ? undefined : Number(values['fee-fixed-cents']),
      codeDigitsMin: codeDigitsMin(),
    });
  }
  if (command === 'merchants' && sub === 'code-digits') {
    if (!values.merchant || values['code-digits-min'] === undefined)
      throw new Error('merchants code-digits needs --merchant M and --code-digits-min D');
    return call('POST', `/v1/merchants/${values.merchant}/code-digits`, { codeDigitsMin: codeDigitsMin() });
  }
  if (command === 'terminals' && sub === 'add') {
    return call('POST', `/v1/merchants/${values.merchant}/terminals`, { label: values.label });
  }
  if (command === 'terminals' && ['lock', 'unlock', 'revoke', 'rekey'].includes(sub ?? '')) {
    return call('POST', `/v1/merchants/${values.merchant}/terminals/${values.terminal}/${sub}`, {});
  }
  if (command === 'pos') return pos([sub ?? '', ...rest]);
  if (command === 'settle') return settle();
  if (command === 'texts' && sub === 'dead') return call('GET', '/v1/texts/dead');
  if (command === 'texts' && sub === 'resend') {
    if (!values.id) throw new Error('texts resend needs --id ID (from texts dead)');
    return call('POST', `/v1/texts/dead/${encodeURIComponent(values.id)}/resend`, {});
  }
  if (command === 'master-key') return masterKey(sub);
  if (command === 'guessing') return guessing();
  if (command === 'secrets') {
    if (!values.out) throw new Error('secrets needs --out FILE');
    createSecretsFile(values.out);
    return { written: values.out };
  }
  throw new Error(USAGE);
}

main().then(
  (result) => {
    if (result !== undefined) console.log(JSON.stringify(result, null, 2));
  },
  (error: unknown) => {
    console.error(`paycode: ${(error as Error).message}`);
    process.exit(1);
  },
);
