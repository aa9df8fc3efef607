// The piscina worker of settlement runs: registers the TypeScript loader in this worker thread, then
// exports the task function.
import { register } from 'tsx/esm/api';

register();
const { computeSettlement } = await import('./compute.ts');

export default computeSettlement;
