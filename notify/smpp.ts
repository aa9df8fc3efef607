import { rootCertificates } from 'node:tls';
import * as smpp from 'smpp';
import { createLogger, type Logger } from '../log/logger.ts';
import { SmsRefused, type SmsSender } from './sender.ts';
import { SMS_PARTS_MAX, smsParts } from './sms-parts.ts';

/**
 * `PAYCODE_SMS=smpp://system_id:password@host:port` (or `ssmpp://`, over TLS): an SMPP v3.4 transceiver. It binds with
 * bind_transceiver, keeps the link alive with enquire_link, reconnects with exponential backoff, sends
 * each text in GSM 7-bit or UCS-2 and in as many parts as it needs (sms-parts.ts), asking for delivery
 * receipts, and hands inbound texts (deliver_sm) to `onInbound`. While the link is down `send` rejects
 * and the outbox retries later; a refusal no retry can change rejects with `SmsRefused`.
 *
 * @module
 */

export interface SmppOptions {
  url: string;
  /** PEM certificates trusted for an `ssmpp://` SMSC besides the system's (a private CA). */
  ca?: string;
  /** Sender address shown on phones. */
  sourceAddr?: string;
  enquireLinkMs?: number;
  /** How long a submit_sm may wait for its answer before the text is retried. */
  submitTimeoutMs?: number;
  reconnectDelayMaxMs?: number;
  onInbound: (phone: string, text: string) => void;
  onReceipt?: (state: string) => void;
  /** Where the link's state is logged, never its password (stderr by default). */
  logger?: Logger;
}

/** `smpp://` (plain TCP, port 2775 by default) or `ssmpp://` (SMPP over TLS, port 3550 by default). */
export function parseSmppUrl(
  url: string,
): { tls: boolean; host: string; port: number; systemId: string; password: string } | null {
  try {
    const parsed = new URL(url);
    const tls = parsed.protocol === 'ssmpp:';
    if ((!tls && parsed.protocol !== 'smpp:') || !parsed.hostname) return null;
    return {
      tls,
      host: parsed.hostname,
      port: Number(parsed.port || (tls ? 3550 : 2775)),
      systemId: decodeURIComponent(parsed.username),
      password: decodeURIComponent(parsed.password),
    };
  } catch {
    return null;
  }
}

/**
 * submit_sm statuses that no retry can change for this text: its destination or the text itself is
 * wrong for the SMSC (SMPP v3.4, 5.1.3). Anything else is retried, including the faults of our own
 * configuration (source address, esm_class, expiry), which a fix makes succeed without losing a text.
 */
const PERMANENT_REFUSALS = new Set([
  0x01, // ESME_RINVMSGLEN: message length is invalid
  0x0b, // ESME_RINVDSTADR: invalid destination address
  0x50, // ESME_RINVDSTTON: invalid destination type of number
  0x51, // ESME_RINVDSTNPI: invalid destination numbering plan
  0x65, // ESME_RX_P_APPN: the receiver's permanent application error
  0x66, // ESME_RX_R_APPN: the receiver rejects the message
]);

export class SmppSender implements SmsSender {
  /** Names each concatenated text in its parts' headers (sms-parts.ts). */
  private reference = 0;
  private session: smpp.Session | null = null;
  private bound = false;
  private stopped = false;
  private attempt = 0;
  private reconnectTimer: NodeJS.Timeout | null = null;
  private readonly target: NonNullable<ReturnType<typeof parseSmppUrl>>;
  private readonly logger: Logger;
  /** Submissions waiting for their submit_sm_resp, failed together when the link closes. */
  private readonly submitting = new Set<(reason: string) => void>();

  constructor(private readonly options: SmppOptions) {
    const target = parseSmppUrl(options.url);
    if (!target)
      throw new Error('PAYCODE_SMS must look like smpp:// or ssmpp://system_id:password@host:port');
    this.target = target;
    this.logger = options.logger ?? createLogger();
    this.connect();
  }

  /** Each part of the text in turn (sms-parts.ts); the text is accepted once every part is. */
  async send(phone: string, text: string): Promise<void> {
    this.reference = (this.reference + 1) & 0xff;
    const encoded = smsParts(text, this.reference);
    if (!encoded) throw new SmsRefused(`the text needs more than ${SMS_PARTS_MAX} parts`);
    for (const [index, part] of encoded.parts.entries()) {
      try {
        await this.submit(phone, part, encoded.dataCoding, encoded.parts.length > 1);
      } catch (error) {
        // A retry sends every part again under a new reference: the phone may show the parts already
        // accepted once more, on their own. Said in the refusal, for the operator reading dead texts.
        if (index > 0 && error instanceof SmsRefused)
          throw new SmsRefused(
            `${error.reason} (part ${index + 1} of ${encoded.parts.length}; ${index} delivered)`,
          );
        throw error;
      }
    }
  }

