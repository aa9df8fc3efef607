import { createHash } from 'node:crypto';
import type { ChargeRequest, ChargeResult, FundingProvider } from './provider.ts';

/**
 * The sandbox processor (docs/http-api.md, "Funding providers"): `tok_sandbox_ok` is approved, `tok_sandbox_decline` (and any
 * other token) is declined. Charges are deterministic per idempotency key, like a real processor's.
 *
 * @module
 */

export class SandboxFunding implements FundingProvider {
  readonly name = 'sandbox';

  async charge(request: ChargeRequest): Promise<ChargeResult> {
    if (request.paymentToken !== 'tok_sandbox_ok') return { ok: false, status: 'payment_declined' };
    const digest = createHash('sha256').update(request.idempotencyKey).digest('base64url');
    return { ok: true, chargeId: `ch_sandbox_${digest.slice(0, 20)}` };
  }

  async refund(_chargeId: string): Promise<void> {}
}
