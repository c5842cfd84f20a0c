import { mkdtemp, readFile, rm, stat } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { bearerMatches, localTokenPath, newLocalToken, writeLocalToken } from '../../local/local-token';
import { banner } from '../../local/serve';

let dir: string;

beforeEach(async () => {
  dir = await mkdtemp(join(tmpdir(), 'halo-token-'));
});

afterEach(async () => {
  await rm(dir, { recursive: true, force: true });
});

describe('the local operator token', () => {
  it('lives in HALO_LOCAL_TOKEN_FILE, else $XDG_CONFIG_HOME/halo/local-token, else ~/.config/halo/local-token', () => {
    expect(localTokenPath({ HALO_LOCAL_TOKEN_FILE: '/run/t' }, '/home/u')).toBe('/run/t');
    expect(localTokenPath({ XDG_CONFIG_HOME: '/cfg' }, '/home/u')).toBe('/cfg/halo/local-token');
    expect(localTokenPath({ XDG_CONFIG_HOME: '' }, '/home/u')).toBe('/home/u/.config/halo/local-token');
    expect(localTokenPath({}, '/home/u')).toBe('/home/u/.config/halo/local-token');
  });

  it('is random, 32 bytes of base64url', () => {
    const a = newLocalToken();
    expect(a).toMatch(/^[A-Za-z0-9_-]{43}$/);
    expect(newLocalToken()).not.toBe(a);
  });

  it('is written readable by its owner only (0600, directory 0700), replacing the old one', async () => {
    const file = join(dir, 'config', 'halo', 'local-token');
    await writeLocalToken(file, 'first-token-aaaaaaaaaaaa');
    await writeLocalToken(file, 'second-token-bbbbbbbbbbb');
    expect(await readFile(file, 'utf8')).toBe('second-token-bbbbbbbbbbb\n');
    expect((await stat(file)).mode & 0o777).toBe(0o600);
    expect((await stat(join(dir, 'config', 'halo'))).mode & 0o777).toBe(0o700);
  });

  it('is matched only as the exact bearer token', () => {
    const token = newLocalToken();
    expect(bearerMatches(`Bearer ${token}`, token)).toBe(true);
    expect(bearerMatches(token, token)).toBe(false);
    expect(bearerMatches(`Bearer ${token}x`, token)).toBe(false);
    expect(bearerMatches(`Basic ${token}`, token)).toBe(false);
    expect(bearerMatches(undefined, token)).toBe(false);
  });

  it('is printed at start with the file the CLI reads it from', () => {
    const text = banner({ url: 'http://127.0.0.1:8787', operatorToken: 'tok-123' }, 1200, '/home/u/t');
    expect(text).toContain('tok-123');
    expect(text).toContain('/home/u/t');
    expect(text).toContain('authorization: Bearer $(cat /home/u/t)');
  });
});
