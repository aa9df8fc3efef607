import { ApiError, api } from '../common/api.ts';
import { busy, field, h, mount, notice, topbar } from '../common/ui.ts';
import { errorText } from './format.ts';
import type { Me } from './types.ts';

/**
 * Sign-in with the merchant's API key. The key is checked with `GET /v1/me`, which also says whose it is;
 * an operator or device token is refused here, as the dashboard is the merchant's.
 */
export function showSignIn(
  root: HTMLElement,
  onSignedIn: (apiKey: string, me: Required<Pick<Me, 'merchantId' | 'name'>>) => void,
  message?: string,
): void {
  const key = h('input', {
    type: 'password',
    autocomplete: 'off',
    spellcheck: false,
    placeholder: 'pk_…',
    required: true,
  });
  const submit = h('button', { class: 'btn block', type: 'submit' }, 'Sign in');
  const status = h('div', { 'aria-live': 'polite' }, message ? notice('warn', message) : null);
  const form = h(
    'form',
    { class: 'panel', noValidate: true },
    field('API key', key, 'The pk_… key you received when your account was opened.'),
    submit,
    status,
  );
  form.addEventListener('submit', async (event) => {
    event.preventDefault();
    const apiKey = key.value.trim();
    if (!apiKey) {
      mount(status, notice('error', 'Enter your API key.'));
      return;
    }
    try {
      const me = await busy(submit, () => api<Me>('GET', '/v1/me', { token: apiKey }));
      if (me.kind !== 'merchant' || !me.merchantId || !me.name) {
        mount(
          status,
          notice('error', 'This is not a merchant API key. Sign in with the key that starts with pk_.'),
        );
        return;
      }
      onSignedIn(apiKey, { merchantId: me.merchantId, name: me.name });
    } catch (error) {
      const text =
        error instanceof ApiError && error.code === 'unauthorized'
          ? 'This API key is not valid. Check it, or ask the operator for a new one.'
          : errorText(error);
      mount(status, notice('error', text));
    }
  });
  mount(
    root,
    topbar('for merchants'),
    h(
      'main',
      { class: 'page narrow signin' },
      h(
        'div',
        { class: 'hero' },
        h('h1', null, 'Merchant dashboard'),
        h('p', { class: 'muted' }, 'Sales, cards, terminals and payouts in one place.'),
      ),
      form,
      h(
        'p',
        { class: 'muted signin-note' },
        'The key stays in this browser tab only and is forgotten when the tab closes.',
      ),
    ),
  );
  key.focus();
}
