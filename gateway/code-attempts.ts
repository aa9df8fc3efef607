import { idempotencyScope } from '../core/commands.ts';
import type { MerchantId, TerminalId } from '../core/ids.ts';
import type { Limits } from '../core/limits.ts';
import type { Status } from '../core/statuses.ts';
import type { Reply } from '../core/wallet.ts';
import { type CodeLookup, type Engine, isIdempotencyKey } from '../engine/engine.ts';
import type { Logger } from '../log/logger.ts';
import type { CodeWindow } from '../sdk/http-answers.ts';
import type { CodeFailureWindows } from './code-windows.ts';
import type { Metrics } from './metrics.ts';
import type { Registry } from './registry.ts';

/**
 * Code attempts (redeem, inquire) at the POS: the one owner of the defences against code guessing
 * (docs/security.md computes what they allow). A terminal locks after `terminalCodeFailuresMax` failed
 * codes in a row (the merchant unlocks it) and after `terminalCodeFailuresPerDayMax` in a day; a merchant
 * whose terminals together failed too many codes in the last minute or day, or all terminals together in
 * the last minute, get `rate_limited` (code-windows.ts); a till's approved sale explains its typo.
 *
 * @module
 */

/**
 * What counts as a guess: digits that are no code here, as the shard that could have drawn them answers.
 * `expired_code` does not: those digits were really issued (a customer who came late), and a guess lands
 * on such digits too rarely to matter (docs/security.md).
 */
const CODE_FAILURES: ReadonlySet<Status> = new Set(['invalid_code']);

/**
 * Whether an attempt at digits the code index did not know counts as a miss, by its answer. The index
 * may not know a code yet (issued a moment ago, on another node of a cluster), so only the shard's answer
 * decides: `invalid_code`, or `internal` (it may have run; nothing says the digits were a code). Any other
 * answer says they were a code (approved, declined for funds, ...) or that the attempt did not run
 * (`overloaded`): no guess was answered.
 */
const missAfterUnknown = (status: Status) => CODE_FAILURES.has(status) || status === 'internal';

export interface CodeAttemptDeps {
  engine: Engine;
  registry: Registry;
  limits: Limits;
  metrics: Metrics;
  logger: Logger;
  codeWindows: CodeFailureWindows;
  now: () => number;
}

/** Runs an attempt: `replayOnly` answers only from a stored result; `lookup` is the code index's answer. */
export type AttemptRun = (replayOnly: boolean, lookup?: CodeLookup) => Promise<Reply>;

export class CodeAttempts {
  /** Each terminal's code attempts, chained so they run one at a time. */
  private readonly chains = new Map<string, Promise<unknown>>();
  /** When each merchant's refusals for too many failed codes were last logged (once a window at most). */
  private readonly refusalLoggedAtMs = new Map<string, number>();

  constructor(private readonly deps: CodeAttemptDeps) {}

  /**
   * A code attempt whose fields the caller has checked: a malformed request is `bad_request` and never
   * counted. A terminal's attempts run one at a time, so its lock is checked after its previous attempt
   * was counted: pipelining cannot buy a guesser more tries. An attempt at digits the code index does not
   * know is counted in the merchant's and the global windows before it runs, so however many terminals
   * guess at once, no window passes its maximum; it stays counted, and is charged to the terminal, only
   * if its answer makes it a miss (`missAfterUnknown`). Only an approved redeem resets the terminal's run
   * of failures.
   *
   * A retry of a redeem already stored under its key gets its stored answer without the checks, as
   * idempotency promises; the engine only replays it (`replayOnly`), and if the record was swept meanwhile
   * the retry becomes a new attempt, checked like any other.
   */
  run(
    terminalId: TerminalId,
    merchantId: MerchantId,
    key: unknown,
    code: string,
    run: AttemptRun,
  ): Promise<Reply> {
    const chained = () => this.chain(terminalId, () => this.attempt(terminalId, merchantId, code, run));
    if (isIdempotencyKey(key) && this.deps.engine.hasStoredAnswer(idempotencyScope.terminal(terminalId), key))
      return run(true).then((reply) => (reply.status === 'not_found' ? chained() : reply));
    return chained();
  }

  private chain(terminalId: TerminalId, attempt: () => Promise<Reply>): Promise<Reply> {
    const next = (this.chains.get(terminalId) ?? Promise.resolve()).then(attempt, attempt);
    this.chains.set(terminalId, next);
    const clear = () => {
      if (this.chains.get(terminalId) === next) this.chains.delete(terminalId);
    };
    next.then(clear, clear);
    return next;
  }

  private async attempt(
    terminalId: TerminalId,
    merchantId: MerchantId,
    digits: string,
    run: AttemptRun,
  ): Promise<Reply> {
    const { engine, registry, codeWindows: windows, metrics, logger } = this.deps;
    const nowMs = this.deps.now();
    if (registry.terminals.failures.locked(terminalId, nowMs)) return { status: 'terminal_locked' };
    const refusal = windows.refusal(merchantId, nowMs);
    if (refusal) {
      this.refused(merchantId, terminalId, refusal.window, nowMs);
      return { status: 'rate_limited' };
    }
    const lookup = engine.lookUpCode(merchantId, digits, nowMs) ?? undefined;
    const none = lookup?.state === 'none';
    if (none) windows.add(merchantId, terminalId, nowMs, digits);
    const reply = await run(false, lookup);
    const failed = none ? missAfterUnknown(reply.status) : CODE_FAILURES.has(reply.status);
    // Digits that were a code a moment ago (cancelled meanwhile) are counted now; digits the index did
    // not know yet that were a code are no longer counted.
    const countedAtMs = none ? nowMs : this.deps.now();
    if (failed && !none) windows.add(merchantId, terminalId, countedAtMs, digits);
    if (!failed && none) windows.uncount(merchantId, terminalId, nowMs, digits);
    const approvedRedeem = reply.status === 'approved' && reply.authId !== undefined;
    if (
      (failed || approvedRedeem) &&
      (await registry.terminals.failures.record(terminalId, failed, countedAtMs))
    ) {
      metrics.terminalLocks.inc();
      logger.warn('terminal locked after failed codes', { terminalId, merchantId });
    }
    if (approvedRedeem) {
      const typoAtMs = windows.explain(merchantId, terminalId, digits, this.deps.now());
      // The sale stands whatever becomes of this record: if it cannot be stored, a restart counts the
      // miss in the windows again, the safe side.
      if (typoAtMs !== null)
        await registry.terminals.failures.explain(terminalId, typoAtMs).catch((error: unknown) => {
          logger.warn('typo explanation not stored', { terminalId, err: error });
        });
    }
    return reply;
  }

  /** Counts a refusal by a full window, and logs it once a window per merchant. */
  private refused(merchantId: MerchantId, terminalId: TerminalId, window: CodeWindow, nowMs: number): void {
    this.deps.metrics.codeAttemptsThrottled.inc();
    const lastMs = this.refusalLoggedAtMs.get(merchantId) ?? Number.NEGATIVE_INFINITY;
    if (lastMs > nowMs - this.deps.limits.merchantCodeFailureWindowMs) return;
    this.refusalLoggedAtMs.set(merchantId, nowMs);
    this.deps.logger.warn('code attempts refused: too many failed codes', { merchantId, terminalId, window });
  }
}
