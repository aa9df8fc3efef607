import { ApiError } from '../common/api.ts';
import { busy, h, mount, notice } from '../common/ui.ts';
import { displayRef, errorText, KINDS, kindLabel, shortTime, signedMoney } from './format.ts';
import { Pages } from './pages.ts';
import type { Session } from './session.ts';
import { dataTable } from './table.ts';
import type { Transaction, TransactionsPage } from './types.ts';

/**
 * The merchant's postings, newest first, a page at a time. The server reads the journal in bounded
 * scans: a page may come back short with a cursor to go on, which "Show older" follows.
 */
const PAGE_ROWS = 50;
/**
 * The newest postings in the CSV download: the server's `reportPageEntriesMax`, fixed by the API's
 * declarations (core/limits.ts cannot be bundled here: it imports node:crypto through core/codes.ts).
 */
const CSV_ROWS = 200;

/** Postings as a table (transactions, or a statement's lines), with `footer` rows such as totals. */
export function transactionsTable(
  rows: Pick<Transaction, 'atMs' | 'kind' | 'ref' | 'amountCents'>[],
  caption: string,
  footer: HTMLTableRowElement[] = [],
): HTMLElement {
  if (rows.length === 0 && footer.length === 0) return h('p', { class: 'empty' }, 'No transactions yet.');
  return dataTable({
    caption,
    columns: ['Time', 'Type', 'Reference', { label: 'Amount', class: 'num' }],
    rows: rows.map((row) => {
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
    footer,
  });
}

export function transactionsSection(session: Session) {
  const host = h('div', { 'aria-live': 'polite' });
  const status = h('div');
  const more = h('button', { class: 'btn ghost', type: 'button', hidden: true }, 'Show older');
  const pages = new Pages<Transaction, TransactionsPage>(
    (before) => {
      const query = new URLSearchParams({ limit: String(PAGE_ROWS) });
      if (before) query.set('before', before);
      return session.call<TransactionsPage>('GET', `/transactions?${query}`);
    },
    (page) => page.transactions,
  );
  let scanLimited = false;

  const render = (note: Node | null = null) => {
    const { rows } = pages;
    mount(host, transactionsTable(rows, 'Transactions, newest first'));
    more.hidden = pages.next === null;
    const sum = rows.reduce((total, row) => total + row.amountCents, 0);
    mount(
      status,
      note,
      rows.length > 0
        ? h(
            'p',
            { class: 'muted' },
            `${rows.length} shown, ${signedMoney(sum)} in all.`,
            pages.olderOpen
              ? ' Older pages are open, so the list does not update by itself: Refresh shows the newest.'
              : '',
          )
        : null,
      scanLimited && pages.next !== null
        ? notice(
            'info',
            'The search stopped early, to keep the tills fast. ',
            'Show older to search further back.',
          )
        : null,
    );
  };
  const show = (page: TransactionsPage | null, note: Node | null = null) => {
    if (!page) return;
    scanLimited = page.scanLimited;
    render(note);
  };
  const showOlder = async () => {
    try {
      show(await pages.older());
    } catch (error) {
      // A cursor does not outlive a restart of the server: start again from the newest.
      if (!(error instanceof ApiError && error.code === 'bad_request')) throw error;
      show(
        await pages.newest(),
        notice(
          'info',
          'The server was restarted since the list was read, so it starts again from the newest.',
        ),
      );
    }
  };
  more.addEventListener('click', () =>
    busy(more, showOlder).catch((error: unknown) => mount(status, notice('error', errorText(error)))),
  );
  const refresh = h('button', { class: 'btn ghost small', type: 'button' }, 'Refresh');
  refresh.addEventListener('click', () =>
    busy(refresh, async () => show(await pages.newest())).catch((error: unknown) =>
      mount(status, notice('error', errorText(error))),
    ),
  );

  const download = h('button', { class: 'btn ghost small', type: 'button' }, 'Download CSV');
  download.addEventListener('click', () =>
    busy(download, () =>
      session.download(`/transactions?format=csv&limit=${CSV_ROWS}`, 'paycode-transactions.csv'),
    ).catch((error: unknown) => mount(status, notice('error', errorText(error)))),
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
      h('div', { class: 'actions' }, download, refresh),
    ),
    host,
    status,
    h('div', { class: 'more' }, more),
  );
  return {
    element,
    // A periodic refresh reloads the newest page only while no older page is open (web/merchant/pages.ts).
    refresh: async () => show(await pages.refresh()),
  };
}
