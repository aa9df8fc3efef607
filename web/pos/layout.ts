import { h, topbar as pageTopbar } from '../common/ui.ts';

/** The dark bar on top of every POS screen, with what the screen puts on the right. */
export function topbar(...right: (Node | null)[]): HTMLElement {
  return pageTopbar('POS terminal', ...right);
}

/** A definition list of facts (`Terminal ID` → `tm_…`). */
export function facts(rows: readonly [string, Node | string][]): HTMLElement {
  return h(
    'dl',
    { class: 'pos-facts' },
    rows.map(([term, value]) => h('div', null, h('dt', null, term), h('dd', null, value))),
  );
}
