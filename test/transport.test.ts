// Transport: TLS with a certificate (a self-signed one made here with openssl), and which browser pages
// may open the WebSockets (the Origin allowlist). Real server, real TLS and WebSocket clients.
import { request as httpsRequest } from 'node:https';
import { describe, expect, it } from 'vitest';
import WebSocket from 'ws';
import { PosClient } from '../sdk/pos-client.ts';
import { readConfig } from '../server/config.ts';
import { selfSignedCertificate } from './helpers.ts';
import { OPERATOR_TOKEN, ROUTING, startTestServer } from './server-helpers.ts';

/** One HTTPS request trusting `ca`; resolves with the status and parsed body. */
function https(
  url: string,
  ca: string | undefined,
  method: string,
  path: string,
  body?: unknown,
  token?: string,
): Promise<{ status: number; body: Record<string, unknown> }> {
  return new Promise((resolve, reject) => {
    const request = httpsRequest(
      `${url}${path}`,
      {
        method,
        ca,
        headers: {
          ...(body === undefined ? {} : { 'content-type': 'application/json' }),
          ...(token ? { authorization: `Bearer ${token}` } : {}),
        },
      },
      (response) => {
        let text = '';
        response.on('data', (chunk) => (text += chunk));
        response.on('end', () =>
          resolve({ status: response.statusCode ?? 0, body: text ? JSON.parse(text) : {} }),
        );
      },
    );
    request.on('error', reject);
    request.end(body === undefined ? undefined : JSON.stringify(body));
  });
}

/** Opens a WebSocket with the given Origin (and Host) header: the HTTP status it met. */
function upgradeStatus(url: string, origin: string | undefined, host?: string): Promise<number> {
  return new Promise((resolve, reject) => {
    const socket = new WebSocket(url, {
      perMessageDeflate: false,
      ...(origin ? { origin } : {}),
      ...(host ? { headers: { host } } : {}),
    });
    socket.once('open', () => {
      socket.close();
      resolve(101);
    });
    socket.once('unexpected-response', (_request, response) => resolve(response.statusCode ?? 0));
    socket.once('error', reject);
  });
}

describe('transport', () => {
  it('serves HTTPS and WSS with the configured certificate, and only that', async () => {
    const { certFile, keyFile, cert } = selfSignedCertificate();
    const t = await startTestServer({ env: { PAYCODE_TLS_CERT: certFile, PAYCODE_TLS_KEY: keyFile } });
    const url = t.server.url;
    expect(url).toMatch(/^https:\/\/127\.0\.0\.1:\d+$/);

    expect(await https(url, cert, 'GET', '/healthz')).toEqual({ status: 200, body: { ok: true } });
    // A client that does not trust the certificate refuses to talk; plain HTTP gets no answer.
    await expect(https(url, undefined, 'GET', '/healthz')).rejects.toThrow(/self[- ]signed/i);
    await expect(fetch(`${url.replace('https', 'http')}/healthz`)).rejects.toThrow();

    // A terminal pairs and talks over wss: handshake, MACs, an answer.
    const merchant = await https(
      url,
      cert,
      'POST',
      '/v1/merchants',
      { name: 'Tls Store', routingNumber: ROUTING, accountNumber: '000123456789', accountType: 'checking' },
      OPERATOR_TOKEN,
    );
    expect(merchant.status).toBe(201);
    const created = await https(
      url,
      cert,
      'POST',
      `/v1/merchants/${merchant.body.merchantId}/terminals`,
      { label: 'till' },
      String(merchant.body.apiKey),
    );
    const activated = await https(url, cert, 'POST', '/v1/terminals/activate', {
      activationCode: created.body.activationCode,
    });
    const pos = await PosClient.connect({
      url,
      terminalId: String(activated.body.terminalId),
      terminalKey: String(activated.body.terminalKey),
      ca: cert,
    });
    expect(await pos.ping()).toMatchObject({ type: 'pong', status: 'approved' });
    expect(await pos.inquire('000000')).toMatchObject({ status: 'invalid_code' });
    pos.close();
  });

  it('lets browser pages open the sockets only from the own origin or an allowed one', async () => {
    const t = await startTestServer({ env: { PAYCODE_ALLOWED_ORIGINS: 'https://pay.example.com' } });
    const ws = t.server.url.replace(/^http/, 'ws');
    for (const path of ['/v1/pos', '/v1/wallet']) {
      expect(await upgradeStatus(`${ws}${path}`, undefined)).toBe(101); // a terminal, not a browser
      expect(await upgradeStatus(`${ws}${path}`, t.server.url)).toBe(101); // the server's own pages
      expect(await upgradeStatus(`${ws}${path}`, 'https://pay.example.com')).toBe(101);
      expect(await upgradeStatus(`${ws}${path}`, 'https://evil.example')).toBe(403);
      expect(await upgradeStatus(`${ws}${path}`, 'https://pay.example.com.evil.example')).toBe(403);
      expect(await upgradeStatus(`${ws}${path}`, 'null')).toBe(403);
      // The own origin needs the same scheme, and a DNS name rebound to this server is not "own".
      expect(await upgradeStatus(`${ws}${path}`, t.server.url.replace('http:', 'https:'))).toBe(403);
      const port = new URL(t.server.url).port;
      expect(
        await upgradeStatus(`${ws}${path}`, `http://rebound.example:${port}`, `rebound.example:${port}`),
      ).toBe(403);
    }
  });

  it('refuses transport settings it cannot use, saying which', () => {
    const problems = (env: Record<string, string>) => readConfig(env).problems;
    expect(problems({ PAYCODE_TLS_CERT: '/nonexistent/cert.pem' })).toEqual([
      'PAYCODE_TLS_CERT and PAYCODE_TLS_KEY must be set together',
    ]);
    expect(
      problems({ PAYCODE_TLS_CERT: '/nonexistent/cert.pem', PAYCODE_TLS_KEY: '/nonexistent/key.pem' }),
    ).toEqual([
      expect.stringMatching(/^PAYCODE_TLS_CERT \/ PAYCODE_TLS_KEY: \/nonexistent\/cert\.pem cannot be read/),
    ]);
    // A certificate with somebody else's key is caught before the server starts.
    const one = selfSignedCertificate();
    const other = selfSignedCertificate();
    expect(problems({ PAYCODE_TLS_CERT: one.certFile, PAYCODE_TLS_KEY: other.keyFile })).toEqual([
      expect.stringMatching(/do not make a certificate and its key/),
    ]);
    expect(problems({ PAYCODE_TLS_CERT: one.certFile, PAYCODE_TLS_KEY: one.keyFile })).toEqual([]);
    expect(
      problems({ PAYCODE_ALLOWED_ORIGINS: 'https://pay.example.com/wallet, pay.example.com' }),
    ).toHaveLength(2);
    expect(problems({ PAYCODE_ALLOWED_ORIGINS: 'https://pay.example.com,http://localhost:5173' })).toEqual(
      [],
    );
  });
});
