import { describe, expect, it } from 'vitest';
import { makeStyle, wantsColor } from '../../../cli/style';

describe('colour', () => {
  it('is on only on a terminal, never with --no-color or NO_COLOR, always with FORCE_COLOR', () => {
    expect(wantsColor({ flag: true, isTTY: true, env: {} })).toBe(true);
    expect(wantsColor({ flag: true, isTTY: false, env: {} })).toBe(false);
    expect(wantsColor({ flag: false, isTTY: true, env: {} })).toBe(false);
    expect(wantsColor({ flag: true, isTTY: true, env: { NO_COLOR: '1' } })).toBe(false);
    expect(wantsColor({ flag: true, isTTY: false, env: { FORCE_COLOR: '1' } })).toBe(true);
    expect(wantsColor({ flag: true, isTTY: false, env: { FORCE_COLOR: '0' } })).toBe(false);
  });

  it('wraps text in ANSI codes when on, and leaves it alone when off', () => {
    expect(makeStyle(true).bad('down')).toBe('\x1b[31mdown\x1b[39m');
    expect(makeStyle(false).bad('down')).toBe('down');
  });
});
