/**
 * Overload on a live server: a client sends far more requests at once than the shards' bounded inboxes
 * hold. Every request is answered (none waits without end): what fits is served, the rest is shed with
 * `overloaded` at once; the health endpoint keeps answering meanwhile; memory stays bounded; and once the
 * flood is over the server serves normally again.
 */
import { describe, expect, it } from 'vitest';
import { openSocket, startTestServer, waitFor } from './server-helpers.ts';

describe('overload', () => {
  it('sheds what the bounded queues cannot hold, keeps answering, and recovers', async () => {
    const t = await startTestServer({
      limits: { shardInboxLengthMax: 64, shardBatchLengthMax: 32, wsRequestsPerSecondMax: 1_000_000 },
    });
    const merchant = await t.merchant();
    const phone = '+15555550190';
    const { deviceToken } = await t.consumer(phone);
    await t.load(merchant, phone, 10_000);
    const code = (await t.http('POST', '/v1/wallet/codes', { merchantId: merchant.merchantId }, deviceToken))
      .body.code as string;
    const pos = await t.pos(await t.terminal(merchant));
    // Another phone floods its wallet socket with requests that each need a shard (cancel a code it does
    // not have).
    const { deviceToken: flooder } = await t.consumer('+15555550191');
    const wallet = await openSocket(t.server.url, '/v1/wallet');
    wallet.send({ type: 'auth', token: flooder });
    expect((await wallet.next()).type).toBe('snapshot');

    const heapBefore = process.memoryUsage().heapUsed;
    for (let i = 0; i < 4_000; i++) wallet.send({ type: 'cancelCode', reqId: i });
    const health = await t.http('GET', '/healthz');
    const answered = () => wallet.frames.filter((frame) => typeof frame.reqId === 'number');
    await waitFor(() => (answered().length >= 4_000 ? true : undefined), 30_000);
    const answers = answered();
    expect(health.status).toBe(200);
    const statuses = answers.map((answer) => answer.status);
    expect(new Set(statuses)).toEqual(new Set(['not_found', 'overloaded']));
    expect(statuses.filter((status) => status === 'overloaded').length).toBeGreaterThan(1_000);
    // Thousands of requests at once cost the server no more than a few megabytes while they were shed.
    expect(process.memoryUsage().heapUsed - heapBefore).toBeLessThan(64 * 1024 * 1024);

    // The flood is over: the same till is served normally.
    const sale = await pos.redeem({ code, amountCents: 1_250 });
    expect(sale.status).toBe('approved');
    expect((await t.http('GET', '/healthz')).status).toBe(200);
  }, 60_000);
});
