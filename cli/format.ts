/** Terminal output for the CLI and the benches: an output sink, exit codes, aligned tables and units. */

/** Where a command writes: the process's streams in production, strings in tests. */
export interface Io {
  readonly stdout: (text: string) => void;
  readonly stderr: (text: string) => void;
}

/** Exit codes shared by every command, so scripts and cron can branch on them. */
export const EXIT = {
  ok: 0,
  /** The check ran and found a problem (for `plan`: N+1 fails, or a host cannot be fenced). */
  checkFailed: 1,
  /** Bad usage or unreadable/invalid input: nothing was checked. */
  usage: 2,
  /** The control plane could not be reached, or refused who we are (no credentials, not authorised). */
  unreachable: 3,
} as const;

/** One of the `EXIT` codes. */
export type ExitCode = (typeof EXIT)[keyof typeof EXIT];

/** A table column: its header and which side its cells line up on (numbers read best right-aligned). */
export interface Column {
  readonly header: string;
  readonly align?: 'left' | 'right';
}

// biome-ignore lint/suspicious/noControlCharactersInRegex: ANSI colour sequences start with ESC.
const ANSI = /\x1b\[[0-9;]*m/g;

// Code points, not UTF-16 units, so cells with "→" or "—" still line up; colour codes take no room.
const width = (text: string): number => [...text.replace(ANSI, '')].length;

function pad(text: string, to: number, align: 'left' | 'right'): string {
  const fill = ' '.repeat(Math.max(0, to - width(text)));
  return align === 'right' ? fill + text : text + fill;
}

/**
 * Renders rows under a header and a rule, each column as wide as its widest cell, two spaces apart.
 * Returns the lines, without trailing spaces; a missing cell renders empty.
 */
export function renderTable(
  columns: readonly Column[],
  rows: readonly (readonly string[])[],
  indent = '',
): string[] {
  const widths = columns.map((col, i) => Math.max(width(col.header), ...rows.map((r) => width(r[i] ?? ''))));
  const line = (cells: readonly string[]): string =>
    (
      indent + columns.map((col, i) => pad(cells[i] ?? '', widths[i] ?? 0, col.align ?? 'left')).join('  ')
    ).trimEnd();
  return [
    line(columns.map((c) => c.header)),
    line(widths.map((w) => '─'.repeat(w))),
    ...rows.map((r) => line(r)),
  ];
}

/** A count, whole when it is whole, else to one decimal (CPU limits under overcommit can be fractional). */
export function formatNumber(n: number): string {
  return Number.isInteger(n) ? String(n) : n.toFixed(1);
}

/** Mebibytes as GiB to one decimal: `46080` → `45.0 GiB`. */
export function formatGiB(mib: number): string {
  return `${(mib / 1024).toFixed(1)} GiB`;
}

/** Mebibytes exactly, with GiB alongside for the reader: `7168` → `7168 MiB (7.0 GiB)`. */
export function formatMiB(mib: number): string {
  return `${formatNumber(mib)} MiB (${formatGiB(mib)})`;
}

/** A share as a whole percentage: `0.703` → `70%`. */
export function formatPercent(share: number): string {
  return `${Math.round(share * 100)}%`;
}

/** `n` with the noun in singular or plural: `1 VM`, `4 VMs`, `2 hosts`. */
export function plural(n: number, noun: string): string {
  return `${n} ${n === 1 ? noun : `${noun}s`}`;
}

/** A list for a sentence, cut after `max` items: `a, b and 3 more`. */
export function listOf(items: readonly string[], max = 5): string {
  if (items.length <= 1) return items.join('');
  if (items.length > max) return `${items.slice(0, max).join(', ')} and ${items.length - max} more`;
  return `${items.slice(0, -1).join(', ')} and ${items[items.length - 1] ?? ''}`;
}
