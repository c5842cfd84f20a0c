import type { SiteLogger } from '../ports';

/**
 * Logs as JSON lines on stdout (journald keeps them; `journalctl -u halo-relay -o cat | jq` reads them).
 * Every string in a line, message and data alike, goes through the redactor first: a BMC's error text
 * may echo its address or password, and nothing secret may reach a log.
 */
export class JsonLinesLogger implements SiteLogger {
  constructor(
    private readonly program: string,
    private readonly redact: (text: string) => string,
    private readonly write: (line: string) => void = (line) => void process.stdout.write(line),
    private readonly now: () => Date = () => new Date(),
  ) {}

  info(message: string, data?: Readonly<Record<string, unknown>>): void {
    this.line('info', message, data);
  }

  warn(message: string, data?: Readonly<Record<string, unknown>>): void {
    this.line('warn', message, data);
  }

  error(message: string, data?: Readonly<Record<string, unknown>>): void {
    this.line('error', message, data);
  }

  private line(level: string, message: string, data?: Readonly<Record<string, unknown>>): void {
    const entry = { time: this.now().toISOString(), level, program: this.program, msg: message, ...data };
    this.write(`${JSON.stringify(this.clean(entry))}\n`);
  }

  private clean(value: unknown): unknown {
    if (typeof value === 'string') return this.redact(value);
    if (Array.isArray(value)) return value.map((v) => this.clean(v));
    if (value instanceof Error) return this.redact(value.message);
    if (value !== null && typeof value === 'object') {
      return Object.fromEntries(Object.entries(value).map(([k, v]) => [k, this.clean(v)]));
    }
    return value;
  }
}
