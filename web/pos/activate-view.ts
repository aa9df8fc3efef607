import { ApiError, api } from '../common/api.ts';
import { busy, field, h, notice } from '../common/ui.ts';
import { fromBase64url, importHmacKey } from './crypto.ts';
import { topbar } from './layout.ts';
import { type StoredTerminal, saveTerminal } from './storage.ts';

/**
 * Activation: the single-use code from the merchant becomes this browser's terminal. The key arrives once,
 * in the activation answer; it is imported at once as a non-extractable CryptoKey and stored in
 * IndexedDB, and the base64 text is dropped, so from then on no script can read the key bytes back.
 */
interface Activated {
  terminalId: string;
  merchantId: string;
  terminalKey: string;
}

export function activationView(
  onActivated: (terminal: StoredTerminal) => void,
  message?: HTMLElement,
): HTMLElement {
  const codeInput = h('input', {
    class: 'big pos-activation-code',
    autocomplete: 'off',
    autocapitalize: 'characters',
    spellcheck: false,
    maxLength: 32,
    placeholder: 'XXXXX-XXXXX',
  });
  const button = h('button', { class: 'btn huge block', type: 'submit' }, 'Activate');
  const status = h('div', { 'aria-live': 'polite' }, message ?? null);

  const activate = async () => {
    const activationCode = codeInput.value.trim();
    if (!activationCode) {
      status.replaceChildren(notice('error', 'Enter the activation code the merchant gave you.'));
      codeInput.focus();
      return;
    }
    status.replaceChildren();
    try {
      const activated = await api<Activated>('POST', '/v1/terminals/activate', { body: { activationCode } });
      const key = await importHmacKey(fromBase64url(activated.terminalKey));
      if (!key || typeof activated.terminalId !== 'string' || typeof activated.merchantId !== 'string')
        throw new Error('the activation answer carries no usable key');
      const terminal: StoredTerminal = {
        terminalId: activated.terminalId,
        merchantId: activated.merchantId,
        key,
        activatedAtMs: Date.now(),
      };
      await saveTerminal(terminal);
      // A till must not lose its key when the browser tidies up storage: ask to keep it (no prompt in Chrome).
      void navigator.storage?.persist?.().catch(() => false);
      onActivated(terminal);
    } catch (error) {
      status.replaceChildren(notice('error', activationError(error)));
      codeInput.select();
    }
  };

  const form = h(
    'form',
    {
      class: 'panel',
      noValidate: true,
      on: {
        submit: (event: Event) => {
          event.preventDefault();
          void busy(button, activate);
        },
      },
    },
    field('Activation code', codeInput, 'Single use, valid for 24 hours. Letters are not case-sensitive.'),
    button,
    status,
  );

  const view = h(
    'div',
    null,
    topbar(),
    h(
      'main',
      { class: 'page narrow' },
      h(
        'div',
        { class: 'hero' },
        h('h1', null, 'Activate this terminal'),
        h(
          'p',
          { class: 'muted' },
          'Enter the activation code from the merchant dashboard (Terminals, then Add terminal) to turn this browser into a paycode till.',
        ),
      ),
      form,
      h(
        'p',
        { class: 'muted pos-footnote' },
        'The terminal key is kept in this browser as a non-extractable key: it signs payments but no script, this page included, can read it back.',
      ),
    ),
  );
  queueMicrotask(() => codeInput.focus());
  return view;
}

function activationError(error: unknown): string {
  if (error instanceof ApiError) {
    if (error.code === 'not_found')
      return 'This activation code is unknown, already used or expired. Ask the merchant for a new one.';
    if (error.code === 'offline') return error.message;
    if (error.code === 'rate_limited') return 'Too many attempts. Wait a minute, then try again.';
    return `Activation failed: ${error.message}`;
  }
  return 'Activation failed: the server’s answer could not be used. Try again with a new code.';
}
