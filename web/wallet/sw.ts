/**
 * The wallet's service worker: it makes the wallet installable and lets it open without a network, by
 * keeping the app itself (page, script, style, icons). API answers are never cached: balances, codes
 * and history stay on the server, not on the phone. The page is fetched from the network first, so a
 * new version is used as soon as it is online.
 */
interface ExtendableEvent extends Event {
  waitUntil(promise: Promise<unknown>): void;
}
interface FetchEvent extends ExtendableEvent {
  request: Request;
  respondWith(response: Promise<Response>): void;
}
interface WorkerScope {
  addEventListener(type: 'install' | 'activate', listener: (event: ExtendableEvent) => void): void;
  addEventListener(type: 'fetch', listener: (event: FetchEvent) => void): void;
  skipWaiting(): Promise<void>;
  clients: { claim(): Promise<void> };
}

const worker = self as unknown as WorkerScope;
const CACHE = 'paycode-wallet-v1';
const SHELL = [
  '/wallet/',
  '/wallet/app.js',
  '/wallet/app.css',
  '/wallet/manifest.webmanifest',
  '/wallet/icon.svg',
  '/wallet/icon-192.png',
];

worker.addEventListener('install', (event) => {
  event.waitUntil(
    caches
      .open(CACHE)
      .then((cache) => cache.addAll(SHELL))
      .then(() => worker.skipWaiting()),
  );
});

worker.addEventListener('activate', (event) => {
  event.waitUntil(
    caches
      .keys()
      .then((names) => Promise.all(names.filter((name) => name !== CACHE).map((name) => caches.delete(name))))
      // The bundles are named by their hash: an earlier version's are no longer part of the shell.
      .then(() => caches.open(CACHE))
      .then(async (cache) => {
        const kept = await cache.keys();
        await Promise.all(
          kept
            .filter((request) => !SHELL.includes(new URL(request.url).pathname))
            .map((request) => cache.delete(request)),
        );
      })
      .then(() => worker.clients.claim()),
  );
});

worker.addEventListener('fetch', (event) => {
  const url = new URL(event.request.url);
  if (event.request.method !== 'GET' || url.origin !== location.origin) return;
  const shellPath = url.pathname === '/wallet' ? '/wallet/' : url.pathname;
  if (!SHELL.includes(shellPath)) return;
  event.respondWith(
    fetch(event.request)
      .then((response) => {
        if (response.ok) {
          const copy = response.clone();
          void caches.open(CACHE).then((cache) => cache.put(shellPath, copy));
        }
        return response;
      })
      .catch(async () => (await caches.match(shellPath)) ?? Response.error()),
  );
});
