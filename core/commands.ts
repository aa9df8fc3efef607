import type { AuthId, CardId, ConsumerId, GiftId, MerchantId, TerminalId } from './ids.ts';
import type { PostingKind } from './ledger.ts';
import type { BalanceCause, CardKind, Funding, Reply } from './wallet.ts';

/**
 * What crosses between the engine facade (main thread) and the shard workers: plain data only, sent in
 * batches. Every command is stamped with `nowMs` when it enters the engine; shards never read the clock
 * to decide an outcome.
 */

/**
 * The scopes idempotency keys live in: a key is unique per terminal (POS requests), per merchant (value
 * it issues) or per consumer (value the consumer buys). The one place their spelling is made.
 */
export const idempotencyScope = {
  terminal: (terminalId: string) => `t:${terminalId}`,
  merchant: (merchantId: string) => `m:${merchantId}`,
  consumer: (consumerId: string) => `c:${consumerId}`,
} as const;

/** An idempotency key in its scope (`idempotencyScope`). */
export interface Idem {
  scope: string;
  key: string;
  /** Keyed hash of the request's canonical fields. */
  inputHash: string;
}

export type CommandBody =
  | {
      op: 'load';
      consumerId: ConsumerId;
      merchantId: MerchantId;
      kind: CardKind;
      funding: Funding;
      amountCents: number;
      expiresAtMs: number | null;
      idem: Idem;
    }
  | {
      op: 'issueCode';
      consumerId: ConsumerId;
      merchantId: MerchantId;
      capCents: number | null;
      /** The merchant's shortest code length (6-10). */
      codeDigitsMin: number;
    }
  | { op: 'cancelCode' | 'freeze' | 'unfreeze' | 'wallet'; consumerId: ConsumerId }
  | { op: 'history'; consumerId: ConsumerId; limit: number }
  | { op: 'setAlert'; consumerId: ConsumerId; cardId: CardId; belowCents: number | null }
  | {
      op: 'redeem';
      merchantId: MerchantId;
      terminalId: TerminalId;
      /** The code's keyed hash (the digits never reach a shard). */
      codeHash: string;
      amountCents: number;
      partial: boolean;
      idem: Idem;
      /** Only answer from the stored result of the key; without one, `not_found` and nothing runs. */
      replayOnly?: true;
    }
  | { op: 'inquire'; merchantId: MerchantId; codeHash: string }
  | { op: 'void'; merchantId: MerchantId; authId: AuthId; idem: Idem }
  | { op: 'refund'; merchantId: MerchantId; authId: AuthId; amountCents: number; idem: Idem }
  | { op: 'reverse'; merchantId: MerchantId; authId: AuthId }
  /** Stores a reply under a key that was never used, so the key cannot be used later (see engine.reverse). */
  | { op: 'closeKey'; idem: Idem; reply: Reply }
  | {
      op: 'giftSend';
      consumerId: ConsumerId;
      merchantId: MerchantId;
      amountCents: number;
      toConsumerId: ConsumerId;
      idem: Idem;
    }
  | {
      op: 'giftReceive';
      giftId: GiftId;
      consumerId: ConsumerId;
      merchantId: MerchantId;
      amountCents: number;
      boughtCents?: number;
    }
  | { op: 'giftDone'; giftId: GiftId }
  /** Fires the shard's timers due at `nowMs` (the worker also ticks on its own clock). */
  | { op: 'tick' };

export type Command = CommandBody & { id: number; nowMs: number; slot: number };

export interface CardView {
  cardId: CardId;
  merchantId: MerchantId;
  kind: CardKind;
  balanceCents: number;
  availableCents: number;
  /** The low-balance alert, when the consumer set one. */
  alertBelowCents?: number;
}

export interface ActiveCodeView {
  code: string;
  merchantId: MerchantId;
  capCents: number;
  expiresAtMs: number;
}

export interface WalletView {
  frozen: boolean;
  cards: CardView[];
  activeCode: ActiveCodeView | null;
}

export interface HistoryView {
  atMs: number;
  kind: PostingKind;
  merchantId: MerchantId;
  cardId: CardId;
  amountCents: number;
  balanceCents: number;
  ref: string;
}

/** The answer to one command. `code` is set only in the answer to the consumer who asked for it. */
export interface Outcome {
  id: number;
  reply: Reply & { code?: string };
  wallet?: WalletView;
  history?: HistoryView[];
}

/** A durable change a wallet socket should hear about. The code travels sealed; only a push unseals it. */
export type Notice =
  | { type: 'balance'; consumerId: ConsumerId; card: CardView; cause: BalanceCause; atMs: number }
  /**
   * The consumer's shard was restarted from LMDB: notices of a batch lost with the dead thread may be
   * missing, so a listener should read the wallet afresh.
   */
  | { type: 'resync'; consumerId: ConsumerId }
  | {
      type: 'code';
      consumerId: ConsumerId;
      sealed: string;
      merchantId: MerchantId;
      capCents: number;
      state: 'issued' | 'redeemed' | 'expired' | 'cancelled';
      expiresAtMs: number;
      atMs: number;
    };

export interface GiftStep {
  giftId: GiftId;
  fromConsumerId: ConsumerId;
  toConsumerId: ConsumerId;
  merchantId: MerchantId;
  amountCents: number;
  /** The part that was bought value; absent: none. */
  boughtCents?: number;
}

/** One message from a shard: the answers of one durable group commit, and what they caused. */
export interface ShardReport {
  outcomes: Outcome[];
  notices: Notice[];
  gifts: GiftStep[];
}
