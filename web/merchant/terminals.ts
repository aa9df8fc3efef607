import { busy, field, h, mount, notice, plural, when } from '../common/ui.ts';
import { errorText, shortTime } from './format.ts';
import type { Session } from './session.ts';
import { dataTable } from './table.ts';
import type { CodeRefusal, MerchantDetails, Terminal, TerminalState } from './types.ts';

/**
 * The merchant's tills: add one (its activation code is shown once, large, to type on the till), lock
 * and unlock, a new activation code (a rekey, or bringing a revoked till back), and revoke with a
 * confirmation. The list comes from the server after every action, so it shows what is in force.
 */
const STATES: Record<TerminalState, { label: string; badge: string; hint: string }> = {
  active: { label: 'Active', badge: 'ok', hint: 'Accepting payments' },
  pending: { label: 'Awaiting activation', badge: '', hint: 'Enter the activation code on the till' },
  locked: { label: 'Locked', badge: 'bad', hint: 'Codes are refused until it is unlocked' },
  revoked: { label: 'Revoked', badge: 'muted', hint: 'Its key no longer works' },
  expired: { label: 'Code expired', badge: 'warn', hint: 'Make a new activation code' },
};

interface Activation {
  terminalId: string;
  activationCode: string;
}

export function terminalsSection(session: Session) {
  const label = h('input', { autocomplete: 'off', maxLength: 100, placeholder: 'Front counter' });
  const create = h('button', { class: 'btn', type: 'submit' }, 'Create terminal');
  const codeHost = h('div', { 'aria-live': 'polite' });
  const listHost = h('div');
  const status = h('div', { 'aria-live': 'polite' });
  let terminals: Terminal[] = [];
  /** The row asking "Revoke?", if any. */
  let confirming: string | null = null;

  const showCode = (title: string, activation: Activation, terminalLabel: string) => {
    const done = h('button', { class: 'btn ghost small', type: 'button' }, 'Done');
    done.addEventListener('click', () => mount(codeHost));
    mount(
      codeHost,
      h(
        'div',
        { class: 'activation', role: 'status' },
        h(
          'div',
          { class: 'activation-text' },
          h('strong', null, title),
          h('span', null, `Type this code on “${terminalLabel}” within 24 hours. It is shown only once.`),
        ),
        h('output', { class: 'activation-code', 'aria-label': 'Activation code' }, activation.activationCode),
        done,
      ),
    );
  };

  const act = async (button: HTMLButtonElement, terminal: Terminal, action: string) => {
    try {
      await busy(button, async () => {
        if (action === 'rekey') {
          const activation = await session.call<Activation>(
            'POST',
            `/terminals/${encodeURIComponent(terminal.terminalId)}/rekey`,
            {},
          );
          showCode('New activation code', activation, terminal.label);
        } else
          await session.call('POST', `/terminals/${encodeURIComponent(terminal.terminalId)}/${action}`, {});
        confirming = null;
        await load();
      });
      const done: Record<string, string> = {
        lock: 'is locked',
        unlock: 'is unlocked',
        revoke: 'is revoked',
        rekey: 'has a new activation code',
      };
      mount(status, notice('ok', `“${terminal.label}” ${done[action]}.`));
    } catch (error) {
      mount(status, notice('error', errorText(error)));
    }
  };

  const actionButton = (terminal: Terminal, action: string, text: string, kind = 'ghost') => {
    const button = h(
      'button',
      { class: `btn small ${kind}`, type: 'button', 'aria-label': `${text} ${terminal.label}` },
      text,
    );
    button.addEventListener('click', () => {
      if (action === 'confirm') {
        confirming = terminal.terminalId;
        render();
      } else if (action === 'cancel') {
        confirming = null;
        render();
      } else void act(button, terminal, action);
    });
    return button;
  };

  const actions = (terminal: Terminal) => {
    if (confirming === terminal.terminalId)
      return [
        h('span', { class: 'confirm-text' }, 'Revoke this terminal?'),
        actionButton(terminal, 'revoke', 'Revoke', 'danger'),
        actionButton(terminal, 'cancel', 'Cancel'),
      ];
    const hasKey = terminal.state === 'active' || terminal.state === 'locked';
    return [
      hasKey && terminal.locked ? actionButton(terminal, 'unlock', 'Unlock') : null,
      hasKey && !terminal.locked ? actionButton(terminal, 'lock', 'Lock') : null,
      actionButton(terminal, 'rekey', 'New code'),
      terminal.state === 'revoked' ? null : actionButton(terminal, 'confirm', 'Revoke', 'danger'),
    ];
  };

  const render = () => {
    if (terminals.length === 0) {
      mount(
        listHost,
        h('p', { class: 'empty' }, 'No terminals yet. Create one above, then activate it on the till.'),
      );
      return;
    }
    mount(
      listHost,
      dataTable({
        caption: 'Terminals',
        columns: ['Terminal', 'State', 'Added', { label: 'Actions', class: 'actions-head' }],
        rows: terminals.map((terminal) => {
          const state = STATES[terminal.state];
          const note =
            terminal.activationExpiresAtMs !== null && terminal.state !== 'pending'
              ? `New code open until ${when(terminal.activationExpiresAtMs)}`
              : terminal.activationExpiresAtMs !== null
                ? `Code valid until ${when(terminal.activationExpiresAtMs)}`
                : terminal.failedCodesToday > 0
                  ? `${plural(terminal.failedCodesToday, 'wrong code')} in 24 h`
                  : state.hint;
          return h(
            'tr',
            { 'data-terminal': terminal.terminalId },
            h(
              'td',
              null,
              h('div', { class: 'cell-title' }, terminal.label),
              h('div', { class: 'mono muted small' }, terminal.terminalId),
            ),
            h(
              'td',
              null,
              h('span', { class: `badge ${state.badge}` }, state.label),
              h('div', { class: 'muted small' }, note),
            ),
            h('td', { class: 'nowrap' }, shortTime(terminal.createdAtMs)),
            h('td', null, h('div', { class: 'actions' }, actions(terminal))),
          );
        }),
      }),
    );
  };

  // How many digits the cashiers type: the store's shortest code, longer while the store is busy.
  const codeLength = h('span', { class: 'muted' });
  // Code attempts refused at the whole store: too many wrong codes in a window (docs/security.md).
  const refusedHost = h('div');
  const load = async () => {
    const [listed, details] = await Promise.all([
      session.call<{
        terminals: Terminal[];
        codeAttempts: { refused: false } | ({ refused: true } & CodeRefusal);
      }>('GET', '/terminals'),
      session.call<MerchantDetails>('GET', ''),
    ]);
    terminals = listed.terminals;
    const { codeAttempts } = listed;
    mount(
      refusedHost,
      codeAttempts.refused
        ? notice(
            'error',
            codeAttempts.window === 'all merchants, per minute'
              ? `Payment codes are refused everywhere until ${shortTime(codeAttempts.untilMs)}: too many wrong codes across all stores.`
              : `Payment codes are refused at this store until ${shortTime(codeAttempts.untilMs)}: too many wrong codes (${codeAttempts.window}). The failed codes of each terminal are below.`,
          )
        : null,
    );
    codeLength.textContent = `Payment codes have ${details.codeDigitsMin} digits, more while the store is busy (up to 10)`;
    render();
  };

  const form = h(
    'form',
    { class: 'row add-terminal', noValidate: true },
    field('Terminal label', label),
    create,
  );
  form.addEventListener('submit', async (event) => {
    event.preventDefault();
    const text = label.value.trim();
    if (!text) {
      mount(status, notice('error', 'Give the terminal a label.'));
      return;
    }
    try {
      const activation = await busy(create, () =>
        session.call<Activation>('POST', '/terminals', { label: text }),
      );
      label.value = '';
      mount(status);
      showCode('Terminal created', activation, text);
      await load();
    } catch (error) {
      mount(status, notice('error', errorText(error)));
    }
  });

  const element = h(
    'div',
    { class: 'stack' },
    h(
      'section',
      { class: 'panel', 'aria-labelledby': 'add-terminal-title' },
      h(
        'div',
        { class: 'panel-head' },
        h('h2', { id: 'add-terminal-title' }, 'Add a terminal'),
        h('span', { class: 'muted' }, 'Name it after where it stands; each till gets its own key'),
      ),
      form,
      codeHost,
    ),
    h(
      'section',
      { class: 'panel', 'aria-labelledby': 'terminals-title' },
      h('div', { class: 'panel-head' }, h('h2', { id: 'terminals-title' }, 'Terminals'), codeLength),
      refusedHost,
      status,
      listHost,
    ),
  );
  return { element, refresh: () => (confirming ? Promise.resolve() : load()) };
}
