// The parts of the `smpp` package (SMPP v3.4/v5.0 client and server) that paycode uses.
declare module 'smpp' {
  import type { EventEmitter } from 'node:events';
  import type { Server as NetServer } from 'node:net';

  export interface PDU {
    command: string;
    command_status: number;
    sequence_number: number;
    [field: string]: unknown;
    response(fields?: Record<string, unknown>): PDU;
  }

  export class Session extends EventEmitter {
    send(pdu: PDU): boolean;
    close(callback?: () => void): void;
    destroy(callback?: () => void): void;
    bind_transceiver(fields: Record<string, unknown>, callback: (pdu: PDU) => void): void;
    submit_sm(fields: Record<string, unknown>, callback: (pdu: PDU) => void): boolean | undefined;
    deliver_sm(fields: Record<string, unknown>, callback?: (pdu: PDU) => void): void;
    enquire_link(fields?: Record<string, unknown>, callback?: (pdu: PDU) => void): void;
    unbind(fields?: Record<string, unknown>, callback?: (pdu: PDU) => void): void;
    pause(): void;
    resume(): void;
  }

  export class Server extends NetServer {
    sessions: Session[];
  }

  /** `ssmpp://` URLs connect over TLS; the other options go to `net.connect` or `tls.connect`. */
  export function connect(
    options: { url: string; auto_enquire_link_period?: number; ca?: string | Buffer | readonly string[] },
    listener?: () => void,
  ): Session;
  export function createServer(listener: (session: Session) => void): Server;
  /** With `key` and `cert`, a server speaking SMPP over TLS. */
  export function createServer(
    options: { key?: string | Buffer; cert?: string | Buffer },
    listener: (session: Session) => void,
  ): Server;

  /** GSM 03.38: the default alphabet with its extension table, encoded one septet per byte. */
  export const gsmCoder: {
    GSM: { charRegex: RegExp };
    encode(text: string, encoding: number): Buffer;
    decode(bytes: Buffer, encoding: number): string;
  };
  export const ESM_CLASS: { UDH_INDICATOR: number };

  export const ESME_ROK: number;
  export const ESME_RBINDFAIL: number;
  export const ESME_RSYSERR: number;
}
