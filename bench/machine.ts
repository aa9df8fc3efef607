import { startAccount } from '../core/account-machine.ts';
import type { ConsumerId, MerchantId } from '../core/ids.ts';
import { fmtInt, table } from './measure.ts';

/**
 * What the account machine alone costs per payment, on one thread: a code issued and redeemed on one
 * live actor (xstate, the guards, the pure rules and the invariant checks), no storage and no messages.
 * The shards spend this on every payment before they write anything.
 */
export interface MachineBenchResult {
  payments: number;
  microsPerPayment: number;
  effectsPerPayment: number;
}

export function runMachineBench(payments: number): MachineBenchResult {
  const consumerId = 'cu_1_bench' as ConsumerId;
  const merchantId = 'mc_bench' as MerchantId;
  const actor = startAccount(consumerId);
  let effects = 0;
  actor.on('*', (event) => {
    effects += event.effects.length;
  });
  let nowMs = Date.UTC(2026, 0, 1);
  let loaded = 0;
  const pay = (i: number) => {
    // A fresh card now and then, so the daily limit and the balance never refuse a payment.
    if (i % 1_000 === 0) {
      nowMs += 86_400_000;
      actor.send({
        type: 'LOAD',
        nowMs,
        merchantId,
        kind: 'gift',
        funding: 'merchant',
        amountCents: 1_000,
        expiresAtMs: null,
        newCardId: `cd_1_bench${++loaded}` as never,
        ref: `load-${loaded}`,
      });
    }
    nowMs += 1_000;
    const codeHash = `code-${i}`;
    actor.send({
      type: 'ISSUE_CODE',
      nowMs,
      merchantId,
      capCents: null,
      codeHash,
      sealed: 'sealed',
      expiresAtMs: nowMs + 1_200_000,
    });
    actor.send({
      type: 'REDEEM',
      nowMs,
      merchantId,
      codeHash,
      amountCents: 1,
      partial: false,
      authId: `au_1_bench${i}` as never,
      terminalId: 'tm_bench' as never,
    });
  };
  for (let i = 0; i < Math.min(payments, 5_000); i++) pay(i); // warm up
  effects = 0;
  const started = performance.now();
  for (let i = 0; i < payments; i++) pay(5_000 + i);
  const micros = ((performance.now() - started) * 1000) / payments;
  if (actor.getSnapshot().status !== 'active') throw new Error('the account stopped');
  return { payments, microsPerPayment: micros, effectsPerPayment: effects / payments };
}

export function printMachineBench(result: MachineBenchResult): void {
  console.log(
    table(
      ['payments', 'µs per payment (issue + redeem)', 'effects per payment'],
      [[fmtInt(result.payments), result.microsPerPayment.toFixed(2), result.effectsPerPayment.toFixed(2)]],
    ),
  );
}
