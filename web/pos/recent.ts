import { h, money, notice, parseDollars, when } from '../common/ui.ts';
import type { PendingOp, PendingReversal, Sale } from './till.ts';

/**
 * The recent sales of this terminal, newest first, each with its receipt, Void and Refund. Void and
 * refund ask for a confirmation in the row itself (a refund also for its amount), show their outcome
 * there, and are marked while the till is still retrying them.
 */
export interface RecentActions {
  receipt: (sale: Sale) => void;
  void: (sale: Sale) => Promise<Message>;
  refund: (sale: Sale, amountCents: number) => Promise<Message>;
  /** The cashier has checked an unconfirmable operation in the merchant dashboard. */
  dismiss: (key: string) => void;
}

const UNCONFIRMED: Record<PendingOp['kind'], string> = {
  reverse: 'a sale that got no answer',
  void: 'a void',
  refund: 'a refund',
};

export interface Message {
  kind: 'ok' | 'error' | 'warn';
  text: string;
}

interface RowState {
  mode: 'void' | 'refund' | null;
  busy: boolean;
  /** The refund amount being typed, kept across re-renders. */
  draft: string;
  /** The refund form was just opened: its amount gets the focus once. */
  focusDraft: boolean;
  message: Message | null;
}

export class RecentSales {
  readonly element: HTMLElement;
  private readonly list = h('ul', { class: 'list pos-sales' });
  /** Shown by the screen above everything else: a sale in doubt matters more than any list. */
  readonly doubts = h('div', { class: 'pos-doubts', 'aria-live': 'polite' });
  private readonly count = h('span', { class: 'badge' }, '0');
  private readonly rows = new Map<string, RowState>();
  private sales: Sale[] = [];
  private pending: PendingOp[] = [];

  constructor(private readonly actions: RecentActions) {
    this.element = h(
      'section',
      { class: 'panel pos-recent', 'aria-labelledby': 'recent-title' },
      h(
        'div',
        { class: 'panel-head' },
        h('h2', { id: 'recent-title' }, 'Recent sales'),
        h('span', { class: 'muted' }, 'On this device · last 20 ', this.count),
      ),
      this.list,
    );
  }

  /**
   * `inDoubt`: sales that got no answer and are still being reversed; `unconfirmable`: operations too old
   * to send again, to be checked in the merchant dashboard.
   */
  render(sales: Sale[], pending: PendingOp[], inDoubt: PendingReversal[], unconfirmable: PendingOp[]): void {
    this.sales = sales;
    this.pending = pending;
    this.count.textContent = String(sales.length);
    this.doubts.replaceChildren(
      ...inDoubt.map((op) =>
        notice(
          'warn',
          h('strong', null, `Reversing a ${money(op.amountCents)} sale`),
          `It got no answer at ${when(op.atMs)}. The terminal reverses it as soon as it is online: the customer will not be charged.`,
        ),
      ),
      ...unconfirmable.map((op) =>
        notice(
          'error',
          h('strong', null, `Unconfirmed: ${UNCONFIRMED[op.kind]} of ${when(op.atMs)}`),
          'The terminal was offline too long to settle it safely. Check it under Transactions in the merchant dashboard, then dismiss this.',
          h(
            'button',
            { type: 'button', class: 'btn small ghost', on: { click: () => this.actions.dismiss(op.key) } },
            'Checked, dismiss',
          ),
        ),
      ),
    );
    if (sales.length === 0) {
      this.list.replaceChildren(h('li', { class: 'empty' }, 'No sales yet on this terminal.'));
      return;
    }
    this.list.replaceChildren(...sales.map((sale) => this.row(sale)));
  }

  private rerender(): void {
    this.list.replaceChildren(...this.sales.map((sale) => this.row(sale)));
  }

  private state(authId: string): RowState {
    let state = this.rows.get(authId);
    if (!state) {
      state = { mode: null, busy: false, draft: '', focusDraft: false, message: null };
      this.rows.set(authId, state);
    }
    return state;
  }

