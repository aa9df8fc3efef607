import {
  type ActorRefFrom,
  assertEvent,
  createActor,
  emit,
  enqueueActions,
  raise,
  type SnapshotFrom,
  setup,
  stateIn,
} from 'xstate';
import type { ConsumerId } from './ids.ts';
import { LIMITS, type Limits } from './limits.ts';
import type { Status } from './statuses.ts';
import type { Effect, EventOf, Step, Wallet, WalletEvent } from './wallet.ts';
import * as rules from './wallet.ts';

/**
 * One consumer account as an xstate v5 machine. Two parallel regions, which the guards read:
 * - `code`: `none` → `codeIssued` → `redeemed` | `expired` | `cancelled` (then a new code may be issued);
 * - `access`: `active` | `frozen`.
 * Each event is answered through a ladder of named guards, first refusal wins, ending in the rule that
 * applies it. Rules live in wallet.ts; every effect (the reply included) is emitted as data for the shard
 * to perform. The machine reads no clock and does no I/O: time and randomness arrive in the event.
 */

/**
 * What an account emits for one rule or refusal: its effects, in order, in one emitted event (one emit
 * per effect cost xstate about as much as the rest of the event together).
 */
export interface Emitted {
  type: 'effects';
  effects: Effect[];
}

const emitted = (...effects: Effect[]): Emitted => ({ type: 'effects', effects });

/** Performs a pure rule's step: the new wallet becomes the context and its effects are emitted. */
function perform(
  step: Step,
  enqueue: { assign: (wallet: Wallet) => void; emit: (event: Emitted) => void },
): void {
  rules.assertWallet(step.wallet);
  enqueue.assign(step.wallet);
  enqueue.emit({ type: 'effects', effects: step.effects });
}

/** The event as one of the types a guard or action is written for; any other type throws (xstate's `assertEvent`). */
function eventOf<T extends WalletEvent['type']>(e: WalletEvent, ...types: T[]): EventOf<T> {
  const event: WalletEvent = e;
  assertEvent(e, types);
  return event as EventOf<T>;
}

