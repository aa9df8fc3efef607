import { defineConfig } from 'vitest/config';

const CLUSTER = 'test/cluster-*.test.ts';

export default defineConfig({
  test: {
    // Tests start real worker threads and LMDB environments; files run in parallel, a test at a time.
    testTimeout: 60_000,
    hookTimeout: 60_000,
    pool: 'forks',
    // The JSON report lets CI print a plain "N passed, N failed" line.
    reporters: ['default', ['json', { outputFile: '.tmp/vitest-results.json' }]],
    projects: [
      {
        extends: true,
        test: { name: 'node', include: ['test/**/*.test.ts'], exclude: ['**/node_modules/**', CLUSTER] },
      },
      {
        // The cluster tests time failovers (within 10 s of a kill): they run last, one file at a time, so
        // the nine processes of each do not share the cores with other test files.
        extends: true,
        test: { name: 'cluster', include: [CLUSTER], fileParallelism: false, sequence: { groupOrder: 1 } },
      },
    ],
  },
});
