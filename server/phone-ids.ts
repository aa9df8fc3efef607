import type { ConsumerId } from '../core/ids.ts';
import { canonicalPhone } from '../core/phone.ts';
import type { Engine } from '../engine/engine.ts';
import type { Phones } from '../gateway/phones.ts';
import type { Logger } from '../log/logger.ts';
import { META, readMeta, type Store, writeMeta } from '../persistence/store.ts';

/**
 * Consumer ids are keyed hashes of the phone number, and numbers are canonicalized before hashing
 * (core/phone.ts). A consumer who registered before that under another form of the number
 * (`+4407911123456` for `+447911123456`) has an account under that form's id. Once, at the first start
 * with canonical numbers, every number kept in another form is linked: its canonical number's id uses
 * the older account from then on, and the number is kept in its canonical form so texts reach it. When
 * the canonical number has a consumer of its own already (an account, or a sign-up), or another older
 * form was linked to it first, both stay as they are and the warning names them for the operator; a
 * number that is no possible phone at all (`+10000000`) can no longer sign in, and is named too.
 *
 * @module
 */

export async function linkLegacyPhoneIds(
  store: Store,
  engine: Engine,
  phones: Phones,
  logger: Logger,
): Promise<number> {
  if (readMeta(store, META.phoneIdsLinked) !== undefined) return 0;
  let linked = 0;
  for (const { key } of store.phones.getRange()) {
    const accountId = key as ConsumerId;
    const kept = phones.of(accountId);
    const canonical = kept === null ? null : canonicalPhone(kept);
    if (kept === canonical) continue;
    if (canonical === null) {
      logger.warn('a kept phone number is no possible phone: it can no longer sign in', {
        consumerId: accountId,
      });
      continue;
    }
    const canonicalId = engine.hashedConsumerId(canonical);
    // The canonical number already has a consumer of its own (an account, or a sign-up that made none
    // yet), or another older form was linked to it first: nothing is taken from either.
    if (
      store.accounts.doesExist(canonicalId) ||
      store.phones.doesExist(canonicalId) ||
      store.phoneAliases.doesExist(canonicalId)
    ) {
      logger.warn('two consumers for one phone: left apart', { consumerId: accountId, other: canonicalId });
      continue;
    }
    await engine.linkConsumerId(canonicalId, accountId);
    await phones.replace(accountId, canonical);
    linked++;
  }
  await writeMeta(store, META.phoneIdsLinked, Date.now());
  if (linked > 0) logger.info('phone numbers linked to their canonical form', { linked });
  return linked;
}