/** The machine under a set of limits; shards build it once with their configured limits. */
export const makeAccountMachine = (limits: Limits) =>
  setup({
    types: {
      context: {} as Wallet,
      events: {} as WalletEvent,
      emitted: {} as Emitted,
      input: {} as { consumerId: ConsumerId },
    },
    guards: {
      isFrozen: stateIn({ access: 'frozen' }),
      loadOverflows: ({ context, event: e }) =>
        rules.loadWouldOverflow(
          context,
          eventOf(e, 'LOAD'),
          limits.cardBalanceMaxCents,
          limits.rewardLotsMax,
        ),
      // The new code replaces the live one, so that code's holds count as available here.
      nothingAvailableHere: ({ context, event: e }) =>
        rules.totalsAt(context, eventOf(e, 'ISSUE_CODE').merchantId).balanceCents === 0,
      codeNotLiveHere: ({ context, event: e }) => {
        const { merchantId, codeHash } = eventOf(e, 'REDEEM', 'INQUIRE');
        return rules.liveCodeFor(context, merchantId, codeHash) === null;
      },
      codePastExpiry: ({ context, event: e }) => context.code !== null && e.nowMs >= context.code.expiresAtMs,
      overCap: ({ context, event: e }) => {
        const { amountCents, partial } = eventOf(e, 'REDEEM');
        return !partial && context.code !== null && amountCents > context.code.capCents;
      },
      holdShort: ({ context, event: e }) => {
        const { amountCents, partial } = eventOf(e, 'REDEEM');
        const spendable = rules.codeSpendableCents(context);
        return spendable === 0 || (!partial && amountCents > spendable);
      },
      overDayLimit: ({ context, event: e }) => {
        const { amountCents, partial, nowMs } = eventOf(e, 'REDEEM');
        const left = rules.leftTodayCents(context, nowMs, limits.consumerSpendPerDayMaxCents);
        return left === 0 || (!partial && amountCents > left);
      },
      authClosed: ({ event: e }) => eventOf(e, 'VOID', 'REVERSE').auth.state !== 'approved',
      authReversed: ({ event: e }) => eventOf(e, 'REVERSE').auth.state === 'reversed',
      voidWindowClosed: ({ event: e }) => {
        const { auth, nowMs, settledUpToMs } = eventOf(e, 'VOID');
        return nowMs > auth.atMs + limits.voidWindowMs || auth.atMs < settledUpToMs;
      },
      // A void would move nothing and text the consumer about $0.00.
      fullyRefunded: ({ event: e }) => rules.refundableCents(eventOf(e, 'VOID').auth) === 0,
      refundExceeds: ({ event: e }) => {
        const { auth, amountCents } = eventOf(e, 'REFUND');
        return amountCents > rules.refundableCents(auth);
      },
      giftShort: ({ context, event: e }) => {
        const { merchantId, amountCents } = eventOf(e, 'GIFT_SEND');
        const card = rules.findCard(context, merchantId, 'gift');
        return card === undefined || rules.availableCents(card) < amountCents;
      },
      giftOverDay: ({ context, event: e }) => {
        const { amountCents, nowMs } = eventOf(e, 'GIFT_SEND');
        return amountCents > rules.leftTodayCents(context, nowMs, limits.consumerSpendPerDayMaxCents);
      },
      lotsDue: ({ context, event: e }) => rules.lotsDue(context, e.nowMs),
      noSuchCard: ({ context, event: e }) => {
        const { cardId } = eventOf(e, 'SET_ALERT');
        return !context.cards.some((card) => card.cardId === cardId);
      },
    },
    actions: {
      reply: enqueueActions(({ enqueue }, params: { status: Status }) => {
        enqueue.emit(emitted({ type: 'reply', reply: { status: params.status } }));
      }),
      replyDeadCode: emit(({ context, event: e }) => {
        const { merchantId, codeHash } = eventOf(e, 'REDEEM', 'INQUIRE');
        return emitted({
          type: 'reply',
          reply: { status: rules.deadCodeStatus(context, merchantId, codeHash) },
        });
      }),
      replyInquiry: emit(({ context, event: e }) =>
        emitted({
          type: 'reply',
          reply: {
            status: 'approved',
            availableCents: Math.min(
              rules.codeSpendableCents(context),
              rules.leftTodayCents(context, e.nowMs, limits.consumerSpendPerDayMaxCents),
            ),
          },
        }),
      ),
      load: enqueueActions(({ context, event: e, enqueue }) =>
        perform(rules.load(context, eventOf(e, 'LOAD')), enqueue),
      ),
      issueCode: enqueueActions(({ context, event: e, enqueue }) =>
        perform(rules.issueCode(context, eventOf(e, 'ISSUE_CODE')), enqueue),
      ),
      redeem: enqueueActions(({ context, event: e, enqueue }) =>
        perform(rules.redeem(context, eventOf(e, 'REDEEM'), limits.consumerSpendPerDayMaxCents), enqueue),
      ),
      expireCode: enqueueActions(({ context, enqueue }) => perform(rules.expireCode(context), enqueue)),
      cancelCode: enqueueActions(({ context, enqueue }) => perform(rules.cancelCode(context), enqueue)),
      undoRedemption: enqueueActions(({ context, event: e, enqueue }) =>
        perform(rules.undoRedemption(context, eventOf(e, 'VOID', 'REVERSE')), enqueue),
      ),
      refund: enqueueActions(({ context, event: e, enqueue }) =>
        perform(rules.refund(context, eventOf(e, 'REFUND')), enqueue),
      ),
      expireLots: enqueueActions(({ context, event: e, enqueue }) =>
        perform(rules.expireLots(context, e.nowMs), enqueue),
      ),
      giftSend: enqueueActions(({ context, event: e, enqueue }) =>
        perform(
          rules.giftSend(context, eventOf(e, 'GIFT_SEND'), limits.consumerSpendPerDayMaxCents),
          enqueue,
        ),
      ),
      giftReceive: enqueueActions(({ context, event: e, enqueue }) =>
        perform(rules.giftReceive(context, eventOf(e, 'GIFT_RECEIVE')), enqueue),
      ),
      setAlert: enqueueActions(({ context, event: e, enqueue }) =>
        perform(rules.setAlert(context, eventOf(e, 'SET_ALERT')), enqueue),
      ),
      /** Handles the current event again, after an action that must come first (expiring due lots). */
      again: raise(({ event: e }) => e),
    },
  }).createMachine({
    id: 'account',
    type: 'parallel',
    context: ({ input }) => rules.emptyWallet(input.consumerId),
    on: {
      LOAD: [
        { guard: 'loadOverflows', actions: { type: 'reply', params: { status: 'limit_exceeded' } } },
        { actions: 'load' },
      ],
      VOID: [
        { guard: 'authClosed', actions: { type: 'reply', params: { status: 'already_voided' } } },
        { guard: 'voidWindowClosed', actions: { type: 'reply', params: { status: 'void_window_closed' } } },
        { guard: 'fullyRefunded', actions: { type: 'reply', params: { status: 'nothing_to_void' } } },
        { actions: 'undoRedemption' },
      ],
      REVERSE: [
        { guard: 'authReversed', actions: { type: 'reply', params: { status: 'reversed' } } },
        { guard: 'authClosed', actions: { type: 'reply', params: { status: 'nothing_to_reverse' } } },
        { actions: 'undoRedemption' },
      ],
      REFUND: [
        { guard: 'refundExceeds', actions: { type: 'reply', params: { status: 'refund_exceeds' } } },
        { actions: 'refund' },
      ],
      EXPIRE_LOTS: { guard: 'lotsDue', actions: 'expireLots' },
      GIFT_SEND: [
        { guard: 'isFrozen', actions: { type: 'reply', params: { status: 'account_frozen' } } },
        { guard: 'giftShort', actions: { type: 'reply', params: { status: 'insufficient_funds' } } },
        { guard: 'giftOverDay', actions: { type: 'reply', params: { status: 'limit_exceeded' } } },
        { actions: 'giftSend' },
      ],
      GIFT_RECEIVE: { actions: 'giftReceive' },
      SET_ALERT: [
        { guard: 'noSuchCard', actions: { type: 'reply', params: { status: 'not_found' } } },
        { actions: 'setAlert' },
      ],
    },
    states: {
      code: {
        initial: 'none',
        on: {
          ISSUE_CODE: [
            // Reward value past its expiry is gone even if its timer has not fired yet.
            { guard: 'lotsDue', actions: ['expireLots', 'again'] },
            { guard: 'isFrozen', actions: { type: 'reply', params: { status: 'account_frozen' } } },
            {
              guard: 'nothingAvailableHere',
              actions: { type: 'reply', params: { status: 'insufficient_funds' } },
            },
            { target: '.codeIssued', reenter: true, actions: 'issueCode' },
          ],
          REDEEM: [
            { guard: 'isFrozen', actions: { type: 'reply', params: { status: 'account_frozen' } } },
            { actions: 'replyDeadCode' },
          ],
          INQUIRE: [
            { guard: 'isFrozen', actions: { type: 'reply', params: { status: 'account_frozen' } } },
            { actions: 'replyDeadCode' },
          ],
          CANCEL_CODE: { actions: { type: 'reply', params: { status: 'not_found' } } },
        },
        states: {
          none: {},
          codeIssued: {
            on: {
              REDEEM: [
                { guard: 'lotsDue', actions: ['expireLots', 'again'] },
                { guard: 'isFrozen', actions: { type: 'reply', params: { status: 'account_frozen' } } },
                { guard: 'codeNotLiveHere', actions: 'replyDeadCode' },
                {
                  guard: 'codePastExpiry',
                  target: 'expired',
                  actions: ['expireCode', { type: 'reply', params: { status: 'expired_code' } }],
                },
                { guard: 'overCap', actions: { type: 'reply', params: { status: 'over_cap' } } },
                { guard: 'holdShort', actions: { type: 'reply', params: { status: 'insufficient_funds' } } },
                { guard: 'overDayLimit', actions: { type: 'reply', params: { status: 'limit_exceeded' } } },
                // After this point the redemption is approved.
                { target: 'redeemed', actions: 'redeem' },
              ],
              INQUIRE: [
                { guard: 'isFrozen', actions: { type: 'reply', params: { status: 'account_frozen' } } },
                { guard: 'codeNotLiveHere', actions: 'replyDeadCode' },
                { guard: 'codePastExpiry', actions: { type: 'reply', params: { status: 'expired_code' } } },
                { actions: 'replyInquiry' },
              ],
              EXPIRE_CODE: { guard: 'codePastExpiry', target: 'expired', actions: 'expireCode' },
              CANCEL_CODE: {
                target: 'cancelled',
                actions: ['cancelCode', { type: 'reply', params: { status: 'approved' } }],
              },
              FREEZE: { target: 'cancelled', actions: 'cancelCode' },
            },
          },
          redeemed: {},
          expired: {},
          cancelled: {},
        },
      },
      access: {
        initial: 'active',
        states: {
          active: {
            on: {
              FREEZE: {
                target: 'frozen',
                actions: { type: 'reply', params: { status: 'approved' } },
              },
              UNFREEZE: { actions: { type: 'reply', params: { status: 'approved' } } },
            },
          },
          frozen: {
            on: {
              FREEZE: { actions: { type: 'reply', params: { status: 'approved' } } },
              UNFREEZE: {
                target: 'active',
                actions: { type: 'reply', params: { status: 'approved' } },
              },
            },
          },
        },
      },
    },
  });

