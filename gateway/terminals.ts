import { randomBytes, randomInt } from 'node:crypto';
import type { MerchantId, TerminalId } from '../core/ids.ts';
import type { Limits } from '../core/limits.ts';
import { SEALED_FOR } from '../core/seal.ts';
import type { CredentialRecord, TerminalRecord } from '../persistence/store.ts';
import type { TerminalState, TerminalView } from '../sdk/http-answers.ts';
import type { Credentials } from './credentials.ts';
import type { RegistryTables } from './registry-tables.ts';
import { isLocked, recentFailures, TerminalFailures } from './terminal-failures.ts';

/**
 * Terminals: their single-use activation codes (hashed), their keys (sealed), their locks and failed
 * codes (terminal-failures.ts), and what a merchant may see of them. Every code attempt reads its
 * terminal, so records are kept as read until the next registry write.
 *
 * @module
 */

const ACTIVATION_ALPHABET = 'ABCDEFGHJKMNPQRSTUVWXYZ23456789';

export class Terminals {
  /**
   * Each merchant's terminal ids. The terminals table is keyed by terminal id, so listing a
   * merchant's terminals from it would read every merchant's; this index is read from it once at start
   * and kept here after, as this is the only writer of terminals and never deletes one (in a cluster,
   * read again when another node wrote terminals: `reindex`).
   */
  private readonly idsByMerchant = new Map<MerchantId, TerminalId[]>();
  private readonly cache: Map<string, TerminalRecord>;
  /** Each terminal's failed codes, kept in its record. */
  readonly failures: TerminalFailures;

  constructor(
    private readonly tables: RegistryTables,
    private readonly limits: Limits,
    private readonly now: () => number,
    private readonly credentials: Credentials,
  ) {
    this.cache = tables.cache();
    this.failures = new TerminalFailures(
      tables.store,
      limits,
      (terminalId) => this.get(terminalId),
      (body) => tables.write(body),
    );
    this.reindex();
  }

  /** Reads every merchant's terminal ids from the terminals table. */
  reindex(): void {
    this.idsByMerchant.clear();
    for (const { value } of this.tables.store.terminals.getRange())
      this.index(value.merchantId, value.terminalId);
  }

  async create(
    merchantId: MerchantId,
    label: string,
  ): Promise<{ terminalId: TerminalId; activationCode: string }> {
    const terminalId = `tm_${randomBytes(12).toString('base64url')}` as TerminalId;
    const nowMs = this.now();
    const activation = this.newActivation(terminalId, nowMs);
    const { store } = this.tables;
    await this.tables.write(() => {
      store.terminals.put(terminalId, {
        terminalId,
        merchantId,
        label,
        sealedKey: null,
        activationExpiresAtMs: activation.expiresAtMs,
        activationHash: activation.hash,
        codeFailures: 0,
        locked: false,
        createdAtMs: nowMs,
      });
      store.credentials.put(activation.hash, activation.credential);
    });
    this.index(merchantId, terminalId);
    return { terminalId, activationCode: activation.code };
  }

  /**
   * Single use: the code is deleted in the transaction that stores the new terminal key. A terminal that
   * had a key (a rekey) loses the old one here, and its sessions under it are closed.
   */
  async activate(
    activationCode: string,
  ): Promise<{ terminalId: TerminalId; merchantId: MerchantId; terminalKey: string } | null> {
    const { tables } = this;
    const activation = normalizeActivation(activationCode);
    const terminalKey = randomBytes(32).toString('base64url');
    const activated = await tables.write(() => {
      const found = tables.credentialOf('activation', activation);
      if (found?.credential.kind !== 'activation') return null;
      const { hash, credential } = found;
      tables.store.credentials.remove(hash);
      const terminal = tables.store.terminals.get(credential.subject);
      // Only the terminal's current code: one a rekey replaced or a revoke voided is worth nothing.
      if (!terminal || terminal.activationHash !== hash || (credential.expiresAtMs ?? 0) <= this.now())
        return null;
      tables.store.terminals.put(terminal.terminalId, {
        ...terminal,
        sealedKey: tables.seal(terminalKey, SEALED_FOR.terminalKey(terminal.terminalId)),
        activationHash: undefined,
      });
      return { terminalId: terminal.terminalId, merchantId: terminal.merchantId, terminalKey };
    });
    if (activated) this.credentials.revoked({ kind: 'terminal', terminalId: activated.terminalId });
    return activated;
  }

