import { ApiError, api } from '../common/api.ts';

/**
 * The signed-in merchant. The API key is kept in sessionStorage only: it lasts while the tab is open,
 * is not shared with other tabs and is gone when the tab closes, so a shared till computer does not keep
 * it. Every call carries it as a bearer header; an `unauthorized` answer (a rotated or revoked key) ends
 * the session.
 */
const STORAGE_KEY = 'paycode.merchant.apiKey';

export function storedKey(): string | null {
  return sessionStorage.getItem(STORAGE_KEY);
}

export function forgetKey(): void {
  sessionStorage.removeItem(STORAGE_KEY);
}

export class Session {
  constructor(
    readonly apiKey: string,
    readonly merchantId: string,
    readonly name: string,
    private readonly onExpired: () => void,
  ) {
    sessionStorage.setItem(STORAGE_KEY, apiKey);
  }

  /** A merchant endpoint; `path` is below `/v1/merchants/<merchantId>`. */
  async call<T>(method: 'GET' | 'POST', path: string, body?: unknown): Promise<T> {
    try {
      return await api<T>(method, `${this.base()}${path}`, { token: this.apiKey, body });
    } catch (error) {
      if (error instanceof ApiError && error.code === 'unauthorized') this.onExpired();
      throw error;
    }
  }

  /**
   * Saves a file the API serves. A link cannot carry the Authorization header, so the file is fetched
   * with it and handed to the browser as a blob.
   */
  async download(path: string, filename: string): Promise<void> {
    let response: Response;
    try {
      response = await fetch(`${this.base()}${path}`, {
        headers: { authorization: `Bearer ${this.apiKey}` },
        cache: 'no-store',
      });
    } catch {
      throw new ApiError('offline', 'The server cannot be reached. Check the connection and try again.', 0);
    }
    if (!response.ok) {
      if (response.status === 401) this.onExpired();
      throw new ApiError(
        'internal',
        `The file could not be downloaded (${response.status}).`,
        response.status,
      );
    }
    const url = URL.createObjectURL(await response.blob());
    const link = document.createElement('a');
    link.href = url;
    link.download = filename;
    document.body.append(link);
    link.click();
    link.remove();
    setTimeout(() => URL.revokeObjectURL(url), 60_000);
  }

  private base(): string {
    return `/v1/merchants/${encodeURIComponent(this.merchantId)}`;
  }
}
