import { existsSync, readFileSync, statSync } from 'node:fs';
import { availableParallelism } from 'node:os';
import { resolve } from 'node:path';
import { createSecureContext } from 'node:tls';
import { MERCHANT_LIVE_CODES_MAX, SHARDS_MAX_FOR_CODES } from '../core/codes.ts';
import { LIMITS } from '../core/limits.ts';
import { FUNDING_PROVIDERS, NO_FUNDING, SANDBOX_FUNDING } from '../gateway/funding/provider.ts';
import { isLoopbackName } from '../gateway/loopback.ts';
import { parseTrustedProxies } from '../gateway/proxies.ts';
import { parseSmppUrl } from '../notify/smpp.ts';
import { type AccountType, isAccountNumber, isAccountType, isRoutingNumber } from '../settlement/bank.ts';
import type { Originator } from '../settlement/nacha.ts';

/**
 * The configuration of the README's table ("Configuration"), read from the environment once at start-up and
 * validated with the limits; a bad value stops the start with a message naming the variable.
 *
 * @module
 */

export interface Config {
  host: string;
  port: number;
  dataDir: string;
  /** The operator token when set in the environment; else one is generated at first start. */
  adminToken: string | undefined;
  /** `caFile`: PEM certificates trusted for an `ssmpp://` SMSC besides the system's. */
  sms: 'console' | { smppUrl: string; caFile?: string };
  funding: string;
  shards: number;
  codeTtlMs: number;
  /** Live payment codes per merchant (limits.ts `merchantLiveCodesMax`; docs/security.md). */
  merchantLiveCodesMax: number;
  settlementTimeZone: string;
  settlementCutoff: string;
  /** Who originates the ACH files, and whether they are balanced with offset entries. */
  ach: Originator;
  achBalanced: boolean;
  demo: boolean;
  /**
   * `PAYCODE_ENV=production`: keys must come from the operator (never generated), and what prints
   * secrets (demo data, console SMS) or sends them in clear (plain HTTP off loopback) is refused.
   */
  production: boolean;
  /** PEM files of the certificate and its key: the server speaks TLS (https, wss) when set. */
  tls: { certFile: string; keyFile: string } | null;
  /**
   * Origins (`https://host[:port]`) whose browser pages may open the WebSockets besides the server's
   * own (null: none). Clients that send no Origin header (terminals) are not browser pages.
   */
  allowedOrigins: string[] | null;
  /** Reverse proxies whose forwarding headers are believed (addresses and CIDR ranges; gateway/proxies.ts). */
  trustedProxies: string[];
  /** The bearer token `/metrics` asks for; without one, it is served to this machine only. */
  metricsToken: string | null;
  /** A node of a cluster on NATS JetStream (`PAYCODE_NATS`; docs/cluster.md); null: a single node. */
  /** `replicas` null: 3, or the NATS cluster's servers if fewer (counted once connected). */
  cluster: { link: { servers: string[]; nodeId: string }; replicas: number | null } | null;
}

/** Whether the server speaks plain HTTP on an address other machines reach (then only a TLS proxy may). */
export function plainOffLoopback(config: Pick<Config, 'tls' | 'host'>): boolean {
  return !config.tls && !isLoopbackName(config.host);
}

/** The shard count of a cluster unless `PAYCODE_SHARDS` says otherwise: two each on three nodes. */
const CLUSTER_SHARDS = 6;

/** `PAYCODE_NATS`, `PAYCODE_NODE_ID` and `PAYCODE_NATS_REPLICAS` (docs/cluster.md); null without the first. */
function readCluster(env: NodeJS.ProcessEnv, problems: string[]): Config['cluster'] {
  if (!env.PAYCODE_NATS) return null;
  const servers = env.PAYCODE_NATS.split(',').map((url) => url.trim());
  for (const url of servers)
    if (!/^(nats|tls):\/\/[^\s/]+:[0-9]{1,5}$/.test(url))
      problems.push(`PAYCODE_NATS must list nats://host:port URLs separated by commas, not "${url}"`);
  const nodeId = env.PAYCODE_NODE_ID ?? '';
  if (!/^[a-z0-9-]{1,32}$/.test(nodeId))
    problems.push(
      'PAYCODE_NODE_ID must be set with PAYCODE_NATS: 1-32 of a-z, 0-9 and -, unique in the cluster',
    );
  const replicasText = env.PAYCODE_NATS_REPLICAS;
  if (!replicasText) return { link: { servers, nodeId }, replicas: null };
  const replicas = Number(replicasText);
  if (!Number.isInteger(replicas) || replicas < 1 || replicas > 5)
    problems.push(`PAYCODE_NATS_REPLICAS must be an integer from 1 to 5, not "${replicasText}"`);
  return { link: { servers, nodeId }, replicas };
}

