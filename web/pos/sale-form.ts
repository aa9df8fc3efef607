import { CODE_DIGITS_MAX, CODE_DIGITS_MIN, groupCode, isPaymentCode } from '../common/codes.ts';
import { h, money, notice, parseDollars } from '../common/ui.ts';

/**
 * The sale entry: payment code, amount, partial approval and the Charge button, with an on-screen keypad
 * for touch tills that types into whichever of the two fields was last focused. Input is checked here,
 * before anything is sent: a code is 6 to 10 digits (a string, so leading zeros stay), an amount is
 * dollars with at most two decimals, read into integer cents by parseDollars. The code field shows the
 * digits in the same reading groups as the customer's phone (web/common/codes.ts) and counts them as
 * they are typed; what is sent is the plain digits.
 */
export interface ChargeRequest {
  code: string;
  amountCents: number;
  partial: boolean;
}

export interface SaleForm {
  element: HTMLElement;
  /** Clears the fields after a sale, or only the code when it cannot be used again. */
  clear(what: 'all' | 'code'): void;
  setEnabled(enabled: boolean): void;
  focus(): void;
}

const CODE_HINT = `The ${CODE_DIGITS_MIN} to ${CODE_DIGITS_MAX} digits on the customer’s phone`;

const KEYS = ['1', '2', '3', '4', '5', '6', '7', '8', '9', '.', '0', 'delete'] as const;

