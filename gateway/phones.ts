import type { ConsumerId } from '../core/ids.ts';
import { SEALED_FOR } from '../core/seal.ts';
import { GATEWAY_WRITER, type OutboxMessage } from '../persistence/store.ts';
import type { RegistryTables } from './registry-tables.ts';

/**
 * Consumers' phones: each number sealed, so texts can reach a phone that holds value, and the texts the
 * main thread queues to them (sealed too, as one may hold a payment or verification code).
 *
 * @module
 */

export class Phones {
  /** Starts at the clock (in µs) so keys written after a restart never meet older undelivered ones. */
  private outboxSeq = Date.now() * 1_000;

  constructor(
    private readonly tables: RegistryTables,
    private readonly now: () => number,
    /** The writer id of the outbox keys written here (store.ts `GATEWAY_WRITER`, or a cluster node's). */
    private readonly writer = GATEWAY_WRITER,
  ) {}

  /** Keeps the phone number of a consumer, unless it is kept already. */
  async remember(consumerId: ConsumerId, phone: string): Promise<void> {
    if (this.tables.store.phones.get(consumerId) !== undefined) return;
    await this.tables.write(() => this.rememberIn(consumerId, phone));
  }

  /** Keeps another number for a consumer in place of the one kept (its canonical form). */
  async replace(consumerId: ConsumerId, phone: string): Promise<void> {
    await this.tables.write(() => this.keepIn(consumerId, phone));
  }

  of(consumerId: ConsumerId): string | null {
    const sealed = this.tables.store.phones.get(consumerId);
    return sealed === undefined ? null : this.tables.open(sealed, SEALED_FOR.phone(consumerId));
  }

  async queueText(consumerId: ConsumerId, text: string): Promise<void> {
    await this.tables.write(() => this.queueTextIn(consumerId, this.now(), text));
  }

  /** A queued text to `consumerId`, opened; one sealed for another consumer does not open. */
  openText(sealedText: string, consumerId: ConsumerId): string {
    return this.tables.open(sealedText, SEALED_FOR.text(consumerId));
  }

  /** Inside a write: `remember`. */
  rememberIn(consumerId: ConsumerId, phone: string): void {
    if (this.tables.store.phones.get(consumerId) === undefined) this.keepIn(consumerId, phone);
  }

  private keepIn(consumerId: ConsumerId, phone: string): void {
    this.tables.store.phones.put(consumerId, this.tables.seal(phone, SEALED_FOR.phone(consumerId)));
  }

  /** Inside a write: `queueText`. */
  queueTextIn(consumerId: ConsumerId, atMs: number, text: string): void {
    const message: OutboxMessage = {
      kind: 'text',
      sealedText: this.tables.seal(text, SEALED_FOR.text(consumerId)),
    };
    this.tables.store.outbox.put([atMs, this.writer, ++this.outboxSeq], { consumerId, atMs, message });
  }
}
