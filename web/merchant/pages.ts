/**
 * A list the server gives a page at a time, newest first: the newest page, then older ones through each
 * answer's `next`. The dashboard also refreshes the open section by itself, so two rules keep the list
 * whole:
 * - once the merchant asks for an older page, `olderOpen` is set and a periodic refresh leaves the list
 *   alone; only an explicit reload (`newest`) starts again from the newest page and clears it;
 * - only the answer of the latest load is used: an answer that a later load superseded is dropped, so
 *   a refresh and a "Show older" never mix their rows.
 */
export class Pages<Row, Page extends { next: string | null }> {
  rows: Row[] = [];
  next: string | null = null;
  olderOpen = false;
  private loads = 0;

  constructor(
    private readonly read: (before: string | null) => Promise<Page>,
    private readonly rowsOf: (page: Page) => Row[],
  ) {}

  /** Reads the newest page and replaces the list with it; null when a later load superseded this one. */
  async newest(): Promise<Page | null> {
    const load = ++this.loads;
    const page = await this.read(null);
    if (load !== this.loads) return null;
    this.rows = [...this.rowsOf(page)];
    this.next = page.next;
    this.olderOpen = false;
    return page;
  }

  /** Appends the next older page; null when there is none or a later load superseded this one. */
  async older(): Promise<Page | null> {
    const before = this.next;
    if (before === null) return null;
    const load = ++this.loads;
    const wasOpen = this.olderOpen;
    // Set before the answer, so a periodic refresh meanwhile does not start a competing load.
    this.olderOpen = true;
    let page: Page;
    try {
      page = await this.read(before);
    } catch (error) {
      if (load === this.loads) this.olderOpen = wasOpen;
      throw error;
    }
    if (load !== this.loads) return null;
    this.rows = [...this.rows, ...this.rowsOf(page)];
    this.next = page.next;
    return page;
  }

  /** What a periodic refresh does: the newest page again, unless older pages are open. */
  refresh(): Promise<Page | null> {
    return this.olderOpen ? Promise.resolve(null) : this.newest();
  }
}
