import type { LiabilityFigures, LiabilityReport } from '../../sdk/http-answers.ts';
import { busy, h, money, mount, notice } from '../common/ui.ts';
import { dayLabel, errorText } from './format.ts';
import type { Session } from './session.ts';
import { dataTable } from './table.ts';

/**
 * Outstanding value: what the merchant's gift cards and rewards still owe in goods, per business day,
 * with what issued, sold, redeemed and expired it, reconciled to the journal; the CSV for the books.
 */
const DAYS = 14;
const KIND_NAMES = { gift: 'Gift cards', giftBought: '… of which bought', reward: 'Rewards' } as const;

export function liabilitySection(session: Session) {
  const host = h('div');
  const status = h('div', { 'aria-live': 'polite' });
  const download = h('button', { class: 'btn small', type: 'button' }, 'Download CSV');
  download.addEventListener('click', () =>
    busy(download, () =>
      session.download(`/liability?days=${DAYS}&format=csv`, 'paycode-outstanding-value.csv'),
    ).catch((error: unknown) => mount(status, notice('error', errorText(error)))),
  );

  const row = (date: string, kind: keyof typeof KIND_NAMES, f: LiabilityFigures) =>
    h(
      'tr',
      null,
      h('th', { scope: 'row' }, `${dayLabel(date)} · ${KIND_NAMES[kind]}`),
      h('td', { class: 'num' }, money(f.openingCents)),
      h('td', { class: 'num' }, money(f.issuedCents)),
      h('td', { class: 'num' }, money(f.soldCents)),
      h('td', { class: 'num' }, money(f.redeemedCents)),
      h('td', { class: 'num' }, money(f.expiredCents)),
      h('td', { class: 'num' }, h('strong', null, money(f.closingCents))),
    );

  const render = (report: LiabilityReport) => {
    const newest = report.days.at(-1);
    const outstanding = newest ? newest.gift.closingCents + newest.reward.closingCents : 0;
    mount(
      host,
      h(
        'p',
        null,
        h('strong', null, `${money(outstanding)} outstanding`),
        ` now: ${money(newest?.gift.closingCents ?? 0)} on gift cards, ${money(newest?.reward.closingCents ?? 0)} on rewards. Gift card value never expires; rewards may.`,
      ),
      report.reconciled
        ? null
        : notice('warn', 'Some movements of your cards are in none of these figures. Tell the operator.'),
      report.scanLimited
        ? notice(
            'warn',
            'The journal is longer than one report reads: these figures cover only the part read so far. Open this tab again to read on.',
          )
        : null,
      dataTable({
        caption: 'Outstanding value per business day',
        columns: [
          'Business day',
          ...['Opening', 'Issued', 'Sold', 'Redeemed', 'Expired', 'Closing'].map((label) => ({
            label,
            class: 'num',
          })),
        ],
        rows: [...report.days]
          .reverse()
          .flatMap((day) => [
            row(day.date, 'gift', day.gift),
            row(day.date, 'giftBought', day.giftBought),
            row(day.date, 'reward', day.reward),
          ]),
      }),
    );
  };

  const element = h(
    'section',
    { class: 'panel', 'aria-labelledby': 'liability-title' },
    h('div', { class: 'panel-head' }, h('h2', { id: 'liability-title' }, 'Outstanding value'), download),
    h(
      'p',
      { class: 'muted' },
      `What your cards still owe in goods, per business day for the last ${DAYS} days: issued by you, sold to consumers, redeemed (net of voids and refunds) and expired.`,
    ),
    status,
    host,
  );

  return {
    element,
    async refresh() {
      render(await session.call<LiabilityReport>('GET', `/liability?days=${DAYS}`));
    },
  };
}
