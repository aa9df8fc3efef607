import { codeDigitsMinOf } from '../core/codes.ts';
import type { ConsumerId } from '../core/ids.ts';
import { DAY_MS, LIMITS, type Limits } from '../core/limits.ts';
import { dollars, parseDollars } from '../core/money.ts';
import { canonicalPhone } from '../core/phone.ts';
import type { Engine } from '../engine/engine.ts';
import { KeyedWindow } from '../notify/keyed-window.ts';
import { giftConfirmText, HELP_TEXT, historyText, paymentCodeText, STOP_TEXT } from '../notify/texts.ts';
import type { Gifts } from './gifts.ts';
import type { Registry } from './registry.ts';
import type { SmsGifts } from './sms-gifts.ts';

/**
 * The SMS-only channel: a consumer without the app texts `PAY <store keyword> [amount]`, `CANCEL` (the
 * live code), `BAL`, `HIST` (the last three movements), `GIFT <store keyword> <phone> <amount>` (gift card
 * value to another phone, given once the giver replies `YES <code>` with the code texted back, see
 * sms-gifts.ts), `STOP` (freezes the account and cancels the code) or `HELP`, and the answer is queued as
 * a text like any other. Returns the command, for metrics (`THROTTLED`: read and dropped unanswered).
 *
 * @module
 */

export interface InboundDeps {
  engine: Engine;
  registry: Registry;
  codeTtlMs: number;
  replies: ReplyBudget;
  /** Gifts waiting for the giver's confirmation. */
  gifts: SmsGifts;
  giving: Gifts;
  now: () => number;
}

/**
 * Replies cost money and two auto-responders answering each other would loop for ever: a number gets at
 * most `smsRepliesPerNumberPerHourMax` replies an hour, and one that holds no value at most
 * `smsRepliesToUnknownPerDayMax` a day. A text beyond is dropped unanswered; only STOP and CANCEL are
 * still acted on.
 */
export class ReplyBudget {
  private readonly perNumber: KeyedWindow;
  private readonly unknown: KeyedWindow;

  constructor(limits: Pick<Limits, 'smsRepliesPerNumberPerHourMax' | 'smsRepliesToUnknownPerDayMax'>) {
    this.perNumber = new KeyedWindow(60 * 60_000, limits.smsRepliesPerNumberPerHourMax);
    this.unknown = new KeyedWindow(DAY_MS, limits.smsRepliesToUnknownPerDayMax);
  }

  allows(phone: string, known: boolean, nowMs: number): boolean {
    return (known || this.unknown.take(phone, nowMs)) && this.perNumber.take(phone, nowMs);
  }
}

export async function handleInbound(deps: InboundDeps, from: string, text: string): Promise<string> {
  const { engine, registry } = deps;
  // A sender that is no phone (a short code, an alphanumeric sender) gets no answer and changes nothing.
  const phone = canonicalPhone(from);
  if (!phone) return 'NOT_A_PHONE';
  const consumerId = engine.consumerIdFor(phone);
  const [command = '', keyword, amount, ...rest] = text.trim().toUpperCase().split(/\s+/);
  const known = ((await engine.wallet(consumerId))?.cards.length ?? 0) > 0;
  if (!deps.replies.allows(phone, known, deps.now())) {
    // A STOP or CANCEL is acted on whatever the budget (a consumer must always be able to stop a code
    // someone has seen); only the answer is left out.
    if (command === 'STOP' && keyword === undefined) await engine.freeze(consumerId);
    else if (command === 'CANCEL' && keyword === undefined) await engine.cancelCode(consumerId);
    return 'THROTTLED';
  }
  let answer: string | null;
  if (command === 'PAY' && keyword && rest.length === 0) {
    const merchant = registry.merchants.byKeyword(keyword);
    const capCents = amount === undefined ? null : parseDollars(amount);
    if (!merchant) answer = `paycode: no store uses the keyword ${keyword.slice(0, 16)}. Text HELP for help.`;
    else if (amount !== undefined && capCents === null)
      answer = 'paycode: write the amount like 12.50, for example PAY COFFEE 12.50.';
    else {
      const reply = await engine.issueCode({
        consumerId,
        merchantId: merchant.merchantId,
        capCents,
        codeDigitsMin: codeDigitsMinOf(merchant),
      });
      if (reply.status === 'approved' && reply.code)
        answer = paymentCodeText(reply.code, merchant.name, reply.capCents ?? 0, deps.codeTtlMs);
      else if (reply.status === 'insufficient_funds')
        answer = `paycode: you have no value to spend at ${merchant.name}.`;
      else if (reply.status === 'account_frozen')
        answer = 'paycode: your account is frozen; unfreeze it in the wallet.';
      else answer = 'paycode: no code could be made just now; please try again in a minute.';
    }
  } else if (command === 'BAL' && keyword === undefined) {
    const wallet = await engine.wallet(consumerId);
    const cards = (wallet?.cards ?? []).filter((card) => card.balanceCents > 0);
    answer =
      cards.length === 0
        ? 'paycode: you hold no value yet.'
        : `paycode: ${cards
            .map(
              (card) =>
                `${registry.merchants.get(card.merchantId)?.name ?? 'store'} ${card.kind} ${dollars(card.balanceCents)}`,
            )
            .join(', ')}.`;
  } else if (command === 'HIST' && keyword === undefined) {
    const movements = (await engine.history(consumerId, 3)) ?? [];
    answer = historyText(
      movements.map(({ atMs, kind, amountCents, merchantId }) => ({
        atMs,
        kind,
        amountCents,
        merchantName: registry.merchants.get(merchantId)?.name ?? 'store',
      })),
    );
  } else if (command === 'GIFT' && keyword && amount && rest.length === 1) {
    answer = askGift(deps, consumerId, phone, keyword, amount, rest[0] as string);
  } else if (command === 'YES' && keyword && amount === undefined) {
    answer = await confirmGift(deps, consumerId, keyword);
  } else if (command === 'CANCEL' && keyword === undefined) {
    const reply = await engine.cancelCode(consumerId);
    answer =
      reply.status === 'approved'
        ? 'paycode: your payment code is cancelled; nothing can be paid with it.'
        : 'paycode: you have no live payment code.';
  } else if (command === 'STOP' && keyword === undefined) {
    await engine.freeze(consumerId);
    answer = STOP_TEXT;
  } else {
    answer = HELP_TEXT;
  }
  await registry.phones.remember(consumerId, phone);
  if (answer !== null) await registry.phones.queueText(consumerId, answer);
  return ['PAY', 'CANCEL', 'BAL', 'HIST', 'GIFT', 'YES', 'STOP'].includes(command) ? command : 'HELP';
}