  private submit(phone: string, part: Buffer, dataCoding: number, concatenated: boolean): Promise<void> {
    const session = this.session;
    if (!session || !this.bound) return Promise.reject(new Error('SMPP link is not bound'));
    return new Promise((resolve, reject) => {
      // The smpp package drops the callback of a PDU it could not write or whose link closed: bound the
      // wait, and fail every waiting submission when the link goes.
      const fail = (reason: string) => {
        clearTimeout(timer);
        this.submitting.delete(fail);
        reject(new Error(reason));
      };
      const timer = setTimeout(
        () => fail('submit_sm got no answer in time'),
        this.options.submitTimeoutMs ?? 10_000,
      );
      this.submitting.add(fail);
      const sent = session.submit_sm(
        {
          source_addr: this.options.sourceAddr ?? 'paycode',
          source_addr_ton: 5,
          source_addr_npi: 0,
          destination_addr: phone.replace(/^\+/, ''),
          dest_addr_ton: 1,
          dest_addr_npi: 1,
          // A Buffer goes as it is: the encoding and the data_coding saying which are chosen together.
          short_message: part,
          data_coding: dataCoding,
          esm_class: concatenated ? smpp.ESM_CLASS.UDH_INDICATOR : 0,
          registered_delivery: 1,
        },
        (pdu) => {
          clearTimeout(timer);
          this.submitting.delete(fail);
          const status = pdu.command_status as number;
          if (status === 0) resolve();
          else if (PERMANENT_REFUSALS.has(status))
            reject(new SmsRefused(`submit_sm refused with status ${status}`));
          else reject(new Error(`submit_sm refused with status ${status}`));
        },
      );
      if (sent === false) fail('the SMPP link is not writable');
    });
  }

  /** Unbinds and closes the link (at most a second's wait for a peer that stopped answering). */
  async close(): Promise<void> {
    this.stopped = true;
    if (this.reconnectTimer) clearTimeout(this.reconnectTimer);
    const session = this.session;
    if (!session) return;
    await new Promise<void>((resolve) => {
      const timer = setTimeout(() => {
        session.destroy();
        resolve();
      }, 1_000);
      session.once('close', () => {
        clearTimeout(timer);
        resolve();
      });
      if (this.bound) session.unbind({}, () => session.close());
      else session.destroy();
    });
  }

  private connect(): void {
    const { tls, host, port, systemId, password } = this.target;
    // Over TLS the SMSC's certificate is checked against the system's CAs (and `ca`) and the host name.
    // `ca` replaces Node's list, so the system's CAs go with the operator's own.
    const trust = tls && this.options.ca ? { ca: [...rootCertificates, this.options.ca] } : {};
    const session = smpp.connect(
      {
        url: `${tls ? 'ssmpp' : 'smpp'}://${host}:${port}`,
        auto_enquire_link_period: this.options.enquireLinkMs ?? 30_000,
        ...trust,
      },
      () => {
        session.bind_transceiver({ system_id: systemId, password }, (pdu) => {
          if (pdu.command_status !== 0) {
            this.logger.warn('sms bind refused', { host, port, commandStatus: pdu.command_status });
            session.destroy();
            return;
          }
          this.bound = true;
          this.attempt = 0;
          this.logger.info('sms bound', { host, port });
        });
      },
    );
    this.session = session;
    session.on('deliver_sm', (pdu: smpp.PDU) => this.deliver(session, pdu));
    session.on('enquire_link', (pdu: smpp.PDU) => session.send(pdu.response()));
    session.on('unbind', (pdu: smpp.PDU) => {
      session.send(pdu.response());
      session.close();
    });
    session.on('error', (error: Error) => this.logger.warn('sms link error', { reason: error.message }));
    session.on('close', () => {
      this.bound = false;
      for (const fail of [...this.submitting]) fail('the SMPP link closed');
      if (this.session === session) this.session = null;
      if (this.stopped) return;
      const delayMs = Math.min(this.options.reconnectDelayMaxMs ?? 30_000, 250 * 2 ** this.attempt++);
      this.logger.warn('sms link closed', { reconnectInMs: delayMs });
      this.reconnectTimer = setTimeout(() => this.connect(), delayMs);
    });
  }

  private deliver(session: smpp.Session, pdu: smpp.PDU): void {
    session.send(pdu.response());
    const body = pdu.short_message as { message?: unknown } | undefined;
    const text = typeof body?.message === 'string' ? body.message : '';
    // esm_class bit 2 marks an SMSC delivery receipt ("id:... stat:DELIVRD ...").
    if (((pdu.esm_class as number) & 0x04) !== 0) {
      const state = /stat:([A-Z]+)/.exec(text)?.[1] ?? 'UNKNOWN';
      this.options.onReceipt?.(state);
      return;
    }
    const source = typeof pdu.source_addr === 'string' ? pdu.source_addr : '';
    if (/^\+?[1-9][0-9]{6,14}$/.test(source))
      this.options.onInbound(source.startsWith('+') ? source : `+${source}`, text);
  }
}
