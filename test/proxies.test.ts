// Behind a reverse proxy (TLS ended at a load balancer, the server on a private address): only trusted
// proxies' forwarding headers are believed, a forwarded request is never "from this machine", the
// metrics can take a token instead, and a server that takes plain HTTP off loopback takes it from its
// proxies only.
import { request } from 'node:http';
import { networkInterfaces } from 'node:os';
import { describe, expect, it } from 'vitest';
import { WebSocket } from 'ws';
import { parseTrustedProxies, plainAddress, TrustedProxies } from '../gateway/proxies.ts';
import { readConfig } from '../server/config.ts';
import { startTestServer } from './server-helpers.ts';

const METRICS_TOKEN = 'metrics-token-0123456789abcdef';

async function get(url: string, headers: Record<string, string> = {}): Promise<number> {
  return (await fetch(url, { headers })).status;
}

describe('trusted proxies', () => {
  it('believe only a trusted proxy about the client, and take the first hop it did not add', () => {
    const proxies = new TrustedProxies(['10.0.0.0/8', '::1']);
    expect(proxies.trusts('0000:0000:0000:0000:0000:ffff:10.1.2.3')).toBe(true);
    expect(proxies.trusts('0000:0000:0000:0000:0000:0000:0000:0001')).toBe(true);
    expect(proxies.trusts('192.0.2.9')).toBe(false);
    expect(proxies.clientOf('10.0.0.5', '203.0.113.7, 10.0.0.9')).toBe('203.0.113.7');
    // A client's own header is kept left of what the proxy adds: the proxy's hop is the one believed.
    expect(proxies.clientOf('10.0.0.5', '198.51.100.1, 203.0.113.7')).toBe('203.0.113.7');
    expect(proxies.clientOf('10.0.0.5', 'not-an-address')).toBe('10.0.0.5');
    expect(proxies.clientOf('192.0.2.9', '203.0.113.7')).toBe('192.0.2.9');
    expect(proxies.schemeOf('10.0.0.5', 'https', 'http')).toBe('https');
    expect(proxies.schemeOf('192.0.2.9', 'https', 'http')).toBe('http');
    expect(plainAddress('0000:0000:0000:0000:0000:ffff:127.0.0.1')).toBe('127.0.0.1');
    // How uWebSockets.js gives an IPv4 peer on a dual-stack listener.
    expect(plainAddress('0000:0000:0000:0000:0000:ffff:7f00:0001')).toBe('127.0.0.1');
    expect(plainAddress('0000:0000:0000:0000:0000:0000:0000:0001')).toBe(
      '0000:0000:0000:0000:0000:0000:0000:0001',
    );
    // Proxies that add a port to the hop.
    expect(proxies.clientOf('10.0.0.5', '203.0.113.7:51234')).toBe('203.0.113.7');
    expect(proxies.clientOf('10.0.0.5', '[2001:db8::7]:443')).toBe('2001:db8::7');
    expect(parseTrustedProxies(' 10.0.0.0/8 , 192.0.2.1,::1 ')).toEqual(['10.0.0.0/8', '192.0.2.1', '::1']);
    for (const bad of ['10.0.0.0/33', 'proxy.example', '10.0.0.1/8/8', '::1/129'])
      expect(parseTrustedProxies(bad), bad).toBeNull();
  });

  it('let production listen off loopback without TLS only behind named proxies', () => {
    const production = {
      PAYCODE_ENV: 'production',
      PAYCODE_SMS: 'smpp://paycode:secret@127.0.0.1:2775',
      PAYCODE_HOST: '0.0.0.0',
    };
    expect(readConfig(production).problems).toEqual([
      'production off loopback needs TLS: set PAYCODE_TLS_CERT and PAYCODE_TLS_KEY, or PAYCODE_TRUSTED_PROXIES for the TLS proxy in front',
    ]);
    expect(readConfig({ ...production, PAYCODE_TRUSTED_PROXIES: '10.0.0.0/8' }).problems).toEqual([]);
    expect(readConfig({ PAYCODE_TRUSTED_PROXIES: 'lb.example' }).problems).toEqual([
      'PAYCODE_TRUSTED_PROXIES must list IP addresses or CIDR ranges, separated by commas',
    ]);
    expect(readConfig({ PAYCODE_METRICS_TOKEN: 'short' }).problems).toEqual([
      'PAYCODE_METRICS_TOKEN must be 24-128 printable characters',
    ]);
  });

  it('throttle the client a trusted proxy names, and never serve this machine’s pages to forwarded requests', async () => {
    // The test's own connections come from loopback, which plays the trusted proxy.
    const t = await startTestServer({
      env: { PAYCODE_TRUSTED_PROXIES: '127.0.0.1' },
      limits: { otpSendsPerAddressPerHourMax: 2 },
    });
    const signUp = (phone: string, client: string) =>
      fetch(`${t.server.url}/v1/consumers`, {
        method: 'POST',
        headers: { 'x-forwarded-for': client },
        body: JSON.stringify({ phone }),
      }).then((response) => response.status);
    expect(await signUp('+15555550161', '203.0.113.7')).toBe(202);
    expect(await signUp('+15555550162', '203.0.113.7')).toBe(202);
    expect(await signUp('+15555550163', '203.0.113.7')).toBe(429);
    // Another client behind the same proxy has its own budget.
    expect(await signUp('+15555550164', '198.51.100.1')).toBe(202);
    // A proxy that adds its own header line after the client's: the client's line is not believed.
    const twoLines = await new Promise<number>((resolve, reject) => {
      const url = new URL('/v1/consumers', t.server.url);
      request(
        {
          host: url.hostname,
          port: url.port,
          path: url.pathname,
          method: 'POST',
          headers: { 'x-forwarded-for': ['198.51.100.99', '203.0.113.7'] },
        },
        (response) => {
          response.resume();
          resolve(response.statusCode ?? 0);
        },
      )
        .on('error', reject)
        .end(JSON.stringify({ phone: '+15555550166' }));
    });
    expect(twoLines).toBe(429);
    // The metrics and the development inbox are for this machine, not for what a proxy on it forwards.
    expect(await get(`${t.server.url}/metrics`)).toBe(403);
    expect(await get(`${t.server.url}/v1/dev/inbox`)).toBe(403);
    const access = t.logs.map((line) => JSON.parse(line)).filter((line) => line.msg === 'http request');
    expect(access.map((line) => line.remoteAddress)).toContain('203.0.113.7');
  });

  it('serve the metrics to whoever sends the metrics token, and only to them, once one is set', async () => {
    // Without a token, to this machine only: a request a proxy forwarded (it says so) is not from it.
    const local = await startTestServer();
    expect(await get(`${local.server.url}/metrics`)).toBe(200);
    expect(await get(`${local.server.url}/metrics`, { 'x-forwarded-for': '127.0.0.1' })).toBe(403);
    expect(await get(`${local.server.url}/v1/dev/inbox`, { forwarded: 'for=127.0.0.1' })).toBe(403);
    const t = await startTestServer({ env: { PAYCODE_METRICS_TOKEN: METRICS_TOKEN } });
    expect(await get(`${t.server.url}/metrics`)).toBe(401);
    expect(
      await get(`${t.server.url}/metrics`, { authorization: 'Bearer wrong-token-0123456789abcdef' }),
    ).toBe(401);
    const headers = { authorization: `Bearer ${METRICS_TOKEN}`, 'x-forwarded-for': '203.0.113.7' };
    expect(await get(`${t.server.url}/metrics`, headers)).toBe(200);
  });

  const lan = Object.values(networkInterfaces())
    .flat()
    .find((address) => address && !address.internal && address.family === 'IPv4')?.address;

  it.skipIf(!lan)('take plain HTTP off loopback from their proxies only', async () => {
    // Listening on this machine's own network address, proxies elsewhere: this test's connections are
    // from that address, neither loopback nor a proxy, so they are refused before anything is read.
    const t = await startTestServer({
      env: { PAYCODE_HOST: lan as string, PAYCODE_TRUSTED_PROXIES: '10.255.255.1' },
    });
    expect(t.server.url).toContain(lan);
    const refused = await fetch(`${t.server.url}/v1/consumers`, {
      method: 'POST',
      body: JSON.stringify({ phone: '+15555550165' }),
    });
    expect(refused.status).toBe(403);
    expect((await refused.json()).error.message).toBe(
      'this server takes requests through its TLS proxy only',
    );
    const socketStatus = await new Promise<number>((resolve, reject) => {
      const ws = new WebSocket(`${t.server.url.replace(/^http/, 'ws')}/v1/pos`);
      ws.on('unexpected-response', (_request, response) => {
        resolve(response.statusCode ?? 0);
        ws.terminate();
      });
      ws.on('open', () => {
        resolve(101);
        ws.close();
      });
      ws.on('error', reject);
    });
    expect(socketStatus).toBe(403);
    // Nor the pages: one sent in clear could be altered on the way.
    expect(await get(`${t.server.url}/wallet/`)).toBe(403);
  });
});
