/**
 * Business days and banking days. A business day D runs from the cut-off on D−1 to the cut-off on D in
 * the settlement time zone; a cut-off of `00:00` means the midnight that ends D, so with the defaults
 * (UTC, 00:00) business day D is the calendar day D in UTC. Banking days are weekdays that are not US
 * Federal Reserve holidays; a holiday on a Sunday is observed on the Monday, one on a Saturday is not
 * moved (the Federal Reserve is open the Friday before).
 *
 * @module
 */

export interface Cutoff {
  timeZone: string;
  /** `HH:MM`. */
  time: string;
}

const DATE = /^([0-9]{4})-([0-9]{2})-([0-9]{2})$/;
const DAY_MS = 86_400_000;

/** A valid calendar date `YYYY-MM-DD`, or null. */
export function parseDate(text: unknown): { year: number; month: number; day: number } | null {
  if (typeof text !== 'string') return null;
  const match = DATE.exec(text);
  if (!match) return null;
  const [year, month, day] = [Number(match[1]), Number(match[2]), Number(match[3])];
  const at = new Date(Date.UTC(year, month - 1, day));
  if (
    year < 2000 ||
    at.getUTCFullYear() !== year ||
    at.getUTCMonth() !== month - 1 ||
    at.getUTCDate() !== day
  )
    return null;
  return { year, month, day };
}

export function addDays(date: string, days: number): string {
  const parsed = parseDate(date);
  if (!parsed) throw new RangeError(`not a date: ${date}`);
  return new Date(Date.UTC(parsed.year, parsed.month - 1, parsed.day) + days * DAY_MS)
    .toISOString()
    .slice(0, 10);
}

/** The date and time at `atMs` in `timeZone`. */
export function localParts(atMs: number, timeZone: string): { date: string; hour: number; minute: number } {
  const parts = Object.fromEntries(
    new Intl.DateTimeFormat('en-CA', {
      timeZone,
      year: 'numeric',
      month: '2-digit',
      day: '2-digit',
      hour: '2-digit',
      minute: '2-digit',
      hourCycle: 'h23',
    })
      .formatToParts(new Date(atMs))
      .map((part) => [part.type, part.value]),
  );
  return {
    date: `${parts.year}-${parts.month}-${parts.day}`,
    hour: Number(parts.hour),
    minute: Number(parts.minute),
  };
}

/**
 * The instant of local wall time `date hour:minute` in `timeZone`: the earlier one when a DST change
 * repeats it, and when a DST change skips it, the same wall time with the offset from before the change
 * (02:30 in a 02:00→03:00 gap is 03:30), so a cut-off never moves earlier.
 */
export function zonedTimeMs(date: string, hour: number, minute: number, timeZone: string): number {
  const parsed = parseDate(date);
  if (!parsed) throw new RangeError(`not a date: ${date}`);
  const wall = Date.UTC(parsed.year, parsed.month - 1, parsed.day, hour, minute);
  const offsetAt = (atMs: number) => zonedWall(localParts(atMs, timeZone)) - atMs;
  const before = wall - offsetAt(wall - DAY_MS / 2);
  const after = wall - offsetAt(wall + DAY_MS / 2);
  const exact = [before, after].filter((atMs) => zonedWall(localParts(atMs, timeZone)) === wall);
  return exact.length > 0 ? Math.min(...exact) : before;
}

function zonedWall(parts: { date: string; hour: number; minute: number }): number {
  const parsed = parseDate(parts.date) as { year: number; month: number; day: number };
  return Date.UTC(parsed.year, parsed.month - 1, parsed.day, parts.hour, parts.minute);
}

/** The window `[startMs, endMs)` of business day `date`. */
export function businessDayWindow(date: string, cutoff: Cutoff): { startMs: number; endMs: number } {
  const [hour, minute] = cutoff.time.split(':').map(Number) as [number, number];
  const endDate = hour === 0 && minute === 0 ? addDays(date, 1) : date;
  return {
    startMs: zonedTimeMs(addDays(endDate, -1), hour, minute, cutoff.timeZone),
    endMs: zonedTimeMs(endDate, hour, minute, cutoff.timeZone),
  };
}

/** The business day an instant belongs to. */
export function businessDayOf(atMs: number, cutoff: Cutoff): string {
  const { date } = localParts(atMs, cutoff.timeZone);
  for (const candidate of [addDays(date, -1), date, addDays(date, 1)]) {
    const { startMs, endMs } = businessDayWindow(candidate, cutoff);
    if (atMs >= startMs && atMs < endMs) return candidate;
  }
  throw new Error(`no business day holds ${atMs}`);
}

function nthWeekday(year: number, month: number, weekday: number, n: number): string {
  const first = new Date(Date.UTC(year, month - 1, 1)).getUTCDay();
  const day = 1 + ((weekday - first + 7) % 7) + (n - 1) * 7;
  return `${year}-${String(month).padStart(2, '0')}-${String(day).padStart(2, '0')}`;
}

function lastWeekday(year: number, month: number, weekday: number): string {
  const last = new Date(Date.UTC(year, month, 0));
  const day = last.getUTCDate() - ((last.getUTCDay() - weekday + 7) % 7);
  return `${year}-${String(month).padStart(2, '0')}-${String(day).padStart(2, '0')}`;
}

/** The days the Federal Reserve is closed in `year` (Sunday holidays moved to Monday). */
export function federalReserveHolidays(year: number): Set<string> {
  const fixed = ['01-01', '06-19', '07-04', '11-11', '12-25'].map((monthDay) => {
    const date = `${year}-${monthDay}`;
    return weekdayOf(date) === 0 ? addDays(date, 1) : date;
  });
  return new Set([
    ...fixed,
    nthWeekday(year, 1, 1, 3), // Martin Luther King Jr. Day
    nthWeekday(year, 2, 1, 3), // Washington's Birthday
    lastWeekday(year, 5, 1), // Memorial Day
    nthWeekday(year, 9, 1, 1), // Labor Day
    nthWeekday(year, 10, 1, 2), // Columbus Day
    nthWeekday(year, 11, 4, 4), // Thanksgiving Day
  ]);
}

function weekdayOf(date: string): number {
  return new Date(`${date}T00:00:00Z`).getUTCDay();
}

export function isBankingDay(date: string): boolean {
  const weekday = weekdayOf(date);
  return weekday !== 0 && weekday !== 6 && !federalReserveHolidays(Number(date.slice(0, 4))).has(date);
}

/** The first banking day after `date`. */
export function nextBankingDay(date: string): string {
  let next = addDays(date, 1);
  while (!isBankingDay(next)) next = addDays(next, 1);
  return next;
}