  private row(sale: Sale): HTMLElement {
    const state = this.state(sale.authId);
    const refundableCents = sale.voided ? 0 : sale.approvedCents - sale.refundedCents;
    const pendingOp = this.pending.find((op) => op.kind !== 'reverse' && op.authId === sale.authId);
    const open = (mode: RowState['mode']) => () => {
      state.mode = mode;
      state.message = null;
      if (mode === 'refund') {
        state.draft = (refundableCents / 100).toFixed(2);
        state.focusDraft = true;
      }
      this.rerender();
    };
    const button = (label: string, kind: string, action: () => void) =>
      h(
        'button',
        { type: 'button', class: `btn small ${kind}`, disabled: state.busy, on: { click: action } },
        label,
      );

    const badges = [
      sale.voided ? h('span', { class: 'badge bad' }, 'Voided') : null,
      sale.approvedCents < sale.requestedCents ? h('span', { class: 'badge warn' }, 'Partial') : null,
      sale.refundedCents > 0 ? h('span', { class: 'badge' }, `Refunded ${money(sale.refundedCents)}`) : null,
      pendingOp
        ? h('span', { class: 'badge warn' }, pendingOp.kind === 'void' ? 'Void pending' : 'Refund pending')
        : null,
    ];
    const actions = h(
      'div',
      { class: 'sale-actions' },
      button('Receipt', 'ghost', () => this.actions.receipt(sale)),
      !sale.voided && state.mode === null && !pendingOp ? button('Void', 'danger', open('void')) : null,
      refundableCents > 0 && state.mode === null && !pendingOp
        ? button('Refund', 'ghost', open('refund'))
        : null,
    );
    return h(
      'li',
      { class: sale.voided ? 'sale-row voided' : 'sale-row', 'data-auth-id': sale.authId },
      h(
        'div',
        { class: 'sale-main' },
        h(
          'div',
          { class: 'grow' },
          h(
            'div',
            { class: 'sale-title' },
            h('span', { class: 'amount' }, money(sale.approvedCents)),
            badges,
          ),
          h(
            'div',
            { class: 'muted sale-meta' },
            when(sale.atMs),
            ' · ',
            h('span', { class: 'mono' }, sale.authId),
          ),
        ),
        actions,
      ),
      state.mode === 'void' ? this.voidForm(sale, state) : null,
      state.mode === 'refund' ? this.refundForm(sale, state, refundableCents) : null,
      state.message ? notice(state.message.kind, state.message.text) : null,
    );
  }

  private voidForm(sale: Sale, state: RowState): HTMLElement {
    const confirm = async () => {
      state.busy = true;
      this.rerender();
      state.message = await this.actions.void(sale);
      state.busy = false;
      state.mode = null;
      this.rerender();
    };
    return h(
      'div',
      { class: 'sale-form' },
      h(
        'p',
        { class: 'grow' },
        `Void this ${money(sale.approvedCents)} sale? The whole amount goes back to the customer.`,
      ),
      h(
        'div',
        { class: 'sale-actions' },
        h(
          'button',
          {
            type: 'button',
            class: 'btn danger',
            disabled: state.busy,
            on: { click: () => void confirm() },
          },
          state.busy ? 'Voiding…' : 'Confirm void',
        ),
        this.cancelButton(state),
      ),
    );
  }

  private refundForm(sale: Sale, state: RowState, refundableCents: number): HTMLElement {
    const input = h('input', {
      id: `refund-${sale.authId}`,
      inputMode: 'decimal',
      autocomplete: 'off',
      value: state.draft,
      disabled: state.busy,
      on: {
        input: () => {
          state.draft = input.value;
        },
      },
    });
    const confirm = async () => {
      const amountCents = parseDollars(input.value);
      if (amountCents === null || amountCents > refundableCents) {
        state.message = { kind: 'error', text: `Enter an amount up to ${money(refundableCents)}.` };
        this.rerender();
        return;
      }
      state.busy = true;
      state.message = null;
      this.rerender();
      state.message = await this.actions.refund(sale, amountCents);
      state.busy = false;
      state.mode = null;
      this.rerender();
    };
    if (state.focusDraft) {
      state.focusDraft = false;
      queueMicrotask(() => input.select());
    }
    return h(
      'form',
      {
        class: 'sale-form',
        noValidate: true,
        on: {
          submit: (event: Event) => {
            event.preventDefault();
            void confirm();
          },
        },
      },
      h('div', { class: 'field grow' }, h('label', { for: input.id }, 'Refund amount'), input),
      h(
        'div',
        { class: 'sale-actions' },
        h(
          'button',
          { type: 'submit', class: 'btn', disabled: state.busy },
          state.busy ? 'Refunding…' : 'Confirm refund',
        ),
        this.cancelButton(state),
      ),
      h('small', { class: 'sale-form-hint' }, `Up to ${money(refundableCents)} can still be refunded.`),
    );
  }

  private cancelButton(state: RowState): HTMLElement {
    return h(
      'button',
      {
        type: 'button',
        class: 'btn ghost',
        disabled: state.busy,
        on: {
          click: () => {
            state.mode = null;
            this.rerender();
          },
        },
      },
      'Cancel',
    );
  }
}
