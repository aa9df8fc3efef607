// The piscina worker of settlement runs: registers the TypeScript loader in this worker thread, then
// exports the task (settlement-worker.ts). Compiled builds (scripts/build.mjs) put the compiled worker
// in this file's place.
import { register } from 'tsx/esm/api';

register();
const { default: task } = await import('./settlement-worker.ts');

export default task;
