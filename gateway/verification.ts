import { randomInt } from 'node:crypto';
import type { ConsumerId } from '../core/ids.ts';
import { DAY_MS, type Limits } from '../core/limits.ts';
import { currentGeneration, META, writeMeta } from '../persistence/store.ts';
import type { Credentials } from './credentials.ts';
import type { Phones } from './phones.ts';
import { newToken, type RegistryTables } from './registry-tables.ts';

/**
 * Proving a phone: 6-digit verification codes texted to it (hashed when stored, a few tries each, a send
 * budget per hour and day), exchanged for a device token when signing in, or for unfreezing an account.
 * Signing out the other devices of a lost phone starts a new device generation.
 *
 * @module
 */

export type VerificationPurpose = 'sign-in' | 'unfreeze';

/**
 * Where a consumer's pending verification code of a purpose is kept. Signing in and unfreezing have a
 * record and a send budget each, so one cannot be used, nor its sends spent, for the other.
 */
function otpKey(consumerId: ConsumerId, purpose: VerificationPurpose): string {
  return purpose === 'sign-in' ? consumerId : `${consumerId}:unfreeze`;
}

export class Verification {
  constructor(
    private readonly tables: RegistryTables,
    private readonly limits: Limits,
    private readonly now: () => number,
    private readonly credentials: Credentials,
    private readonly phones: Phones,
  ) {}

  /** Sends a verification code by SMS; the code and its text are stored in one transaction. */
  async start(
    phone: string,
    consumerId: ConsumerId,
    purpose: VerificationPurpose = 'sign-in',
  ): Promise<'approved' | 'rate_limited'> {
    const { limits } = this;
    const nowMs = this.now();
    const otp = String(randomInt(1_000_000)).padStart(6, '0');
    const recordKey = otpKey(consumerId, purpose);
    const { otps } = this.tables.store;
    return this.tables.write(() => {
      const previous = otps.get(recordKey);
      const sentAtMs = (previous?.sentAtMs ?? []).filter((atMs) => atMs > nowMs - DAY_MS);
      const lastHour = sentAtMs.filter((atMs) => atMs > nowMs - 60 * 60_000);
      if (lastHour.length >= limits.otpSendsPerHourMax || sentAtMs.length >= limits.otpSendsPerDayMax)
        return 'rate_limited';
      otps.put(recordKey, {
        otpHash: this.tables.hash('otp', `${recordKey}|${otp}`),
        expiresAtMs: nowMs + limits.otpTtlMs,
        attempts: 0,
        sentAtMs: [...sentAtMs, nowMs],
      });
      this.phones.rememberIn(consumerId, phone);
      const expires = `It expires in ${Math.round(limits.otpTtlMs / 60_000)} minutes.`;
      this.phones.queueTextIn(
        consumerId,
        nowMs,
        purpose === 'unfreeze'
          ? `Your paycode code to unfreeze your account is ${otp}. ${expires} If you did not ask for it, keep the account frozen.`
          : `Your paycode verification code is ${otp}. ${expires}`,
      );
      return 'approved';
    });
  }

  /**
   * Checks a verification code; a right one is consumed and yields a new device token. With
   * `revokeOtherDevices` (a lost phone) every earlier device token of the consumer stops working, by
   * starting a new device generation, and their wallet sockets are closed.
   */
  async verify(consumerId: ConsumerId, otp: string, revokeOtherDevices = false): Promise<string | null> {
    const nowMs = this.now();
    const deviceToken = newToken('dt');
    const { store } = this.tables;
    const verified = await this.tables.write(() => {
      if (!this.consumeIn(otpKey(consumerId, 'sign-in'), otp, nowMs)) return null;
      let generation = currentGeneration(store, 'device', consumerId);
      if (revokeOtherDevices) writeMeta(store, META.generation('device', consumerId), ++generation);
      this.credentials.putDeviceTokenIn(consumerId, deviceToken, generation);
      return deviceToken;
    });
    if (verified && revokeOtherDevices) this.credentials.revoked({ kind: 'devices', consumerId });
    return verified;
  }

  /** Whether a verification code texted to the consumer's phone is right; a right one is consumed. */
  async confirmPhone(consumerId: ConsumerId, otp: string): Promise<boolean> {
    const nowMs = this.now();
    return this.tables.write(() => this.consumeIn(otpKey(consumerId, 'unfreeze'), otp, nowMs));
  }

  /**
   * Signs out every device of the consumer but the caller's: a new device generation, a new token for
   * the caller (returned), and the wallet sockets of the others closed.
   */
  async revokeOtherDevices(consumerId: ConsumerId): Promise<string> {
    const deviceToken = newToken('dt');
    const { store } = this.tables;
    await this.tables.write(() => {
      const generation = currentGeneration(store, 'device', consumerId) + 1;
      writeMeta(store, META.generation('device', consumerId), generation);
      this.credentials.putDeviceTokenIn(consumerId, deviceToken, generation);
    });
    this.credentials.revoked({ kind: 'devices', consumerId });
    return deviceToken;
  }

  /** Inside a write: a wrong code counts a try, a right one is consumed (at most `otpAttemptsMax` tries). */
  private consumeIn(recordKey: string, otp: string, nowMs: number): boolean {
    const { otps } = this.tables.store;
    const record = otps.get(recordKey);
    if (!record || record.expiresAtMs <= nowMs || record.attempts >= this.limits.otpAttemptsMax) return false;
    if (!this.tables.matchesHash(record.otpHash, 'otp', `${recordKey}|${otp}`)) {
      otps.put(recordKey, { ...record, attempts: record.attempts + 1 });
      return false;
    }
    otps.put(recordKey, { ...record, otpHash: '', attempts: this.limits.otpAttemptsMax });
    return true;
  }
}
