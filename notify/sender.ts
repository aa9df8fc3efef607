import { maskedPhone } from '../log/redact.ts';

/** Where texts go: the console in development, an SMSC over SMPP in production. */
export interface SmsSender {
  /**
   * Resolves when the provider accepted the text; rejects when it must be retried later, or with an
   * `SmsRefused` when no retry can succeed.
   */
  send(phone: string, text: string): Promise<void>;
  close(): Promise<void>;
}

/** The provider refused a text for good (a bad number, a text it will never take): retrying is pointless. */
export class SmsRefused extends Error {
  constructor(readonly reason: string) {
    super(reason);
  }
}

export interface DevText {
  phone: string;
  text: string;
  atMs: number;
}

/**
 * `PAYCODE_SMS=console`: prints each text (with the phone number masked) and keeps the latest ones in
 * memory as a development inbox. Never use it in production: the texts hold codes. The texts of one
 * event-loop turn are printed together, in one write (a busy till prints hundreds a second).
 */
export class ConsoleSender implements SmsSender {
  readonly inbox: DevText[] = [];
  private unprinted: string[] = [];

  constructor(
    private readonly inboxLengthMax = 500,
    private readonly print: (line: string) => void = console.log,
  ) {}

  async send(phone: string, text: string): Promise<void> {
    if (this.unprinted.length === 0) setImmediate(() => this.flush());
    this.unprinted.push(`sms to ${maskedPhone(phone)}: ${text}`);
    this.inbox.push({ phone, text, atMs: Date.now() });
    if (this.inbox.length > this.inboxLengthMax)
      this.inbox.splice(0, this.inbox.length - this.inboxLengthMax);
  }

  async close(): Promise<void> {
    this.flush();
  }

  private flush(): void {
    if (this.unprinted.length === 0) return;
    const lines = this.unprinted.join('\n');
    this.unprinted = [];
    this.print(lines);
  }
}
