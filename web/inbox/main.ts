import '../common/styles.css';
import './inbox.css';
import { api } from '../common/api.ts';
import { CODE_DIGITS_MAX, CODE_DIGITS_MIN } from '../common/codes.ts';
import { field, h, mount, notice, topbar, when } from '../common/ui.ts';

/**
 * The development inbox: in `console` SMS mode no text leaves the machine, so this page shows what the
 * phones would have received (verification codes, payment codes, receipts). It exists only in that
 * mode and the API behind it answers only on loopback.
 */
interface DevText {
  phone: string;
  text: string;
  atMs: number;
}

const root = document.getElementById('app') as HTMLElement;
const phoneInput = h('input', { type: 'tel', autocomplete: 'off', placeholder: 'All phones' });
const list = h('ol', { class: 'inbox', 'aria-live': 'polite' });
const status = h('div');

/** A run of 6 to 10 digits standing alone: a verification or payment code. */
const CODE_RUN = new RegExp(`(\\b\\d{${CODE_DIGITS_MIN},${CODE_DIGITS_MAX}}\\b)`);

/** The text with each code set apart, so it reads at a glance. */
function highlighted(text: string): (Node | string)[] {
  return text.split(CODE_RUN).map((part, index) => (index % 2 ? h('mark', { class: 'otp' }, part) : part));
}

let shown = '';
async function refresh(): Promise<void> {
  const phone = phoneInput.value.replace(/[\s().-]/g, '');
  try {
    const { texts } = await api<{ texts: DevText[] }>(
      'GET',
      `/v1/dev/inbox${phone ? `?phone=${encodeURIComponent(phone)}` : ''}`,
    );
    const key = JSON.stringify(texts);
    if (key !== shown) {
      shown = key;
      mount(
        list,
        texts.length === 0
          ? h('li', { class: 'empty' }, 'No texts yet.')
          : texts.map((text) =>
              h(
                'li',
                { class: 'sms' },
                h(
                  'div',
                  { class: 'sms-meta' },
                  h('span', { class: 'mono' }, text.phone),
                  h('span', null, when(text.atMs)),
                ),
                h('p', { class: 'sms-text' }, ...highlighted(text.text)),
              ),
            ),
      );
    }
    mount(status);
  } catch (error) {
    mount(status, notice('error', error instanceof Error ? error.message : 'The inbox cannot be read.'));
  }
}

mount(
  root,
  topbar('Development inbox'),
  h(
    'main',
    { class: 'page narrow' },
    notice(
      'info',
      'Texts are not sent in development mode (PAYCODE_SMS=console). They appear here instead, newest first.',
    ),
    h('section', { class: 'panel' }, field('Phone number', phoneInput), status, list),
  ),
);
phoneInput.addEventListener('input', () => void refresh());
void refresh();
window.setInterval(() => void refresh(), 1000);
