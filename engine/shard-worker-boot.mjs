// Shard workers run the TypeScript sources in development and the tests: register the tsx loader in this
// worker thread, then load the shard. Compiled builds (scripts/build.mjs, `npm start`) put the compiled
// worker in this file's place.
import { register } from 'tsx/esm/api';

register();
await import('./shard-worker.ts');
