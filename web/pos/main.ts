import '../common/styles.css';
import './pos.css';
import { h, mount, notice } from '../common/ui.ts';
import { activationView } from './activate-view.ts';
import { topbar } from './layout.ts';
import { loadTerminal, type StoredTerminal } from './storage.ts';
import { TillScreen } from './till-view.ts';

/**
 * The browser POS terminal (`/pos/`): activation, then the till. One tab at a time acts as the till (a Web
 * Lock): two tabs of one terminal would each take the other's sale in flight for a lost one and reverse
 * it. A second tab waits, and takes over when the first one closes.
 */
const root = document.getElementById('app') as HTMLElement;
const LOCK_NAME = 'paycode-pos-till';

function message(title: string, text: string): void {
  mount(
    root,
    topbar(),
    h(
      'main',
      { class: 'page narrow' },
      h('div', { class: 'hero' }, h('h1', null, title)),
      notice('warn', text),
    ),
  );
}

function showActivation(note?: HTMLElement): void {
  mount(root, activationView(openTill, note));
}

function openTill(terminal: StoredTerminal): void {
  new TillScreen(root, terminal, () =>
    showActivation(
      notice('ok', 'The terminal was removed from this browser. Activate it again with a new code.'),
    ),
  );
}

async function start(): Promise<void> {
  let terminal: StoredTerminal | null;
  try {
    terminal = await loadTerminal();
  } catch {
    message(
      'Storage unavailable',
      'This browser does not let the page keep data (private mode or blocked site data), so it cannot hold a terminal key.',
    );
    return;
  }
  if (terminal) openTill(terminal);
  else showActivation();
}

function boot(): void {
  // WebCrypto exists only on secure pages: HTTPS, or localhost during development.
  if (!window.isSecureContext || !crypto.subtle) {
    message(
      'Secure connection needed',
      'The terminal signs every payment with WebCrypto, which browsers offer only over HTTPS (or on localhost). Open this page over HTTPS.',
    );
    return;
  }
  // Two tabs acting as one till would each reverse the other's sales in flight: without locks to keep
  // that from happening, the page does not start.
  if (!navigator.locks) {
    message(
      'Browser too old',
      'This browser cannot keep a second tab from acting as the same terminal. Use a current browser.',
    );
    return;
  }
  // The lock is held for the life of the page: the callback's promise never settles.
  const holdForever = () => new Promise<never>(() => undefined);
  void navigator.locks.request(LOCK_NAME, { ifAvailable: true }, async (lock) => {
    if (lock) {
      await start();
      return holdForever();
    }
    message(
      'Open in another tab',
      'This terminal is already open in another tab or window of this browser. Close that one: this page takes over by itself.',
    );
    void navigator.locks.request(LOCK_NAME, async () => {
      await start();
      return holdForever();
    });
  });
}

boot();
