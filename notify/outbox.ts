import type { ConsumerId } from '../core/ids.ts';
import type { Limits } from '../core/limits.ts';
import { createLogger, type Logger } from '../log/logger.ts';
import type { OutboxRecord, Store } from '../persistence/store.ts';
import { deadTextId } from './dead-texts.ts';
import { SmsRefused, type SmsSender } from './sender.ts';

/**
 * Delivers the transactional outbox. A text is written in the same commit as the event that causes it
 * (see shard.ts and gateway/phones.ts) and removed once the SMS provider accepted it; so a crash loses none,
 * and a text is sent again only if the crash falls between the provider's acceptance and the removal.
 * A failed send is retried with exponential backoff; a text the provider refused for good moves to the
 * dead texts (dead-texts.ts); texts to a consumer with no known phone number are dropped (logged, without
 * the text).
 *
 * @module
 */

export interface OutboxOptions {
  store: Store;
  sender: SmsSender;
  limits: Limits;
  phoneOf: (consumerId: ConsumerId) => string | null;
  render: (record: OutboxRecord) => string;
  onResult?: (result: 'sent' | 'failed' | 'dropped' | 'refused') => void;
  /**
   * Whether the texts written under this writer id (the key's second part) are this process's to send; in
   * a cluster each text is sent by one node (engine.ts `sendsTextsOf`). All of them when absent.
   */
  sends?: (writer: number) => boolean;
  pollMs?: number;
  /** Where failures are logged, never with the text (stderr by default). */
  logger?: Logger;
}

type Key = [number, number, number];

export class OutboxDelivery {
  private readonly inFlight = new Map<string, Promise<void>>();
  private readonly retryAtMs = new Map<string, { atMs: number; attempts: number }>();
  private readonly poll: NodeJS.Timeout;
  private scheduled = false;
  private stopped = false;
  private readonly logger: Logger;

  constructor(private readonly options: OutboxOptions) {
    this.logger = options.logger ?? createLogger();
    this.poll = setInterval(() => this.kick(), options.pollMs ?? 500);
    this.kick();
  }

  /** Looks for new texts soon (after a commit that may have queued some). */
  kick(): void {
    if (this.scheduled || this.stopped) return;
    this.scheduled = true;
    setImmediate(() => {
      this.scheduled = false;
      this.run();
    });
  }

  /** Texts waiting to be delivered. */
  pending(): number {
    return this.options.store.outbox.getCount();
  }

  async stop(): Promise<void> {
    this.stopped = true;
    clearInterval(this.poll);
    await Promise.allSettled(this.inFlight.values());
  }

  private run(): void {
    const { store, limits } = this.options;
    if (this.stopped) return;
    store.root.resetReadTxn();
    const nowMs = Date.now();
    // A bounded look at the head of the queue: texts waiting for a retry do not make each pass longer.
    // Keys first: the texts in flight or waiting for a retry are skipped without being decoded.
    // In a cluster the texts other nodes send are passed over without counting against that look.
    let looked = 0;
    for (const key of store.outbox.getKeys()) {
      if (this.inFlight.size >= limits.smsInFlightMax || looked >= limits.smsInFlightMax * 8) return;
      if (this.options.sends && !this.options.sends((key as [number, number, number])[1])) continue;
      looked++;
      const id = (key as Key).join(':');
      if (this.inFlight.has(id) || (this.retryAtMs.get(id)?.atMs ?? 0) > nowMs) continue;
      const value = store.outbox.get(key);
      if (value === undefined) continue;
      const done = () => {
        this.inFlight.delete(id);
        this.kick();
      };
      const delivery = this.deliver(key as Key, id, value).then(done, (error: unknown) => {
        this.logger.error('sms text could not be handled', { err: error });
        this.backOff(id);
        done();
      });
      this.inFlight.set(id, delivery);
    }
  }

  /** Schedules the next try of a text with exponential backoff; returns the number of failures so far. */
  private backOff(id: string): number {
    const attempts = (this.retryAtMs.get(id)?.attempts ?? 0) + 1;
    const delayMs = Math.min(this.options.limits.smsRetryDelayMaxMs, 500 * 2 ** attempts);
    this.retryAtMs.set(id, { atMs: Date.now() + delayMs, attempts });
    return attempts;
  }

  /**
   * A text refused for good leaves the outbox for the dead letters in one commit, so it no longer
   * holds up the texts behind it; the operator lists and resends them (dead-texts.ts).
   */
  private async bury(key: Key, id: string, record: OutboxRecord, reason: string): Promise<void> {
    const { store } = this.options;
    await store.root.transaction(() => {
      store.deadTexts.put(key, { ...record, failedAtMs: Date.now(), reason });
      store.outbox.remove(key);
    });
    this.retryAtMs.delete(id);
    this.logger.warn('sms text refused for good; kept with the dead texts', {
      deadTextId: deadTextId(key),
      consumerId: record.consumerId,
      reason,
    });
  }

  private async deliver(key: Key, id: string, record: OutboxRecord): Promise<void> {
    const { store, sender, phoneOf, render, onResult } = this.options;
    const phone = phoneOf(record.consumerId);
    if (phone === null) {
      this.logger.warn('sms text dropped: no phone number is known', { consumerId: record.consumerId });
      onResult?.('dropped');
      await store.outbox.remove(key);
      return;
    }
    try {
      await sender.send(phone, render(record));
    } catch (error) {
      if (error instanceof SmsRefused) {
        onResult?.('refused');
        await this.bury(key, id, record, error.reason);
        return;
      }
      if (this.backOff(id) === 1)
        this.logger.warn('sms text will be retried', { reason: (error as Error).message });
      onResult?.('failed');
      return;
    }
    this.retryAtMs.delete(id);
    onResult?.('sent');
    await store.outbox.remove(key);
  }
}
