/**
 * Slow and dead clients on a live server: a phone whose wallet socket stops reading is closed once the
 * pushes queued for it reach the backpressure limit, while another phone keeps receiving its pushes; a
 * connection that goes silent after its upgrade (half-open, or a client that died without closing) is
 * reaped by the idle timeout.
 */
import { connect } from 'node:net';
import { describe, expect, it } from 'vitest';
import { type Collector, openSocket, startTestServer, type TestServer, waitFor } from './server-helpers.ts';

const openWallets = async (t: TestServer): Promise<number> => {
  const metrics = (await t.http('GET', '/metrics')).body as string;
  return Number(/paycode_websockets_open\{endpoint="wallet"\} ([0-9]+)/.exec(metrics)?.[1] ?? 'NaN');
};

describe('slow and dead clients', () => {
  it('closes a wallet socket that stops reading at its backpressure limit, and only that one', async () => {
    const t = await startTestServer({
      limits: { wsBackpressureBytesMax: 64 * 1024, wsRequestsPerSecondMax: 100_000_000 },
    });
    const merchant = await t.merchant();
    const sockets: Collector[] = [];
    for (const phone of ['+15555550180', '+15555550181']) {
      const { deviceToken } = await t.consumer(phone);
      await t.load(merchant, phone, 100);
      const socket = await openSocket(t.server.url, '/v1/wallet');
      socket.send({ type: 'auth', token: deviceToken });
      expect((await socket.next()).type).toBe('snapshot');
      sockets.push(socket);
    }
    const [slow, live] = sockets as [Collector, Collector];
    expect(await openWallets(t)).toBe(2);
    // The slow phone stops reading but keeps asking: the answers pile up in the kernel's buffers, then in
    // the server's, until the limit closes the socket.
    (slow.socket as unknown as { _socket: { pause(): void } })._socket.pause();
    const ask = JSON.stringify({ type: 'unknown', reqId: 'r'.repeat(64) });
    let frames = 0;
    while ((await openWallets(t)) === 2 && frames < 500_000) {
      for (let i = 0; i < 5_000; i++) slow.socket.send(ask);
      frames += 5_000;
      await new Promise((resolve) => setTimeout(resolve, 20));
    }
    expect(await openWallets(t)).toBe(1);
    expect(frames).toBeLessThan(500_000);
    // The other phone was not held back: it still gets its pushes at once.
    const before = live.frames.length;
    await t.load(merchant, '+15555550181', 7);
    await waitFor(() => (live.frames.length > before ? true : undefined));
    expect(live.frames.at(-1)).toMatchObject({ type: 'balance', cause: 'load' });
  }, 120_000);

  it('reaps a connection that goes silent after its upgrade', async () => {
    // The authentication deadline is set far beyond the idle timeout, so only the idle timeout can act.
    const t = await startTestServer({ limits: { wsIdleTimeoutS: 8, wsAuthDeadlineMs: 600_000 } });
    const { port } = new URL(t.server.url);
    const raw = connect(Number(port), '127.0.0.1');
    raw.on('error', () => undefined);
    const closed = new Promise<void>((resolve) => raw.once('close', () => resolve()));
    await new Promise((resolve) => raw.once('connect', resolve));
    raw.write(
      [
        'GET /v1/wallet HTTP/1.1',
        `Host: 127.0.0.1:${port}`,
        'Upgrade: websocket',
        'Connection: Upgrade',
        'Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==',
        'Sec-WebSocket-Version: 13',
        '',
        '',
      ].join('\r\n'),
    );
    // It reads what the server sends (so TCP stays up) but never answers a ping or sends a frame.
    let received = '';
    raw.on('data', (chunk) => {
      received += chunk.toString('latin1');
    });
    await waitFor(() => (received.startsWith('HTTP/1.1 101') ? true : undefined));
    expect(await openWallets(t)).toBe(1);
    await closed;
    expect(await openWallets(t)).toBe(0);
    expect(received).not.toContain('unauthorized');
  }, 60_000);
});
