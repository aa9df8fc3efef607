/**
 * The settlement worker thread's task (piscina calls the default export): one business day computed
 * and stored (compute.ts).
 *
 * @module
 */
export { computeSettlement as default } from './compute.ts';
