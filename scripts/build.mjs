// Compiles the server to plain JavaScript in dist/ (esbuild): the command line and one file per worker
// thread, next to each other as the sources expect to find their workers. Packages stay in
// node_modules. `npm start` runs it first; development and the tests run the TypeScript through tsx.
import { rmSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { build } from 'esbuild';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const outdir = join(root, 'dist');
rmSync(outdir, { recursive: true, force: true });
await build({
  absWorkingDir: root,
  entryPoints: {
    paycode: 'cli/paycode.ts',
    // The names the sources open their workers by (engine/shard-client.ts, settlement/settlements.ts,
    // persistence/audit.ts): in dist/ the compiled worker takes the place of its boot file.
    'shard-worker-boot': 'engine/shard-worker.ts',
    'worker-boot': 'settlement/settlement-worker.ts',
    'audit-worker-boot': 'persistence/audit-worker.ts',
  },
  outdir,
  outExtension: { '.js': '.mjs' },
  bundle: true,
  platform: 'node',
  format: 'esm',
  target: 'node20',
  packages: 'external',
  sourcemap: 'linked',
  legalComments: 'none',
  logLevel: 'warning',
});
