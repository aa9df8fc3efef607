import '../common/styles.css';
import './dashboard.css';
import { ApiError, api } from '../common/api.ts';
import { h, mount, notice } from '../common/ui.ts';
import { showDashboard } from './dashboard.ts';
import { errorText } from './format.ts';
import { forgetKey, Session, storedKey } from './session.ts';
import { showSignIn } from './signin.ts';
import type { Me } from './types.ts';

/**
 * The merchant dashboard (`/merchant/`): sign in with the API key, then sales, cards, terminals,
 * transactions and statements. Everything it shows comes from the merchant endpoints of the HTTP API
 * (docs/http-api.md); it holds no data of its own beyond the key, for as long as the tab is open.
 */
const root = document.getElementById('app') as HTMLElement;
let stop: (() => void) | null = null;

function signIn(message?: string): void {
  stop?.();
  stop = null;
  forgetKey();
  showSignIn(root, open, message);
}

function open(apiKey: string, me: { merchantId: string; name: string }): void {
  const session = new Session(apiKey, me.merchantId, me.name, () =>
    signIn('Your API key is no longer valid. Sign in with the current one.'),
  );
  stop = showDashboard(root, session, () => signIn());
}

async function start(): Promise<void> {
  const apiKey = storedKey();
  if (!apiKey) return signIn();
  try {
    const me = await api<Me>('GET', '/v1/me', { token: apiKey });
    if (me.kind === 'merchant' && me.merchantId && me.name)
      return open(apiKey, { merchantId: me.merchantId, name: me.name });
    signIn();
  } catch (error) {
    if (error instanceof ApiError && error.code === 'unauthorized')
      return signIn('Your API key is no longer valid. Sign in with the current one.');
    // The server is unreachable: keep the key and offer to try again.
    const retry = h('button', { class: 'btn', type: 'button' }, 'Try again');
    retry.addEventListener('click', () => void start());
    mount(root, h('main', { class: 'page narrow' }, notice('error', errorText(error)), retry));
  }
}

void start();
