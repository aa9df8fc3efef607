import { h, money, plural } from '../common/ui.ts';

/**
 * A bar chart drawn as inline SVG: one bar per period, the current one highlighted, a light grid with
 * dollar labels, a tooltip per bar (its <title>), and for screen readers a title and description plus
 * the same figures as a table under it. Colours and sizes come from the stylesheet (classes), since the
 * content security policy refuses style attributes; geometry is in SVG attributes.
 */
export interface ChartPoint {
  /** Under the bar, e.g. `Nov 27` or `3 PM`. */
  label: string;
  /** In the tooltip and the table, e.g. `Fri, Nov 27, 2026`. */
  longLabel: string;
  valueCents: number;
  count: number;
  current: boolean;
}

const WIDTH = 640;
const HEIGHT = 260;
const PAD = { left: 58, right: 8, top: 14, bottom: 34 };
const TICKS = 4;

/** The SVG namespace: a name, not an address anything is loaded from (test/web-serving.test.ts). */
const SVG_NAMESPACE = 'http://www.w3.org/2000/svg';

function svg<K extends keyof SVGElementTagNameMap>(
  tag: K,
  attributes: Record<string, string | number> = {},
  ...children: (Node | string)[]
): SVGElementTagNameMap[K] {
  const element = document.createElementNS(SVG_NAMESPACE, tag) as SVGElementTagNameMap[K];
  for (const [name, value] of Object.entries(attributes)) element.setAttribute(name, String(value));
  element.append(...children);
  return element;
}

const compact = new Intl.NumberFormat('en-US', {
  style: 'currency',
  currency: 'USD',
  notation: 'compact',
  maximumFractionDigits: 1,
});

/** A step of 1, 2, 2.5 or 5 times a power of ten, in cents, at least a dollar. */
function niceStep(rangeCents: number): number {
  const raw = Math.max(rangeCents / TICKS, 100);
  const power = 10 ** Math.floor(Math.log10(raw));
  const step = [1, 2, 2.5, 5, 10].map((m) => m * power).find((candidate) => candidate >= raw);
  return step ?? 10 * power;
}

let charts = 0;

export function barChart(points: ChartPoint[], title: string, description: string): HTMLElement {
  const id = `chart-${++charts}`;
  const values = points.map((point) => point.valueCents);
  // An empty chart still gets a scale: up to $100.
  const highest = values.some((value) => value !== 0) ? Math.max(...values, 0) : 10_000;
  const lowest = Math.min(...values, 0);
  const step = niceStep(highest - lowest);
  const top = Math.max(step, Math.ceil(highest / step) * step);
  const bottom = Math.floor(lowest / step) * step;
  const plotWidth = WIDTH - PAD.left - PAD.right;
  const plotHeight = HEIGHT - PAD.top - PAD.bottom;
  const y = (cents: number) => PAD.top + ((top - cents) / (top - bottom)) * plotHeight;
  const slot = plotWidth / Math.max(points.length, 1);
  const barWidth = Math.min(slot * 0.62, 44);
  const labelEvery = Math.ceil(points.length / 12);

  const grid: SVGElement[] = [];
  for (let cents = bottom; cents <= top; cents += step) {
    grid.push(
      svg('line', {
        class: cents === 0 ? 'chart-zero' : 'chart-grid',
        x1: PAD.left,
        x2: WIDTH - PAD.right,
        y1: y(cents),
        y2: y(cents),
      }),
      svg(
        'text',
        { class: 'chart-axis', x: PAD.left - 10, y: y(cents) + 4, 'text-anchor': 'end' },
        compact.format(cents / 100),
      ),
    );
  }
  const bars = points.map((point, index) => {
    const x = PAD.left + index * slot;
    const barTop = Math.min(y(point.valueCents), y(0));
    const height = Math.abs(y(point.valueCents) - y(0));
    const tip = `${point.longLabel}: ${money(point.valueCents)}, ${plural(point.count, 'redemption')}`;
    const classes = ['chart-bar', point.current ? 'current' : '', point.valueCents < 0 ? 'negative' : ''];
    return svg(
      'g',
      { class: 'chart-slot' },
      svg('title', {}, tip),
      svg('rect', { class: 'chart-hit', x, y: PAD.top, width: slot, height: plotHeight }),
      point.valueCents === 0
        ? svg('g')
        : svg('rect', {
            class: classes.filter(Boolean).join(' '),
            x: x + (slot - barWidth) / 2,
            y: barTop,
            width: barWidth,
            height: Math.max(height, 2),
            rx: Math.min(4, barWidth / 4),
          }),
      // Labels are counted from the newest bar, which always has one.
      (points.length - 1 - index) % labelEvery === 0
        ? svg(
            'text',
            { class: 'chart-label', x: x + slot / 2, y: HEIGHT - 12, 'text-anchor': 'middle' },
            point.label,
          )
        : svg('g'),
    );
  });
  const empty = values.every((value) => value === 0)
    ? svg(
        'text',
        {
          class: 'chart-empty',
          x: PAD.left + plotWidth / 2,
          y: PAD.top + plotHeight / 2,
          'text-anchor': 'middle',
        },
        'No sales in this period yet',
      )
    : svg('g');
  const chart = svg(
    'svg',
    {
      class: 'chart-svg',
      viewBox: `0 0 ${WIDTH} ${HEIGHT}`,
      role: 'img',
      'aria-labelledby': `${id}-title ${id}-desc`,
    },
    svg('title', { id: `${id}-title` }, title),
    svg('desc', { id: `${id}-desc` }, description),
    ...grid,
    ...bars,
    empty,
  );

  const table = h(
    'table',
    { class: 'chart-table' },
    h('caption', { class: 'visually-hidden' }, title),
    h(
      'thead',
      null,
      h(
        'tr',
        null,
        h('th', { scope: 'col' }, 'Period'),
        h('th', { class: 'num', scope: 'col' }, 'Redemptions'),
        h('th', { class: 'num', scope: 'col' }, 'Sales'),
      ),
    ),
    h(
      'tbody',
      null,
      points.map((point) =>
        h(
          'tr',
          null,
          h('th', { scope: 'row' }, point.longLabel),
          h('td', { class: 'num' }, point.count),
          h('td', { class: 'num' }, money(point.valueCents)),
        ),
      ),
    ),
  );
  return h(
    'figure',
    { class: 'chart' },
    chart,
    h('details', { class: 'chart-data' }, h('summary', null, 'Show the figures as a table'), table),
  );
}
