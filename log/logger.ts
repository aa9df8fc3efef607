import { redact, scrubText } from './redact.ts';

/**
 * Structured logs: one JSON object per line, `{"level","time","msg",...fields}`, with `time` in epoch
 * milliseconds. Every field goes through `redact` (log/redact.ts) before it is written, so a caller
 * cannot leak a token or a code by naming it, and a phone number is masked wherever it appears.
 *
 * Lines go to stderr by default, leaving stdout to the plain-text lines people and scripts read (the
 * start-up line, console texts, demo data). A logger never throws: a diagnostic must not take down the
 * request it describes.
 *
 * @module
 */

export type LogLevel = 'debug' | 'info' | 'warn' | 'error';
export type LogFields = Record<string, unknown>;

export interface Logger {
  debug(msg: string, fields?: LogFields): void;
  info(msg: string, fields?: LogFields): void;
  warn(msg: string, fields?: LogFields): void;
  error(msg: string, fields?: LogFields): void;
  /** A logger that adds `fields` to every line it writes. */
  child(fields: LogFields): Logger;
}

export interface LoggerOptions {
  /** Receives each line without its newline; stderr by default. Tests capture lines here. */
  write?: (line: string) => void;
  /** Lines below this level are dropped (default `info`). */
  level?: LogLevel;
  now?: () => number;
}

const RANK: Record<LogLevel, number> = { debug: 10, info: 20, warn: 30, error: 40 };

/** console.error rather than process.stderr.write: it ignores a closed stderr instead of throwing. */
const toStderr = (line: string) => console.error(line);

export function createLogger(options: LoggerOptions = {}): Logger {
  const write = options.write ?? toStderr;
  const rankMin = RANK[options.level ?? 'info'];
  const now = options.now ?? Date.now;

  const make = (base: LogFields): Logger => {
    const log = (level: LogLevel, msg: string, fields: LogFields | undefined) => {
      if (RANK[level] < rankMin) return;
      try {
        const line: LogFields = { level, time: now(), msg: scrubText(msg) };
        const extra = redact({ ...base, ...fields }) as LogFields;
        // The three fixed fields keep their meaning: a field of the same name cannot replace them.
        for (const [name, value] of Object.entries(extra)) if (!(name in line)) line[name] = value;
        write(JSON.stringify(line));
      } catch {
        // Nothing sensible is left to do: the logger itself failed.
      }
    };
    return {
      debug: (msg, fields) => log('debug', msg, fields),
      info: (msg, fields) => log('info', msg, fields),
      warn: (msg, fields) => log('warn', msg, fields),
      error: (msg, fields) => log('error', msg, fields),
      child: (fields) => make({ ...base, ...fields }),
    };
  };
  return make({});
}
