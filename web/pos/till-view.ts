import { socketUrl } from '../common/api.ts';
import { h, money, mount, notice, when } from '../common/ui.ts';
import { facts, topbar } from './layout.ts';
import { receipt } from './receipt.ts';
import { type Message, RecentSales } from './recent.ts';
import { type ChargeRequest, saleForm } from './sale-form.ts';
import { type ConnectionState, PosSession } from './session.ts';
import { afterSaleReason, saleDecline } from './statuses.ts';
import { forgetTerminal, type StoredTerminal } from './storage.ts';
import { type ChargeResult, type PendingOp, type Sale, Till } from './till.ts';

/**
 * The till screen of an activated terminal: the connection light, the sale entry, the result of the last
 * sale, the recent sales with void and refund, and two secondary views (a receipt, the terminal's own
 * page) shown in place of the sale view. The result panel carries `data-outcome`, one word per outcome,
 * so the state is plain to tests and to styles.
 */
type Outcome =
  | { kind: 'idle' }
  | { kind: 'sending'; amountCents: number }
  /** The answer was lost and the reversal is under way. */
  | { kind: 'lost'; amountCents: number }
  | { kind: 'result'; result: ChargeResult };

const CONNECTION_LABELS: Record<ConnectionState, string> = {
  connecting: 'Connecting…',
  online: 'Online',
  offline: 'Offline, reconnecting',
  revoked: 'Key revoked',
};

export class TillScreen {
  private readonly session: PosSession;
  private readonly till: Till;
  private readonly statusLight = h('span', { class: 'status-dot', role: 'status' }, 'Connecting…');
  private readonly banners = h('div', { class: 'pos-banners no-print', 'aria-live': 'polite' });
  private readonly result = h('section', {
    class: 'panel pos-result',
    'aria-live': 'polite',
    'aria-label': 'Result of the last sale',
  });
  private readonly form = saleForm((request) => this.charge(request));
  private readonly recent: RecentSales;
  private readonly saleView: HTMLElement;
  private readonly sideView = h('div', { class: 'pos-side-view', hidden: true });
  private outcome: Outcome = { kind: 'idle' };
  /** The balance answered with each sale of this page, for its receipt; never stored. */
  private readonly balances = new Map<string, number>();

  constructor(
    root: HTMLElement,
    private readonly terminal: StoredTerminal,
    private readonly onForgotten: () => void,
  ) {
    this.session = new PosSession({
      url: socketUrl('/v1/pos'),
      terminalId: terminal.terminalId,
      merchantId: terminal.merchantId,
      terminalKey: terminal.key,
      onState: (state) => this.showConnection(state),
      onOnline: () => void this.till.drain(),
    });
    this.till = new Till(terminal.terminalId, this.session, {
      onChange: () => this.renderRecent(),
      onSettled: (op, status, watched) => this.settledInBackground(op, status, watched),
    });
    this.recent = new RecentSales({
      receipt: (sale) => this.showReceipt(sale),
      void: (sale) => this.voidSale(sale),
      refund: (sale, amountCents) => this.refundSale(sale, amountCents),
      dismiss: (key) => this.till.dismiss(key),
    });
    this.saleView = h(
      'div',
      { class: 'pos-grid' },
      this.form.element,
      h('div', { class: 'pos-side' }, this.result, this.recent.element),
    );
    const terminalButton = h(
      'button',
      { type: 'button', class: 'btn ghost small', on: { click: () => this.showTerminal() } },
      'Terminal',
    );
    mount(
      root,
      topbar(
        this.statusLight,
        h('span', { class: 'pos-terminal-id mono' }, terminal.terminalId),
        terminalButton,
      ),
      h(
        'main',
        { class: 'page wide pos-page' },
        this.banners,
        this.recent.doubts,
        this.saleView,
        this.sideView,
      ),
    );
    this.renderResult();
    this.renderRecent();
    this.session.start();
    this.form.focus();
  }

