/**
 * Requests the server has started to answer (HTTP handlers, POS and wallet requests), so a shutdown can
 * let them finish: once `drain` is called, new requests are refused with `overloaded` (a client retries
 * them with the same key after the restart) and `drain` resolves when the running ones are answered, or
 * at the deadline.
 *
 * @module
 */

export class InFlight {
  private readonly running = new Set<Promise<unknown>>();
  draining = false;

  get size(): number {
    return this.running.size;
  }

  track<T>(work: Promise<T>): Promise<T> {
    this.running.add(work);
    const done = () => this.running.delete(work);
    work.then(done, done);
    return work;
  }

  /** Stops new requests and waits for the running ones (at most `deadlineMs`); returns those still running. */
  async drain(deadlineMs: number): Promise<number> {
    this.draining = true;
    let timer: NodeJS.Timeout | undefined;
    const deadline = new Promise((resolve) => {
      timer = setTimeout(resolve, deadlineMs);
    });
    await Promise.race([Promise.allSettled([...this.running]), deadline]);
    clearTimeout(timer);
    return this.running.size;
  }
}
