// Proves the status table and its documentation agree: every status has a meaning, a valid HTTP code,
// and a row in docs/statuses.md with the same HTTP code; the doc names no status the code lacks.
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { expect, it } from 'vitest';
import { STATUSES } from '../core/statuses.ts';

it('documents every status with its HTTP code', () => {
  const doc = readFileSync(join(import.meta.dirname, '..', 'docs', 'statuses.md'), 'utf8');
  const rows = new Map<string, number>();
  for (const match of doc.matchAll(/^\|\s*`([a-z_]+)`\s*\|\s*(\d{3})\s*\|/gm))
    rows.set(match[1] as string, Number(match[2]));
  for (const [status, { http, meaning }] of Object.entries(STATUSES)) {
    expect(meaning.length, status).toBeGreaterThan(10);
    expect(rows.get(status), `docs/statuses.md row for ${status}`).toBe(http);
  }
  expect([...rows.keys()].sort()).toEqual(Object.keys(STATUSES).sort());
});
