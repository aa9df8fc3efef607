import { socketUrl } from '../common/api.ts';

/**
 * The wallet WebSocket (`/v1/wallet`, docs/http-api.md "Wallet WebSocket"): authenticates with the device token, receives the
 * snapshot and then every push. When the connection drops it comes back by itself, with backoff, and the
 * new snapshot replaces whatever was missed meanwhile. A token the server refuses ends the session.
 *
 * A phone that changed networks or slept can keep a socket that looks open but is dead, and the browser
 * offers no ping. So when the network comes back, or the page is shown again after a while, the socket is
 * replaced and the snapshot read afresh.
 */
export interface Card {
  cardId: string;
  merchantId: string;
  merchantName: string;
  kind: 'gift' | 'reward';
  balanceCents: number;
  availableCents: number;
  /** The low-balance alert set on the card, if any. */
  alertBelowCents?: number;
}

export interface ActiveCode {
  code: string;
  merchantId: string;
  capCents: number;
  expiresAtMs: number;
}

export interface Snapshot {
  type: 'snapshot';
  cards: Card[];
  activeCode: ActiveCode | null;
  frozen?: boolean;
}

export interface BalancePush {
  type: 'balance';
  cardId: string;
  merchantId: string;
  balanceCents: number;
  availableCents: number;
  cause: string;
  atMs: number;
}

export interface CodePush extends ActiveCode {
  type: 'code';
  state: 'issued' | 'redeemed' | 'expired' | 'cancelled';
}

export type Connection = 'connecting' | 'live' | 'offline';

export interface LiveHandlers {
  snapshot(snapshot: Snapshot): void;
  balance(push: BalancePush): void;
  code(push: CodePush): void;
  connection(state: Connection): void;
  /** The token was refused: the device is signed out (expired, revoked, or signed out elsewhere). */
  unauthorized(): void;
}

const BACKOFF_MS = [500, 1000, 2000, 4000, 8000];
/** Hidden longer than this, the page reconnects when shown again. */
const STALE_AFTER_HIDDEN_MS = 30_000;

export class WalletLive {
  private socket: WebSocket | null = null;
  private attempts = 0;
  private stopped = false;
  private retry: number | undefined;

  private hiddenAtMs: number | null = null;

  constructor(
    private readonly token: string,
    private readonly on: LiveHandlers,
  ) {
    window.addEventListener('online', this.renew);
    document.addEventListener('visibilitychange', this.visibility);
    this.connect();
  }

  close(): void {
    this.stopped = true;
    clearTimeout(this.retry);
    window.removeEventListener('online', this.renew);
    document.removeEventListener('visibilitychange', this.visibility);
    this.socket?.close(1000);
  }

  /** Drops the socket, whatever state it seems to be in, and connects again at once. */
  private readonly renew = (): void => {
    if (this.stopped) return;
    clearTimeout(this.retry);
    const old = this.socket;
    this.socket = null;
    old?.close(1000);
    this.attempts = 0;
    this.connect();
  };

  private readonly visibility = (): void => {
    if (document.hidden) {
      this.hiddenAtMs = Date.now();
      return;
    }
    const hiddenForMs = this.hiddenAtMs === null ? 0 : Date.now() - this.hiddenAtMs;
    this.hiddenAtMs = null;
    const down = this.socket === null || this.socket.readyState > WebSocket.OPEN;
    if (hiddenForMs > STALE_AFTER_HIDDEN_MS || down) this.renew();
  };

  private connect(): void {
    this.on.connection('connecting');
    const socket = new WebSocket(socketUrl('/v1/wallet'));
    this.socket = socket;
    let refused = false;
    socket.onopen = () => socket.send(JSON.stringify({ type: 'auth', token: this.token }));
    socket.onmessage = (event) => {
      const frame = JSON.parse(String(event.data)) as { type: string; status?: string };
      if (frame.type === 'snapshot') {
        this.attempts = 0;
        this.on.connection('live');
        this.on.snapshot(frame as Snapshot);
      } else if (frame.type === 'balance') this.on.balance(frame as BalancePush);
      else if (frame.type === 'code') this.on.code(frame as CodePush);
      else if (frame.type === 'error' && frame.status === 'unauthorized') refused = true;
    };
    socket.onclose = () => {
      if (this.socket !== socket || this.stopped) return;
      if (refused) {
        this.stopped = true;
        this.on.unauthorized();
        return;
      }
      this.on.connection('offline');
      const delay = BACKOFF_MS[Math.min(this.attempts++, BACKOFF_MS.length - 1)] as number;
      this.retry = window.setTimeout(() => this.connect(), delay);
    };
  }
}