/** An account number is checked without echoing it: configuration errors end up in logs. */
function accountNumber(value: string, problems: string[]): string {
  if (!isAccountNumber(value)) problems.push('PAYCODE_ACH_OFFSET_ACCOUNT must be 4-17 digits');
  return value;
}

/**
 * ACH originator settings (`PAYCODE_ACH_*`). The defaults are a development originator with valid
 * routing numbers; a real ODFI gives the operator its own values.
 */
function readOriginator(
  env: NodeJS.ProcessEnv,
  problems: string[],
): { ach: Originator; achBalanced: boolean } {
  const text = (name: string, fallback: string, pattern: RegExp, rule: string) => {
    const value = env[name] || fallback;
    if (!pattern.test(value)) problems.push(`${name} must be ${rule}, not "${value}"`);
    return value;
  };
  const routing = (name: string, fallback: string) => {
    const value = env[name] || fallback;
    if (!isRoutingNumber(value))
      problems.push(`${name} must be a 9-digit routing number with a valid check digit`);
    return value;
  };
  const name = /^[\x20-\x7e]{1,23}$/;
  const odfi = routing('PAYCODE_ACH_ODFI_ROUTING', '121042882');
  const companyName = text(
    'PAYCODE_ACH_COMPANY_NAME',
    'PAYCODE',
    /^[\x20-\x7e]{1,16}$/,
    '1-16 printable characters',
  );
  const companyId = text(
    'PAYCODE_ACH_COMPANY_ID',
    '1000000000',
    /^[A-Za-z0-9 ]{10}$/,
    '10 letters or digits',
  );
  const balanced = env.PAYCODE_ACH_BALANCED ?? '0';
  if (balanced !== '0' && balanced !== '1')
    problems.push(`PAYCODE_ACH_BALANCED must be 0 or 1, not "${balanced}"`);
  const accountType = env.PAYCODE_ACH_OFFSET_ACCOUNT_TYPE || 'checking';
  if (!isAccountType(accountType))
    problems.push('PAYCODE_ACH_OFFSET_ACCOUNT_TYPE must be checking or savings');
  return {
    ach: {
      odfiRoutingNumber: odfi,
      immediateDestination: routing('PAYCODE_ACH_DESTINATION', odfi),
      immediateDestinationName: text(
        'PAYCODE_ACH_DESTINATION_NAME',
        'PAYCODE ODFI',
        name,
        '1-23 printable characters',
      ),
      // Banks that want a routing number here refuse a company id; the ODFI's is what most expect.
      immediateOrigin: text('PAYCODE_ACH_ORIGIN', odfi, /^[A-Za-z0-9 ]{9,10}$/, '9 or 10 letters or digits'),
      immediateOriginName: text('PAYCODE_ACH_ORIGIN_NAME', companyName, name, '1-23 printable characters'),
      companyName,
      companyId,
      offsetAccount: {
        routingNumber: routing('PAYCODE_ACH_OFFSET_ROUTING', odfi),
        accountNumber: accountNumber(env.PAYCODE_ACH_OFFSET_ACCOUNT || '1000000001', problems),
        accountType: accountType as AccountType,
        name: `${companyName} SETTLEMENT`.slice(0, 22),
      },
    },
    achBalanced: balanced === '1',
  };
}

