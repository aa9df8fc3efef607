import { availableParallelism } from 'node:os';
import { resolve } from 'node:path';
import { SLOT_COUNT } from '../engine/ids.ts';
import { LIMITS } from '../engine/limits.ts';
import { parseSmppUrl } from '../notify/smpp.ts';
import { FUNDING_PROVIDERS } from './funding/provider.ts';

/**
 * The configuration of PROTOCOL.md ("Configuration"), read from the environment once at start-up and
 * validated with the limits; a bad value stops the start with a message naming the variable.
 */
export interface Config {
  host: string;
  port: number;
  dataDir: string;
  /** The operator token when set in the environment; else one is generated at first start. */
  adminToken: string | undefined;
  sms: 'console' | { smppUrl: string };
  funding: string;
  shards: number;
  codeTtlMs: number;
  settlementTimeZone: string;
  settlementCutoff: string;
  demo: boolean;
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
  const demo = env.PAYCODE_DEMO ?? '1';
  if (demo !== '0' && demo !== '1') problems.push(`PAYCODE_DEMO must be 0 or 1, not "${demo}"`);
  const sms = env.PAYCODE_SMS || 'console';
  if (sms !== 'console' && !parseSmppUrl(sms))
    problems.push('PAYCODE_SMS must be "console" or smpp://system_id:password@host:port');
  const funding = env.PAYCODE_FUNDING || 'sandbox';
  if (!FUNDING_PROVIDERS.includes(funding))
    problems.push(`PAYCODE_FUNDING must be one of ${FUNDING_PROVIDERS.join(', ')}, not "${funding}"`);
  const adminToken = env.PAYCODE_ADMIN_TOKEN || undefined;
  if (adminToken !== undefined && !/^[\x21-\x7e]{16,128}$/.test(adminToken))
    problems.push('PAYCODE_ADMIN_TOKEN must be 16-128 printable characters');
  const settlementTimeZone = env.PAYCODE_SETTLEMENT_TZ || 'UTC';
  try {
    new Intl.DateTimeFormat('en-US', { timeZone: settlementTimeZone });
  } catch {
    problems.push(`PAYCODE_SETTLEMENT_TZ must be an IANA time zone, not "${settlementTimeZone}"`);
  }
  const settlementCutoff = env.PAYCODE_SETTLEMENT_CUTOFF || '00:00';
  if (!/^([01][0-9]|2[0-3]):[0-5][0-9]$/.test(settlementCutoff))
    problems.push(`PAYCODE_SETTLEMENT_CUTOFF must be HH:MM, not "${settlementCutoff}"`);
  const config: Config = {
    host: env.PAYCODE_HOST || '127.0.0.1',
    port: integer('PAYCODE_PORT', 8080, 0, 65_535),
    dataDir: resolve(env.PAYCODE_DATA_DIR || './data'),
    adminToken,
    sms: sms === 'console' ? 'console' : { smppUrl: sms },
    funding,
    shards: integer('PAYCODE_SHARDS', Math.min(availableParallelism(), SLOT_COUNT), 1, SLOT_COUNT),
    codeTtlMs: integer('PAYCODE_CODE_TTL_MS', LIMITS.codeTtlMs, 1_000, 24 * 60 * 60_000),
    settlementTimeZone,
    settlementCutoff,
    demo: demo === '1',
  };
  return { config, problems };
}