/** `GIFT <keyword> <phone> <amount>`: checks it and texts the giver the code that confirms it. */
function askGift(
  deps: InboundDeps,
  consumerId: ConsumerId,
  from: string,
  keyword: string,
  to: string,
  amount: string,
): string {
  const merchant = deps.registry.merchants.byKeyword(keyword);
  const toPhone = canonicalPhone(to);
  const amountCents = parseDollars(amount);
  if (!merchant) return `paycode: no store uses the keyword ${keyword.slice(0, 16)}. Text HELP for help.`;
  if (!toPhone || toPhone === from)
    return 'paycode: write the phone to give to with + and its country code, like GIFT COFFEE +15555550123 20.';
  if (amountCents === null)
    return 'paycode: write the amount like 12.50, for example GIFT COFFEE +15555550123 12.50.';
  if (amountCents < LIMITS.giftMinCents)
    return `paycode: a gift is at least ${dollars(LIMITS.giftMinCents)}.`;
  const code = deps.gifts.ask(
    consumerId,
    { merchantId: merchant.merchantId, toPhone, amountCents },
    deps.now(),
  );
  if (code === null) return GIFT_LOCKED;
  return giftConfirmText(code, amountCents, merchant.name, toPhone, deps.gifts.ttlMs);
}

/** `YES <code>`: gives the pending gift the code confirms; the giver's text comes with the value's move. */
async function confirmGift(deps: InboundDeps, consumerId: ConsumerId, code: string): Promise<string | null> {
  const confirmation = deps.gifts.confirm(consumerId, code, deps.now());
  if (confirmation.status === 'none') return 'paycode: no gift is waiting for your confirmation.';
  if (confirmation.status === 'wrong')
    return 'paycode: that code does not match the one we texted you. Nothing was given.';
  if (confirmation.status === 'locked') return GIFT_LOCKED;
  const { merchantId, amountCents } = confirmation.gift;
  const reply = await deps.giving.give({ consumerId, ...confirmation.gift });
  const name = deps.registry.merchants.get(merchantId)?.name ?? 'this store';
  switch (reply.status) {
    case 'approved':
      return null;
    case 'insufficient_funds':
      return `paycode: you do not have ${dollars(amountCents)} of gift card value at ${name}. Nothing was given.`;
    case 'limit_exceeded':
      return 'paycode: that is more than you may spend or give today. Nothing was given.';
    case 'account_frozen':
      return 'paycode: your account is frozen; unfreeze it in the wallet.';
    case 'rate_limited':
      return `paycode: you have made ${deps.giving.perDayMax} gifts in 24 hours, the most there may be. Nothing was given.`;
    default:
      if (reply.status === 'internal' || reply.status === 'overloaded') {
        // Perhaps given, perhaps not: the same YES tries again under the same key, which gives once.
        deps.gifts.putBack(consumerId, confirmation, deps.now());
        return `paycode: the gift may not have gone through. Reply YES ${confirmation.code} again in a minute to make sure; it is never given twice.`;
      }
      return 'paycode: the gift could not be given; nothing was given.';
  }
}

const GIFT_LOCKED =
  'paycode: too many wrong codes, so gifts by text are off for the next 24 hours. Nothing was given; the wallet app still works.';
