import { h, money, mount, notice, plural } from '../common/ui.ts';
import { barChart, type ChartPoint } from './chart.ts';
import { dayLabel, hourLabel, isBrowserTimeZone, longDay, zonedTime } from './format.ts';
import { issueCardPanel } from './issue.ts';
import type { Session } from './session.ts';
import { transactionsTable } from './transactions.ts';
import type { Activity, Bucket, TransactionsPage } from './types.ts';

/**
 * The first screen: today's figures, sales per day or per hour, issuing a card, and the latest
 * transactions. "Today" is the current business day, the day the next settlement pays. The hours are
 * whole hours of the settlement time zone the report names, and are labelled in it, so that a bar and
 * its label agree whatever the browser's zone.
 */
const CHART_DAYS = 14;

type Period = 'day' | 'hour';

function stat(label: string) {
  const value = h('div', { class: 'value' }, '—');
  const detail = h('div', { class: 'delta' }, '\u00a0');
  return {
    element: h('div', { class: 'stat' }, h('div', { class: 'label' }, label), value, detail),
    value,
    detail,
  };
}

export function overviewSection(session: Session, showAll: () => void) {
  const sales = stat("Today's sales");
  const redemptions = stat('Redemptions today');
  const average = stat('Average sale');
  const issued = stat('Cards issued today');
  const chartHost = h('div');
  const chartNote = h('div');
  const recentHost = h('div');
  let activity: Activity | null = null;
  let period: Period = 'day';

  const tabs = (['day', 'hour'] as const).map((value) => {
    const tab = h(
      'button',
      {
        type: 'button',
        role: 'tab',
        'aria-selected': String(value === period),
        'aria-controls': 'sales-chart',
      },
      value === 'day' ? `By day (${CHART_DAYS} days)` : 'By hour (24 h)',
    );
    tab.addEventListener('click', () => {
      period = value;
      for (const other of tabs) other.setAttribute('aria-selected', String(other === tab));
      renderChart();
    });
    return tab;
  });

  const renderChart = () => {
    const report = activity;
    if (!report) return;
    const points: ChartPoint[] =
      period === 'day'
        ? report.days.map((day, index) => ({
            label: dayLabel(day.date),
            longLabel: longDay(day.date),
            valueCents: day.netCents,
            count: day.redemptions,
            current: index === report.days.length - 1,
          }))
        : report.hours.map((hour, index) => ({
            label: hourLabel(hour.startMs, report.timeZone),
            longLabel: `${zonedTime(hour.startMs, report.timeZone)} – ${hourLabel(hour.endMs, report.timeZone, true)}`,
            valueCents: hour.netCents,
            count: hour.redemptions,
            current: index === report.hours.length - 1,
          }));
    const buckets: Bucket[] = period === 'day' ? report.days : report.hours;
    const total = buckets.reduce((sum, bucket) => sum + bucket.netCents, 0);
    const count = buckets.reduce((sum, bucket) => sum + bucket.redemptions, 0);
    const span = period === 'day' ? `the last ${CHART_DAYS} business days` : 'the last 24 hours';
    // Said only when it differs from the browser's, where times would otherwise be read.
    const zone =
      period === 'hour' && !isBrowserTimeZone(report.timeZone) ? ` (hours of ${report.timeZone})` : '';
    mount(
      chartHost,
      barChart(
        points,
        `Sales per ${period}, ${span}`,
        `${money(total)} in ${plural(count, 'redemption')} over ${span}, net of voids and refunds.`,
      ),
    );
    mount(
      chartNote,
      h(
        'p',
        { class: 'muted chart-total' },
        h('strong', null, money(total)),
        ` from ${plural(count, 'sale')} over ${span}${zone}`,
      ),
      report.unread
        ? notice(
            'warn',
            `Figures before ${zonedTime(report.unread.toMs, report.timeZone, true)} may be low: `,
            'the server limits how much one report reads, and it stopped there.',
          )
        : null,
    );
  };

  const renderStats = () => {
    if (!activity) return;
    const today = activity.days.at(-1) as Bucket;
    const yesterday = activity.days.at(-2);
    sales.value.textContent = money(today.netCents);
    sales.detail.textContent = yesterday ? `Yesterday ${money(yesterday.netCents)}` : '';
    redemptions.value.textContent = today.redemptions.toLocaleString('en-US');
    redemptions.detail.textContent =
      today.returnedCents > 0 ? `${money(today.returnedCents)} returned` : 'No returns';
    average.value.textContent =
      today.redemptions > 0 ? money(Math.round(today.redeemedCents / today.redemptions)) : '—';
    const week = activity.days.slice(-7);
    const weekCount = week.reduce((sum, day) => sum + day.redemptions, 0);
    const weekCents = week.reduce((sum, day) => sum + day.redeemedCents, 0);
    average.detail.textContent =
      weekCount > 0 ? `7-day average ${money(Math.round(weekCents / weekCount))}` : '';
    issued.value.textContent = money(today.issuedCents);
    issued.detail.textContent = 'Gift cards and rewards';
  };

  const viewAll = h('button', { class: 'btn ghost small', type: 'button' }, 'View all');
  viewAll.addEventListener('click', showAll);

  // One read after the other: the server reads one report of a merchant at a time.
  const refresh = async () => {
    const report = await session.call<Activity>('GET', `/activity?days=${CHART_DAYS}`);
    const recent = await session.call<TransactionsPage>('GET', '/transactions?limit=8');
    activity = report;
    renderStats();
    renderChart();
    mount(recentHost, transactionsTable(recent.transactions, 'Latest transactions'));
  };

  const element = h(
    'div',
    { class: 'stack' },
    h('div', { class: 'stats' }, sales.element, redemptions.element, average.element, issued.element),
    h(
      'div',
      { class: 'overview-grid' },
      h(
        'section',
        { class: 'panel', 'aria-labelledby': 'sales-title' },
        h(
          'div',
          { class: 'panel-head' },
          h('h2', { id: 'sales-title' }, 'Sales'),
          h('div', { class: 'tabs chart-tabs', role: 'tablist', 'aria-label': 'Chart period' }, tabs),
        ),
        h('div', { id: 'sales-chart', role: 'tabpanel' }, chartHost),
        chartNote,
      ),
      issueCardPanel(session, () => void refresh().catch(() => undefined)),
    ),
    h(
      'section',
      { class: 'panel', 'aria-labelledby': 'recent-title' },
      h('div', { class: 'panel-head' }, h('h2', { id: 'recent-title' }, 'Latest transactions'), viewAll),
      recentHost,
    ),
  );
  return { element, refresh };
}
