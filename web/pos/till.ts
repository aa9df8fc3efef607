import { newKey } from '../common/api.ts';
import { AnswerLost, type PosAnswer, type PosSession } from './session.ts';
import { pendingKey, readList, salesKey, writeList } from './storage.ts';

/**
 * The till's money rules on top of the session, the same ones as sdk/pos-client.ts:
 *
 * - A sale is a `redeem` under a fresh idempotency key. Before it leaves, the key is written to the
 *   pending list as a reversal to make. A verified answer removes it. Without one (socket closed, timeout,
 *   bad MAC) the sale may or may not have been approved, so it is reversed by its key, and the entry
 *   stays until the server answers `reversed` or `nothing_to_reverse`: after a reconnection, and after a
 *   page reload too. Either answer means the customer paid nothing.
 * - Void and refund are written to the same pending list and sent again under the same key after
 *   `overloaded`, `internal` or a lost answer, which is safe because the server answers a repeated key
 *   with the stored result.
 * - A new sale always gets a new key, and the Charge button sends one sale at a time: nothing is ever
 *   charged twice.
 * - The server keeps keys for at least 48 hours (docs/pos-guide.md). An operation still pending after that is
 *   not sent again: a reversal would find nothing and say so, a refund would be a new one. It stays on
 *   screen as unconfirmed until the cashier has checked it in the merchant dashboard and dismisses it.
 */
export interface Sale {
  key: string;
  authId: string;
  requestedCents: number;
  approvedCents: number;
  atMs: number;
  voided: boolean;
  refundedCents: number;
}

export type PendingOp =
  | { kind: 'reverse'; key: string; amountCents: number; atMs: number }
  | { kind: 'void'; key: string; authId: string; atMs: number }
  | { kind: 'refund'; key: string; authId: string; amountCents: number; atMs: number };

export type PendingReversal = Extract<PendingOp, { kind: 'reverse' }>;

export type ChargeResult =
  /** A verified answer: `approved` (maybe for less than asked) or a decline. */
  | {
      kind: 'answered';
      status: string;
      sale: Sale | null;
      balanceCents: number | null;
      requestedCents: number;
    }
  /** The answer was lost and the sale has been undone: nobody paid. */
  | { kind: 'reversed'; amountCents: number }
  /** The answer was lost and the reversal is not confirmed yet; it is sent again until it is. */
  | { kind: 'reversing'; amountCents: number; key: string }
  /** Offline: nothing was sent. */
  | { kind: 'not_sent' };

/** A void or refund: its final status, or null while it is still being retried in the background. */
export type OpResult = { status: string; answer: PosAnswer | null } | null;

export interface TillEvents {
  /** The sales or the pending list changed. */
  onChange: () => void;
  /**
   * A pending operation got its final answer. `watched`: the cashier's screen is still waiting for it
   * (and shows it itself); otherwise it settled in the background, after a reconnection or a reload.
   */
  onSettled: (op: PendingOp, status: string, watched: boolean) => void;
}

/** Kept on the device: enough for a shift's voids and receipts, small enough to mean little if lost. */
const SALES_MAX = 20;
/** Statuses after which the same request under the same key is sent again: nothing final happened. */
const RETRYABLE: ReadonlySet<string> = new Set(['overloaded', 'internal', 'bad_mac', 'replay']);
/**
 * A void, refund or reversal refused for now is also retried after `rate_limited` (the socket's request
 * rate); for a sale that status is a decline the cashier must see (too many failed codes).
 */
const RETRYABLE_LATER: ReadonlySet<string> = new Set([...RETRYABLE, 'rate_limited']);
const FINAL_REVERSE: ReadonlySet<string> = new Set(['reversed', 'nothing_to_reverse']);
const REDEEM_ATTEMPTS_MAX = 3;
/** How long Charge waits for a connection before it gives up without sending anything. */
const ONLINE_WAIT_MS = 5_000;
/** How long the cashier waits for a reversal or a void/refund before it continues in the background. */
const SETTLE_WAIT_MS = 15_000;
const RETRY_DELAY_MS = 2_000;
/** How long a pending operation's key is safe to send again: the server's 48 hours, less a margin. */
export const KEY_SAFE_MS = 47 * 3_600_000;

export class Till {
  /** Keys of sales whose redeem is in flight in this page: not to be reversed behind their back. */
  private readonly redeeming = new Set<string>();
  private readonly settlements = new Map<
    string,
    { promise: Promise<OpResult>; resolve: (r: OpResult) => void }
  >();
  /** Keys whose outcome the cashier is waiting for on screen. */
  private readonly watched = new Set<string>();
  private draining = false;
  private drainAgain = false;
  private retryTimer: ReturnType<typeof setTimeout> | null = null;

  constructor(
    private readonly terminalId: string,
    private readonly session: PosSession,
    private readonly events: TillEvents,
  ) {}

