/**
 * The WebSocket close codes of the POS and wallet sockets (docs/pos-guide.md, docs/statuses.md): what
 * the server closes a socket with, and what a client may read from it.
 *
 * @module
 */
export const CLOSE_CODES = {
  /** No valid credentials within the handshake time, or the terminal key was revoked or replaced. */
  unauthorized: 4001,
  /** Too many bad MACs, replays or unreadable frames on one session. */
  tooManyBadMessages: 4008,
  /** Too many sessions of one terminal, or sockets of one consumer: retry later, not at once. */
  tooMany: 4029,
  /** The server could not read what it needs (the wallet); reconnect. */
  serverError: 1011,
} as const;

/** A close code the client gives itself (no answer in time, a frame that failed verification). */
export const CLIENT_CLOSE_CODE = 4000;
