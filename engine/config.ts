import { availableParallelism } from 'node:os';
import { resolve } from 'node:path';
import { SLOT_COUNT } from './ids.ts';
import { LIMITS } from './limits.ts';

/**
 * The configuration of PROTOCOL.md ("Configuration"), read from the environment once at start-up and
 * validated with the limits; a bad value stops the start with a message naming the variable.
 */
export interface Config {
  dataDir: string;
  shards: number;
  codeTtlMs: number;
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
  const config: Config = {
    dataDir: resolve(env.PAYCODE_DATA_DIR || './data'),
    shards: integer('PAYCODE_SHARDS', Math.min(availableParallelism(), SLOT_COUNT), 1, SLOT_COUNT),
    codeTtlMs: integer('PAYCODE_CODE_TTL_MS', LIMITS.codeTtlMs, 1_000, 24 * 60 * 60_000),
    demo: demo === '1',
  };
  return { config, problems };
}
