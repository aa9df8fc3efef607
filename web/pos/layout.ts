import { h } from '../shared/ui.ts';

/** The dark bar on top of every POS screen: the brand, then whatever the screen puts on the right. */
export function topbar(...right: (Node | null)[]): HTMLElement {
  return h(
    'header',
    { class: 'topbar' },
    h(
      'div',
      { class: 'brand' },
      h('span', { class: 'brand-mark', 'aria-hidden': 'true' }, 'p'),
      'paycode',
      h('small', null, 'POS terminal'),
    ),
    h('div', { class: 'spacer' }),
    ...right,
  );
}

/** A definition list of facts (`Terminal ID` → `tm_…`). */
export function facts(rows: readonly [string, Node | string][]): HTMLElement {
  return h(
    'dl',
    { class: 'pos-facts' },
    rows.map(([term, value]) => h('div', null, h('dt', null, term), h('dd', null, value))),
  );
}
