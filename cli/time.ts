/**
 * Times for people: durations, ages and instants. Every function takes the instant it is "now" and the time
 * zone as arguments, so that a test renders the same text on any machine, on any day.
 */

/** What the CLI renders times against: now, and the time zone instants are shown in. */
export interface TimeContext {
  /** Epoch milliseconds. */
  readonly now: number;
  /** An IANA zone (`UTC`, `Europe/Paris`); the process's own (honouring TZ) by default. */
  readonly timeZone: string;
}

/** The process's time zone (TZ is honoured by Intl). */
export function localTimeZone(): string {
  return Intl.DateTimeFormat().resolvedOptions().timeZone;
}

const SECOND = 1000;
const MINUTE = 60 * SECOND;
const HOUR = 60 * MINUTE;
const DAY = 24 * HOUR;

/**
 * A duration at the precision a reader wants: `850 ms`, `4.2 s`, `45 s`, `3 min 4 s`, `2 h 5 min`,
 * `3 d 4 h`. Negative durations (clocks apart) read as zero.
 */
export function formatDuration(ms: number): string {
  const d = Math.max(0, Math.round(ms));
  if (d < SECOND) return `${d} ms`;
  if (d < 10 * SECOND) return `${(d / SECOND).toFixed(1)} s`;
  if (d < MINUTE) return `${Math.floor(d / SECOND)} s`;
  const two = (big: number, bigUnit: string, small: number, smallUnit: string) =>
    small === 0 ? `${big} ${bigUnit}` : `${big} ${bigUnit} ${small} ${smallUnit}`;
  if (d < HOUR) return two(Math.floor(d / MINUTE), 'min', Math.floor((d % MINUTE) / SECOND), 's');
  if (d < DAY) return two(Math.floor(d / HOUR), 'h', Math.floor((d % HOUR) / MINUTE), 'min');
  return two(Math.floor(d / DAY), 'd', Math.floor((d % DAY) / HOUR), 'h');
}

/** How long ago `at` was: `just now`, `12 s ago`, `3 min 4 s ago`; `in 5 s` for an instant ahead. */
export function formatAge(at: number, now: number): string {
  const ago = now - at;
  if (Math.abs(ago) < SECOND) return 'just now';
  return ago > 0 ? `${formatDuration(ago)} ago` : `in ${formatDuration(-ago)}`;
}

const formatters = new Map<string, Intl.DateTimeFormat>();

function formatter(timeZone: string): Intl.DateTimeFormat {
  let f = formatters.get(timeZone);
  if (f === undefined) {
    f = new Intl.DateTimeFormat('en-GB', {
      timeZone,
      year: 'numeric',
      month: '2-digit',
      day: '2-digit',
      hour: '2-digit',
      minute: '2-digit',
      second: '2-digit',
      hourCycle: 'h23',
      timeZoneName: 'short',
    });
    formatters.set(timeZone, f);
  }
  return f;
}

/** The parts of an instant in a zone. */
function partsOf(at: number, timeZone: string): Record<string, string> {
  const parts: Record<string, string> = {};
  for (const p of formatter(timeZone).formatToParts(new Date(at))) parts[p.type] = p.value;
  return parts;
}

/**
 * An instant in the zone: `2026-12-05 19:35:09 UTC`; `time: true` leaves the date out (`19:35:09`), and
 * `ms: true` adds milliseconds (`19:35:09.520`), for timelines whose steps are a fraction of a second apart.
 */
export function formatInstant(
  at: number,
  timeZone: string,
  options: { readonly time?: boolean; readonly ms?: boolean; readonly zone?: boolean } = {},
): string {
  const p = partsOf(at, timeZone);
  const millis = options.ms === true ? `.${String(((at % 1000) + 1000) % 1000).padStart(3, '0')}` : '';
  const clock = `${p.hour}:${p.minute}:${p.second}${millis}`;
  const date = `${p.year}-${p.month}-${p.day}`;
  const zone = options.zone === false ? '' : ` ${p.timeZoneName ?? timeZone}`;
  return options.time === true ? `${clock}${zone}` : `${date} ${clock}${zone}`;
}

/** Absolute and relative at once: `2026-12-05 19:35:09 UTC (5 min ago)`. */
export function formatWhen(at: number, time: TimeContext): string {
  return `${formatInstant(at, time.timeZone)} (${formatAge(at, time.now)})`;
}

const SPAN_UNITS: Readonly<Record<string, number>> = {
  s: SECOND,
  m: MINUTE,
  min: MINUTE,
  h: HOUR,
  d: DAY,
  w: 7 * DAY,
};

/** A span as operators type it: `45s`, `90m`, `12h`, `30d`, `2w`; null when it is none of these. */
export function parseSpan(text: string): number | null {
  const match = /^(\d+(?:\.\d+)?)\s*(s|m|min|h|d|w)$/.exec(text.trim());
  if (match === null) return null;
  const unit = SPAN_UNITS[match[2] ?? ''];
  const value = Number(match[1]);
  if (unit === undefined || !Number.isFinite(value) || value <= 0) return null;
  return Math.round(value * unit);
}

/** The first instant of a UTC month `YYYY-MM` and of the month after it; null when malformed. */
export function monthBounds(month: string): { readonly from: number; readonly to: number } | null {
  const match = /^(\d{4})-(\d{2})$/.exec(month);
  if (match === null) return null;
  const year = Number(match[1]);
  const index = Number(match[2]) - 1;
  if (index < 0 || index > 11) return null;
  return { from: Date.UTC(year, index, 1), to: Date.UTC(year, index + 1, 1) };
}

/** The UTC month `now` falls in, as `YYYY-MM`. */
export function monthOf(now: number): string {
  const d = new Date(now);
  return `${d.getUTCFullYear()}-${String(d.getUTCMonth() + 1).padStart(2, '0')}`;
}
