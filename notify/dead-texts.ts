import { type DeadText, type Store, whenDurable } from '../persistence/store.ts';

/**
 * Texts the SMS provider refused for good (a number it does not serve, a text it will never take): the
 * outbox moves each here instead of retrying it for ever at the head of its queue. The operator lists
 * them and resends one once the cause is fixed; it goes back to the outbox under its own key, so a
 * second resend finds nothing to do.
 *
 * @module
 */

type Key = [number, number, number];

/** What the operator sees of a dead text: never the text or the phone number. */
export interface DeadTextView {
  id: string;
  kind: DeadText['message']['kind'];
  consumerId: string;
  queuedAtMs: number;
  failedAtMs: number;
  reason: string;
}

export function deadTextId(key: Key): string {
  return key.join('-');
}

function keyOf(id: string): Key | null {
  const parts = /^([0-9]{1,16})-([0-9]{1,16})-([0-9]{1,20})$/.exec(id);
  if (!parts) return null;
  const key = parts.slice(1).map(Number) as Key;
  return key.every(Number.isSafeInteger) ? key : null;
}

/** The oldest dead texts first, at most `limit`. */
export function deadTexts(store: Store, limit: number): DeadTextView[] {
  return Array.from(store.deadTexts.getRange({ limit }), ({ key, value }) => ({
    id: deadTextId(key as Key),
    kind: value.message.kind,
    consumerId: value.consumerId,
    queuedAtMs: value.atMs,
    failedAtMs: value.failedAtMs,
    reason: value.reason,
  }));
}

/** Puts a dead text back in the outbox, durably. False when there is no dead text of that id. */
export async function resendDeadText(store: Store, id: string): Promise<boolean> {
  const key = keyOf(id);
  if (!key) return false;
  const resent = (await store.root.transaction(() => {
    const dead = store.deadTexts.get(key);
    if (!dead) return false;
    const { failedAtMs: _failedAtMs, reason: _reason, ...record } = dead;
    store.outbox.put(key, record);
    store.deadTexts.remove(key);
    return true;
  })) as boolean;
  await whenDurable(store);
  return resent;
}
