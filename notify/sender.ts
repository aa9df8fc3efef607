import { maskedPhone } from '../log/redact.ts';

/** Where texts go: the console in development, an SMSC over SMPP in production. */
export interface SmsSender {
  /** Resolves when the provider accepted the text; rejects when it must be retried later. */
  send(phone: string, text: string): Promise<void>;
  close(): Promise<void>;
}

export interface DevText {
  phone: string;
  text: string;
  atMs: number;
}

/**
 * `PAYCODE_SMS=console`: prints each text (with the phone number masked) and keeps the latest ones in
 * memory as a development inbox. Never use it in production: the texts hold codes.
 */
export class ConsoleSender implements SmsSender {
  readonly inbox: DevText[] = [];

  constructor(
    private readonly inboxLengthMax = 500,
    private readonly print: (line: string) => void = console.log,
  ) {}

  async send(phone: string, text: string): Promise<void> {
    this.print(`sms to ${maskedPhone(phone)}: ${text}`);
    this.inbox.push({ phone, text, atMs: Date.now() });
    if (this.inbox.length > this.inboxLengthMax)
      this.inbox.splice(0, this.inbox.length - this.inboxLengthMax);
  }

  async close(): Promise<void> {}
}
