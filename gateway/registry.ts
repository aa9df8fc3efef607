import type { Limits } from '../core/limits.ts';
import { SEALED_FOR } from '../core/seal.ts';
import { createLogger, type Logger } from '../log/logger.ts';
import type { Store } from '../persistence/store.ts';
import type { SealedRecords } from '../settlement/settlements.ts';
import { Credentials } from './credentials.ts';
import { Merchants } from './merchants.ts';
import { Phones } from './phones.ts';
import { RegistryTables } from './registry-tables.ts';
import { Terminals } from './terminals.ts';
import { Verification } from './verification.ts';

/**
 * The gateway's registry, whose parts share one set of tables under the master keys
 * (registry-tables.ts): credentials, merchants, terminals, phone verification, and consumers' phones
 * with the texts the main thread queues to them.
 *
 * @module
 */

export class Registry {
  readonly credentials: Credentials;
  readonly merchants: Merchants;
  readonly terminals: Terminals;
  readonly phones: Phones;
  readonly verification: Verification;
  /** What settlement needs of the registry: merchants' bank details, and its stored files opened. */
  readonly sealedRecords: SealedRecords;
  private readonly tables: RegistryTables;

  constructor(
    store: Store,
    masterKey: Buffer,
    limits: Limits,
    now: () => number,
    operatorToken: string | undefined,
    options: {
      retiredMasterKeys?: readonly Buffer[];
      logger?: Logger;
      /** The writer id of the outbox keys this process writes (in a cluster, its node's: engine.ts). */
      writer?: number;
    } = {},
  ) {
    const tables = new RegistryTables(
      store,
      masterKey,
      options.retiredMasterKeys ?? [],
      options.logger ?? createLogger(),
    );
    this.tables = tables;
    this.credentials = new Credentials(tables, limits, now, operatorToken);
    this.merchants = new Merchants(tables, now);
    this.terminals = new Terminals(tables, limits, now, this.credentials);
    this.phones = new Phones(tables, now, options.writer);
    this.verification = new Verification(tables, limits, now, this.credentials, this.phones);
    this.sealedRecords = {
      bankDetails: (merchant) => this.merchants.bankDetails(merchant),
      openAch: (sealed, businessDate) => tables.open(sealed, SEALED_FOR.ach(businessDate)),
    };
  }

  /**
   * Another node changed these databases (a cluster, engine/shared-writes.ts): what the registry keeps
   * of them in memory is read again.
   */
  reread(databases: ReadonlySet<string>): void {
    if (databases.has('merchants') || databases.has('terminals')) this.tables.clearCaches();
    if (databases.has('terminals')) this.terminals.reindex();
  }
}
