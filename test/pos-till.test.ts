import { afterEach, beforeEach, describe, expect, test, vi } from 'vitest';
import type { PosAnswer, PosSession } from '../web/pos/session.ts';
import { KEY_SAFE_MS, Till } from '../web/pos/till.ts';

/**
 * The browser till's money rules (web/pos/till.ts) against a scripted session, where the order of
 * answers is chosen by the test: the races and the rare answers that a real server gives only by chance.
 * The page's storage is an in-memory localStorage.
 */
class MemoryStorage {
  private readonly items = new Map<string, string>();
  get length(): number {
    return this.items.size;
  }
  getItem(key: string): string | null {
    return this.items.get(key) ?? null;
  }
  setItem(key: string, value: string): void {
    this.items.set(key, value);
  }
  removeItem(key: string): void {
    this.items.delete(key);
  }
  key(index: number): string | null {
    return [...this.items.keys()][index] ?? null;
  }
  clear(): void {
    this.items.clear();
  }
}

interface Sent {
  type: string;
  fields: Record<string, unknown>;
  answer: (status: string, extra?: Record<string, unknown>) => void;
}

/** A session whose every request waits until the test answers it. */
class ScriptedSession {
  state = 'online';
  readonly sent: Sent[] = [];
  private waiters: (() => void)[] = [];

  request(type: string, fields: Record<string, unknown>): Promise<PosAnswer> {
    return new Promise((resolve) => {
      this.sent.push({
        type,
        fields,
        answer: (status, extra = {}) =>
          resolve({ type: `${type}Result`, seq: this.sent.length, status, ...extra }),
      });
      for (const wake of this.waiters.splice(0)) wake();
    });
  }

  whenOnline(): Promise<boolean> {
    return Promise.resolve(true);
  }

  reconnectNow(): void {}

  /** The `index`th request, once it has been sent. */
  async nth(index: number): Promise<Sent> {
    while (this.sent.length <= index) await new Promise<void>((wake) => this.waiters.push(wake));
    return this.sent[index] as Sent;
  }
}

const TERMINAL = 'tm_test';
let session: ScriptedSession;
let till: Till;

beforeEach(() => {
  vi.stubGlobal('localStorage', new MemoryStorage());
  session = new ScriptedSession();
  till = new Till(TERMINAL, session as unknown as PosSession, { onChange: () => {}, onSettled: () => {} });
});
afterEach(() => {
  till.stop();
  vi.useRealTimers();
  vi.unstubAllGlobals();
});

const approved = { authId: 'au_1', approvedCents: 1250, balanceCents: 3750 };

describe('browser till', () => {
  test('a sale approved while an earlier operation was being sent is never reversed', async () => {
    // A void is pending from before; a sale starts; a drain reads the pending list while the sale is in flight.
    localStorage.setItem(
      `paycode.pos.pending.${TERMINAL}`,
      JSON.stringify([{ kind: 'void', key: 'void-1', authId: 'au_0', atMs: Date.now() }]),
    );
    const sale = till.charge({ code: '123456', amountCents: 1250, partial: false });
    const redeem = await session.nth(0);
    const drain = till.drain();
    const voiding = await session.nth(1);
    expect(voiding.type).toBe('void');
    // The sale's answer comes while the drain waits for the void's.
    redeem.answer('approved', approved);
    await expect(sale).resolves.toMatchObject({ kind: 'answered', status: 'approved' });
    voiding.answer('approved', { authId: 'au_0', balanceCents: 5000 });
    await drain;
    expect(session.sent.map((request) => request.type)).toEqual(['redeem', 'void']);
    expect(till.pending()).toEqual([]);
  });

  test('a sale answered `internal` is sent again under its key, and reversed when it never gets a final answer', async () => {
    vi.useFakeTimers();
    const sale = till.charge({ code: '123456', amountCents: 1250, partial: false });
    for (let attempt = 0; attempt < 3; attempt++) {
      const redeem = await session.nth(attempt);
      expect(redeem.fields.key).toBe(session.sent[0]?.fields.key);
      redeem.answer('internal');
      await vi.advanceTimersByTimeAsync(10_000);
    }
    const reverse = await session.nth(3);
    expect([reverse.type, reverse.fields.key]).toEqual(['reverse', session.sent[0]?.fields.key]);
    reverse.answer('reversed');
    await expect(sale).resolves.toEqual({ kind: 'reversed', amountCents: 1250 });
    expect(till.pending()).toEqual([]);
    expect(till.sales()).toEqual([]);
  });

  test('a sale answered `internal` and then approved is one sale, under one key', async () => {
    vi.useFakeTimers();
    const sale = till.charge({ code: '123456', amountCents: 1250, partial: false });
    (await session.nth(0)).answer('internal');
    await vi.advanceTimersByTimeAsync(3_000);
    (await session.nth(1)).answer('approved', approved);
    await expect(sale).resolves.toMatchObject({ kind: 'answered', status: 'approved' });
    expect(session.sent.map((request) => [request.type, request.fields.key])).toEqual([
      ['redeem', session.sent[0]?.fields.key],
      ['redeem', session.sent[0]?.fields.key],
    ]);
    expect(till.sales().map((kept) => kept.approvedCents)).toEqual([1250]);
    expect(till.pending()).toEqual([]);
  });

  test('an approval that does not say what it approved is not believed: the sale is reversed', async () => {
    const sale = till.charge({ code: '123456', amountCents: 1250, partial: false });
    (await session.nth(0)).answer('approved', { balanceCents: 0 });
    (await session.nth(1)).answer('reversed');
    await expect(sale).resolves.toEqual({ kind: 'reversed', amountCents: 1250 });
    expect(session.sent[1]?.type).toBe('reverse');
    expect(till.sales()).toEqual([]);
  });

  test('an operation older than the server keeps keys is not sent again, but shown until dismissed', async () => {
    const old = Date.now() - KEY_SAFE_MS - 1;
    localStorage.setItem(
      `paycode.pos.pending.${TERMINAL}`,
      JSON.stringify([
        { kind: 'reverse', key: 'sale-old', amountCents: 900, atMs: old },
        { kind: 'refund', key: 'refund-old', authId: 'au_9', amountCents: 300, atMs: old },
        { kind: 'reverse', key: 'sale-new', amountCents: 500, atMs: Date.now() },
      ]),
    );
    const drain = till.drain();
    const reverse = await session.nth(0);
    expect(reverse.fields.key).toBe('sale-new');
    reverse.answer('reversed');
    await drain;
    expect(session.sent).toHaveLength(1);
    expect(till.inDoubt()).toEqual([]);
    expect(till.unconfirmable().map((op) => op.key)).toEqual(['sale-old', 'refund-old']);
    till.dismiss('sale-old');
    till.dismiss('sale-new');
    expect(till.pending().map((op) => op.key)).toEqual(['refund-old']);
  });
});