  sales(): Sale[] {
    return readList(salesKey(this.terminalId), isSale);
  }

  pending(): PendingOp[] {
    return readList(pendingKey(this.terminalId), isPendingOp);
  }

  /** Sales that got no verified answer and whose reversal is not confirmed yet (and still can be). */
  inDoubt(): PendingReversal[] {
    return this.pending().filter(
      (op): op is PendingReversal => op.kind === 'reverse' && !this.redeeming.has(op.key) && sendable(op),
    );
  }

  /** Operations too old to send again: their outcome must be checked in the merchant dashboard. */
  unconfirmable(): PendingOp[] {
    return this.pending().filter((op) => !sendable(op));
  }

  /** Drops an unconfirmable operation once the cashier has checked it. */
  dismiss(key: string): void {
    if (this.unconfirmable().some((op) => op.key === key)) this.removePending(key);
  }

  stop(): void {
    if (this.retryTimer) clearTimeout(this.retryTimer);
    this.retryTimer = null;
  }

  /** One sale; `onLost` is called when its answer is lost, as the reversal starts. */
  async charge(
    request: { code: string; amountCents: number; partial: boolean },
    onLost: () => void = () => undefined,
  ): Promise<ChargeResult> {
    this.session.reconnectNow();
    if (!(await this.session.whenOnline(ONLINE_WAIT_MS))) return { kind: 'not_sent' };
    const key = newKey('sale');
    const fields = {
      key,
      code: request.code,
      amountCents: request.amountCents,
      partial: request.partial ? 1 : 0,
    };
    this.redeeming.add(key);
    // Written before the redeem leaves: if the page dies with it in flight, the next start reverses it.
    this.addPending({ kind: 'reverse', key, amountCents: request.amountCents, atMs: Date.now() });
    try {
      for (let attempt = 1; attempt <= REDEEM_ATTEMPTS_MAX; attempt++) {
        const answer = await this.session.request('redeem', fields);
        // An approval that does not say what it approved cannot be trusted: it is treated as lost.
        const incomplete =
          answer.status === 'approved' && (!isText(answer.authId) || !isCents(answer.approvedCents));
        if (incomplete) break;
        if (!RETRYABLE.has(answer.status)) return this.answered(key, request.amountCents, answer);
        if (attempt < REDEEM_ATTEMPTS_MAX) await sleep(RETRY_DELAY_MS * attempt);
      }
    } catch (error) {
      if (!(error instanceof AnswerLost)) throw error;
    } finally {
      this.redeeming.delete(key);
    }
    // No final answer: the sale may have been approved. Undo it by its key before anyone walks away.
    onLost();
    const result = await this.watch(key);
    return result
      ? { kind: 'reversed', amountCents: request.amountCents }
      : { kind: 'reversing', amountCents: request.amountCents, key };
  }

  void(sale: Sale): Promise<OpResult> {
    return this.run({ kind: 'void', key: newKey('void'), authId: sale.authId, atMs: Date.now() });
  }

  refund(sale: Sale, amountCents: number): Promise<OpResult> {
    return this.run({
      kind: 'refund',
      key: newKey('refund'),
      authId: sale.authId,
      amountCents,
      atMs: Date.now(),
    });
  }

  /** Sends every pending operation until each has a final answer; called whenever the session comes online. */
  async drain(): Promise<void> {
    if (this.draining) {
      this.drainAgain = true;
      return;
    }
    this.draining = true;
    try {
      let refused = false;
      do {
        this.drainAgain = false;
        for (const op of this.pending()) {
          // Read again for each: while an earlier one was awaited, a sale may have been answered (and
          // must not be reversed), or a redeem may have started.
          if (this.redeeming.has(op.key) || !this.isPending(op.key) || !sendable(op)) continue;
          // Offline or lost: the next handshake drains again.
          if (this.session.state !== 'online') return;
          const answer = await this.attempt(op);
          if (answer) this.settle(op, answer);
          else refused = true;
        }
      } while (this.drainAgain);
      // Refused for now (overloaded, ...): the same keys go again shortly.
      if (refused) this.retryLater();
    } finally {
      this.draining = false;
    }
  }

  private isPending(key: string): boolean {
    return this.pending().some((op) => op.key === key);
  }

  private answered(key: string, requestedCents: number, answer: PosAnswer): ChargeResult {
    let sale: Sale | null = null;
    if (answer.status === 'approved') {
      sale = {
        key,
        authId: answer.authId as string,
        requestedCents,
        approvedCents: answer.approvedCents as number,
        atMs: Date.now(),
        voided: false,
        refundedCents: 0,
      };
      writeList(salesKey(this.terminalId), [sale, ...this.sales()].slice(0, SALES_MAX));
    }
    // The answer is final, approved or not: there is nothing to reverse any more.
    this.removePending(key);
    return {
      kind: 'answered',
      status: answer.status,
      sale,
      balanceCents: typeof answer.balanceCents === 'number' ? answer.balanceCents : null,
      requestedCents,
    };
  }

