import '../common/styles.css';
import './wallet.css';
import { ApiError, api, errorText, fateUnknown, newKey } from '../common/api.ts';
import { groupCode, spokenCode } from '../common/codes.ts';
import {
  busy,
  field,
  h,
  money,
  mount,
  normalizePhone,
  notice,
  parseDollars,
  topbar,
  when,
} from '../common/ui.ts';
import { type ActiveCode, type Card, type CodePush, type Connection, WalletLive } from './live.ts';

/**
 * The consumer's wallet: sign in with the phone number and a texted code, then the cards, live; "Pay"
 * shows a one-time code with its countdown and then its fate; "Send" gives part of a gift card to another
 * phone; a low-balance alert per card; history; cancel the code; freeze. The
 * device keeps only its token (localStorage): no phone number, card or history is stored on the phone,
 * and the service worker caches the app itself, never an API answer.
 */
const TOKEN_KEY = 'paycode.wallet.token';
const root = document.getElementById('app') as HTMLElement;

interface HistoryEntry {
  atMs: number;
  kind: string;
  merchantId: string;
  amountCents: number;
  balanceCents: number;
  ref: string;
}

type Fate = { state: 'redeemed' | 'expired' | 'cancelled'; merchantId: string; paidCents: number | null };

const KIND_LABELS: Record<string, string> = {
  load: 'Card loaded',
  purchase: 'Card bought',
  redeem: 'Payment',
  void: 'Payment voided',
  reverse: 'Payment reversed',
  refund: 'Refund',
  expire: 'Reward expired',
  gift: 'Gift',
};

const REASONS: Record<string, string> = {
  insufficient_funds: 'There is nothing to spend at this store.',
  account_frozen: 'Your account is frozen. Unfreeze it to pay.',
  rate_limited: 'Too many codes are open at this store right now. Try again in a minute.',
  unauthorized: 'Your session has ended. Sign in again.',
  offline: 'No connection. Check your network and try again.',
};

const reason = (error: unknown) => errorText(error, REASONS);

const GIFT_REASONS: Record<string, string> = {
  ...REASONS,
  insufficient_funds: 'You do not have that much gift card value at this store.',
  limit_exceeded: 'That is more than you may spend or give today.',
  rate_limited: 'You have made as many gifts as a day allows. Try again tomorrow.',
};

// Sign-in: the phone number lives only in this closure until the code is checked.

