import { type Status, TRANSIENT_STATUSES } from '../../core/statuses.ts';

/**
 * JSON over the paycode HTTP API (docs/http-api.md). A non-2xx answer becomes an ApiError carrying the
 * status of the error body (`insufficient_funds`, `unauthorized`, ...), so pages can say what happened;
 * a network failure is `offline`.
 */
export class ApiError extends Error {
  constructor(
    readonly code: string,
    message: string,
    readonly httpStatus: number,
  ) {
    super(message);
  }
}

export async function api<T = Record<string, unknown>>(
  method: 'GET' | 'POST' | 'DELETE',
  path: string,
  options: { token?: string | null; body?: unknown } = {},
): Promise<T> {
  const headers: Record<string, string> = {};
  if (options.token) headers.authorization = `Bearer ${options.token}`;
  // Every POST carries a JSON body, `{}` when it has nothing to say.
  const body = options.body ?? (method === 'POST' ? {} : undefined);
  if (body !== undefined) headers['content-type'] = 'application/json';
  let response: Response;
  try {
    response = await fetch(path, {
      method,
      headers,
      body: body === undefined ? null : JSON.stringify(body),
      cache: 'no-store',
    });
  } catch {
    throw new ApiError('offline', 'The server cannot be reached. Check the connection and try again.', 0);
  }
  const text = await response.text();
  const answer = text && response.headers.get('content-type')?.includes('json') ? JSON.parse(text) : text;
  if (!response.ok) {
    const error = (answer as { error?: { code?: string; message?: string } })?.error;
    throw new ApiError(error?.code ?? 'internal', error?.message ?? response.statusText, response.status);
  }
  return answer as T;
}

/**
 * What went wrong, as a sentence for the page: the app's own text for the status when it has one, else
 * the server's message (a lower-case phrase, made a sentence).
 */
export function errorText(error: unknown, messages: Readonly<Record<string, string>> = {}): string {
  if (!(error instanceof ApiError)) return 'Something went wrong. Try again.';
  const text = messages[error.code] ?? error.message;
  const sentence = text.charAt(0).toUpperCase() + text.slice(1);
  return /[.!?]$/.test(sentence) ? sentence : `${sentence}.`;
}

/** The WebSocket URL of a path on this server (ws: or wss: as the page). */
export function socketUrl(path: string): string {
  return `${location.protocol === 'https:' ? 'wss:' : 'ws:'}//${location.host}${path}`;
}

/**
 * Whether a failed request may have been applied or not: no answer came, or a transient status. Sent
 * again it keeps its idempotency key; after any other answer (a refusal is stored under the key) the
 * next try needs a new key.
 */
export function fateUnknown(error: unknown): boolean {
  return (
    error instanceof ApiError && (error.code === 'offline' || TRANSIENT_STATUSES.has(error.code as Status))
  );
}

/** A fresh idempotency key (1-64 characters of `[A-Za-z0-9_-]`). */
export function newKey(prefix: string): string {
  return `${prefix}-${crypto.randomUUID()}`;
}
