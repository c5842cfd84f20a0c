/** Colour for the terminal: on a TTY only, never in pipes, files or `--json` (renderTable ignores its width). */

/** Wraps text in a colour, or leaves it alone when colour is off. */
export interface Style {
  readonly bad: (text: string) => string;
  readonly warn: (text: string) => string;
  readonly good: (text: string) => string;
  readonly bold: (text: string) => string;
  readonly dim: (text: string) => string;
}

const wrap =
  (open: number, close: number) =>
  (text: string): string =>
    `\x1b[${open}m${text}\x1b[${close}m`;

const plain = (text: string): string => text;

/** Colour styles, or identity functions when `color` is false. */
export function makeStyle(color: boolean): Style {
  if (!color) return { bad: plain, warn: plain, good: plain, bold: plain, dim: plain };
  return { bad: wrap(31, 39), warn: wrap(33, 39), good: wrap(32, 39), bold: wrap(1, 22), dim: wrap(2, 22) };
}

/**
 * Whether to colour: never with `--no-color` or NO_COLOR (https://no-color.org), always with FORCE_COLOR,
 * else only when stdout is a terminal.
 */
export function wantsColor(options: {
  readonly flag: boolean;
  readonly isTTY: boolean;
  readonly env: Readonly<Record<string, string | undefined>>;
}): boolean {
  if (!options.flag) return false;
  if (options.env.NO_COLOR !== undefined && options.env.NO_COLOR !== '') return false;
  if (options.env.FORCE_COLOR !== undefined && options.env.FORCE_COLOR !== '0') return true;
  return options.isTTY;
}