function readTls(env: NodeJS.ProcessEnv, problems: string[]): Config['tls'] {
  const certFile = env.PAYCODE_TLS_CERT || '';
  const keyFile = env.PAYCODE_TLS_KEY || '';
  if (!certFile && !keyFile) return null;
  if (!certFile || !keyFile) {
    problems.push('PAYCODE_TLS_CERT and PAYCODE_TLS_KEY must be set together');
    return null;
  }
  let cert = '';
  let key = '';
  try {
    cert = readFileSync(certFile, 'utf8');
    key = readFileSync(keyFile, 'utf8');
    // The pair is checked here, so a wrong key is a configuration problem, not a failed start.
    createSecureContext({ cert, key });
  } catch (error) {
    const reason = cert
      ? key
        ? 'do not make a certificate and its key'
        : 'cannot be read'
      : 'cannot be read';
    const which = cert ? (key ? `${certFile} and ${keyFile}` : keyFile) : certFile;
    problems.push(`PAYCODE_TLS_CERT / PAYCODE_TLS_KEY: ${which} ${reason} (${(error as Error).message})`);
    return null;
  }
  return { certFile: resolve(certFile), keyFile: resolve(keyFile) };
}

function readOrigins(env: NodeJS.ProcessEnv, problems: string[]): string[] | null {
  const raw = env.PAYCODE_ALLOWED_ORIGINS;
  if (!raw) return null;
  const origins = raw.split(',').map((origin) => origin.trim());
  for (const origin of origins) {
    let parsed: URL | null = null;
    try {
      parsed = new URL(origin);
    } catch {
      // reported below
    }
    if (!parsed || parsed.origin !== origin || !/^https?:$/.test(parsed.protocol))
      problems.push(
        `PAYCODE_ALLOWED_ORIGINS must list origins like https://pay.example.com, not "${origin}"`,
      );
  }
  return origins;
}