export const accountMachine = makeAccountMachine(LIMITS);
export type AccountMachine = typeof accountMachine;

export type AccountActor = ActorRefFrom<typeof accountMachine>;
export type AccountSnapshot = SnapshotFrom<typeof accountMachine>;

/** What is persisted of an account: its state value and context, nothing derived. */
export interface PersistedAccount {
  value: AccountSnapshot['value'];
  context: Wallet;
}

export function startAccount(
  consumerId: ConsumerId,
  persisted?: PersistedAccount,
  machine: AccountMachine = accountMachine,
): AccountActor {
  // Accounts stored before the chart lost its `funds` region (it followed the balances, and nothing read
  // it) carry that region and a `frozen` flag beside `access`: the chart keeps only what it reads.
  const snapshot = persisted
    ? machine.resolveState({ value: chartValue(persisted.value), context: persisted.context })
    : undefined;
  return createActor(machine, { input: { consumerId }, snapshot }).start();
}

function chartValue(stored: PersistedAccount['value']): PersistedAccount['value'] {
  const { code, access } = stored as { code: unknown; access: unknown };
  return { code, access } as PersistedAccount['value'];
}

/** Whether the consumer froze the account (the `access` region). */
export function isFrozen(actor: AccountActor): boolean {
  return actor.getSnapshot().matches({ access: 'frozen' });
}

export function persistAccount(actor: AccountActor): PersistedAccount {
  const snapshot = actor.getSnapshot();
  return { value: snapshot.value, context: snapshot.context };
}