export function saleForm(onCharge: (request: ChargeRequest) => Promise<void>): SaleForm {
  const codeInput = h('input', {
    id: 'sale-code',
    class: 'big pos-code',
    inputMode: 'numeric',
    autocomplete: 'off',
    spellcheck: false,
  });
  const amountInput = h('input', {
    id: 'sale-amount',
    class: 'pos-amount',
    inputMode: 'decimal',
    autocomplete: 'off',
    spellcheck: false,
    maxLength: 13,
    placeholder: '0.00',
  });
  const partialBox = h('input', { type: 'checkbox', id: 'sale-partial' });
  const chargeButton = h('button', { class: 'btn huge block pos-charge', type: 'submit' }, 'Charge');
  const amountPreview = h(
    'small',
    { class: 'hint', id: 'sale-amount-hint' },
    'In dollars, for example 12.50',
  );
  amountInput.setAttribute('aria-describedby', amountPreview.id);
  const codeHint = h('small', { class: 'hint', id: 'sale-code-hint' }, CODE_HINT);
  codeInput.setAttribute('aria-describedby', codeHint.id);
  const problem = h('div', { class: 'pos-problem' });
  let target: HTMLInputElement = codeInput;
  let sending = false;
  let enabled = true;

  const clearProblem = (input: HTMLInputElement) => {
    input.removeAttribute('aria-invalid');
    problem.replaceChildren();
  };
  const refuse = (input: HTMLInputElement, text: string) => {
    input.setAttribute('aria-invalid', 'true');
    problem.replaceChildren(notice('error', text));
    input.focus();
  };

  // The code field holds its digits in reading groups (`1234 5678`); `shownDigits` is what it shows.
  let shownDigits = '';
  /** Shows `digits` grouped, with the caret after the `caret`-th digit, and says how many there are. */
  const showCode = (digits: string, caret = digits.length) => {
    shownDigits = digits;
    const grouped = groupCode(digits).join(' ');
    codeInput.value = grouped;
    let position = 0;
    for (let seen = 0; seen < caret && position < grouped.length; position++)
      if (grouped[position] !== ' ') seen++;
    if (document.activeElement === codeInput) codeInput.setSelectionRange(position, position);
    const count = digits.length;
    codeHint.textContent =
      count === 0
        ? CODE_HINT
        : count < CODE_DIGITS_MIN
          ? `${count} ${count === 1 ? 'digit' : 'digits'} so far: codes have ${CODE_DIGITS_MIN} to ${CODE_DIGITS_MAX}`
          : `${count} digits`;
  };
  codeInput.addEventListener('input', (event) => {
    // Only digits, and never more than ten: what the cashier sees, without the spaces, is what is sent.
    const typed = codeInput.value;
    let caret = typed.slice(0, codeInput.selectionStart ?? typed.length).replace(/\D/g, '').length;
    let digits = typed.replace(/\D/g, '');
    // Deleting the space between two groups deletes the digit beside it, as the cashier meant.
    const kind = (event as InputEvent).inputType;
    if (digits === shownDigits && kind === 'deleteContentBackward' && caret > 0) {
      digits = digits.slice(0, caret - 1) + digits.slice(caret);
      caret -= 1;
    } else if (digits === shownDigits && kind === 'deleteContentForward') {
      digits = digits.slice(0, caret) + digits.slice(caret + 1);
    }
    digits = digits.slice(0, CODE_DIGITS_MAX);
    showCode(digits, Math.min(caret, digits.length));
    clearProblem(codeInput);
    // Only a 10-digit code is surely whole; after a shorter one the cashier moves on to the amount.
    if (digits.length === CODE_DIGITS_MAX && document.activeElement === codeInput) amountInput.focus();
  });
  amountInput.addEventListener('input', () => {
    amountInput.value = amountInput.value.replace(/[^\d.]/g, '');
    clearProblem(amountInput);
    const cents = parseDollars(amountInput.value);
    amountPreview.textContent = cents === null ? 'In dollars, for example 12.50' : `Charging ${money(cents)}`;
  });
  for (const input of [codeInput, amountInput]) {
    input.addEventListener('focus', () => {
      target = input;
      keypad.dataset.target = input === codeInput ? 'code' : 'amount';
    });
  }

  const press = (key: (typeof KEYS)[number]) => {
    if (key === 'delete') target.value = target.value.slice(0, -1);
    else target.value += key;
    target.dispatchEvent(new Event('input'));
    target.focus();
  };
  const keypad = h(
    'div',
    { class: 'keypad', role: 'group', 'aria-label': 'Keypad', 'data-target': 'code' },
    KEYS.map((key) =>
      h(
        'button',
        {
          type: 'button',
          class: `keypad-key${key === 'delete' ? ' delete' : ''}`,
          ...(key === 'delete' ? { 'aria-label': 'Delete last digit' } : {}),
          on: {
            // Keep the focus (and the caret) in the field being typed into.
            pointerdown: (event: Event) => event.preventDefault(),
            click: () => press(key),
          },
        },
        key === 'delete' ? '⌫' : key,
      ),
    ),
  );

  const submit = async () => {
    if (sending || !enabled) return;
    const code = codeInput.value.replace(/\s/g, '');
    if (!isPaymentCode(code))
      return refuse(
        codeInput,
        `Enter the whole payment code shown on the customer’s phone: ${CODE_DIGITS_MIN} to ${CODE_DIGITS_MAX} digits.`,
      );
    const amountCents = parseDollars(amountInput.value);
    if (amountCents === null) return refuse(amountInput, 'Enter the amount in dollars, for example 12.50.');
    sending = true;
    chargeButton.disabled = true;
    chargeButton.setAttribute('aria-busy', 'true');
    chargeButton.textContent = 'Charging…';
    try {
      await onCharge({ code, amountCents, partial: partialBox.checked });
    } finally {
      sending = false;
      chargeButton.disabled = !enabled;
      chargeButton.removeAttribute('aria-busy');
      chargeButton.textContent = 'Charge';
    }
  };

  const element = h(
    'form',
    {
      class: 'panel pos-sale',
      noValidate: true,
      'aria-labelledby': 'sale-title',
      on: {
        submit: (event: Event) => {
          event.preventDefault();
          void submit();
        },
      },
    },
    h('div', { class: 'panel-head' }, h('h2', { id: 'sale-title' }, 'New sale')),
    h('div', { class: 'field' }, h('label', { for: codeInput.id }, 'Payment code'), codeInput, codeHint),
    h(
      'div',
      { class: 'field' },
      h('label', { for: amountInput.id }, 'Amount'),
      h(
        'div',
        { class: 'money-input' },
        h('span', { class: 'money-prefix', 'aria-hidden': 'true' }, '$'),
        amountInput,
      ),
      amountPreview,
    ),
    keypad,
    h(
      'div',
      { class: 'pos-partial' },
      h('label', { class: 'check' }, partialBox, h('span', null, 'Allow partial approval (split tender)')),
      h(
        'small',
        { class: 'hint' },
        'If the code holds less, approve what it holds and take the rest by another tender.',
      ),
    ),
    problem,
    chargeButton,
  );

  return {
    element,
    clear(what) {
      showCode('');
      problem.replaceChildren();
      if (what === 'code') return;
      amountInput.value = '';
      amountInput.dispatchEvent(new Event('input'));
      partialBox.checked = false;
    },
    setEnabled(value) {
      enabled = value;
      chargeButton.disabled = !value || sending;
      for (const control of [codeInput, amountInput, partialBox, ...keypad.querySelectorAll('button')])
        control.disabled = !value;
    },
    focus() {
      codeInput.focus();
    },
  };
}
