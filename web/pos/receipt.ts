import { h, money, when } from '../common/ui.ts';
import { facts } from './layout.ts';
import type { Sale } from './till.ts';

/**
 * A customer receipt for one sale, laid out like a till slip so that it prints well on a receipt printer
 * or on paper (the buttons around it are `no-print`). The balance left at the store is shown only when
 * it is known, that is right after the sale: it is not kept on the device.
 */
export function receipt(
  sale: Sale,
  terminal: { terminalId: string; merchantId: string },
  balanceCents: number | null,
): HTMLElement {
  const dueCents = sale.requestedCents - sale.approvedCents;
  return h(
    'article',
    { class: 'receipt', 'aria-label': 'Receipt' },
    h(
      'header',
      { class: 'receipt-head' },
      h('span', { class: 'brand-mark', 'aria-hidden': 'true' }, 'p'),
      h('div', null, h('strong', null, 'paycode'), h('small', null, 'Payment receipt')),
    ),
    sale.voided ? h('p', { class: 'receipt-stamp' }, 'Voided') : null,
    facts([
      ['Date', when(sale.atMs)],
      ['Merchant', h('span', { class: 'mono' }, terminal.merchantId)],
      ['Terminal', h('span', { class: 'mono' }, terminal.terminalId)],
      ['Authorization', h('span', { class: 'mono' }, sale.authId)],
    ]),
    h('hr', { class: 'receipt-rule' }),
    dueCents > 0 ? line('Sale total', money(sale.requestedCents)) : null,
    line('Paid with paycode', money(sale.approvedCents), 'total'),
    dueCents > 0 ? line('Still due (other tender)', money(dueCents)) : null,
    sale.refundedCents > 0 ? line('Refunded', `−${money(sale.refundedCents)}`) : null,
    sale.voided ? line('Voided', `−${money(sale.approvedCents)}`) : null,
    balanceCents !== null ? line('Balance after the sale', money(balanceCents)) : null,
    h('hr', { class: 'receipt-rule' }),
    h('p', { class: 'receipt-foot' }, 'Keep this receipt: its authorization number is needed for a refund.'),
  );
}

function line(label: string, value: string, kind = ''): HTMLElement {
  return h(
    'div',
    { class: `receipt-line ${kind}`.trim() },
    h('span', null, label),
    h('span', { class: 'amount' }, value),
  );
}