function showSignIn(message?: string): void {
  const phoneInput = h('input', { type: 'tel', autocomplete: 'tel', inputMode: 'tel', required: true });
  const codeInput = h('input', {
    class: 'big',
    autocomplete: 'one-time-code',
    inputMode: 'numeric',
    maxLength: 6,
    required: true,
  });
  const otherDevices = h('input', { type: 'checkbox', id: 'revoke-others' });
  const status = h('div', { 'aria-live': 'polite' });
  const sendButton = h('button', { class: 'btn block', type: 'submit' }, 'Send code');
  const signInButton = h('button', { class: 'btn block', type: 'submit' }, 'Sign in');
  let phone = '';

  const phoneForm = h(
    'form',
    { class: 'panel' },
    h('h2', null, 'Sign in'),
    field('Phone number', phoneInput, 'We text you a 6-digit code. Your number is never shown to stores.'),
    sendButton,
  );
  const codeForm = h(
    'form',
    { class: 'panel', hidden: true },
    h('h2', null, 'Enter your code'),
    h('p', { class: 'muted', id: 'sent-to' }),
    field('Verification code', codeInput),
    h(
      'label',
      { class: 'check', for: otherDevices.id },
      otherDevices,
      'Sign out my other devices (lost phone)',
    ),
    signInButton,
    h(
      'button',
      { class: 'btn ghost block', type: 'button', on: { click: () => showStep('phone') } },
      'Use another number',
    ),
  );
  const showStep = (step: 'phone' | 'code') => {
    phoneForm.hidden = step !== 'phone';
    codeForm.hidden = step !== 'code';
    mount(status);
    (step === 'phone' ? phoneInput : codeInput).focus();
  };

  phoneForm.addEventListener('submit', (event) => {
    event.preventDefault();
    const normalized = normalizePhone(phoneInput.value);
    if (!normalized) {
      mount(status, notice('error', 'Enter the number with its country code, like +1 555 555 0100.'));
      return;
    }
    void busy(sendButton, async () => {
      try {
        await api('POST', '/v1/consumers', { body: { phone: normalized } });
        phone = normalized;
        mount(codeForm.querySelector('#sent-to') as HTMLElement, `We sent a code to ${normalized}.`);
        codeInput.value = '';
        showStep('code');
      } catch (error) {
        mount(status, notice('error', reason(error)));
      }
    });
  });
  codeForm.addEventListener('submit', (event) => {
    event.preventDefault();
    const otp = codeInput.value.trim();
    if (!/^\d{6}$/.test(otp)) {
      mount(status, notice('error', 'The code has 6 digits.'));
      return;
    }
    void busy(signInButton, async () => {
      try {
        const body: Record<string, unknown> = { phone, otp };
        if (otherDevices.checked) body.revokeOtherDevices = true;
        const { deviceToken } = await api<{ deviceToken: string }>('POST', '/v1/consumers/verify', { body });
        localStorage.setItem(TOKEN_KEY, deviceToken);
        showWallet(deviceToken);
      } catch (error) {
        const text =
          error instanceof ApiError && error.code === 'unauthorized'
            ? 'That code is not right, or it has expired. Check the text and try again.'
            : reason(error);
        mount(status, notice('error', text));
      }
    });
  });

  mount(
    root,
    topbar(null),
    h(
      'main',
      { class: 'page narrow' },
      h(
        'div',
        { class: 'hero' },
        h('h1', null, 'Pay with your phone'),
        h('p', { class: 'muted' }, 'Gift cards and rewards from your favourite stores, in one place.'),
      ),
      message ? notice('warn', message) : null,
      phoneForm,
      codeForm,
      status,
    ),
  );
  phoneInput.focus();
}

// The wallet.

