/**
 * What the terminal keeps in this browser. The terminal itself (its id, its merchant and its key) lives in
 * IndexedDB, because IndexedDB can hold a CryptoKey as it is: a non-extractable key stays
 * non-extractable there, so the key bytes never exist anywhere a script could read them after
 * activation. Recent sales and pending reversals are small JSON lists in localStorage, per terminal; they
 * hold amounts, times, authorization numbers and idempotency keys, never a payment code or anything
 * about the customer.
 */
export interface StoredTerminal {
  terminalId: string;
  merchantId: string;
  key: CryptoKey;
  activatedAtMs: number;
}

const DB_NAME = 'paycode-pos';
const STORE = 'terminal';
/** A browser profile holds one terminal. */
const RECORD = 'current';

function openDb(): Promise<IDBDatabase> {
  return new Promise((resolve, reject) => {
    const request = indexedDB.open(DB_NAME, 1);
    request.onupgradeneeded = () => request.result.createObjectStore(STORE);
    request.onsuccess = () => resolve(request.result);
    request.onerror = () => reject(request.error);
  });
}

async function withStore<T>(
  mode: IDBTransactionMode,
  action: (store: IDBObjectStore) => IDBRequest,
): Promise<T> {
  const db = await openDb();
  try {
    return await new Promise<T>((resolve, reject) => {
      const transaction = db.transaction(STORE, mode);
      const request = action(transaction.objectStore(STORE));
      // Resolve when the transaction is durable, not when the request is queued.
      transaction.oncomplete = () => resolve(request.result as T);
      transaction.onerror = () => reject(transaction.error);
      transaction.onabort = () => reject(transaction.error);
    });
  } finally {
    db.close();
  }
}

export async function loadTerminal(): Promise<StoredTerminal | null> {
  const found = await withStore<unknown>('readonly', (store) => store.get(RECORD));
  if (typeof found !== 'object' || found === null) return null;
  const terminal = found as Partial<StoredTerminal>;
  return typeof terminal.terminalId === 'string' &&
    typeof terminal.merchantId === 'string' &&
    terminal.key instanceof CryptoKey
    ? (terminal as StoredTerminal)
    : null;
}

export async function saveTerminal(terminal: StoredTerminal): Promise<void> {
  await withStore('readwrite', (store) => store.put(terminal, RECORD));
}

/**
 * Deletes the terminal and its recent sales: this browser can no longer act as the terminal. Operations
 * still pending stay (they hold idempotency keys and amounts, nothing personal): a reversal owed for a
 * sale in doubt must not be dropped, and it goes out if the same terminal is activated here again.
 */
export async function forgetTerminal(terminalId: string): Promise<void> {
  await withStore('readwrite', (store) => store.delete(RECORD));
  localStorage.removeItem(salesKey(terminalId));
}

export function salesKey(terminalId: string): string {
  return `paycode.pos.sales.${terminalId}`;
}

export function pendingKey(terminalId: string): string {
  return `paycode.pos.pending.${terminalId}`;
}

/** A JSON list from localStorage; an unreadable entry reads as empty rather than breaking the till. */
export function readList<T>(key: string, valid: (item: unknown) => item is T): T[] {
  try {
    const parsed: unknown = JSON.parse(localStorage.getItem(key) ?? '[]');
    return Array.isArray(parsed) ? parsed.filter(valid) : [];
  } catch {
    return [];
  }
}

/** Writes a list; an empty one is removed, so a settled till leaves no trace. */
export function writeList(key: string, items: readonly unknown[]): void {
  if (items.length === 0) localStorage.removeItem(key);
  else localStorage.setItem(key, JSON.stringify(items));
}
