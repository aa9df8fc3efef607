/**
 * What each status means at the counter (docs/statuses.md, docs/pos-guide.md "Handle the statuses"):
 * a short title and the one thing the cashier should do next. `codeReusable` says whether the customer
 * can present the same payment code again.
 */
export interface Decline {
  title: string;
  advice: string;
  codeReusable: boolean;
}

const SALE_DECLINES: Readonly<Record<string, Decline>> = {
  invalid_code: {
    title: 'Invalid payment code',
    advice:
      'No live code with these digits at this store. Check the code with the customer digit by digit (6 to 10 digits), or ask them for a new code. Repeated wrong codes lock this terminal.',
    codeReusable: false,
  },
  expired_code: {
    title: 'Payment code expired',
    advice: 'Codes last 20 minutes. Ask the customer to get a new code in their wallet.',
    codeReusable: false,
  },
  insufficient_funds: {
    title: 'Not enough balance',
    advice:
      'The code does not hold this much. Charge a smaller amount, or allow partial approval and take the rest by another tender.',
    codeReusable: true,
  },
  over_cap: {
    title: 'Above the code’s limit',
    advice:
      'The customer capped this code below the amount. Allow partial approval to take what the code allows, or ask for a new code with a higher limit.',
    codeReusable: true,
  },
  limit_exceeded: {
    title: 'Daily spending limit reached',
    advice:
      'This payment would take the customer past their daily limit. Allow partial approval to take what is left for today, and the rest by another tender.',
    codeReusable: true,
  },
  account_frozen: {
    title: 'Account frozen',
    advice: 'The customer has frozen their account, so it cannot pay. Take another tender.',
    codeReusable: false,
  },
  terminal_locked: {
    title: 'Terminal locked',
    advice:
      'Too many wrong codes were entered on this terminal, or the merchant locked it. The merchant can unlock it from the dashboard.',
    codeReusable: true,
  },
  rate_limited: {
    title: 'Too many attempts',
    advice: 'Too many failed codes or requests right now. Wait a minute, then try again.',
    codeReusable: true,
  },
  overloaded: {
    title: 'Service busy',
    advice: 'The payment service is busy. Try again in a moment.',
    codeReusable: true,
  },
  internal: {
    title: 'Service error',
    advice: 'The payment service had a problem. Try again in a moment.',
    codeReusable: true,
  },
  idempotency_mismatch: {
    title: 'Request conflict',
    advice: 'The service refused a conflicting request from this terminal. Charge again.',
    codeReusable: true,
  },
  bad_request: {
    title: 'Request refused',
    advice: 'The service could not read the request. Check the code and the amount, then charge again.',
    codeReusable: true,
  },
  unauthorized: {
    title: 'Terminal not authorized',
    advice: 'This terminal’s key was revoked. Forget the terminal and activate it again.',
    codeReusable: true,
  },
};

export function saleDecline(status: string): Decline {
  return (
    SALE_DECLINES[status] ?? {
      title: 'Payment declined',
      advice: `The service answered “${status}”. Take another tender.`,
      codeReusable: true,
    }
  );
}

const AFTER_SALE_REASONS: Readonly<Record<string, string>> = {
  void_window_closed:
    'Too late to void: the sale is over 24 hours old or already settled. Refund it instead.',
  already_voided: 'This sale was already voided.',
  nothing_to_void: 'This sale was refunded in full: there is nothing left to void.',
  refund_exceeds: 'That is more than what is left to refund on this sale.',
  not_found: 'The service has no such sale for this store.',
  idempotency_mismatch: 'The service refused a conflicting request. Try again.',
  bad_request: 'The service could not read the request. Check the amount.',
  unauthorized: 'This terminal’s key was revoked.',
};

/** Why a void or refund was refused. */
export function afterSaleReason(status: string): string {
  return AFTER_SALE_REASONS[status] ?? `The service answered “${status}”.`;
}
