import { readFileSync, statSync } from 'node:fs';
import { dirname, isAbsolute, resolve } from 'node:path';
import { parseDocument } from 'yaml';
import type * as z from 'zod';
import { readLanKey } from '../adapters/lan-transport';

/**
 * What the site programs' configuration files have in common: YAML (JSON is YAML), validated with zod,
 * relative paths resolved against the file's folder, secrets read from files nobody else can read.
 */

/** A configuration the program cannot run with: it exits 2 with this message, which names the field. */
export class ConfigError extends Error {
  override readonly name = 'ConfigError';
}

/** Group and other permission bits: a secret must have none of the read ones. */
const READABLE_BY_OTHERS = 0o044;

/** Refuses a file holding a secret that group or others can read (the way ssh treats private keys). */
export function assertPrivate(path: string, what: string): void {
  let mode: number;
  try {
    mode = statSync(path).mode;
  } catch (error) {
    throw new ConfigError(`${what}: cannot read ${path} (${(error as NodeJS.ErrnoException).code ?? error})`);
  }
  if ((mode & READABLE_BY_OTHERS) !== 0) {
    throw new ConfigError(
      `${what}: ${path} is readable by group or others (mode ${(mode & 0o777).toString(8)}); ` +
        `it holds a secret: chmod 600 ${path}`,
    );
  }
}

/** Reads a secret file (after checking nobody else can read it), without its trailing newline. */
export function readSecretFile(path: string, what: string): string {
  assertPrivate(path, what);
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (error) {
    throw new ConfigError(`${what}: cannot read ${path} (${(error as NodeJS.ErrnoException).code ?? error})`);
  }
  const value = text.replace(/\r?\n$/, '');
  if (value.length === 0) throw new ConfigError(`${what}: ${path} is empty`);
  return value;
}

/** Resolves a path of the configuration against the configuration file's folder. */
export function resolveFrom(configPath: string, path: string): string {
  return isAbsolute(path) ? path : resolve(dirname(configPath), path);
}

/** Reads and parses a YAML or JSON configuration file; a syntax error names its line. */
export function readConfigFile(path: string): unknown {
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (error) {
    throw new ConfigError(`cannot read ${path} (${(error as NodeJS.ErrnoException).code ?? error})`);
  }
  const doc = parseDocument(text);
  const first = doc.errors[0];
  if (first !== undefined) {
    const line = first.linePos?.[0].line;
    // The message's first line; the rest is yaml's excerpt of the file, which may hold a secret.
    const message = first.message.split('\n')[0]?.replace(/ at line \d+, column \d+:?$/, '') ?? first.code;
    throw new ConfigError(`${path}${line === undefined ? '' : ` line ${line}`}: ${message}`);
  }
  return doc.toJS();
}

/** Validates parsed configuration; the error names every field at fault (`hosts.node01.fence.0.port: …`). */
export function validate<T extends z.ZodType>(schema: T, value: unknown, path: string): z.output<T> {
  const parsed = schema.safeParse(value);
  if (parsed.success) return parsed.data;
  const lines = parsed.error.issues.map((issue) => {
    const where = issue.path.map(String).join('.');
    const message = issue.message.replace(/^Invalid input: /, '');
    return `${where === '' ? '(top level)' : where}: ${message}`;
  });
  throw new ConfigError(`${path}: invalid configuration\n  ${lines.join('\n  ')}`);
}

/** Parses `host:port` (IPv6 in brackets: `[::]:7400`). */
export function parseHostPort(value: string): { host: string; port: number } | null {
  const match = /^(?:\[([^\]]+)\]|([^:]+)):(\d{1,5})$/.exec(value);
  if (match === null) return null;
  const port = Number(match[3]);
  if (port > 65_535) return null;
  return { host: match[1] ?? match[2] ?? '', port };
}

/**
 * Reads the site's LAN key file (private, base64 or hex, at least 32 bytes): a key the transport would
 * refuse is a configuration error at load time, for every program and command alike.
 */
export function readLanKeyFile(path: string): { readonly key: Buffer; readonly text: string } {
  const text = readSecretFile(path, 'lan.keyFile').trim();
  try {
    return { key: readLanKey(text), text };
  } catch (error) {
    throw new ConfigError(`lan.keyFile: ${error instanceof Error ? error.message : String(error)}`);
  }
}