export function readConfig(env: NodeJS.ProcessEnv = process.env): { config: Config; problems: string[] } {
  const problems: string[] = [];
  const integer = (name: string, fallback: number, min: number, max: number): number => {
    const raw = env[name];
    if (raw === undefined || raw === '') return fallback;
    const value = Number(raw);
    if (!/^[0-9]+$/.test(raw) || value < min || value > max) {
      problems.push(`${name} must be an integer from ${min} to ${max}, not "${raw}"`);
      return fallback;
    }
    return value;
  };
  const mode = env.PAYCODE_ENV || 'development';
  if (mode !== 'development' && mode !== 'production')
    problems.push(`PAYCODE_ENV must be development or production, not "${mode}"`);
  const production = mode === 'production';
  const cluster = readCluster(env, problems);
  // In a cluster every node would make its own demo data: none unless asked.
  const demo = env.PAYCODE_DEMO ?? (production || cluster ? '0' : '1');
  if (demo !== '0' && demo !== '1') problems.push(`PAYCODE_DEMO must be 0 or 1, not "${demo}"`);
  const sms = env.PAYCODE_SMS || 'console';
  const smpp = sms === 'console' ? null : parseSmppUrl(sms);
  if (sms !== 'console' && !smpp)
    problems.push(
      'PAYCODE_SMS must be "console", smpp://system_id:password@host:port or ssmpp://… (over TLS)',
    );
  const smsCaFile = env.PAYCODE_SMS_CA_FILE || undefined;
  if (smsCaFile && !smpp?.tls) problems.push('PAYCODE_SMS_CA_FILE is only for PAYCODE_SMS=ssmpp://…');
  if (smsCaFile && !existsSync(smsCaFile)) problems.push(`PAYCODE_SMS_CA_FILE ${smsCaFile} does not exist`);
  // Production never takes the sandbox's test tokens as money: without a real processor, no purchases.
  const funding = env.PAYCODE_FUNDING || (production ? NO_FUNDING : SANDBOX_FUNDING);
  if (!FUNDING_PROVIDERS.includes(funding))
    problems.push(`PAYCODE_FUNDING must be one of ${FUNDING_PROVIDERS.join(', ')}, not "${funding}"`);
  if (production && funding === SANDBOX_FUNDING)
    problems.push(
      `PAYCODE_FUNDING=sandbox approves test tokens: production needs a real card processor, or ${NO_FUNDING} (no purchases)`,
    );
  const adminToken = env.PAYCODE_ADMIN_TOKEN || undefined;
  if (adminToken !== undefined && !/^[\x21-\x7e]{16,128}$/.test(adminToken))
    problems.push('PAYCODE_ADMIN_TOKEN must be 16-128 printable characters');
  const trustedProxies = parseTrustedProxies(env.PAYCODE_TRUSTED_PROXIES ?? '');
  if (!trustedProxies)
    problems.push('PAYCODE_TRUSTED_PROXIES must list IP addresses or CIDR ranges, separated by commas');
  const metricsToken = env.PAYCODE_METRICS_TOKEN || null;
  if (metricsToken !== null && !/^[\x21-\x7e]{24,128}$/.test(metricsToken))
    problems.push('PAYCODE_METRICS_TOKEN must be 24-128 printable characters');
  const settlementTimeZone = env.PAYCODE_SETTLEMENT_TZ || 'UTC';
  try {
    new Intl.DateTimeFormat('en-US', { timeZone: settlementTimeZone });
  } catch {
    problems.push(`PAYCODE_SETTLEMENT_TZ must be an IANA time zone, not "${settlementTimeZone}"`);
  }
  const settlementCutoff = env.PAYCODE_SETTLEMENT_CUTOFF || '00:00';
  if (!/^([01][0-9]|2[0-3]):[0-5][0-9]$/.test(settlementCutoff))
    problems.push(`PAYCODE_SETTLEMENT_CUTOFF must be HH:MM, not "${settlementCutoff}"`);
  const liveCodesMax = integer(
    'PAYCODE_MERCHANT_LIVE_CODES_MAX',
    LIMITS.merchantLiveCodesMax,
    1,
    MERCHANT_LIVE_CODES_MAX,
  );
  const config: Config = {
    host: env.PAYCODE_HOST || '127.0.0.1',
    port: integer('PAYCODE_PORT', 8080, 0, 65_535),
    dataDir: resolve(env.PAYCODE_DATA_DIR || './data'),
    adminToken,
    sms: sms === 'console' ? 'console' : { smppUrl: sms, ...(smsCaFile ? { caFile: smsCaFile } : {}) },
    funding,
    // Each shard holds its share of a merchant's 12 six-digit codes (and of the operator's cap), so by
    // default there are no more shards than either (a machine with many cores runs fewer shards rather
    // than refuse to start).
    // In a cluster the count must be the same on every node (the cluster refuses a node that differs),
    // so it does not follow the machine.
    shards: integer(
      'PAYCODE_SHARDS',
      Math.min(cluster ? CLUSTER_SHARDS : availableParallelism(), SHARDS_MAX_FOR_CODES, liveCodesMax),
      1,
      SHARDS_MAX_FOR_CODES,
    ),
    codeTtlMs: integer('PAYCODE_CODE_TTL_MS', LIMITS.codeTtlMs, 1_000, 24 * 60 * 60_000),
    merchantLiveCodesMax: liveCodesMax,
    settlementTimeZone,
    settlementCutoff,
    ...readOriginator(env, problems),
    demo: demo === '1',
    production,
    tls: readTls(env, problems),
    allowedOrigins: readOrigins(env, problems),
    trustedProxies: trustedProxies ?? [],
    metricsToken,
    cluster,
  };
  if (cluster && !adminToken)
    problems.push('PAYCODE_ADMIN_TOKEN must be set in a cluster: every node checks the same operator token');
  if (config.merchantLiveCodesMax < config.shards)
    problems.push(
      `PAYCODE_MERCHANT_LIVE_CODES_MAX (${config.merchantLiveCodesMax}) must be at least PAYCODE_SHARDS (${config.shards}): each shard holds its share`,
    );
  if (production) {
    if (config.tls && (statSync(config.tls.keyFile).mode & 0o077) !== 0)
      problems.push(`PAYCODE_TLS_KEY ${config.tls.keyFile} is readable by others: chmod 600 it`);
    if (config.demo) problems.push('PAYCODE_DEMO=1 prints keys: not in production');
    if (config.sms === 'console')
      problems.push('PAYCODE_SMS=console prints codes: production needs ssmpp://…');
    else if (smpp && !smpp.tls && !isLoopbackName(smpp.host))
      problems.push(
        'PAYCODE_SMS=smpp:// sends the SMSC password and every code in clear: production needs ssmpp://… (or a TLS tunnel on loopback)',
      );
    if (plainOffLoopback(config) && config.trustedProxies.length === 0)
      problems.push(
        'production off loopback needs TLS: set PAYCODE_TLS_CERT and PAYCODE_TLS_KEY, or PAYCODE_TRUSTED_PROXIES for the TLS proxy in front',
      );
  }
  return { config, problems };
}
