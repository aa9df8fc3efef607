import { createLogger } from '../log/logger.ts';

/**
 * What one access line costs the main thread, which writes one per HTTP answer: the logger with its
 * redaction (log/redact.ts) and JSON, written nowhere.
 */
export function runLogLinesBench(lines: number): { lines: number; microsPerLine: number } {
  const logger = createLogger({ write: () => {} });
  const fields = {
    method: 'POST',
    route: '/v1/merchants/:merchantId/cards',
    params: ['mc_0123456789abcdef'],
    status: 201,
    error: undefined,
    durationMs: 1.2,
    remoteAddress: '203.0.113.7',
  };
  for (let i = 0; i < lines / 10; i++) logger.info('http request', fields);
  const started = performance.now();
  for (let i = 0; i < lines; i++) logger.info('http request', fields);
  return { lines, microsPerLine: ((performance.now() - started) * 1000) / lines };
}
