import { gunzipSync } from 'node:zlib';
import { describe, expect, test } from 'vitest';
import { buildWebApps, WEB_APPS } from '../gateway/web.ts';
import { startTestServer } from './server-helpers.ts';

/** How the gateway serves the web apps: headers, caching, compression, what exists in which mode. */
describe('web app serving', () => {
  test('every page comes with a policy that allows only the server itself, and may not be framed', async () => {
    const t = await startTestServer();
    for (const path of ['/wallet/', '/wallet', '/pos/', '/merchant/', '/dev/inbox/']) {
      const response = await fetch(`${t.server.url}${path}`);
      expect(response.status, path).toBe(200);
      expect(response.headers.get('content-type')).toBe('text/html; charset=utf-8');
      const policy = response.headers.get('content-security-policy') ?? '';
      expect(policy).toContain("script-src 'self'");
      expect(policy).toContain("connect-src 'self'");
      expect(policy).toContain("frame-ancestors 'none'");
      expect(policy).not.toMatch(/unsafe|\*/);
      expect(response.headers.get('x-frame-options')).toBe('DENY');
      expect(response.headers.get('x-content-type-options')).toBe('nosniff');
      expect(response.headers.get('referrer-policy')).toBe('no-referrer');
      const html = await response.text();
      const mount = path.replace(/\/?$/, '/');
      expect(html).toMatch(
        new RegExp(`<script type="module" src="${mount}app\\.[0-9a-f]{12}\\.js"></script>`),
      );
      expect(html).toMatch(new RegExp(`<link rel="stylesheet" href="${mount}app\\.[0-9a-f]{12}\\.css" />`));
      expect(html).not.toMatch(/<script>|style=/);
    }
    const home = await fetch(`${t.server.url}/`, { redirect: 'manual' });
    expect([home.status, home.headers.get('location')]).toEqual([302, '/wallet/']);
    // The API keeps its JSON answers, unknown paths included.
    const unknown = await t.http('GET', '/v1/nothing-here');
    expect(unknown).toEqual({
      status: 404,
      body: { error: { code: 'not_found', message: 'no such endpoint' } },
    });
    expect((await fetch(`${t.server.url}/wallet/nothing.js`)).status).toBe(404);
  });

  test('assets are revalidated by their hash and compressed for clients that accept it', async () => {
    const t = await startTestServer();
    const url = `${t.server.url}/wallet/app.js`;
    const plain = await fetch(url, { headers: { 'accept-encoding': 'identity' } });
    const body = Buffer.from(await plain.arrayBuffer());
    expect(plain.headers.get('content-type')).toBe('text/javascript; charset=utf-8');
    expect(plain.headers.get('cache-control')).toBe('no-cache');
    const etag = plain.headers.get('etag') as string;
    expect(etag).toMatch(/^"[\w-]{22}"$/);
    const again = await fetch(url, { headers: { 'if-none-match': etag } });
    expect([again.status, (await again.arrayBuffer()).byteLength]).toEqual([304, 0]);

    const raw = await import('node:http').then(
      ({ get }) =>
        new Promise<{ encoding: string | undefined; bytes: Buffer }>((resolve, reject) =>
          get(url, { headers: { 'accept-encoding': 'gzip' } }, (response) => {
            const chunks: Buffer[] = [];
            response.on('data', (chunk: Buffer) => chunks.push(chunk));
            response.on('end', () =>
              resolve({ encoding: response.headers['content-encoding'], bytes: Buffer.concat(chunks) }),
            );
          }).on('error', reject),
        ),
    );
    expect(raw.encoding).toBe('gzip');
    expect(raw.bytes.length).toBeLessThan(body.length);
    expect(gunzipSync(raw.bytes).equals(body)).toBe(true);
  });

  test('the page and the service worker load the bundles under their hash, cached for good', async () => {
    const t = await startTestServer();
    const html = await (await fetch(`${t.server.url}/wallet/`)).text();
    const script = /src="(\/wallet\/app\.([0-9a-f]{12})\.js)"/.exec(html);
    const style = /href="(\/wallet\/app\.[0-9a-f]{12}\.css)"/.exec(html);
    expect(script && style).toBeTruthy();
    const hashed = await fetch(`${t.server.url}${script?.[1]}`);
    expect(hashed.headers.get('cache-control')).toBe('public, max-age=31536000, immutable');
    const body = Buffer.from(await hashed.arrayBuffer());
    // The name is the content's hash, and the same bundle is there under its plain name.
    const { createHash } = await import('node:crypto');
    expect(createHash('sha256').update(body).digest('hex').slice(0, 12)).toBe(script?.[2]);
    const plain = await fetch(`${t.server.url}/wallet/app.js`);
    expect(Buffer.from(await plain.arrayBuffer()).equals(body)).toBe(true);
    expect((await fetch(`${t.server.url}${style?.[1]}`)).headers.get('cache-control')).toContain('immutable');
    // The service worker keeps the same names for the wallet to open offline.
    const worker = await (await fetch(`${t.server.url}/wallet/sw.js`)).text();
    expect(worker).toContain(script?.[1]);
    expect(worker).toContain(style?.[1]);
    expect(worker).not.toMatch(/["']\/wallet\/app\.js["']/);
  });

  test('the development inbox page exists only when texts go to the console', async () => {
    const t = await startTestServer({ env: { PAYCODE_SMS: 'smpp://paycode:secret@127.0.0.1:9' } });
    expect((await fetch(`${t.server.url}/dev/inbox/`)).status).toBe(404);
    expect((await fetch(`${t.server.url}/wallet/`)).status).toBe(200);
  });

  test('the bundles load nothing from elsewhere (the SVG namespace is a name, not an address), and production bundles are minified without source maps', async () => {
    const [development, production] = await Promise.all([
      buildWebApps(WEB_APPS, false),
      buildWebApps(WEB_APPS, true),
    ]);
    // The SVG namespace is a name that `createElementNS` needs, never fetched: exactly that string, in
    // quotes, is allowed; any other address, or one that only starts like it, is not.
    const svgNamespace = /(["'`])http:\/\/www\.w3\.org\/2000\/svg\1/g;
    const unaddressed = (text: string) => text.replace(svgNamespace, '""');
    expect(unaddressed('"http://www.w3.org/2000/svg"')).toBe('""');
    for (const near of [
      '"http://www.w3.org/2000/svg/x"',
      '"http://www.w3.org/2000/svgx"',
      "'https://www.w3.org/2000/svg'",
    ])
      expect(unaddressed(near)).toMatch(/https?:\/\//);
    for (const app of WEB_APPS) {
      for (const name of ['/', '/app.js', '/app.css']) {
        const path = `${app.mount}${name}`;
        const shipped = production.get(path)?.body.toString('utf8') ?? '';
        expect(shipped.length, path).toBeGreaterThan(0);
        expect(unaddressed(shipped), path).not.toMatch(/https?:\/\/|\/\/cdn|@import|sourceMappingURL/);
      }
      const minified = production.get(`${app.mount}/app.js`)?.body.length ?? 0;
      const readable = development.get(`${app.mount}/app.js`)?.body.length ?? 0;
      expect(minified).toBeLessThan(readable / 2);
    }
  });
});
