import { fateUnknown, newKey } from '../common/api.ts';
import { busy, field, h, money, mount, normalizePhone, notice, parseDollars } from '../common/ui.ts';
import { errorText } from './format.ts';
import type { Session } from './session.ts';

/**
 * Issuing a gift card or a reward to a phone number. One idempotency key stands for one intended
 * issuance: a retry of the same details (after a timeout or a lost answer) reuses it, so the customer is
 * loaded once; changed details, a success or a refusal start a new one.
 */
interface Issued {
  cardId: string;
  balanceCents: number;
}

/** The end of a local calendar day, or null when the text is not a date in the future. */
function endOfDay(text: string): number | null {
  const match = /^(\d{4})-(\d{2})-(\d{2})$/.exec(text);
  if (!match) return null;
  const atMs = new Date(Number(match[1]), Number(match[2]) - 1, Number(match[3]), 23, 59, 59, 999).getTime();
  return atMs > Date.now() ? atMs : null;
}

export function issueCardPanel(session: Session, onIssued: () => void): HTMLElement {
  const phone = h('input', {
    type: 'tel',
    autocomplete: 'off',
    inputMode: 'tel',
    placeholder: '+1 555 555 0123',
  });
  const amount = h('input', { inputMode: 'decimal', autocomplete: 'off', placeholder: '25.00' });
  const kind = h(
    'select',
    null,
    h('option', { value: 'gift' }, 'Gift card'),
    h('option', { value: 'reward' }, 'Reward'),
  );
  const expiry = h('input', { type: 'date' });
  const expiryField = field('Reward expiry (optional)', expiry, 'Unspent reward value returns to you then.');
  expiryField.hidden = true;
  kind.addEventListener('change', () => {
    expiryField.hidden = kind.value !== 'reward';
  });
  const submit = h('button', { class: 'btn block', type: 'submit' }, 'Issue card');
  const result = h('div', { 'aria-live': 'polite' });
  let pending: { details: string; key: string } | null = null;

  const form = h(
    'form',
    { class: 'issue-form', noValidate: true },
    field('Phone number', phone, 'With the country code; US numbers may omit +1.'),
    h('div', { class: 'row' }, field('Amount in dollars', amount), field('Card type', kind)),
    expiryField,
    submit,
    result,
  );
  form.addEventListener('submit', async (event) => {
    event.preventDefault();
    const to = normalizePhone(phone.value);
    const cents = parseDollars(amount.value);
    const isReward = kind.value === 'reward';
    const expiresAtMs = isReward && expiry.value ? endOfDay(expiry.value) : null;
    const problem = !to
      ? 'Enter the phone number with its country code, like +1 555 555 0123.'
      : cents === null
        ? 'Enter an amount in dollars, like 25 or 12.50.'
        : isReward && expiry.value && expiresAtMs === null
          ? 'The reward expiry must be a date in the future.'
          : null;
    if (problem) {
      mount(result, notice('error', problem));
      return;
    }
    const body = {
      phone: to,
      amountCents: cents,
      kind: kind.value,
      ...(expiresAtMs === null ? {} : { expiresAtMs }),
    };
    const details = JSON.stringify(body);
    if (pending?.details !== details) pending = { details, key: newKey('card') };
    const idempotencyKey = pending.key;
    mount(result);
    try {
      const issued = await busy(submit, () =>
        session.call<Issued>('POST', '/cards', { ...body, idempotencyKey }),
      );
      pending = null;
      const what = isReward ? 'reward' : 'gift card';
      mount(
        result,
        notice(
          'ok',
          h('strong', null, `Issued a ${money(cents as number)} ${what}`),
          `to ${to}. The card now holds ${money(issued.balanceCents)}; the customer sees it in the wallet.`,
        ),
      );
      phone.value = '';
      amount.value = '';
      expiry.value = '';
      onIssued();
    } catch (error) {
      const retry = fateUnknown(error);
      if (!retry) pending = null;
      mount(
        result,
        notice('error', errorText(error), retry ? ' Issue it again: it will not be issued twice.' : ''),
      );
    }
  });

  return h(
    'section',
    { class: 'panel', 'aria-labelledby': 'issue-title' },
    h(
      'div',
      { class: 'panel-head' },
      h('h2', { id: 'issue-title' }, 'Issue a card'),
      h('span', { class: 'muted' }, 'Gift or reward, by phone'),
    ),
    form,
  );
}
