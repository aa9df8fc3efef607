/**
 * The end of a switch that handles every case of a union: the compiler refuses the call while a case is
 * missing, and at run time a value outside the union fails loudly instead of taking a default.
 *
 * @module
 */

export function unreachable(value: never): never {
  throw new Error(`unreachable: ${String(value)}`);
}
