import WebSocket from 'ws';

/**
 * A minimal WebSocket client for the baselines: JSON frames matched to their answers by `seq`, any
 * number in flight on one connection. The same library and framing the POS client uses, without the
 * paycode handshake and MACs.
 */
export class PlainClient {
  private seq = 0;
  private readonly waiting = new Map<
    number,
    { resolve: (frame: Record<string, unknown>) => void; reject: (error: Error) => void }
  >();

  private constructor(private readonly socket: WebSocket) {
    socket.on('message', (data) => {
      const frame = JSON.parse(String(data)) as Record<string, unknown>;
      const waiter = this.waiting.get(frame.seq as number);
      if (!waiter) return;
      this.waiting.delete(frame.seq as number);
      waiter.resolve(frame);
    });
    socket.on('close', () => {
      for (const waiter of this.waiting.values()) waiter.reject(new Error('connection closed'));
      this.waiting.clear();
    });
  }

  static connect(url: string): Promise<PlainClient> {
    const socket = new WebSocket(url, { perMessageDeflate: false });
    return new Promise((resolve, reject) => {
      socket.once('error', reject);
      socket.once('open', () => resolve(new PlainClient(socket)));
    });
  }

  /** Sends `fields` with the next `seq` and resolves with the answer carrying it. */
  send(fields: Record<string, unknown>): Promise<Record<string, unknown>> {
    const seq = ++this.seq;
    return new Promise((resolve, reject) => {
      this.waiting.set(seq, { resolve, reject });
      this.socket.send(JSON.stringify({ ...fields, seq }));
    });
  }

  close(): void {
    this.socket.close(1000);
  }
}
