// Production mode (PAYCODE_ENV=production): keys come from the operator and are never made up or
// silently fixed; nothing that prints secrets or sends them in clear is allowed to start.
import { execFile } from 'node:child_process';
import { chmodSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { describe, expect, it } from 'vitest';
import { uwsRuntimeProblem } from '../gateway/uws.ts';
import { createSecretsFile, loadSecrets } from '../persistence/secrets.ts';
import { readConfig } from '../server/config.ts';
import { startServer } from '../server/server.ts';
import { selfSignedCertificate, tempDir } from './helpers.ts';

const CLI = new URL('../cli/paycode.mjs', import.meta.url).pathname;
const production = { production: true };
const noEnv = {};

describe('production mode', () => {
  it('refuses demo data, console SMS and plain HTTP off loopback, and turns the demo off by default', () => {
    const read = (env: Record<string, string>) => readConfig({ PAYCODE_ENV: 'production', ...env });
    expect(read({}).problems).toEqual(['PAYCODE_SMS=console prints codes: production needs ssmpp://…']);
    expect(read({}).config.demo).toBe(false);
    const smpp = { PAYCODE_SMS: 'smpp://paycode:secret@127.0.0.1:2775' };
    expect(read(smpp).problems).toEqual([]);
    // SMPP in clear only to this machine (a TLS tunnel); to an SMSC elsewhere, over TLS.
    expect(read({ PAYCODE_SMS: 'smpp://paycode:secret@smsc.example:2775' }).problems).toEqual([
      'PAYCODE_SMS=smpp:// sends the SMSC password and every code in clear: production needs ssmpp://… (or a TLS tunnel on loopback)',
    ]);
    expect(read({ PAYCODE_SMS: 'ssmpp://paycode:secret@smsc.example' }).problems).toEqual([]);
    expect(read({ PAYCODE_SMS: 'ssmpp://paycode:secret@smsc.example' }).config.sms).toEqual({
      smppUrl: 'ssmpp://paycode:secret@smsc.example',
    });
    expect(read({ ...smpp, PAYCODE_SMS_CA_FILE: '/nonexistent/ca.pem' }).problems).toEqual([
      'PAYCODE_SMS_CA_FILE is only for PAYCODE_SMS=ssmpp://…',
      'PAYCODE_SMS_CA_FILE /nonexistent/ca.pem does not exist',
    ]);
    // The sandbox's test tokens are no money: production runs without purchases unless a real processor
    // is named, and refuses the sandbox by name.
    expect(read(smpp).config.funding).toBe('none');
    expect(read({ ...smpp, PAYCODE_FUNDING: 'sandbox' }).problems).toEqual([
      'PAYCODE_FUNDING=sandbox approves test tokens: production needs a real card processor, or none (no purchases)',
    ]);
    expect(readConfig({}).config.funding).toBe('sandbox');
    expect(read({ ...smpp, PAYCODE_DEMO: '1' }).problems).toEqual([
      'PAYCODE_DEMO=1 prints keys: not in production',
    ]);
    expect(read({ ...smpp, PAYCODE_HOST: '0.0.0.0' }).problems).toEqual([
      'production off loopback needs TLS: set PAYCODE_TLS_CERT and PAYCODE_TLS_KEY, or PAYCODE_TRUSTED_PROXIES for the TLS proxy in front',
    ]);
    // A TLS key others can read is refused too.
    const { certFile, keyFile } = selfSignedCertificate();
    const tls = { ...smpp, PAYCODE_HOST: '0.0.0.0', PAYCODE_TLS_CERT: certFile, PAYCODE_TLS_KEY: keyFile };
    chmodSync(keyFile, 0o644);
    expect(read(tls).problems).toEqual([`PAYCODE_TLS_KEY ${keyFile} is readable by others: chmod 600 it`]);
    chmodSync(keyFile, 0o600);
    expect(read(tls).problems).toEqual([]);
    expect(readConfig({ PAYCODE_ENV: 'staging' }).problems).toEqual([
      'PAYCODE_ENV must be development or production, not "staging"',
    ]);
    expect(readConfig({}).config).toMatchObject({ production: false, demo: true });
  });

  it('takes keys only from a private, complete file the operator made', async () => {
    const dir = tempDir();
    const path = join(dir, 'secrets.json');
    expect(() => loadSecrets(path, noEnv, production)).toThrow(
      /does not exist: create it with `paycode secrets/,
    );

    // The CLI writes a new private file and never replaces it.
    const run = (args: string[]) => promisify(execFile)(process.execPath, [CLI, ...args]);
    await run(['secrets', '--out', path]);
    expect(statSync(path).mode & 0o777).toBe(0o600);
    const written = readFileSync(path, 'utf8');
    await expect(run(['secrets', '--out', path])).rejects.toThrow(/exists: keys are never replaced/);
    expect(readFileSync(path, 'utf8')).toBe(written);

    const secrets = loadSecrets(path, noEnv, production);
    expect(secrets.masterKey).toHaveLength(32);
    // Readable by others: refused, and left as it is for the operator to look at.
    chmodSync(path, 0o644);
    expect(() => loadSecrets(path, noEnv, production)).toThrow(/readable by others/);
    expect(statSync(path).mode & 0o777).toBe(0o644);
    chmodSync(path, 0o600);

    // A key missing from the file is refused, unless it is the master key given in the environment.
    const keys = JSON.parse(written) as Record<string, string>;
    const { masterKey, ...rest } = keys;
    writeFileSync(path, JSON.stringify(rest), { mode: 0o600 });
    expect(() => loadSecrets(path, noEnv, production)).toThrow(/lacks masterKey/);
    const fromEnv = loadSecrets(path, { PAYCODE_MASTER_KEY: masterKey as string }, production);
    expect(fromEnv.masterKey.equals(secrets.masterKey)).toBe(true);
    expect(fromEnv.codeHashKey.equals(secrets.codeHashKey)).toBe(true);
    expect(readFileSync(path, 'utf8')).toBe(JSON.stringify(rest)); // nothing generated into it

    // Development still makes what is missing, privately.
    const devPath = join(dir, 'dev.json');
    loadSecrets(devPath, noEnv);
    expect(statSync(devPath).mode & 0o777).toBe(0o600);
    expect(() => createSecretsFile(devPath)).toThrow(/exists/);
  });

  it('will not start without the keys file or, at first start, without an operator token', async () => {
    const dir = tempDir();
    const env = {
      PAYCODE_ENV: 'production',
      PAYCODE_PORT: '0',
      PAYCODE_SHARDS: '1',
      PAYCODE_DATA_DIR: join(dir, 'data'),
      PAYCODE_SMS: 'smpp://paycode:secret@127.0.0.1:2775',
    };
    const { config, problems } = readConfig(env);
    expect(problems).toEqual([]);
    const secretsFile = join(dir, 'secrets.json');
    process.env.PAYCODE_SECRETS_FILE = secretsFile;
    try {
      await expect(startServer({ config, print: () => {} })).rejects.toThrow(/secrets\.json does not exist/);
      createSecretsFile(secretsFile);
      await expect(startServer({ config, print: () => {} })).rejects.toThrow(
        /production needs PAYCODE_ADMIN_TOKEN at first start/,
      );
    } finally {
      delete process.env.PAYCODE_SECRETS_FILE;
    }
  });
});

describe('the cluster variables', () => {
  it('reads PAYCODE_NATS, PAYCODE_NODE_ID and PAYCODE_NATS_REPLICAS, and says what is wrong with them', () => {
    const token = { PAYCODE_ADMIN_TOKEN: 'x'.repeat(32) };
    const two = {
      ...token,
      PAYCODE_NATS: 'nats://10.0.0.1:4222, nats://10.0.0.2:4222',
      PAYCODE_NODE_ID: 'node-1',
    };
    const { config, problems } = readConfig(two);
    expect(problems).toEqual([]);
    expect(config.cluster).toEqual({
      link: { servers: ['nats://10.0.0.1:4222', 'nats://10.0.0.2:4222'], nodeId: 'node-1' },
      replicas: null,
    });
    expect(readConfig({ ...two, PAYCODE_NATS_REPLICAS: '2' }).config.cluster?.replicas).toBe(2);
    expect(config.shards).toBe(6);
    expect(config.demo).toBe(false);
    expect(readConfig({}).config.cluster).toBeNull();
    expect(readConfig({ PAYCODE_NATS: 'nats://10.0.0.1:4222', PAYCODE_NODE_ID: 'Node_1' }).problems).toEqual([
      'PAYCODE_NODE_ID must be set with PAYCODE_NATS: 1-32 of a-z, 0-9 and -, unique in the cluster',
      'PAYCODE_ADMIN_TOKEN must be set in a cluster: every node checks the same operator token',
    ]);
    expect(
      readConfig({ ...two, PAYCODE_NATS: 'http://10.0.0.1', PAYCODE_NATS_REPLICAS: '9' }).problems,
    ).toEqual([
      'PAYCODE_NATS must list nats://host:port URLs separated by commas, not "http://10.0.0.1"',
      'PAYCODE_NATS_REPLICAS must be an integer from 1 to 5, not "9"',
    ]);
  });
});

describe('the runtime', () => {
  const builds = [
    'uws_linux_x64_93.node',
    'uws_linux_x64_108.node',
    'uws_linux_x64_115.node',
    'uws_darwin_arm64_115.node',
  ];
  const node20 = { platform: 'linux', arch: 'x64', abi: '115', node: '20.19.0', fallbackAsked: false };

  it('serves on a runtime the native uWebSockets.js build has, and says which ones have one otherwise', () => {
    expect(uwsRuntimeProblem(node20, builds)).toBeNull();
    expect(uwsRuntimeProblem({ ...node20, abi: '127', node: '22.12.0' }, builds)).toBe(
      'uWebSockets.js has no native build for Node.js 22.12.0 on linux-x64: it has native builds for ' +
        'Node.js 16, Node.js 18, Node.js 20 on linux-x64. Run paycode on one of those (README.md, "Runtime")',
    );
    expect(uwsRuntimeProblem({ ...node20, arch: 'riscv64' }, builds)).toMatch(
      /no native build for Node.js 20.19.0 on linux-riscv64: it has no native build for linux-riscv64/,
    );
    expect(uwsRuntimeProblem({ ...node20, fallbackAsked: true }, builds)).toMatch(/^UWS_USE_FALLBACK asks/);
  });

  it('refuses to start on the JavaScript emulation, saying why, instead of dying on the first request', async () => {
    const serve = promisify(execFile)(process.execPath, [CLI, 'serve'], {
      env: { ...process.env, UWS_USE_FALLBACK: '1', PAYCODE_DATA_DIR: tempDir(), PAYCODE_PORT: '0' },
    });
    await expect(serve).rejects.toMatchObject({
      code: 1,
      stderr: expect.stringContaining(
        'paycode: UWS_USE_FALLBACK asks uWebSockets.js for its JavaScript emulation',
      ),
    });
  });
});
