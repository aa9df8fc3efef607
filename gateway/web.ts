import type { HttpRequest, HttpResponse, TemplatedApp } from 'uWebSockets.js';
import { createHash } from 'node:crypto';
import { readdirSync, readFileSync } from 'node:fs';
import { extname, join, relative } from 'node:path';
import { gzipSync } from 'node:zlib';
import { build } from 'esbuild';
import type { Logger } from '../log/logger.ts';
import { refusedBy, THROUGH_PROXY_ONLY } from './http.ts';

/**
 * The web apps of `web/`: the wallet (`/wallet/`), the POS terminal (`/pos/`), the merchant dashboard
 * (`/merchant/`) and, when texts go to the console, the development inbox (`/dev/inbox/`). Each app is a
 * folder with an `index.html`, a `main.ts` bundled by esbuild into `app.js` (and the CSS it imports into
 * `app.css`), optionally a service worker `sw.ts` (`sw.js`), and static files served as they are.
 *
 * The bundles are built in memory once per process, started when the server starts, so nothing is
 * generated in the repository. The page and the service worker load each app's script and style under a
 * name made of its content's hash (`app.3f9a1c0b2d4e.js`), sent with `cache-control: immutable` for a
 * year; everything else, `app.js` under its plain name included, is revalidated by its ETag. Every page is sent with a content security policy that
 * allows only the server's own scripts, styles and connections (nothing from a CDN, no inline script),
 * may not be framed, and sends no referrer.
 *
 * @module
 */

export interface WebApp {
  /** The URL prefix, without a trailing slash. */
  mount: string;
  /** The folder under web/. */
  dir: string;
}

export const WEB_APPS: readonly WebApp[] = [
  { mount: '/wallet', dir: 'wallet' },
  { mount: '/pos', dir: 'pos' },
  { mount: '/merchant', dir: 'merchant' },
  { mount: '/dev/inbox', dir: 'inbox' },
];

interface Asset {
  body: Buffer;
  gzipped: Buffer | null;
  contentType: string;
  etag: string;
  /** Named by its content's hash, so it never changes under its name and may be cached for good. */
  immutable: boolean;
}

const WEB_ROOT = join(import.meta.dirname, '..', 'web');

const CONTENT_TYPES: Record<string, string> = {
  '.html': 'text/html; charset=utf-8',
  '.js': 'text/javascript; charset=utf-8',
  '.css': 'text/css; charset=utf-8',
  '.svg': 'image/svg+xml',
  '.png': 'image/png',
  '.webmanifest': 'application/manifest+json',
  '.json': 'application/json',
};

const PAGE_HEADERS: Readonly<Record<string, string>> = {
  'content-security-policy': [
    "default-src 'self'",
    "script-src 'self'",
    "style-src 'self'",
    "img-src 'self' data:",
    "connect-src 'self'",
    "manifest-src 'self'",
    "worker-src 'self'",
    "object-src 'none'",
    "base-uri 'none'",
    "form-action 'none'",
    "frame-ancestors 'none'",
  ].join('; '),
  'x-content-type-options': 'nosniff',
  'referrer-policy': 'no-referrer',
  'x-frame-options': 'DENY',
  'permissions-policy': 'camera=(), microphone=(), geolocation=(), payment=()',
  'cross-origin-opener-policy': 'same-origin',
};

function asset(path: string, body: Buffer): Asset {
  const contentType = CONTENT_TYPES[extname(path)] ?? 'application/octet-stream';
  const compressible = !contentType.startsWith('image/png');
  return {
    body,
    gzipped: compressible && body.length > 1024 ? gzipSync(body) : null,
    contentType,
    etag: `"${createHash('sha256').update(body).digest('base64url').slice(0, 22)}"`,
    immutable: false,
  };
}

/** `app.js` → `app.<12 hex digits of its content's SHA-256>.js`. */
function hashedName(name: string, body: Uint8Array): string {
  const hash = createHash('sha256').update(body).digest('hex').slice(0, 12);
  const dot = name.lastIndexOf('.');
  return `${name.slice(0, dot)}.${hash}${name.slice(dot)}`;
}

