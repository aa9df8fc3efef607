// The layers of docs/architecture.md, as `npm run lint` enforces them: for every pair of folders, a file
// in one that imports the other passes the lint exactly when the table allows it. The lint runs on probe
// files in a scratch directory with the project's own biome.json.
import { execFile } from 'node:child_process';
import { copyFileSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { describe, expect, it } from 'vitest';
import { tempDir } from './helpers.ts';

const ROOT = join(import.meta.dirname, '..');
const BIOME = join(ROOT, 'node_modules', '.bin', 'biome');

/** Who may import whom: the table of docs/architecture.md. */
const MAY_IMPORT: Record<string, string[]> = {
  core: [],
  sdk: ['core'],
  log: ['core'],
  persistence: ['core', 'sdk', 'log'],
  engine: ['core', 'sdk', 'log', 'persistence'],
  settlement: ['core', 'sdk', 'log', 'persistence'],
  notify: ['core', 'sdk', 'log', 'persistence'],
  gateway: ['core', 'sdk', 'log', 'persistence', 'engine', 'settlement', 'notify'],
  server: ['core', 'sdk', 'log', 'persistence', 'engine', 'settlement', 'notify', 'gateway'],
  cli: ['core', 'sdk', 'log', 'persistence', 'engine', 'settlement', 'notify', 'gateway', 'server'],
  web: ['core', 'sdk'],
};
const LAYERS = Object.keys(MAY_IMPORT);

describe('layers', () => {
  it('lets each folder import exactly the layers below it, as the architecture says', async () => {
    const dir = tempDir();
    copyFileSync(join(ROOT, 'biome.json'), join(dir, 'biome.json'));
    for (const from of LAYERS) {
      mkdirSync(join(dir, from), { recursive: true });
      for (const to of LAYERS.filter((layer) => layer !== from)) {
        writeFileSync(
          join(dir, from, `uses-${to}.ts`),
          `import { x } from '../${to}/x.ts';\n\nexport const y = x;\n`,
        );
        // A type import counts too, and so does a file deeper in the layer.
        writeFileSync(
          join(dir, from, `uses-${to}-deep.ts`),
          `import type { X } from '../${to}/deep/x.ts';\n\nexport type Y = X;\n`,
        );
      }
    }
    const run = await promisify(execFile)(BIOME, ['lint', '--vcs-enabled=false', '--reporter=json', '.'], {
      cwd: dir,
      maxBuffer: 16 * 1024 * 1024,
    }).catch((failed: { stdout: string }) => failed);
    const refused = new Set(
      (JSON.parse(run.stdout).diagnostics as { category: string; location: { path: string } }[])
        .filter((diagnostic) => diagnostic.category === 'lint/style/noRestrictedImports')
        .map((diagnostic) => diagnostic.location.path),
    );
    for (const from of LAYERS)
      for (const to of LAYERS.filter((layer) => layer !== from))
        for (const probe of [`uses-${to}.ts`, `uses-${to}-deep.ts`])
          expect(refused.has(`${from}/${probe}`), `${from}/${probe}`).toBe(!MAY_IMPORT[from]?.includes(to));
    // The architecture page shows the same table.
    const doc = readFileSync(join(ROOT, 'docs', 'architecture.md'), 'utf8');
    expect(doc).toContain('| `engine/` | `core/`, `sdk/`, `log/`, `persistence/` |');
  });
});