  private async charge(request: ChargeRequest): Promise<void> {
    this.outcome = { kind: 'sending', amountCents: request.amountCents };
    this.renderResult();
    let result: ChargeResult;
    try {
      result = await this.till.charge(request, () => {
        this.outcome = { kind: 'lost', amountCents: request.amountCents };
        this.renderResult();
      });
    } catch {
      // A programming error or a full localStorage: the pending reversal, if written, still goes out.
      result = { kind: 'not_sent' };
    }
    this.outcome = { kind: 'result', result };
    if (result.kind === 'answered' && result.sale && result.balanceCents !== null)
      this.balances.set(result.sale.authId, result.balanceCents);
    // An approved code is spent, and a code that got no answer may be: either way the next sale needs a new one.
    if (result.kind === 'answered' && result.status !== 'approved') {
      if (!saleDecline(result.status).codeReusable) this.form.clear('code');
    } else if (result.kind !== 'not_sent') this.form.clear('all');
    this.renderResult();
    this.renderRecent();
  }

  private renderResult(): void {
    const outcome = this.outcome;
    const panel = this.result;
    delete panel.dataset.status;
    if (outcome.kind === 'idle') {
      panel.dataset.outcome = 'idle';
      mount(
        panel,
        h('div', { class: 'pos-result-icon', 'aria-hidden': 'true' }, '$'),
        h('h2', null, 'Ready for the next sale'),
        h('p', { class: 'muted' }, 'Enter the customer’s payment code and the amount, then press Charge.'),
      );
      return;
    }
    if (outcome.kind === 'sending') {
      panel.dataset.outcome = 'sending';
      mount(
        panel,
        h('div', { class: 'pos-spinner', 'aria-hidden': 'true' }),
        h('h2', null, `Charging ${money(outcome.amountCents)}…`),
        h('p', { class: 'muted' }, 'Waiting for approval. Do not hand over the goods yet.'),
      );
      return;
    }
    if (outcome.kind === 'lost') {
      panel.dataset.outcome = 'reversing';
      mount(
        panel,
        h('div', { class: 'pos-spinner', 'aria-hidden': 'true' }),
        h('h2', null, `No answer: reversing the ${money(outcome.amountCents)} sale…`),
        h('p', { class: 'muted' }, 'Treat the sale as not paid. Do not hand over the goods.'),
      );
      return;
    }
    const result = outcome.result;
    const newSale = h(
      'button',
      { type: 'button', class: 'btn ghost', on: { click: () => this.newSale() } },
      'New sale',
    );
    if (result.kind === 'answered' && result.sale) {
      const sale = result.sale;
      const dueCents = result.requestedCents - sale.approvedCents;
      panel.dataset.outcome = dueCents > 0 ? 'partial' : 'approved';
      mount(
        panel,
        h(
          'div',
          { class: 'pos-result-head' },
          h(
            'span',
            { class: dueCents > 0 ? 'badge warn' : 'badge ok' },
            dueCents > 0 ? 'Partially approved' : 'Approved',
          ),
          h('span', { class: 'muted' }, when(sale.atMs)),
        ),
        h('p', { class: 'pos-result-amount' }, money(sale.approvedCents)),
        dueCents > 0
          ? notice(
              'warn',
              h('strong', null, `${money(sale.approvedCents)} approved, ${money(dueCents)} still due`),
              'Take the rest by another tender.',
            )
          : notice('ok', h('strong', null, 'Payment approved'), 'Hand over the goods and the receipt.'),
        facts([
          ['Authorization', h('span', { class: 'mono' }, sale.authId)],
          ...(result.balanceCents !== null
            ? [['Balance left at this store', money(result.balanceCents)] as [string, string]]
            : []),
        ]),
        h(
          'div',
          { class: 'row' },
          h(
            'button',
            { type: 'button', class: 'btn', on: { click: () => this.showReceipt(sale) } },
            'Receipt',
          ),
          newSale,
        ),
      );
      return;
    }
    if (result.kind === 'answered') {
      const decline = saleDecline(result.status);
      panel.dataset.outcome = 'declined';
      panel.dataset.status = result.status;
      mount(
        panel,
        h(
          'div',
          { class: 'pos-result-head' },
          h('span', { class: 'badge bad' }, 'Declined'),
          h('span', { class: 'mono muted' }, result.status),
        ),
        h('p', { class: 'pos-result-title' }, decline.title),
        notice(
          'error',
          h('strong', null, `Nothing was charged (${money(result.requestedCents)} asked)`),
          decline.advice,
        ),
        h(
          'p',
          { class: 'muted' },
          decline.codeReusable
            ? 'The customer’s code is still valid and can be used again.'
            : 'This code cannot be used again: the customer needs a new one.',
        ),
        h('div', { class: 'row' }, newSale),
      );
      return;
    }
    if (result.kind === 'reversed' || result.kind === 'reversing') {
      const reversed = result.kind === 'reversed';
      panel.dataset.outcome = result.kind;
      mount(
        panel,
        h(
          'div',
          { class: 'pos-result-head' },
          h('span', { class: reversed ? 'badge bad' : 'badge warn' }, reversed ? 'Not paid' : 'Reversing'),
        ),
        h('p', { class: 'pos-result-title' }, 'The sale did not go through'),
        reversed
          ? notice(
              'error',
              h('strong', null, `The ${money(result.amountCents)} sale was reversed`),
              'No answer came back from the payment service, so the terminal reversed the payment: the customer was not charged. Ask for a new payment code and charge again.',
            )
          : notice(
              'warn',
              h('strong', null, `No answer for the ${money(result.amountCents)} sale`),
              'The terminal is reversing it and keeps trying until the service confirms, also after a reload. Treat the sale as not paid: do not hand over the goods against it.',
            ),
        h('div', { class: 'row' }, newSale),
      );
      return;
    }
    panel.dataset.outcome = 'not-sent';
    mount(
      panel,
      h('div', { class: 'pos-result-head' }, h('span', { class: 'badge bad' }, 'Offline')),
      h('p', { class: 'pos-result-title' }, 'Nothing was sent'),
      notice(
        'error',
        h('strong', null, 'The terminal is not connected'),
        'Nothing was charged. Wait until the light shows Online, then charge again.',
      ),
      h('div', { class: 'row' }, newSale),
    );
  }

