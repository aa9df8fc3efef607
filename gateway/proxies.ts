import { BlockList, isIP } from 'node:net';

/**
 * Reverse proxies the operator trusts (`PAYCODE_TRUSTED_PROXIES`: addresses and CIDR ranges), for the
 * common deployment where TLS ends at a load balancer and the server listens on a private address.
 * Only a trusted proxy's `X-Forwarded-For` and `X-Forwarded-Proto` are believed: the client's address
 * (for throttles and logs) is the rightmost one there that is not a trusted proxy, so a client cannot
 * claim another's address by sending the header itself. A request that came through any proxy, trusted or
 * not, is never "from this machine" (routes.ts), even when the proxy runs on it.
 *
 * @module
 */

export class TrustedProxies {
  private readonly list = new BlockList();

  constructor(entries: readonly string[]) {
    for (const entry of entries) {
      const [address = '', prefix] = entry.split('/');
      const family = isIP(address) === 6 ? 'ipv6' : 'ipv4';
      if (prefix === undefined) this.list.addAddress(address, family);
      else this.list.addSubnet(address, Number(prefix), family);
    }
  }

  trusts(peer: string): boolean {
    const address = plainAddress(peer);
    const family = isIP(address);
    return family !== 0 && this.list.check(address, family === 6 ? 'ipv6' : 'ipv4');
  }

  /**
   * The client's address: the peer's, or behind trusted proxies the first untrusted hop they name.
   * `forwardedFor` is every `X-Forwarded-For` header joined (some proxies add a header line of their own
   * after the client's instead of extending it).
   */
  clientOf(peer: string, forwardedFor: string): string {
    let client = plainAddress(peer);
    if (!this.trusts(client)) return client;
    const hops = forwardedFor.split(',').map((hop) => hopAddress(hop.trim()));
    while (hops.length > 0 && this.trusts(client)) {
      const hop = hops.pop() as string;
      if (isIP(hop) === 0) break;
      client = hop;
    }
    return client;
  }

  /** The scheme the client used: what a trusted proxy says it was, else the server's own. */
  schemeOf(peer: string, forwardedProto: string, own: 'http' | 'https'): 'http' | 'https' {
    if (!this.trusts(peer)) return own;
    return forwardedProto === 'https' || forwardedProto === 'http' ? forwardedProto : own;
  }
}

/** `PAYCODE_TRUSTED_PROXIES` as a list of addresses and CIDR ranges; null when an entry is neither. */
export function parseTrustedProxies(text: string): string[] | null {
  const entries = text
    .split(',')
    .map((entry) => entry.trim())
    .filter((entry) => entry !== '');
  const valid = entries.every((entry) => {
    const [address = '', prefix, extra] = entry.split('/');
    const family = isIP(address);
    if (family === 0 || extra !== undefined) return false;
    if (prefix === undefined) return true;
    return /^[0-9]{1,3}$/.test(prefix) && Number(prefix) <= (family === 6 ? 128 : 32);
  });
  return valid ? entries : null;
}

/**
 * An address as uWebSockets.js gives it in its plain form: on a dual-stack listener an IPv4 peer comes
 * IPv4-mapped, in hex (`0000:…:ffff:7f00:0001`) or dotted (`::ffff:127.0.0.1`); it is the IPv4 address.
 */
export function plainAddress(address: string): string {
  const dotted = /^(?:(?:0{1,4}:){5}|::)ffff:([0-9.]+)$/i.exec(address);
  if (dotted) return dotted[1] as string;
  const hex = /^(?:(?:0{1,4}:){5}|::)ffff:([0-9a-f]{1,4}):([0-9a-f]{1,4})$/i.exec(address);
  if (!hex) return address;
  const [high, low] = [Number.parseInt(hex[1] as string, 16), Number.parseInt(hex[2] as string, 16)];
  return `${high >> 8}.${high & 255}.${low >> 8}.${low & 255}`;
}

/** The address of one `X-Forwarded-For` hop, without the port some proxies add. */
function hopAddress(hop: string): string {
  const bracketed = /^\[([^\]]+)\](?::[0-9]+)?$/.exec(hop);
  if (bracketed) return plainAddress(bracketed[1] as string);
  const withPort = /^([0-9.]+):[0-9]+$/.exec(hop);
  return plainAddress(withPort ? (withPort[1] as string) : hop);
}