  /**
   * A new activation code for an existing terminal (key rotation, or a revoked terminal coming back). The
   * old key keeps working until the code is used, so a till can be rekeyed in place; an earlier unused
   * code is voided.
   */
  async rekey(terminalId: TerminalId): Promise<{ terminalId: TerminalId; activationCode: string }> {
    const activation = this.newActivation(terminalId, this.now());
    const { store } = this.tables;
    await this.tables.write(() => {
      const terminal = store.terminals.get(terminalId);
      if (!terminal) return;
      if (terminal.activationHash) store.credentials.remove(terminal.activationHash);
      store.credentials.put(activation.hash, activation.credential);
      store.terminals.put(terminalId, {
        ...terminal,
        activationExpiresAtMs: activation.expiresAtMs,
        activationHash: activation.hash,
      });
    });
    return { terminalId, activationCode: activation.code };
  }

  /** Takes a terminal's key away at once (a stolen till): its sessions close, an unused code is voided. */
  async revoke(terminalId: TerminalId): Promise<void> {
    const { store } = this.tables;
    await this.tables.write(() => {
      const terminal = store.terminals.get(terminalId);
      if (!terminal) return;
      if (terminal.activationHash) store.credentials.remove(terminal.activationHash);
      store.terminals.put(terminalId, { ...terminal, sealedKey: null, activationHash: undefined });
    });
    this.credentials.revoked({ kind: 'terminal', terminalId });
  }

  /**
   * Locks or unlocks a terminal. An unlock clears the run of consecutive failures; only the operator's
   * also clears the day's failures (see terminal-failures.ts).
   */
  async setLocked(terminalId: TerminalId, locked: boolean, byOperator = false): Promise<void> {
    const { store } = this.tables;
    await this.tables.write(() => {
      const terminal = store.terminals.get(terminalId);
      if (!terminal) return;
      const forget = byOperator && !locked;
      store.terminals.put(terminalId, {
        ...terminal,
        locked,
        codeFailures: 0,
        failuresAtMs: forget ? [] : terminal.failuresAtMs,
        typosAtMs: forget ? [] : terminal.typosAtMs,
      });
    });
  }

  get(terminalId: string): TerminalRecord | undefined {
    return this.tables.readThrough(terminalId, this.cache, this.tables.store.terminals);
  }

  key(terminal: TerminalRecord): Buffer | null {
    if (!terminal.sealedKey) return null;
    const opened = this.tables.open(terminal.sealedKey, SEALED_FOR.terminalKey(terminal.terminalId));
    return Buffer.from(opened, 'base64url');
  }

  /**
   * A merchant's terminals, oldest first, as the merchant may see them: never a key, code or hash. It
   * reads only the merchant's own terminals, through the index.
   */
  of(merchantId: MerchantId): TerminalView[] {
    const nowMs = this.now();
    const views: TerminalView[] = [];
    for (const terminalId of this.idsByMerchant.get(merchantId) ?? []) {
      const terminal = this.tables.store.terminals.get(terminalId);
      if (terminal) views.push(this.view(terminal, nowMs));
    }
    return views.sort((a, b) => a.createdAtMs - b.createdAtMs);
  }

  private view(terminal: TerminalRecord, nowMs: number): TerminalView {
    const codeLive = terminal.activationHash !== undefined && terminal.activationExpiresAtMs > nowMs;
    const failedCodesToday = recentFailures(terminal, nowMs).length;
    const locked = isLocked(terminal, failedCodesToday, this.limits);
    // Revoking drops the key and voids the code; a code that simply ran out leaves its hash behind.
    let state: TerminalState;
    if (terminal.sealedKey !== null) state = locked ? 'locked' : 'active';
    else if (codeLive) state = 'pending';
    else state = terminal.activationHash === undefined ? 'revoked' : 'expired';
    return {
      terminalId: terminal.terminalId,
      label: terminal.label,
      state,
      locked,
      failedCodesToday,
      activationExpiresAtMs: codeLive ? terminal.activationExpiresAtMs : null,
      createdAtMs: terminal.createdAtMs,
    };
  }

  private index(merchantId: MerchantId, terminalId: TerminalId): void {
    const terminalIds = this.idsByMerchant.get(merchantId);
    if (terminalIds) terminalIds.push(terminalId);
    else this.idsByMerchant.set(merchantId, [terminalId]);
  }

  /** An activation code: 10 letters of a 31-letter alphabet without look-alikes (about 50 bits). */
  private newActivation(terminalId: TerminalId, nowMs: number) {
    const letter = () => ACTIVATION_ALPHABET[randomInt(ACTIVATION_ALPHABET.length)];
    const letters = Array.from({ length: 10 }, letter).join('');
    const expiresAtMs = nowMs + this.limits.activationTtlMs;
    const credential: CredentialRecord = { kind: 'activation', subject: terminalId, expiresAtMs };
    return {
      code: `${letters.slice(0, 5)}-${letters.slice(5)}`,
      hash: this.tables.hash('activation', letters),
      expiresAtMs,
      credential,
    };
  }
}

function normalizeActivation(code: string): string {
  return code.toUpperCase().replace(/[^A-Z0-9]/g, '');
}
