// Registers the TypeScript loader in this worker thread, then runs one part of the start-up audit
// (audit-worker.ts). Compiled builds (scripts/build.mjs) put the compiled worker in this file's place.
import { register } from 'tsx/esm/api';

register();
await import('./audit-worker.ts');
