// The start-up audit catches what it promises to catch: a store is made by the real engine, then
// altered behind its back one way at a time, and each alteration must be reported (and undone).
import { describe, expect, it } from 'vitest';
import type { ConsumerId, MerchantId } from '../core/ids.ts';
import { Engine } from '../engine/engine.ts';
import { auditStore, mergeAudits, splitConsumers } from '../persistence/audit.ts';
import { randomSecrets } from '../persistence/secrets.ts';
import { openStore, type Store } from '../persistence/store.ts';
import { fund, tempDir } from './helpers.ts';

async function seededStore(): Promise<{ store: Store; consumers: ConsumerId[] }> {
  const dataDir = tempDir();
  const engine = await Engine.open({ dataDir, secrets: randomSecrets(), shards: 2 });
  const consumers: ConsumerId[] = [];
  for (const n of [1, 2, 3]) {
    consumers.push(await fund(engine, `+1555555010${n}`));
  }
  const issued = await engine.issueCode({ consumerId: consumers[0] as ConsumerId, merchantId: 'm1' });
  const sold = await engine.redeem({
    merchantId: 'm1',
    terminalId: 't1',
    key: 'sale-1',
    code: issued.code as string,
    amountCents: 1_200,
    partial: true,
  });
  expect(sold.status).toBe('approved');
  await engine.issueCode({ consumerId: consumers[1] as ConsumerId, merchantId: 'm1' });
  await engine.close();
  return { store: openStore(dataDir), consumers };
}

/** Applies `change`, expects the audit to report `problem`, then puts the record back. */
async function expectCaught<T>(
  store: Store,
  db: {
    get(key: never): T | undefined;
    put(key: never, value: T): Promise<boolean>;
    remove(key: never): Promise<boolean>;
  },
  key: unknown,
  change: (value: T) => T | undefined,
  problem: RegExp,
): Promise<void> {
  const original = structuredClone(db.get(key as never)) as T;
  const changed = change(structuredClone(original));
  if (changed === undefined) await db.remove(key as never);
  else await db.put(key as never, changed);
  const audit = auditStore(store, Date.now());
  expect(audit.ok).toBe(false);
  expect(
    audit.problems.some((text) => problem.test(text)),
    audit.problems.join('; '),
  ).toBe(true);
  await db.put(key as never, original);
  expect(auditStore(store, Date.now()).problems).toEqual([]);
}

describe('start-up audit', () => {
  it('passes a store the engine wrote and reports every kind of tampering', async () => {
    const { store, consumers } = await seededStore();
    try {
      const clean = auditStore(store, Date.now());
      expect(clean).toMatchObject({ ok: true, problems: [], accounts: 3, liveCodes: 1, ledgerSumCents: 0 });
      expect(clean.journalEntries).toBe(4);
      const parts = splitConsumers(store, 2).map((part) => auditStore(store, Date.now(), part));
      expect(mergeAudits(parts)).toMatchObject({ ok: true, accounts: 3, liveCodes: 1, journalEntries: 4 });

      const [buyer, holder] = consumers as [ConsumerId, ConsumerId];
      // A balance raised without a journal entry.
      await expectCaught(
        store,
        store.accounts,
        buyer,
        (account) => {
          (account.context.cards[0] as { balanceCents: number }).balanceCents += 100;
          return account;
        },
        /differs from its ledger by 100/,
      );
      // A hold larger than the card.
      await expectCaught(
        store,
        store.accounts,
        holder,
        (account) => {
          const card = account.context.cards[0] as { heldCents: number; balanceCents: number };
          card.heldCents = card.balanceCents + 1;
          return account;
        },
        /holds 5001 of 5000/,
      );
      // A journal entry that does not balance, which also breaks the ledger's zero sum.
      const [firstKey] = store.journal.getKeys({ limit: 1 });
      await expectCaught(
        store,
        store.journal,
        firstKey,
        (entry) => {
          (entry.legs[0] as { cents: number }).cents += 1;
          return entry;
        },
        /sums to 1/,
      );
      // A live code whose index entry is gone: it could not be found, or a new draw could collide.
      const code = store.accounts.get(holder)?.context.code as { merchantId: MerchantId; codeHash: string };
      await expectCaught(
        store,
        store.codes,
        [code.merchantId, code.codeHash],
        () => undefined,
        /missing from the code index/,
      );
      // An index entry pointing at a code its holder no longer has: it could be redeemed twice.
      await expectCaught(
        store,
        store.accounts,
        holder,
        (account) => {
          account.context.code = null;
          for (const card of account.context.cards) (card as { heldCents: number }).heldCents = 0;
          return account;
        },
        /is not its live code/,
      );
      // Bought value on a gift card that no posting put there.
      await expectCaught(
        store,
        store.accounts,
        buyer,
        (account) => {
          (account.context.cards[0] as { boughtCents?: number }).boughtCents = 100;
          return account;
        },
        /bought gift value differs from its postings by 100/,
      );
      // A wallet that lost a card the journal still funds.
      await expectCaught(
        store,
        store.accounts,
        consumers[2] as ConsumerId,
        (account) => {
          account.context.cards = [];
          return account;
        },
        /is in the journal but in no wallet/,
      );
    } finally {
      await store.root.close();
    }
  });
});
