import { describe, expect, it } from 'vitest';
import { formatAge, formatDuration, formatInstant, monthBounds, monthOf, parseSpan } from '../../../cli/time';

describe('CLI times', () => {
  it.each([
    [0, '0 ms'],
    [850, '850 ms'],
    [4_240, '4.2 s'],
    [45_000, '45 s'],
    [184_000, '3 min 4 s'],
    [180_000, '3 min'],
    [2 * 3_600_000 + 5 * 60_000, '2 h 5 min'],
    [3 * 86_400_000 + 4 * 3_600_000, '3 d 4 h'],
    [-5, '0 ms'],
  ])('formatDuration(%d) = %s', (ms, text) => {
    expect(formatDuration(ms)).toBe(text);
  });

  it('ages are relative to the now given, past or future', () => {
    const now = Date.UTC(2026, 0, 1);
    expect(formatAge(now - 300, now)).toBe('just now');
    expect(formatAge(now - 12_000, now)).toBe('12 s ago');
    expect(formatAge(now + 5_000, now)).toBe('in 5.0 s');
  });

  it('instants are shown in the zone given, with milliseconds on request', () => {
    const at = Date.UTC(2026, 6, 1, 22, 5, 9, 42);
    expect(formatInstant(at, 'UTC')).toBe('2026-07-01 22:05:09 UTC');
    expect(formatInstant(at, 'UTC', { time: true, ms: true, zone: false })).toBe('22:05:09.042');
    expect(formatInstant(at, 'Asia/Tokyo')).toBe('2026-07-02 07:05:09 GMT+9');
  });

  it.each([
    ['45s', 45_000],
    ['90m', 5_400_000],
    ['12h', 43_200_000],
    ['30d', 2_592_000_000],
    ['2w', 1_209_600_000],
    ['1.5h', 5_400_000],
  ])('parseSpan(%s) = %d', (text, ms) => {
    expect(parseSpan(text)).toBe(ms);
  });

  it.each(['', '30', 'd', '-1d', '3y', '0d'])('parseSpan(%j) is not a span', (text) => {
    expect(parseSpan(text)).toBeNull();
  });

  it('months are UTC: bounds, the month of an instant, malformed ones refused', () => {
    expect(monthBounds('2026-02')).toEqual({ from: Date.UTC(2026, 1, 1), to: Date.UTC(2026, 2, 1) });
    expect(monthBounds('2026-12')?.to).toBe(Date.UTC(2027, 0, 1));
    expect(monthBounds('2026-13')).toBeNull();
    expect(monthBounds('26-01')).toBeNull();
    expect(monthOf(Date.UTC(2026, 11, 31, 23, 59))).toBe('2026-12');
  });
});
