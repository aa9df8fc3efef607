import { SandboxFunding } from './sandbox.ts';

/**
 * How consumers pay for value they buy: a card processor charges the payment token. The gateway calls
 * `charge` before it loads the card, with an idempotency key of its own, so a retried purchase is
 * charged once; a charge whose value the engine then refuses is refunded. An adapter for a real processor is one new file implementing this interface plus one
 * line in PROVIDERS.
 *
 * @module
 */

export interface ChargeRequest {
  /** Stable for one purchase: the consumer's idempotency key, scoped to the consumer. */
  idempotencyKey: string;
  amountCents: number;
  paymentToken: string;
  /** Shown on the consumer's card statement. */
  description: string;
}

export type ChargeResult = { ok: true; chargeId: string } | { ok: false; status: 'payment_declined' };

export interface FundingProvider {
  readonly name: string;
  charge(request: ChargeRequest): Promise<ChargeResult>;
  /** Gives a charge back in full (the value could not be loaded). Idempotent per charge. */
  refund(chargeId: string): Promise<void>;
}

const PROVIDERS: Record<string, () => FundingProvider> = {
  sandbox: () => new SandboxFunding(),
};

/** `PAYCODE_FUNDING=none`: the server sells no value by card; purchases are refused. */
export const NO_FUNDING = 'none';

/** Test tokens approve here: never in production (server/config.ts). */
export const SANDBOX_FUNDING = 'sandbox';

export const FUNDING_PROVIDERS = [...Object.keys(PROVIDERS), NO_FUNDING];

/** The provider a configuration names; null for `none`. */
export function fundingProvider(name: string): FundingProvider | null {
  if (name === NO_FUNDING) return null;
  const make = PROVIDERS[name];
  if (!make) throw new Error(`unknown funding provider ${name}`);
  return make();
}
