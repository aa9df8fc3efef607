import { h } from '../common/ui.ts';

/**
 * The dashboard's data tables, one shape for all: a scrolling wrapper, a caption for screen readers (the
 * section's heading says it on screen), a header row of column names, the rows, and optional footer rows
 * such as totals.
 */

/**
 * A column: its name, or its name with the class of its header cell (`num` for figures) and whether the
 * name is for screen readers only (`hidden`).
 */
type Column = string | { label: string; class?: string; hidden?: boolean };

export function dataTable(options: {
  caption: string;
  columns: Column[];
  rows: HTMLTableRowElement[];
  footer?: HTMLTableRowElement[];
  /** Rows can be picked (a statement to view). */
  selectable?: boolean;
}): HTMLElement {
  const header = options.columns.map((column) => {
    const { label, class: className, hidden } = typeof column === 'string' ? { label: column } : column;
    const text = hidden ? h('span', { class: 'visually-hidden' }, label) : label;
    return h('th', className ? { scope: 'col', class: className } : { scope: 'col' }, text);
  });
  return h(
    'div',
    { class: 'table-wrap' },
    h(
      'table',
      { class: options.selectable ? 'data selectable' : 'data' },
      h('caption', { class: 'visually-hidden' }, options.caption),
      h('thead', null, h('tr', null, header)),
      h('tbody', null, options.rows, options.footer ?? []),
    ),
  );
}
