import type { AddressInfo } from 'node:net';
import * as smpp from 'smpp';

/**
 * An SMSC simulator: a real SMPP v3.4 peer on 127.0.0.1 (the `smpp` package's server). It checks the
 * bind credentials, records every submit_sm, answers with a message id and a delivery receipt, and can
 * send texts from phones (deliver_sm), refuse submissions, or go down and come back on the same port.
 */
export interface SubmittedText {
  to: string;
  /** A concatenated text joined again from its parts, as a phone shows it. */
  text: string;
  dataCoding: number;
  registeredDelivery: number;
  /** 1, or the number of parts a concatenated text came in. */
  parts: number;
}

export class SmscSimulator {
  readonly submitted: SubmittedText[] = [];
  readonly binds: string[] = [];
  /** When set, submit_sm is answered with this error status. */
  refuseWith: number | null = null;
  /** When set, submit_sm gets no answer at all (a peer that hangs). */
  silent = false;
  private server: smpp.Server | null = null;
  private readonly sessions = new Set<smpp.Session>();
  private nextMessageId = 1;
  /** Parts of concatenated texts not yet complete, by destination and reference. */
  private readonly partsOf = new Map<string, string[]>();
  port = 0;

  constructor(
    private readonly systemId = 'paycode',
    private readonly password = 'secret',
    /** A certificate and key: SMPP over TLS (`ssmpp://`). */
    private readonly tls?: { cert: string; key: string },
  ) {}

  get url(): string {
    return `${this.tls ? 'ssmpp' : 'smpp'}://${this.systemId}:${this.password}@127.0.0.1:${this.port}`;
  }

  async start(port = 0): Promise<void> {
    const accept = (session: smpp.Session) => this.accept(session);
    const server = this.tls ? smpp.createServer(this.tls, accept) : smpp.createServer(accept);
    await new Promise<void>((resolve) => server.listen(port, '127.0.0.1', () => resolve()));
    this.server = server;
    this.port = (server.address() as AddressInfo).port;
  }

  /** Closes the listener and drops every link. */
  async stop(): Promise<void> {
    for (const session of this.sessions) session.destroy();
    this.sessions.clear();
    const server = this.server;
    this.server = null;
    if (server) await new Promise<void>((resolve) => server.close(() => resolve()));
  }

  /** A text from a phone to the platform. */
  deliver(fromPhone: string, text: string): void {
    for (const session of this.sessions) {
      session.deliver_sm({
        source_addr: fromPhone.replace(/^\+/, ''),
        destination_addr: 'paycode',
        short_message: text,
      });
      return;
    }
    throw new Error('no bound session to deliver to');
  }

  private accept(session: smpp.Session): void {
    session.on('error', () => {});
    session.on('bind_transceiver', (pdu: smpp.PDU) => {
      if (pdu.system_id !== this.systemId || pdu.password !== this.password) {
        session.send(pdu.response({ command_status: smpp.ESME_RBINDFAIL }));
        session.close();
        return;
      }
      this.binds.push(String(pdu.system_id));
      this.sessions.add(session);
      session.send(pdu.response());
    });
    session.on('close', () => this.sessions.delete(session));
    session.on('enquire_link', (pdu: smpp.PDU) => session.send(pdu.response()));
    session.on('unbind', (pdu: smpp.PDU) => {
      session.send(pdu.response());
      session.close();
    });
    session.on('deliver_sm_resp', () => {});
    session.on('submit_sm', (pdu: smpp.PDU) => {
      if (this.silent) return;
      if (this.refuseWith !== null) {
        session.send(pdu.response({ command_status: this.refuseWith }));
        return;
      }
      const messageId = String(this.nextMessageId++);
      const body = pdu.short_message as { message: string; udh?: Buffer[] };
      const to = `+${pdu.destination_addr}`;
      const text = this.joined(to, body);
      if (text)
        this.submitted.push({
          to,
          text: text.text,
          dataCoding: pdu.data_coding as number,
          registeredDelivery: pdu.registered_delivery as number,
          parts: text.parts,
        });
      session.send(pdu.response({ message_id: messageId }));
      session.deliver_sm({
        source_addr: String(pdu.destination_addr),
        destination_addr: 'paycode',
        esm_class: 0x04,
        short_message: `id:${messageId} sub:001 dlvrd:001 submit date:2601010000 done date:2601010000 stat:DELIVRD err:000 text:`,
      });
    });
  }

  /** The whole text once its last part came (the 8-bit reference header, IE 0x00), else null. */
  private joined(
    to: string,
    body: { message: string; udh?: Buffer[] },
  ): { text: string; parts: number } | null {
    const header = body.udh?.find((element) => element[0] === 0x00);
    if (!header) return { text: body.message, parts: 1 };
    const [, , reference, total, seq] = header as unknown as number[];
    const id = `${to}:${reference}`;
    const parts = this.partsOf.get(id) ?? new Array<string>(total as number).fill('');
    parts[(seq as number) - 1] = body.message;
    this.partsOf.set(id, parts);
    if (parts.some((part) => part === '')) return null;
    this.partsOf.delete(id);
    return { text: parts.join(''), parts: parts.length };
  }
}
