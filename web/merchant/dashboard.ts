import { ApiError } from '../common/api.ts';
import { h, mount, notice, topbar } from '../common/ui.ts';
import { clock, errorText } from './format.ts';
import { liabilitySection } from './liability.ts';
import { overviewSection } from './overview.ts';
import type { Session } from './session.ts';
import { statementsSection } from './statements.ts';
import { terminalsSection } from './terminals.ts';
import { transactionsSection } from './transactions.ts';

/**
 * The signed-in dashboard: a top bar, the merchant's name, and five sections behind tabs (the URL hash
 * keeps the one open across a reload). The open section refreshes every 30 seconds while the page is
 * visible, when the page becomes visible again, and after each action; the top bar says when the figures
 * were last read, or that the server cannot be reached.
 */
const REFRESH_MS = 30_000;
const NAMES = {
  overview: 'Overview',
  terminals: 'Terminals',
  transactions: 'Transactions',
  statements: 'Statements',
  liability: 'Outstanding',
} as const;
type Name = keyof typeof NAMES;

const isName = (value: string): value is Name => Object.hasOwn(NAMES, value);

export function showDashboard(root: HTMLElement, session: Session, signOut: () => void): () => void {
  let current: Name = isName(location.hash.slice(1)) ? (location.hash.slice(1) as Name) : 'overview';
  const sections = {
    overview: overviewSection(session, () => show('transactions')),
    terminals: terminalsSection(session),
    transactions: transactionsSection(session),
    statements: statementsSection(session),
    liability: liabilitySection(session),
  };
  const dot = h('span', { class: 'status-dot', role: 'status' }, 'Loading…');
  const alert = h('div', { 'aria-live': 'polite' });

  const refresh = async () => {
    const name = current;
    try {
      await sections[name].refresh();
      dot.className = 'status-dot online';
      dot.textContent = `Updated ${clock(Date.now())}`;
      mount(alert);
    } catch (error) {
      if (error instanceof ApiError && error.code === 'unauthorized') return;
      const offline = error instanceof ApiError && error.code === 'offline';
      dot.className = `status-dot ${offline ? 'offline' : ''}`;
      dot.textContent = offline ? 'Offline' : 'Not updated';
      mount(alert, notice(offline ? 'warn' : 'error', errorText(error)));
    }
  };

  const tabs = (Object.keys(NAMES) as Name[]).map((name) => {
    const tab = h(
      'button',
      {
        type: 'button',
        role: 'tab',
        id: `tab-${name}`,
        'aria-controls': `panel-${name}`,
        'aria-selected': String(name === current),
        tabIndex: name === current ? 0 : -1,
      },
      NAMES[name],
    );
    tab.addEventListener('click', () => show(name));
    return tab;
  });
  const panels = (Object.keys(NAMES) as Name[]).map((name) => {
    const panel = h(
      'div',
      { role: 'tabpanel', id: `panel-${name}`, 'aria-labelledby': `tab-${name}`, class: 'section' },
      sections[name].element,
    );
    panel.hidden = name !== current;
    return panel;
  });
  const nav = h('nav', { class: 'tabs dash-nav', role: 'tablist', 'aria-label': 'Dashboard sections' }, tabs);
  // Arrow keys move between tabs, as in any tab list.
  nav.addEventListener('keydown', (event) => {
    const step = event.key === 'ArrowRight' ? 1 : event.key === 'ArrowLeft' ? -1 : 0;
    if (!step) return;
    const names = Object.keys(NAMES) as Name[];
    const next = names[(names.indexOf(current) + step + names.length) % names.length] as Name;
    show(next);
    tabs[names.indexOf(next)]?.focus();
  });

  function show(name: Name): void {
    current = name;
    tabs.forEach((tab, index) => {
      const selected = index === (Object.keys(NAMES) as Name[]).indexOf(name);
      tab.setAttribute('aria-selected', String(selected));
      tab.tabIndex = selected ? 0 : -1;
    });
    panels.forEach((panel) => {
      panel.hidden = panel.id !== `panel-${name}`;
    });
    history.replaceState(null, '', `#${name}`);
    void refresh();
  }

  const signOutButton = h('button', { class: 'btn ghost small', type: 'button' }, 'Sign out');
  signOutButton.addEventListener('click', signOut);
  mount(
    root,
    topbar('for merchants', dot, signOutButton),
    h(
      'main',
      { class: 'page wide dashboard' },
      h(
        'div',
        { class: 'dash-header' },
        h(
          'div',
          null,
          h('h1', null, session.name),
          h('p', { class: 'muted' }, 'Merchant ID ', h('span', { class: 'mono' }, session.merchantId)),
        ),
        nav,
      ),
      alert,
      panels,
    ),
  );

  void refresh();
  const timer = setInterval(() => {
    if (!document.hidden) void refresh();
  }, REFRESH_MS);
  const onVisible = () => {
    if (!document.hidden) void refresh();
  };
  document.addEventListener('visibilitychange', onVisible);
  return () => {
    clearInterval(timer);
    document.removeEventListener('visibilitychange', onVisible);
  };
}