function showWallet(token: string): void {
  const cards = new Map<string, Card>();
  let activeCode: ActiveCode | null = null;
  let fate: Fate | null = null;
  let frozen = false;
  let history: HistoryEntry[] = [];

  const connection = h('span', { class: 'status-dot', role: 'status' }, 'Connecting');
  const signOutButton = h('button', { class: 'btn ghost small', type: 'button' }, 'Sign out');
  const frozenSection = h('section');
  const codeSection = h('section', { 'aria-live': 'polite' });
  const cardsList = h('div', { class: 'wallet-cards' });
  const totalLine = h('p', { class: 'muted' });
  const historyList = h('ul', { class: 'list' });
  const payStatus = h('div', { 'aria-live': 'polite' });
  const accountStatus = h('div', { 'aria-live': 'polite' });

  const merchantName = (merchantId: string) =>
    [...cards.values()].find((card) => card.merchantId === merchantId)?.merchantName ?? 'a store';
  const availableAt = (merchantId: string) =>
    [...cards.values()]
      .filter((card) => card.merchantId === merchantId)
      .reduce((sum, card) => sum + card.availableCents, 0);

  // Pay: a store with value, an optional limit, and the button that asks for a code.
  const merchantSelect = h('select', { required: true });
  const capInput = h('input', { inputMode: 'decimal', placeholder: 'No limit', autocomplete: 'off' });
  const payButton = h('button', { class: 'btn block huge', type: 'submit' }, 'Pay');
  const payForm = h(
    'form',
    { class: 'panel' },
    h('div', { class: 'panel-head' }, h('h2', null, 'Pay in store')),
    field('Store', merchantSelect),
    field(
      'Limit (optional)',
      capInput,
      'The most this code may take. Leave it empty to allow your whole balance.',
    ),
    payButton,
    payStatus,
  );
  payForm.addEventListener('submit', (event) => {
    event.preventDefault();
    const capText = capInput.value.trim();
    const capCents = capText === '' ? undefined : parseDollars(capText);
    if (capCents === null) {
      mount(payStatus, notice('error', 'Enter the limit in dollars, like 20 or 12.50, or leave it empty.'));
      return;
    }
    void busy(payButton, async () => {
      try {
        const code = await api<ActiveCode>('POST', '/v1/wallet/codes', {
          token,
          body: { merchantId: merchantSelect.value, capCents },
        });
        activeCode = code;
        fate = null;
        mount(payStatus);
        capInput.value = '';
        renderCode();
        codeSection.scrollIntoView({ block: 'start' });
      } catch (error) {
        mount(payStatus, notice('error', reason(error)));
        if (error instanceof ApiError && error.code === 'unauthorized') signOut('Your session has ended.');
      }
    });
  });

  // Send: part of a gift card to another phone. The same fields sent again after a failure reuse their
  // key, so a gift whose answer was lost is not given twice; a new gift gets a new key.
  const giftSelect = h('select', { required: true });
  const giftPhone = h('input', { type: 'tel', inputMode: 'tel', autocomplete: 'off', required: true });
  const giftAmount = h('input', { inputMode: 'decimal', autocomplete: 'off', required: true });
  const giftButton = h('button', { class: 'btn block', type: 'submit' }, 'Send gift');
  const giftStatus = h('div', { 'aria-live': 'polite' });
  const giftForm = h(
    'form',
    { class: 'panel' },
    h('div', { class: 'panel-head' }, h('h2', null, 'Send a gift')),
    field('From gift card', giftSelect),
    field(
      'To phone number',
      giftPhone,
      'They get a text, and the value waits for them if they are new here.',
    ),
    field('Amount', giftAmount, 'Gift card value only; rewards stay yours.'),
    giftButton,
    giftStatus,
  );
  let gift: { fields: string; key: string } | null = null;
  giftForm.addEventListener('submit', (event) => {
    event.preventDefault();
    const toPhone = normalizePhone(giftPhone.value);
    const amountCents = parseDollars(giftAmount.value);
    if (!toPhone) {
      mount(
        giftStatus,
        notice('error', 'Enter the phone number with its country code, like +1 555 555 0123.'),
      );
      return;
    }
    if (amountCents === null) {
      mount(giftStatus, notice('error', 'Enter the amount in dollars, like 20 or 12.50.'));
      return;
    }
    const merchantId = giftSelect.value;
    const fields = `${merchantId}|${toPhone}|${amountCents}`;
    if (gift?.fields !== fields) gift = { fields, key: newKey('gift') };
    const idempotencyKey = gift.key;
    void busy(giftButton, async () => {
      try {
        await api('POST', '/v1/wallet/gifts', {
          token,
          body: { merchantId, toPhone, amountCents, idempotencyKey },
        });
        gift = null;
        giftPhone.value = '';
        giftAmount.value = '';
        mount(
          giftStatus,
          notice(
            'ok',
            h('strong', null, `Sent ${money(amountCents)}`),
            `of your ${merchantName(merchantId)} gift card to ${toPhone}.`,
          ),
        );
        refreshHistorySoon();
      } catch (error) {
        // Only a gift whose fate is unknown (no answer, or a transient status) is sent again under its
        // key; a refusal is stored under the key, so the next try of the same gift needs a new one.
        if (!fateUnknown(error)) gift = null;
        mount(giftStatus, notice('error', errorText(error, GIFT_REASONS)));
        if (error instanceof ApiError && error.code === 'unauthorized') signOut('Your session has ended.');
      }
    });
  });
  // Alerts: a card's balance to be told about when a payment takes it below (off by default).
  const alertSelect = h('select', { required: true });
  const alertAmount = h('input', { inputMode: 'decimal', autocomplete: 'off', placeholder: 'Off' });
  const alertButton = h('button', { class: 'btn ghost block', type: 'submit' }, 'Save alert');
  const alertStatus = h('div', { 'aria-live': 'polite' });
  const alertForm = h(
    'form',
    { class: 'panel' },
    h('div', { class: 'panel-head' }, h('h2', null, 'Low-balance alert')),
    field('Card', alertSelect),
    field(
      'Tell me when it goes below',
      alertAmount,
      'The payment text says so once when a payment takes the card below this. Leave it empty for no alert.',
    ),
    alertButton,
    alertStatus,
  );
  alertForm.addEventListener('submit', (event) => {
    event.preventDefault();
    const text = alertAmount.value.trim();
    const belowCents = text === '' ? null : parseDollars(text);
    if (belowCents === null && text !== '') {
      mount(alertStatus, notice('error', 'Enter the amount in dollars, like 10, or leave it empty.'));
      return;
    }
    const card = cards.get(alertSelect.value);
    if (!card) return;
    void busy(alertButton, async () => {
      try {
        await api('POST', `/v1/wallet/cards/${encodeURIComponent(card.cardId)}/alert`, {
          token,
          body: { belowCents },
        });
        if (belowCents === null) delete card.alertBelowCents;
        else card.alertBelowCents = belowCents;
        mount(
          alertStatus,
          notice(
            'ok',
            belowCents === null ? 'Alert off.' : `We will tell you when it goes below ${money(belowCents)}.`,
          ),
        );
        renderCards();
      } catch (error) {
        mount(alertStatus, notice('error', reason(error)));
        if (error instanceof ApiError && error.code === 'unauthorized') signOut('Your session has ended.');
      }
    });
  });
  const cardName = (card: Card) => `${card.merchantName} ${card.kind === 'gift' ? 'gift card' : 'reward'}`;

  const sendFrom = (merchantId: string) => {
    giftSelect.value = merchantId;
    mount(giftStatus);
    giftForm.scrollIntoView({ block: 'start' });
    giftPhone.focus();
  };

  const renderMerchants = () => {
    const chosen = merchantSelect.value;
    const merchants = new Map<string, string>();
    for (const card of cards.values()) merchants.set(card.merchantId, card.merchantName);
    mount(
      merchantSelect,
      [...merchants].map(([merchantId, name]) =>
        h('option', { value: merchantId }, `${name} · ${money(availableAt(merchantId))} available`),
      ),
    );
    if (merchants.has(chosen)) merchantSelect.value = chosen;
    payForm.hidden = merchants.size === 0;
    const giving = [...cards.values()].filter((card) => card.kind === 'gift' && card.availableCents > 0);
    const given = giftSelect.value;
    mount(
      giftSelect,
      giving.map((card) =>
        h(
          'option',
          { value: card.merchantId },
          `${card.merchantName} · ${money(card.availableCents)} to give`,
        ),
      ),
    );
    if (giving.some((card) => card.merchantId === given)) giftSelect.value = given;
    giftForm.hidden = giving.length === 0;
    const alerted = alertSelect.value;
    mount(
      alertSelect,
      [...cards.values()].map((card) =>
        h(
          'option',
          { value: card.cardId },
          `${cardName(card)} · ${card.alertBelowCents === undefined ? 'no alert' : `below ${money(card.alertBelowCents)}`}`,
        ),
      ),
    );
    if (cards.has(alerted)) alertSelect.value = alerted;
    alertForm.hidden = cards.size === 0;
  };

  const renderCards = () => {
    const list = [...cards.values()].sort(
      (a, b) => a.merchantName.localeCompare(b.merchantName) || a.kind.localeCompare(b.kind),
    );
    const total = list.reduce((sum, card) => sum + card.balanceCents, 0);
    mount(
      totalLine,
      list.length ? `${money(total)} across ${list.length} card${list.length > 1 ? 's' : ''}` : '',
    );
    mount(
      cardsList,
      list.length === 0
        ? h(
            'p',
            { class: 'empty' },
            'No cards yet. A store can send you a gift card or a reward to this phone number.',
          )
        : list.map((card) =>
            h(
              'article',
              { class: `wallet-card ${card.kind}`, 'aria-label': `${card.merchantName} ${card.kind} card` },
              h(
                'div',
                { class: 'wallet-card-top' },
                h('span', { class: 'wallet-card-merchant' }, card.merchantName),
                h('span', { class: 'wallet-card-kind' }, card.kind === 'gift' ? 'Gift card' : 'Reward'),
              ),
              h('div', { class: 'wallet-card-balance', 'data-card': card.cardId }, money(card.balanceCents)),
              card.availableCents !== card.balanceCents
                ? h(
                    'div',
                    { class: 'wallet-card-held' },
                    `${money(card.availableCents)} available · rest held by a code`,
                  )
                : h('div', { class: 'wallet-card-held' }, 'Balance'),
              card.alertBelowCents === undefined
                ? null
                : h(
                    'div',
                    { class: 'wallet-card-held' },
                    card.balanceCents < card.alertBelowCents
                      ? `Low balance: below your alert of ${money(card.alertBelowCents)}`
                      : `Alert below ${money(card.alertBelowCents)}`,
                  ),
              card.kind === 'gift' && card.availableCents > 0
                ? h(
                    'button',
                    {
                      class: 'btn ghost small',
                      type: 'button',
                      'aria-label': `Send from the ${card.merchantName} gift card`,
                      on: { click: () => sendFrom(card.merchantId) },
                    },
                    'Send',
                  )
                : null,
            ),
          ),
    );
    renderMerchants();
  };

  const countdown = h('span', { class: 'countdown' });
  const progress = h('progress', { max: 1, value: 1, 'aria-label': 'Time left' });
  // The bar spans the code's life as this page first saw it (a code shown after a reload starts full).
  let windowMs = 1;
  let windowOf = '';
  let codeSeenAtMs = 0;
  const tick = () => {
    if (!activeCode) return;
    const leftMs = Math.max(0, activeCode.expiresAtMs - Date.now());
    if (windowOf !== activeCode.code) {
      windowOf = activeCode.code;
      codeSeenAtMs = Date.now();
      windowMs = Math.max(leftMs, 1);
    }
    const minutes = Math.floor(leftMs / 60_000);
    const seconds = Math.floor((leftMs % 60_000) / 1000);
    mount(countdown, leftMs > 0 ? `Expires in ${minutes}:${String(seconds).padStart(2, '0')}` : 'Expiring…');
    progress.value = leftMs / windowMs;
  };
  const timer = window.setInterval(tick, 1000);

  const renderCode = () => {
    if (activeCode) {
      const code = activeCode;
      const cancelButton = h('button', { class: 'btn danger block', type: 'button' }, 'Cancel code');
      cancelButton.addEventListener('click', () =>
        busy(cancelButton, async () => {
          try {
            await api('DELETE', '/v1/wallet/codes', { token });
            if (activeCode?.code === code.code) {
              activeCode = null;
              fate = { state: 'cancelled', merchantId: code.merchantId, paidCents: null };
            }
          } catch (error) {
            // not_found: it was used or expired meanwhile, and its push tells which.
            if (!(error instanceof ApiError && error.code === 'not_found'))
              mount(payStatus, notice('error', reason(error)));
          }
          renderCode();
        }),
      );
      mount(
        codeSection,
        h(
          'div',
          { class: 'panel code-panel' },
          h('p', { class: 'code-label' }, `Show this code at ${merchantName(code.merchantId)}`),
          // Shown in reading groups and announced as one image whose name spells the digits out (a name
          // on a plain div is never read); the groups themselves are hidden from assistive technology,
          // which would otherwise also read them as numbers.
          h(
            'div',
            {
              class: 'code',
              role: 'img',
              'aria-label': `Payment code ${spokenCode(code.code)}`,
              'data-code': code.code,
              'data-digits': code.code.length,
            },
            groupCode(code.code).map((group) => h('span', { 'aria-hidden': 'true' }, group)),
          ),
          h('p', { class: 'code-cap' }, `Up to ${money(code.capCents)}`),
          progress,
          countdown,
          cancelButton,
        ),
      );
      tick();
      return;
    }
    if (fate) {
      const where = merchantName(fate.merchantId);
      const outcome =
        fate.state === 'redeemed'
          ? notice(
              'ok',
              h('strong', null, fate.paidCents === null ? 'Paid' : `Paid ${money(fate.paidCents)}`),
              `at ${where}. Your new balance is below.`,
            )
          : fate.state === 'expired'
            ? notice(
                'warn',
                h('strong', null, 'Code expired'),
                `The code for ${where} was not used. Nothing was taken.`,
              )
            : notice(
                'info',
                h('strong', null, 'Code cancelled'),
                `The code for ${where} can no longer be used.`,
              );
      mount(
        codeSection,
        h(
          'div',
          { class: 'panel', 'data-fate': fate.state },
          outcome,
          h(
            'button',
            {
              class: 'btn ghost block',
              type: 'button',
              on: {
                click: () => {
                  fate = null;
                  renderCode();
                },
              },
            },
            'Done',
          ),
        ),
      );
      return;
    }
    mount(codeSection);
  };

  const renderHistory = () => {
    mount(
      historyList,
      history.length === 0
        ? h('li', { class: 'empty' }, 'Nothing yet.')
        : history.slice(0, 30).map((entry) =>
            h(
              'li',
              null,
              h('span', {
                class: `history-icon ${entry.amountCents >= 0 ? 'in' : 'out'}`,
                'aria-hidden': 'true',
              }),
              h(
                'div',
                { class: 'grow' },
                h(
                  'div',
                  null,
                  `${KIND_LABELS[entry.kind] ?? entry.kind} · ${merchantName(entry.merchantId)}`,
                ),
                h('small', { class: 'muted' }, when(entry.atMs)),
              ),
              h(
                'span',
                { class: `amount ${entry.amountCents >= 0 ? 'plus' : 'minus'}` },
                `${entry.amountCents >= 0 ? '+' : '−'}${money(Math.abs(entry.amountCents))}`,
              ),
            ),
          ),
    );
  };

  let historyTimer: number | undefined;
  const loadHistory = async () => {
    try {
      history = (await api<{ entries: HistoryEntry[] }>('GET', '/v1/wallet/history', { token })).entries;
      renderHistory();
    } catch {
      // The next change loads it again.
    }
  };
  const refreshHistorySoon = () => {
    clearTimeout(historyTimer);
    historyTimer = window.setTimeout(loadHistory, 150);
  };

  /** What the redemption of the code took: the newest redeem entries at that store, one per card. */
  /** The newest redemption at a store since `sinceMs`, summed over the cards it took from; null if none. */
  const paidAt = (merchantId: string, sinceMs: number): number | null => {
    const newest = history.find(
      (entry) => entry.kind === 'redeem' && entry.merchantId === merchantId && entry.atMs >= sinceMs,
    );
    if (!newest) return null;
    return -history
      .filter((entry) => entry.kind === 'redeem' && entry.ref === newest.ref)
      .reduce((sum, entry) => sum + entry.amountCents, 0);
  };

  const learnPaid = async (merchantId: string) => {
    await loadHistory();
    if (fate?.state !== 'redeemed') return;
    fate.paidCents = paidAt(merchantId, 0);
    renderCode();
  };

  /**
   * The code on screen vanished from a new snapshot: its push was missed while the socket was down. The
   * history tells whether it was used; otherwise it expired or was cancelled.
   */
  const learnFate = async (code: ActiveCode, seenAtMs: number) => {
    await loadHistory();
    if (activeCode || fate) return;
    // Server and phone clocks differ a little: a redemption up to a minute before the page saw the code counts.
    const paidCents = paidAt(code.merchantId, seenAtMs - 60_000);
    const state = paidCents !== null ? 'redeemed' : Date.now() >= code.expiresAtMs ? 'expired' : 'cancelled';
    fate = { state, merchantId: code.merchantId, paidCents };
    renderCode();
  };

  const freezeButton = h('button', { class: 'btn danger block', type: 'button' });
  // A freeze may also sign out every other device (a stolen token): this one then gets a new token.
  const signOutOthers = h('input', { type: 'checkbox', id: 'freeze-revoke-others' });
  const signOutOthersLabel = h(
    'label',
    { class: 'check', for: signOutOthers.id },
    signOutOthers,
    'Also sign out my other devices',
  );
  const renderAccount = () => {
    signOutOthersLabel.hidden = frozen;
    mount(freezeButton, frozen ? 'Unfreeze account' : 'Freeze account');
    freezeButton.className = frozen ? 'btn block' : 'btn danger block';
    mount(
      frozenSection,
      frozen
        ? notice(
            'warn',
            h('strong', null, 'Your account is frozen'),
            'No code can be used until you unfreeze it. Your balances are safe.',
          )
        : null,
    );
  };
  /**
   * Unfreezing takes a fresh code texted to the phone (a device token alone, perhaps a stolen one,
   * cannot undo a freeze): the code is asked for here, under the button.
   */
  const askUnfreezeCode = () => {
    const input = h('input', {
      id: 'unfreeze-code',
      inputMode: 'numeric',
      autocomplete: 'one-time-code',
      maxLength: 6,
    });
    const confirm = h('button', { class: 'btn primary', type: 'submit' }, 'Unfreeze');
    const form = h(
      'form',
      { class: 'stack', noValidate: true },
      notice('info', 'We texted a verification code to your phone.'),
      field('Verification code', input),
      confirm,
    );
    form.addEventListener('submit', (event) => {
      event.preventDefault();
      const otp = input.value.trim();
      if (!/^\d{6}$/.test(otp)) {
        mount(accountStatus, form, notice('error', 'The code has 6 digits.'));
        return;
      }
      void busy(confirm, async () => {
        try {
          frozen = (await api<{ frozen: boolean }>('POST', '/v1/wallet/unfreeze', { token, body: { otp } }))
            .frozen;
          mount(accountStatus);
          renderAccount();
        } catch (error) {
          const text =
            error instanceof ApiError && error.code === 'unauthorized'
              ? 'That code is not right, or it has expired. Check the text and try again.'
              : reason(error);
          mount(accountStatus, form, notice('error', text));
        }
      });
    });
    mount(accountStatus, form);
    input.focus();
  };

  freezeButton.addEventListener('click', () =>
    busy(freezeButton, async () => {
      try {
        if (frozen) {
          await api('POST', '/v1/wallet/unfreeze/code', { token });
          askUnfreezeCode();
          return;
        }
        const body = signOutOthers.checked ? { revokeOtherDevices: true } : {};
        const answer = await api<{ frozen: boolean; deviceToken?: string }>('POST', '/v1/wallet/freeze', {
          token,
          body,
        });
        if (answer.deviceToken) {
          // Every earlier token, this page's included, stopped working: start again with the new one.
          localStorage.setItem(TOKEN_KEY, answer.deviceToken);
          location.reload();
          return;
        }
        frozen = answer.frozen;
        if (frozen && activeCode) {
          fate = { state: 'cancelled', merchantId: activeCode.merchantId, paidCents: null };
          activeCode = null;
          renderCode();
        }
        mount(accountStatus);
      } catch (error) {
        mount(accountStatus, notice('error', reason(error)));
      }
      renderAccount();
    }),
  );

  const showConnection = (state: Connection) => {
    connection.className = `status-dot ${state === 'live' ? 'online' : state === 'offline' ? 'offline' : ''}`;
    mount(connection, state === 'live' ? 'Live' : state === 'offline' ? 'Reconnecting' : 'Connecting');
  };

  const onCode = (push: CodePush) => {
    if (push.state === 'issued') {
      activeCode = {
        code: push.code,
        merchantId: push.merchantId,
        capCents: push.capCents,
        expiresAtMs: push.expiresAtMs,
      };
      fate = null;
    } else if (!activeCode || activeCode.code === push.code) {
      activeCode = null;
      fate = { state: push.state, merchantId: push.merchantId, paidCents: null };
      if (push.state === 'redeemed') void learnPaid(push.merchantId);
    }
    renderCode();
  };

  const live = new WalletLive(token, {
    snapshot: (snapshot) => {
      cards.clear();
      for (const card of snapshot.cards) cards.set(card.cardId, card);
      const shown = activeCode;
      activeCode = snapshot.activeCode;
      if (shown && activeCode?.code !== shown.code && !fate) void learnFate(shown, codeSeenAtMs);
      frozen = snapshot.frozen ?? false;
      renderCards();
      renderCode();
      renderAccount();
      refreshHistorySoon();
    },
    balance: (push) => {
      const card = cards.get(push.cardId);
      if (card) {
        card.balanceCents = push.balanceCents;
        card.availableCents = push.availableCents;
      } else {
        // A new card: its name comes with the wallet, so read it once. Cards already here keep their
        // figures, which pushes may have made newer than this answer.
        void api<{ cards: Card[] }>('GET', '/v1/wallet', { token })
          .then((wallet) => {
            for (const fresh of wallet.cards) if (!cards.has(fresh.cardId)) cards.set(fresh.cardId, fresh);
            renderCards();
          })
          .catch(() => undefined);
      }
      renderCards();
      refreshHistorySoon();
    },
    code: onCode,
    connection: showConnection,
    // A token replaced by a freeze that signed out the other devices is no end of the session: the page
    // goes on with the new one (it reloads).
    unauthorized: () => {
      if (localStorage.getItem(TOKEN_KEY) === token) signOut('Your session has ended. Sign in again.');
      else live.close();
    },
  });

  const signOut = (message?: string) => {
    live.close();
    clearInterval(timer);
    localStorage.removeItem(TOKEN_KEY);
    showSignIn(message);
  };
  signOutButton.addEventListener('click', () =>
    busy(signOutButton, async () => {
      await api('DELETE', '/v1/wallet/token', { token }).catch(() => undefined);
      signOut();
    }),
  );

  mount(
    root,
    topbar(null, connection, signOutButton),
    h(
      'main',
      { class: 'page narrow' },
      frozenSection,
      codeSection,
      h(
        'section',
        { class: 'panel' },
        h('div', { class: 'panel-head' }, h('h2', null, 'Your cards'), totalLine),
        cardsList,
      ),
      payForm,
      giftForm,
      h('section', { class: 'panel' }, h('h2', null, 'History'), historyList),
      alertForm,
      h(
        'section',
        { class: 'panel' },
        h('h2', null, 'Account'),
        h(
          'p',
          { class: 'muted' },
          'Lost your card or worried about a code? Freezing stops every payment until you unfreeze. You can also text STOP.',
        ),
        signOutOthersLabel,
        freezeButton,
        accountStatus,
      ),
    ),
  );
  renderCards();
  renderAccount();
}

if ('serviceWorker' in navigator) {
  navigator.serviceWorker.register('/wallet/sw.js', { scope: '/wallet/' }).catch(() => undefined);
}

const saved = localStorage.getItem(TOKEN_KEY);
if (saved) showWallet(saved);
else showSignIn();