/** Every file of every app by URL path; `<mount>/` is the app's index.html. */
export async function buildWebApps(apps: readonly WebApp[], minify: boolean): Promise<Map<string, Asset>> {
  const assets = new Map<string, Asset>();
  const entryPoints: Record<string, string> = {};
  for (const app of apps) {
    const dir = join(WEB_ROOT, app.dir);
    for (const file of readdirSync(dir)) {
      if (file === 'main.ts') entryPoints[`${app.dir}/app`] = join(dir, file);
      else if (file === 'sw.ts') entryPoints[`${app.dir}/sw`] = join(dir, file);
      else if (!file.endsWith('.ts') && file !== 'index.html')
        assets.set(`${app.mount}/${file}`, asset(file, readFileSync(join(dir, file))));
    }
  }
  const outdir = join(WEB_ROOT, 'out');
  const result = await build({
    entryPoints,
    outdir,
    bundle: true,
    write: false,
    format: 'esm',
    target: 'es2022',
    minify,
    sourcemap: minify ? false : 'inline',
    legalComments: 'none',
    logLevel: 'silent',
  });
  // The script and style of each app are also served under a name made of their hash, cached for good;
  // the page and the service worker name those, so a new version is a new name and never a stale copy.
  const renamed = new Map<string, Map<string, string>>(apps.map((app) => [app.mount, new Map()]));
  const mountOf = new Map(apps.map((app) => [app.dir, app.mount]));
  const workers: { mount: string; name: string; text: string }[] = [];
  for (const file of result.outputFiles) {
    const [dir, name] = relative(outdir, file.path).split('/') as [string, string];
    const mount = mountOf.get(dir) as string;
    if (name === 'sw.js') {
      workers.push({ mount, name, text: file.text });
      continue;
    }
    const bundle = asset(name, Buffer.from(file.contents));
    const hashed = hashedName(name, file.contents);
    assets.set(`${mount}/${name}`, bundle);
    assets.set(`${mount}/${hashed}`, { ...bundle, immutable: true });
    renamed.get(mount)?.set(`${mount}/${name}`, `${mount}/${hashed}`);
  }
  // Only whole quoted names are replaced (`"/wallet/app.js"`), never a longer name that starts alike.
  const withHashedNames = (mount: string, text: string) => {
    let out = text;
    for (const [plain, hashed] of renamed.get(mount) ?? [])
      for (const quote of ['"', "'"])
        out = out.replaceAll(`${quote}${plain}${quote}`, `${quote}${hashed}${quote}`);
    return out;
  };
  for (const { mount, name, text } of workers)
    assets.set(`${mount}/${name}`, asset(name, Buffer.from(withHashedNames(mount, text))));
  for (const app of apps) {
    const html = readFileSync(join(WEB_ROOT, app.dir, 'index.html'), 'utf8');
    assets.set(`${app.mount}/`, asset('index.html', Buffer.from(withHashedNames(app.mount, html))));
  }
  return assets;
}

/** Builds by options: the files do not change while the process runs, so a restarted server reuses one. */
const builds = new Map<string, Promise<Map<string, Asset>>>();

/**
 * Serves the apps on `app`. The build starts now; a request that comes before it finished waits for it.
 * A build that fails is logged and its pages answer 500.
 */
export function serveWebApps(
  app: TemplatedApp,
  options: { devInbox: boolean; minify: boolean; logger: Logger; onAnswer: (code: number) => void },
): void {
  const apps = WEB_APPS.filter((web) => options.devInbox || web.dir !== 'inbox');
  const key = `${options.minify}:${apps.map((web) => web.dir).join()}`;
  let built = builds.get(key);
  if (!built) {
    built = buildWebApps(apps, options.minify);
    builds.set(key, built);
  }
  built.catch((error: unknown) => options.logger.error('web apps failed to build', { err: error }));

  const serve = (res: HttpResponse, req: HttpRequest) => {
    let path = req.getUrl();
    if (apps.some((web) => web.mount === path)) path += '/';
    const noneMatch = req.getHeader('if-none-match');
    const gzipOk = /\bgzip\b/.test(req.getHeader('accept-encoding'));
    let aborted = false;
    res.onAborted(() => {
      aborted = true;
    });
    const reply = (code: string, headers: Record<string, string>, body: Buffer | string = '') => {
      if (aborted) return;
      res.cork(() => {
        res.writeStatus(code);
        for (const [name, value] of Object.entries(headers)) res.writeHeader(name, value);
        res.end(body);
      });
      options.onAnswer(Number.parseInt(code, 10));
    };
    // Pages too come through the TLS proxy only, when the server speaks plain HTTP off loopback: a page
    // sent in clear could be altered on the way to read the tokens typed into it.
    if (refusedBy(app, res, req))
      return reply(
        '403 Forbidden',
        { 'content-type': 'application/json' },
        JSON.stringify(THROUGH_PROXY_ONLY.body),
      );
    built.then(
      (assets) => {
        const found = assets.get(path);
        if (!found) {
          reply('404 Not Found', { 'content-type': 'text/plain; charset=utf-8' }, 'no such page');
          return;
        }
        const headers: Record<string, string> = {
          ...PAGE_HEADERS,
          'content-type': found.contentType,
          'cache-control': found.immutable ? 'public, max-age=31536000, immutable' : 'no-cache',
          etag: found.etag,
        };
        if (path.endsWith('/sw.js')) headers['service-worker-allowed'] = path.slice(0, -'sw.js'.length);
        if (noneMatch === found.etag) return reply('304 Not Modified', headers);
        if (gzipOk && found.gzipped) {
          headers['content-encoding'] = 'gzip';
          headers.vary = 'accept-encoding';
          return reply('200 OK', headers, found.gzipped);
        }
        reply('200 OK', headers, found.body);
      },
      () =>
        reply(
          '500 Internal Server Error',
          { 'content-type': 'text/plain; charset=utf-8' },
          'pages unavailable',
        ),
    );
  };
  for (const web of apps) {
    app.get(web.mount, serve);
    app.get(`${web.mount}/*`, serve);
  }
  app.get('/', (res) => {
    res.cork(() => res.writeStatus('302 Found').writeHeader('location', '/wallet/').end());
  });
}
