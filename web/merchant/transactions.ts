import { busy, h, mount, notice } from '../shared/ui.ts';
import { displayRef, errorText, KINDS, kindLabel, shortTime, signedMoney } from './format.ts';
import type { Session } from './session.ts';
import type { Transaction, TransactionsPage } from './types.ts';

/**
 * The merchant's postings, newest first, a page at a time. The server reads the journal in bounded
 * scans: a page may come back short with a cursor to go on, which "Show older" follows.
 */
export function transactionsTable(rows: Transaction[], caption: string): HTMLElement {
  if (rows.length === 0) return h('p', { class: 'empty' }, 'No transactions yet.');
  return h(
    'div',
    { class: 'table-wrap' },
    h(
      'table',
      { class: 'data' },
      h('caption', { class: 'visually-hidden' }, caption),
      h(
        'thead',
        null,
        h(
          'tr',
          null,
          h('th', { scope: 'col' }, 'Time'),
          h('th', { scope: 'col' }, 'Type'),
          h('th', { scope: 'col' }, 'Reference'),
          h('th', { scope: 'col', class: 'num' }, 'Amount'),
        ),
      ),
      h(
        'tbody',
        null,
        rows.map((row) => {
          const ref = displayRef(row);
          return h(
            'tr',
            null,
            h('td', { class: 'nowrap' }, shortTime(row.atMs)),
            h('td', null, h('span', { class: `badge ${KINDS[row.kind]?.badge ?? ''}` }, kindLabel(row.kind))),
            h('td', { class: 'mono ref', title: ref }, ref),
            h(
              'td',
              { class: `num amount ${row.amountCents > 0 ? 'plus' : 'minus'}` },
              signedMoney(row.amountCents),
            ),
          );
        }),
      ),
    ),
  );
}

export function transactionsSection(session: Session) {
  const host = h('div', { 'aria-live': 'polite' });
  const status = h('div');
  const more = h('button', { class: 'btn ghost', type: 'button', hidden: true }, 'Show older');
  const rows: Transaction[] = [];
  let next: string | null = null;
  let scanned = 0;

  const render = (page: TransactionsPage | null) => {
    mount(host, transactionsTable(rows, 'Transactions, newest first'));
    more.hidden = next === null;
    const sum = rows.reduce((total, row) => total + row.amountCents, 0);
    mount(
      status,
      rows.length > 0
        ? h('p', { class: 'muted' }, `${rows.length} shown, ${signedMoney(sum)} in all.`)
        : null,
      page?.scanLimited
        ? notice(
            'info',
            `The search stopped after reading ${scanned.toLocaleString('en-US')} postings of all merchants, to keep the tills fast. `,
            'Show older to search further back.',
          )
        : null,
    );
  };
  const load = async (reset: boolean) => {
    const query = new URLSearchParams({ limit: '50' });
    if (!reset && next) query.set('before', next);
    const page = await session.call<TransactionsPage>('GET', `/transactions?${query}`);
    if (reset) {
      rows.length = 0;
      scanned = 0;
    }
    rows.push(...page.transactions);
    next = page.next;
    scanned += page.scanned;
    render(page);
  };
  more.addEventListener('click', () =>
    busy(more, () => load(false)).catch((error: unknown) => mount(status, notice('error', errorText(error)))),
  );
  const refresh = h('button', { class: 'btn ghost small', type: 'button' }, 'Refresh');
  refresh.addEventListener('click', () =>
    busy(refresh, () => load(true)).catch((error: unknown) =>
      mount(status, notice('error', errorText(error))),
    ),
  );

  const element = h(
    'section',
    { class: 'panel', 'aria-labelledby': 'transactions-title' },
    h(
      'div',
      { class: 'panel-head' },
      h(
        'div',
        null,
        h('h2', { id: 'transactions-title' }, 'Transactions'),
        h(
          'p',
          { class: 'muted' },
          'Sales, voids, refunds and cards issued, as they count toward your payouts.',
        ),
      ),
      refresh,
    ),
    host,
    status,
    h('div', { class: 'more' }, more),
  );
  return {
    element,
    // A periodic refresh reloads the first page only while no older page was opened.
    refresh: () => (rows.length > 50 ? Promise.resolve() : load(true)),
  };
}
