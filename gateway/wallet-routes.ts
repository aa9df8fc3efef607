import { codeDigitsMinOf } from '../core/codes.ts';
import { idempotencyScope } from '../core/commands.ts';
import type { ConsumerId } from '../core/ids.ts';
import { canonicalPhone } from '../core/phone.ts';
import { STATUSES, TRANSIENT_STATUSES } from '../core/statuses.ts';
import type { Reply } from '../core/wallet.ts';
import { KeyedWindow } from '../notify/keyed-window.ts';
import { ROUTES } from './api.ts';
import { type Answer, fail, ok, type Request } from './http.ts';
import { answerFor, type RouteKit } from './route-kit.ts';
import { walletBody } from './wallet-socket.ts';

/**
 * A consumer's routes (docs/http-api.md, "Consumers" and "Wallet"): registering a phone and signing in
 * with a texted code, then, with the device token, the wallet: its cards and history, payment codes,
 * gift cards bought by card, freezing and unfreezing.
 *
 * @module
 */
export function walletRoutes(kit: RouteKit): void {
  const { engine, registry, limits } = kit.deps;

  // Verification texts cost money: besides each phone's own limits (verification.ts), a budget per client
  // address and one for the whole platform (limits.ts), so many numbers cannot be texted at our expense.
  // The operator's token (bulk onboarding) skips these two, never the phone's own limits.
  const otpsPerAddress = new KeyedWindow(60 * 60_000, limits.otpSendsPerAddressPerHourMax);
  const otpsAll = new KeyedWindow(60_000, limits.otpSendsPerMinuteMax);
  const sendVerification = async (
    request: Request,
    byOperator: boolean,
    phone: string,
    consumerId: ConsumerId,
    purpose: 'sign-in' | 'unfreeze',
  ): Promise<Answer> => {
    const nowMs = kit.deps.now();
    if (!byOperator) {
      // Both are checked before either is taken, so an address past its own budget takes nothing of the
      // platform's (one address must not spend everyone's).
      const address = request.remoteAddress;
      if (!otpsPerAddress.hasRoom(address, nowMs) || !otpsAll.hasRoom('all', nowMs))
        return fail('rate_limited', 'too many verification codes are being sent; try later');
      otpsPerAddress.take(address, nowMs);
      otpsAll.take('all', nowMs);
    }
    const sent = await registry.verification.start(phone, consumerId, purpose);
    if (sent === 'rate_limited') return fail('rate_limited', 'too many codes sent to this phone; try later');
    kit.deps.onTextQueued();
    return ok(202, {});
  };

  kit.route(ROUTES.register, ({ request, caller, body }) => {
    const phone = canonicalPhone(body.phone) as string;
    const byOperator = caller?.kind === 'operator';
    return sendVerification(request, byOperator, phone, engine.consumerIdFor(phone), 'sign-in');
  });

  kit.route(ROUTES.verify, async ({ body }) => {
    const phone = canonicalPhone(body.phone) as string;
    const consumerId = engine.consumerIdFor(phone);
    const deviceToken = await registry.verification.verify(
      consumerId,
      body.otp,
      body.revokeOtherDevices === true,
    );
    return deviceToken
      ? ok(200, { consumerId, deviceToken })
      : fail('unauthorized', 'wrong or expired verification code');
  });

  kit.route(ROUTES.purchase, async ({ caller: consumerId, body }) => {
    const { funding } = kit.deps;
    if (!funding) return fail('forbidden', 'this server sells no value by card (PAYCODE_FUNDING=none)');
    const { merchantId, amountCents, paymentToken, idempotencyKey } = body;
    const merchant = registry.merchants.get(merchantId);
    if (!merchant) return fail('not_found', 'no such merchant');
    const phone = registry.phones.of(consumerId);
    if (!phone) return fail('not_found', 'no phone number is known for this consumer');
    const load = () =>
      engine.loadValue({ merchantId, phone, kind: 'gift', funding: 'consumer', amountCents, idempotencyKey });
    const cardBody = (reply: Reply) => ({ cardId: reply.cardId, balanceCents: reply.balanceCents });
    // A purchase already loaded under this key answers from its stored result and is not charged again.
    if (engine.hasStoredAnswer(idempotencyScope.consumer(consumerId), idempotencyKey)) {
      const reply = await load();
      return answerFor(reply, 201, () => cardBody(reply));
    }
    // Refuse what the engine would refuse before any money is taken.
    const view = await engine.wallet(consumerId);
    const card = view?.cards.find((held) => held.merchantId === merchantId && held.kind === 'gift');
    if (
      amountCents > limits.loadMaxCents ||
      (card?.balanceCents ?? 0) + amountCents > limits.cardBalanceMaxCents
    )
      return fail('limit_exceeded', STATUSES.limit_exceeded.meaning);
    const charge = await funding.charge({
      // Different fields under one key are different charges, so refunding a refused one touches no other.
      idempotencyKey: `${consumerId}/${idempotencyKey}/${merchantId}/${amountCents}`,
      amountCents,
      paymentToken,
      description: `paycode gift card ${merchant.name}`,
    });
    if (!charge.ok) return fail(charge.status, 'the card payment was declined');
    const reply = await load();
    // A refusal (the card filled up meanwhile) gives the money back; a transient status keeps the charge
    // for the retry under the same key, which the processor answers with the same charge.
    if (reply.status !== 'approved' && !TRANSIENT_STATUSES.has(reply.status))
      await funding.refund(charge.chargeId);
    return answerFor(reply, 201, () => cardBody(reply));
  });

  kit.route(ROUTES.sendGift, async ({ caller: consumerId, body }) => {
    const { merchantId, amountCents, idempotencyKey } = body;
    const toPhone = canonicalPhone(body.toPhone) as string;
    if (!registry.merchants.get(merchantId)) return fail('not_found', 'no such merchant');
    if (engine.consumerIdFor(toPhone) === consumerId)
      return fail('bad_request', 'a gift goes to another phone than yours');
    const reply = await kit.deps.gifts.give({ consumerId, merchantId, amountCents, toPhone, idempotencyKey });
    return answerFor(reply, 201, () => ({ giftId: reply.giftId, balanceCents: reply.balanceCents }));
  });

  kit.route(ROUTES.setCardAlert, async ({ request, caller: consumerId, body }) => {
    const cardId = request.params[0] as string;
    const reply = await engine.setAlert(consumerId, cardId, body.belowCents);
    if (reply.status === 'not_found' || reply.status === 'bad_request')
      return fail('not_found', 'no such card in this wallet');
    return answerFor(reply, 200, () => ({ cardId, alertBelowCents: body.belowCents }));
  });

  kit.route(ROUTES.wallet, async ({ caller: consumerId }) => {
    const view = await engine.wallet(consumerId);
    return view ? ok(200, walletBody(view, registry)) : fail('internal', 'the wallet could not be read');
  });

  kit.route(ROUTES.issueCode, async ({ caller: consumerId, body }) => {
    const merchant = registry.merchants.get(body.merchantId);
    if (!merchant) return fail('not_found', 'no such merchant');
    const reply = await engine.issueCode({
      consumerId,
      merchantId: body.merchantId,
      capCents: body.capCents,
      codeDigitsMin: codeDigitsMinOf(merchant),
    });
    return answerFor(reply, 201, () => ({
      code: reply.code,
      merchantId: body.merchantId,
      capCents: reply.capCents,
      expiresAtMs: reply.expiresAtMs,
    }));
  });

  kit.route(ROUTES.cancelCode, async ({ caller: consumerId }) => {
    const reply = await engine.cancelCode(consumerId);
    return reply.status === 'not_found'
      ? fail('not_found', 'no live code')
      : answerFor(reply, 200, () => ({}));
  });

  kit.route(ROUTES.history, async ({ caller: consumerId }) => {
    const entries = await engine.history(consumerId);
    if (!entries) return fail('internal', 'the history could not be read');
    return ok(200, {
      entries: entries.map(({ atMs, kind, merchantId, amountCents, balanceCents, ref, cardId }) => ({
        atMs,
        kind,
        merchantId,
        amountCents,
        balanceCents,
        ref,
        cardId,
      })),
    });
  });

  // Signs this device out (a lost phone revokes every device when it verifies again, see above).
  kit.route(ROUTES.signOut, async ({ request }) => {
    await registry.credentials.revokeDeviceToken(request.token as string);
    return ok(200, {});
  });

  // Freezing needs only the device; with `revokeOtherDevices` it also signs every other device out (a
  // token that may have been stolen) and gives this one a new token.
  kit.route(ROUTES.freeze, async ({ caller: consumerId, body }) => {
    const reply = await engine.freeze(consumerId);
    if (reply.status !== 'approved') return answerFor(reply, 200, () => ({}));
    if (!body.revokeOtherDevices) return ok(200, { frozen: true });
    return ok(200, { frozen: true, deviceToken: await registry.verification.revokeOtherDevices(consumerId) });
  });

  // Unfreezing needs a fresh code texted to the phone, so a stolen device token cannot undo a freeze.
  kit.route(ROUTES.unfreezeCode, ({ request, caller: consumerId }) => {
    const phone = registry.phones.of(consumerId);
    if (!phone) return fail('not_found', 'no phone number is known for this consumer');
    return sendVerification(request, false, phone, consumerId, 'unfreeze');
  });
  kit.route(ROUTES.unfreeze, async ({ caller: consumerId, body }) => {
    if (!(await registry.verification.confirmPhone(consumerId, body.otp)))
      return fail('unauthorized', 'wrong or expired verification code');
    const reply = await engine.unfreeze(consumerId);
    return answerFor(reply, 200, () => ({ frozen: false }));
  });
}
