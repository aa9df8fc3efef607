// Shard workers run the TypeScript sources directly: register the tsx loader in this worker thread,
// then load the shard. The same under `npm start` and in the tests.
import { register } from 'tsx/esm/api';

register();
await import('./shard-worker.ts');
