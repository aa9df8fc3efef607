/**
 * SIGTERM under load, on the real server in a child process: requests already running are answered
 * (durably) before the sockets close, requests arriving during the shutdown get `overloaded` (or find
 * the socket gone), sockets
 * close with 1001 ("going away"), the process exits 0, and after a restart on the same data every sale
 * answered before the shutdown is there under its key, and a retry of any other one pays exactly once.
 */
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it, onTestFinished } from 'vitest';
import { issueCode, setupFleet, startPaycode } from '../bench/pos-server.ts';
import { InFlight } from '../gateway/in-flight.ts';
import { openStore } from '../persistence/store.ts';
import { PosClient } from '../sdk/pos-client.ts';
import { openSocket } from './server-helpers.ts';

describe('shutdown', () => {
  it('answers what is running, refuses what comes late, exits 0, and loses nothing', async () => {
    const dataDir = mkdtempSync(join(tmpdir(), 'paycode-shutdown-'));
    onTestFinished(() => rmSync(dataDir, { recursive: true, force: true }));
    let server = await startPaycode({ shards: 2, dataDir });
    onTestFinished(() => server.kill());
    const fleet = await setupFleet(server.url, {
      merchants: 1,
      terminals: 1,
      consumers: 300,
      hotMerchant: false,
    });
    const codes = await Promise.all(fleet.consumers.map((consumer) => issueCode(server.url, consumer)));
    const terminal = fleet.terminals[0] as (typeof fleet.terminals)[number];
    const connect = () =>
      PosClient.connect({ url: server.url, ...terminal, attemptsMax: 1, timeoutMs: 15_000 });
    const pos = await connect();
    const wallet = await openSocket(server.url, '/v1/wallet');
    wallet.send({ type: 'auth', token: fleet.consumers[0]?.deviceToken });
    expect((await wallet.next()).type).toBe('snapshot');

    // 250 sales at once; SIGTERM once the first is answered, while the others run; fifty more sent while
    // the server shuts down.
    const sell = (i: number) =>
      pos.send('redeem', { key: `s-${i}`, code: codes[i], amountCents: 500, partial: 0 }).then(
        (answer) => answer,
        (error: Error) => ({ status: `error: ${error.message}`, authId: undefined }),
      );
    const early = codes.slice(0, 250).map((_, i) => sell(i));
    await Promise.race(early);
    const stopped = server.stop();
    const late = codes.slice(250).map((_, i) => sell(250 + i));
    const exitCode = await stopped;
    const outcomes = await Promise.all([...early, ...late]);
    expect(exitCode).toBe(0);
    expect(await wallet.closed).toBe(1001);
    // Requests were running when the shutdown began, and every request that had reached the server was
    // answered, none cut off; a late one may also be refused or find the socket gone.
    const closing = readFileSync(join(dataDir, 'server.log'), 'utf8')
      .split('\n')
      .find((line) => line.includes('"server closing"'));
    expect(JSON.parse(closing ?? '{}').requests).toBeGreaterThan(0);
    for (const outcome of outcomes.slice(0, 250))
      expect(['approved', 'overloaded']).toContain(outcome.status);
    for (const outcome of outcomes.slice(250))
      expect(['approved', 'overloaded', 'error: connection closed']).toContain(outcome.status);
    expect(outcomes.filter((outcome) => outcome.status === 'approved').length).toBeGreaterThan(1);
    // `overloaded` means nothing was done: no answer is stored under those keys.
    const store = openStore(join(dataDir, 'data'));
    for (const [i, outcome] of outcomes.entries()) {
      const stored = store.idempotency.get([`t:${terminal.terminalId}`, `s-${i}`]);
      if (outcome.status === 'overloaded') expect(stored).toBeUndefined();
      if (outcome.status === 'approved') expect(stored?.reply.authId).toBe(outcome.authId);
    }
    await store.root.close();

    // After a restart: the answered sales are there under their keys; the others pay once on retry.
    server = await startPaycode({ shards: 2, dataDir, port: Number(new URL(server.url).port) });
    const again = await connect();
    for (const [i, code] of codes.entries()) {
      const retry = await again.send('redeem', { key: `s-${i}`, code, amountCents: 500, partial: 0 });
      expect(retry.status).toBe('approved');
      const before = outcomes[i];
      if (before?.status === 'approved') expect(retry.authId).toBe(before.authId);
      // Spent: another key cannot pay with it again (two tries, under the terminal's failure limits).
      if (i === 0 || i === codes.length - 1) {
        const twice = await again.send('redeem', { key: `t-${i}`, code, amountCents: 500, partial: 0 });
        expect(twice.status).toBe('invalid_code');
      }
    }
    again.close();
    expect(await server.stop()).toBe(0);
  }, 120_000);

  it('waits for running requests only until the deadline, and refuses new ones from the start', async () => {
    const inFlight = new InFlight();
    let finish: (value: string) => void = () => undefined;
    const quick = inFlight.track(new Promise<string>((resolve) => (finish = resolve)));
    inFlight.track(new Promise(() => undefined));
    expect(inFlight.size).toBe(2);
    const drained = inFlight.drain(200);
    expect(inFlight.draining).toBe(true);
    finish('answered');
    expect(await quick).toBe('answered');
    // The stuck one is still running when the deadline passes: the shutdown goes on without it.
    expect(await drained).toBe(1);
  });
});