  private newSale(): void {
    this.outcome = { kind: 'idle' };
    this.renderResult();
    this.form.clear('all');
    this.form.focus();
  }

  private renderRecent(): void {
    this.recent.render(
      this.till.sales(),
      this.till.pending(),
      this.till.inDoubt(),
      this.till.unconfirmable(),
    );
  }

  private async voidSale(sale: Sale): Promise<Message> {
    const result = await this.till.void(sale);
    if (!result)
      return { kind: 'warn', text: 'No answer yet: the void is sent again until the service confirms it.' };
    if (result.status === 'approved')
      return { kind: 'ok', text: `Voided: ${money(sale.approvedCents)} went back to the customer.` };
    return { kind: 'error', text: `Not voided. ${afterSaleReason(result.status)}` };
  }

  private async refundSale(sale: Sale, amountCents: number): Promise<Message> {
    const result = await this.till.refund(sale, amountCents);
    if (!result)
      return { kind: 'warn', text: 'No answer yet: the refund is sent again until the service confirms it.' };
    if (result.status === 'approved')
      return { kind: 'ok', text: `Refunded ${money(amountCents)} to the customer.` };
    return { kind: 'error', text: `Not refunded. ${afterSaleReason(result.status)}` };
  }

  /** An operation that settled while nobody waited for it on screen: say so in a banner. */
  private settledInBackground(op: PendingOp, status: string, watched: boolean): void {
    if (watched) return;
    if (op.kind === 'reverse') {
      const shown = this.outcome;
      if (shown.kind === 'result' && shown.result.kind === 'reversing' && shown.result.key === op.key) {
        this.outcome = { kind: 'result', result: { kind: 'reversed', amountCents: op.amountCents } };
        this.renderResult();
      }
      this.banner(
        'ok',
        `The ${money(op.amountCents)} sale of ${when(op.atMs)} that got no answer was reversed: the customer was not charged.`,
      );
      return;
    }
    const what = op.kind === 'void' ? 'void' : `refund of ${money(op.amountCents)}`;
    if (status === 'approved') this.banner('ok', `The ${what} for ${op.authId} went through.`);
    else this.banner('error', `The ${what} for ${op.authId} was refused. ${afterSaleReason(status)}`);
  }

  private banner(kind: 'ok' | 'error' | 'warn', text: string): void {
    const dismiss = h('button', { type: 'button', class: 'btn small ghost' }, 'Dismiss');
    const element = notice(kind, h('span', { class: 'grow' }, text), dismiss);
    element.classList.add('pos-banner');
    dismiss.addEventListener('click', () => element.remove());
    this.banners.append(element);
  }