  private run(op: PendingOp): Promise<OpResult> {
    this.addPending(op);
    return this.watch(op.key);
  }

  /** Drains and waits for `key` to settle, for at most SETTLE_WAIT_MS; null if it is still pending then. */
  private async watch(key: string): Promise<OpResult> {
    this.watched.add(key);
    try {
      const settled = this.settlement(key).promise;
      void this.drain();
      return await withTimeout(settled, SETTLE_WAIT_MS);
    } finally {
      this.watched.delete(key);
    }
  }

  /** One send of a pending operation: its verified final answer, or null to try again later. */
  private async attempt(op: PendingOp): Promise<PosAnswer | null> {
    const fields =
      op.kind === 'reverse'
        ? { key: op.key }
        : op.kind === 'void'
          ? { key: op.key, authId: op.authId }
          : { key: op.key, authId: op.authId, amountCents: op.amountCents };
    try {
      const answer = await this.session.request(op.kind, fields);
      // Only these two answers settle a reversal: until one comes, the sale is in doubt.
      if (op.kind === 'reverse') return FINAL_REVERSE.has(answer.status) ? answer : null;
      return RETRYABLE_LATER.has(answer.status) ? null : answer;
    } catch (error) {
      if (error instanceof AnswerLost) return null;
      throw error;
    }
  }

  private settle(op: PendingOp, answer: PosAnswer): void {
    if (answer.status === 'approved' || answer.status === 'already_voided') {
      const sales = this.sales();
      const sale = sales.find((candidate) => op.kind !== 'reverse' && candidate.authId === op.authId);
      if (sale && op.kind === 'void') sale.voided = true;
      if (sale && op.kind === 'refund' && answer.status === 'approved') sale.refundedCents += op.amountCents;
      writeList(salesKey(this.terminalId), sales);
    }
    this.removePending(op.key);
    this.settlement(op.key).resolve({ status: answer.status, answer });
    this.settlements.delete(op.key);
    this.events.onSettled(op, answer.status, this.watched.has(op.key));
  }

  private settlement(key: string): { promise: Promise<OpResult>; resolve: (r: OpResult) => void } {
    let entry = this.settlements.get(key);
    if (!entry) {
      let resolve: (r: OpResult) => void = () => undefined;
      const promise = new Promise<OpResult>((done) => {
        resolve = done;
      });
      entry = { promise, resolve };
      this.settlements.set(key, entry);
    }
    return entry;
  }

  private retryLater(): void {
    if (this.retryTimer) return;
    this.retryTimer = setTimeout(() => {
      this.retryTimer = null;
      void this.drain();
    }, RETRY_DELAY_MS);
  }

  private addPending(op: PendingOp): void {
    writeList(pendingKey(this.terminalId), [...this.pending(), op]);
    this.events.onChange();
  }

  private removePending(key: string): void {
    writeList(
      pendingKey(this.terminalId),
      this.pending().filter((op) => op.key !== key),
    );
    this.events.onChange();
  }
}

const isText = (value: unknown): value is string => typeof value === 'string' && value.length > 0;
const isCents = (value: unknown): value is number =>
  typeof value === 'number' && Number.isSafeInteger(value) && value > 0;

function sendable(op: PendingOp): boolean {
  return Date.now() - op.atMs < KEY_SAFE_MS;
}

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

/** The value of `promise`, or null if it takes longer than `timeoutMs` (it goes on regardless). */
function withTimeout<T>(promise: Promise<T>, timeoutMs: number): Promise<T | null> {
  return new Promise((resolve) => {
    const timer = setTimeout(() => resolve(null), timeoutMs);
    promise.then((value) => {
      clearTimeout(timer);
      resolve(value);
    });
  });
}

function isSale(item: unknown): item is Sale {
  const sale = item as Sale;
  return (
    typeof item === 'object' &&
    item !== null &&
    typeof sale.key === 'string' &&
    typeof sale.authId === 'string' &&
    Number.isSafeInteger(sale.approvedCents) &&
    Number.isSafeInteger(sale.requestedCents) &&
    Number.isSafeInteger(sale.refundedCents) &&
    typeof sale.atMs === 'number' &&
    typeof sale.voided === 'boolean'
  );
}

function isPendingOp(item: unknown): item is PendingOp {
  const op = item as PendingOp;
  if (typeof item !== 'object' || item === null || typeof op.key !== 'string') return false;
  if (op.kind === 'reverse') return Number.isSafeInteger(op.amountCents);
  if (op.kind === 'void') return typeof op.authId === 'string';
  return op.kind === 'refund' && typeof op.authId === 'string' && Number.isSafeInteger(op.amountCents);
}
