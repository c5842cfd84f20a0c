import { randomBytes, timingSafeEqual } from 'node:crypto';
import { chmod, mkdir, open, rename } from 'node:fs/promises';
import { homedir } from 'node:os';
import { dirname, join } from 'node:path';
import { LOCAL_TOKEN } from '../contracts/operator-api';

/**
 * The local operator token: what stands in for SigV4 on the local endpoint's operator routes. A fresh
 * random one at every start of `npm start -- --serve`, printed and stored in a file only its user can read
 * (0600, in a 0700 directory), where the `halo` CLI picks it up (contracts/operator-api.ts LOCAL_TOKEN).
 */

type Env = Readonly<Record<string, string | undefined>>;

/** The token file: HALO_LOCAL_TOKEN_FILE, else `$XDG_CONFIG_HOME/halo/local-token` (`~/.config` by default). */
export function localTokenPath(env: Env = process.env, home: string = homedir()): string {
  const named = env[LOCAL_TOKEN.fileEnv];
  if (named !== undefined && named !== '') return named;
  const config = env.XDG_CONFIG_HOME !== undefined && env.XDG_CONFIG_HOME !== '' ? env.XDG_CONFIG_HOME : null;
  return join(config ?? join(home, '.config'), LOCAL_TOKEN.relativePath);
}

/** A new token: 32 random bytes, base64url (43 characters). */
export function newLocalToken(): string {
  return randomBytes(32).toString('base64url');
}

/**
 * Writes the token to `path`, readable and writable by its owner only: into a temporary file created 0600
 * (never readable by anyone else, not even for a moment), then renamed over the old one. The directory is
 * created 0700 when missing.
 */
export async function writeLocalToken(path: string, token: string): Promise<void> {
  const dir = dirname(path);
  await mkdir(dir, { recursive: true, mode: 0o700 });
  const temporary = join(dir, `.local-token-${process.pid}-${randomBytes(4).toString('hex')}`);
  const file = await open(temporary, 'wx', 0o600);
  try {
    await file.writeFile(`${token}\n`, 'utf8');
    await file.sync();
  } finally {
    await file.close();
  }
  // The umask cannot widen 0600, but a file system may ignore the mode given at creation.
  await chmod(temporary, 0o600);
  await rename(temporary, path);
}

/** True when `presented` (an Authorization header) carries `token` as a bearer token; constant time. */
export function bearerMatches(presented: string | undefined, token: string): boolean {
  const match = /^Bearer ([A-Za-z0-9_-]+)$/.exec(presented?.trim() ?? '');
  if (match?.[1] === undefined) return false;
  const given = Buffer.from(match[1]);
  const wanted = Buffer.from(token);
  return given.length === wanted.length && timingSafeEqual(given, wanted);
}