  private showConnection(state: ConnectionState): void {
    this.statusLight.className =
      `status-dot ${state === 'online' ? 'online' : state === 'connecting' ? '' : 'offline'}`.trim();
    this.statusLight.textContent = CONNECTION_LABELS[state];
    this.statusLight.dataset.state = state;
    if (state === 'revoked') {
      this.form.setEnabled(false);
      this.banner(
        'error',
        'This terminal’s key was revoked or replaced by the merchant. Forget the terminal (Terminal, then Forget) and activate it again with a new activation code.',
      );
    }
  }

  private showSide(...children: Node[]): void {
    mount(this.sideView, ...children);
    this.saleView.hidden = true;
    this.sideView.hidden = false;
    window.scrollTo(0, 0);
  }

  private backToSale = (): void => {
    this.sideView.hidden = true;
    this.sideView.replaceChildren();
    this.saleView.hidden = false;
    this.form.focus();
  };

  private showReceipt(sale: Sale): void {
    this.showSide(
      h(
        'section',
        { class: 'panel pos-receipt-view' },
        h(
          'div',
          { class: 'row no-print' },
          h('button', { type: 'button', class: 'btn', on: { click: () => window.print() } }, 'Print'),
          h('button', { type: 'button', class: 'btn ghost', on: { click: this.backToSale } }, 'Back to sale'),
        ),
        receipt(sale, this.terminal, this.balances.get(sale.authId) ?? null),
      ),
    );
  }

  private showTerminal(): void {
    const pendingCount = this.till.pending().length;
    const confirmRow = h('div', { class: 'row', hidden: true });
    const forgetButton = h(
      'button',
      {
        type: 'button',
        class: 'btn danger',
        on: {
          click: () => {
            forgetButton.hidden = true;
            confirmRow.hidden = false;
          },
        },
      },
      'Forget this terminal',
    );
    mount(
      confirmRow,
      h('p', { class: 'grow' }, 'Remove the key from this browser for good?'),
      h(
        'button',
        { type: 'button', class: 'btn danger', on: { click: () => void this.forget() } },
        'Yes, forget it',
      ),
      h(
        'button',
        {
          type: 'button',
          class: 'btn ghost',
          on: {
            click: () => {
              confirmRow.hidden = true;
              forgetButton.hidden = false;
            },
          },
        },
        'Cancel',
      ),
    );
    this.showSide(
      h(
        'section',
        { class: 'panel pos-terminal-view', 'aria-labelledby': 'terminal-title' },
        h(
          'div',
          { class: 'panel-head' },
          h('h2', { id: 'terminal-title' }, 'This terminal'),
          h(
            'button',
            { type: 'button', class: 'btn ghost small', on: { click: this.backToSale } },
            'Back to sale',
          ),
        ),
        facts([
          ['Terminal ID', h('span', { class: 'mono' }, this.terminal.terminalId)],
          ['Merchant ID', h('span', { class: 'mono' }, this.terminal.merchantId)],
          ['Activated', when(this.terminal.activatedAtMs)],
          ['Connection', CONNECTION_LABELS[this.session.state]],
          ['Operations waiting for an answer', String(pendingCount)],
        ]),
        notice(
          'info',
          h('strong', null, 'How the key is kept'),
          'The terminal key lives in this browser as a non-extractable WebCrypto key: it signs every request, but no script, this page included, can read it back. Clearing this site’s data removes it.',
        ),
        h('h3', null, 'Forget this terminal'),
        h(
          'p',
          { class: 'muted' },
          'Removes the key and the recent sales from this browser. To take payments here again, the merchant issues a new activation code.',
        ),
        pendingCount > 0
          ? notice(
              'warn',
              `${pendingCount} operation(s) still wait for an answer. Forget the terminal only once it is online and they are done. If you forget it now, they stay in this browser and are completed when the same terminal is activated here again (a new activation code from the merchant).`,
            )
          : null,
        h('div', null, forgetButton),
        confirmRow,
      ),
    );
  }

  private async forget(): Promise<void> {
    this.till.stop();
    this.session.stop();
    await forgetTerminal(this.terminal.terminalId);
    this.onForgotten();
  }
}
