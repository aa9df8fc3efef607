/**
 * What counts as this machine: the server refuses plain HTTP on any other interface (server/config.ts),
 * and serves `/metrics` and the development inbox only to requests from it (routes.ts).
 */

/**
 * A host name that names this machine, as the server binds it or as a Host header carries it (with a
 * port): `localhost`, `127.x.x.x`, `::1` (bracketed in a Host header).
 */
export function isLoopbackName(host: string): boolean {
  return /^(?:(?:localhost|127(?:\.[0-9]{1,3}){3}|\[::1\])(?::[0-9]{1,5})?|::1)$/i.test(host);
}

/** A peer address on this machine, in the forms uWebSockets.js gives it (IPv4, IPv6, IPv4-mapped). */
export function isLoopbackAddress(address: string): boolean {
  return (
    /^127(?:\.[0-9]{1,3}){3}$/.test(address) ||
    address === '::1' ||
    /^(?:0000:){5}ffff:127(?:\.[0-9]{1,3}){3}$/i.test(address) ||
    address.endsWith(':127.0.0.1') ||
    address === '0000:0000:0000:0000:0000:0000:0000:0001'
  );
}
