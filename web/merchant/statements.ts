import { busy, h, money, mount, notice, plural } from '../common/ui.ts';
import { errorText, longDay, signedMoney } from './format.ts';
import { Pages } from './pages.ts';
import type { Session } from './session.ts';
import { dataTable } from './table.ts';
import { transactionsTable } from './transactions.ts';
import type { Statement, StatementFigures } from './types.ts';

/**
 * Settled business days: the list with each day's payout, a month at a time ("Show older" goes further
 * back), and a day's statement with every posting that went into it, the fees and the ACH entry that
 * carries it; the CSV for the books.
 */
const PAGE_DAYS = 31;

interface StatementsPage {
  statements: StatementFigures[];
  next: string | null;
}

const DIRECTIONS = {
  credit: { label: 'Paid to you', badge: 'ok' },
  debit: { label: 'Collected', badge: 'warn' },
  none: { label: 'Nothing due', badge: 'muted' },
} as const;

export function statementsSection(session: Session) {
  const listHost = h('div');
  const detailHost = h('div', { 'aria-live': 'polite' });
  const status = h('div', { 'aria-live': 'polite' });
  const more = h('button', { class: 'btn ghost', type: 'button', hidden: true }, 'Show older');
  const pages = new Pages<StatementFigures, StatementsPage>(
    (before) => {
      const query = new URLSearchParams({ limit: String(PAGE_DAYS) });
      if (before) query.set('before', before);
      return session.call<StatementsPage>('GET', `/statements?${query}`);
    },
    (page) => page.statements,
  );
  let selected: string | null = null;

  const open = async (date: string) => {
    selected = date;
    renderList();
    mount(detailHost, h('p', { class: 'muted' }, 'Loading the statement…'));
    try {
      const statement = await session.call<Statement>('GET', `/statements/${encodeURIComponent(date)}`);
      if (selected === date) mount(detailHost, detail(statement));
    } catch (error) {
      mount(detailHost, notice('error', errorText(error)));
    }
  };

  const detail = (statement: Statement) => {
    const download = h('button', { class: 'btn small', type: 'button' }, 'Download CSV');
    download.addEventListener('click', () =>
      busy(download, () =>
        session.download(
          `/statements/${encodeURIComponent(statement.businessDate)}?format=csv`,
          `paycode-statement-${statement.businessDate}.csv`,
        ),
      ).catch((error: unknown) => mount(status, notice('error', errorText(error)))),
    );
    const returnedCents = statement.voidedCents + statement.reversedCents + statement.refundedCents;
    const figure = (label: string, value: string) =>
      h('div', { class: 'figure' }, h('dt', null, label), h('dd', null, value));
    const direction = DIRECTIONS[statement.direction];
    return h(
      'section',
      { class: 'panel statement', 'aria-labelledby': 'statement-title' },
      h(
        'div',
        { class: 'panel-head' },
        h(
          'div',
          null,
          h('h2', { id: 'statement-title' }, `Statement for ${longDay(statement.businessDate)}`),
          h(
            'p',
            { class: 'muted' },
            `ACH file ${statement.achFileId}`,
            statement.traceNumber ? ` · trace ${statement.traceNumber}` : '',
            ` · ACH reference ${statement.achReference}`,
            ` · effective ${longDay(statement.effectiveDate)}`,
          ),
        ),
        download,
      ),
      h(
        'dl',
        { class: 'figures' },
        figure('Sales', money(statement.redeemedCents)),
        figure('Voids and refunds', money(returnedCents)),
        figure('Cards issued', money(statement.issuedCents)),
        figure('Expired rewards', money(statement.expiredCents)),
        figure('Fees', money(statement.feeCents)),
        h(
          'div',
          { class: 'figure total' },
          h('dt', null, 'Net'),
          h(
            'dd',
            null,
            signedMoney(statement.netCents),
            ' ',
            h('span', { class: `badge ${direction.badge}` }, direction.label),
          ),
        ),
      ),
      transactionsTable(statement.lines, `Postings of ${statement.businessDate}`, [
        h(
          'tr',
          { class: 'subtotal' },
          h('td', { colSpan: 3 }, 'Fees'),
          h('td', { class: 'num amount' }, signedMoney(-statement.feeCents)),
        ),
        h(
          'tr',
          { class: 'total' },
          h('td', { colSpan: 3 }, 'Net'),
          h('td', { class: 'num amount' }, signedMoney(statement.netCents)),
        ),
      ]),
    );
  };

  const renderList = () => {
    const statements = pages.rows;
    more.hidden = pages.next === null;
    if (statements.length === 0) {
      mount(
        listHost,
        h('p', { class: 'empty' }, 'No settled days yet. Each business day appears here once it is settled.'),
      );
      return;
    }
    mount(
      listHost,
      dataTable({
        caption: 'Settled business days',
        selectable: true,
        columns: [
          'Business day',
          { label: 'Sales', class: 'num' },
          { label: 'Fees', class: 'num' },
          { label: 'Net', class: 'num' },
          'Payout',
          { label: 'Statement', hidden: true },
        ],
        rows: statements.map((statement) => {
          const view = h(
            'button',
            {
              class: 'btn ghost small',
              type: 'button',
              'aria-label': `View statement ${statement.businessDate}`,
              'aria-pressed': String(selected === statement.businessDate),
            },
            'View',
          );
          view.addEventListener('click', () => void open(statement.businessDate));
          const direction = DIRECTIONS[statement.direction];
          return h(
            'tr',
            { class: selected === statement.businessDate ? 'selected' : '' },
            h(
              'td',
              null,
              h('div', { class: 'cell-title' }, longDay(statement.businessDate)),
              h('div', { class: 'muted small' }, plural(statement.redemptions, 'sale')),
            ),
            h('td', { class: 'num' }, money(statement.redeemedCents)),
            h('td', { class: 'num' }, money(statement.feeCents)),
            h('td', { class: 'num amount' }, signedMoney(statement.netCents)),
            h('td', null, h('span', { class: `badge ${direction.badge}` }, direction.label)),
            h('td', { class: 'actions' }, view),
          );
        }),
      }),
    );
  };

  // A periodic refresh reads the newest days only while no older page is open (web/merchant/pages.ts).
  const refresh = async () => {
    if (!(await pages.refresh())) return;
    renderList();
    const first = pages.rows[0];
    if (selected === null && first) await open(first.businessDate);
  };
  more.addEventListener('click', () =>
    busy(more, async () => {
      if (await pages.older()) renderList();
    }).catch((error: unknown) => mount(status, notice('error', errorText(error)))),
  );
  const reload = h('button', { class: 'btn ghost small', type: 'button' }, 'Refresh');
  reload.addEventListener('click', () =>
    busy(reload, async () => {
      if (await pages.newest()) renderList();
    }).catch((error: unknown) => mount(status, notice('error', errorText(error)))),
  );

  const element = h(
    'div',
    { class: 'statements-layout' },
    h(
      'section',
      { class: 'panel', 'aria-labelledby': 'statements-title' },
      h(
        'div',
        { class: 'panel-head' },
        h(
          'div',
          null,
          h('h2', { id: 'statements-title' }, 'Settled days'),
          h(
            'p',
            { class: 'muted' },
            'A positive net is paid to your bank account, a negative one collected.',
          ),
        ),
        reload,
      ),
      status,
      listHost,
      h('div', { class: 'more' }, more),
    ),
    detailHost,
  );
  return { element, refresh };
}
