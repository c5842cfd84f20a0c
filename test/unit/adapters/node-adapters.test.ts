import { describe, expect, it } from 'vitest';
import { CryptoIds } from '../../../adapters/node/crypto-ids';
import { Sha256Hasher } from '../../../adapters/node/sha256-hasher';
import { SystemClock } from '../../../adapters/node/system-clock';
import { IdSchema } from '../../../contracts/relay-protocol';

describe('node adapters', () => {
  it('SystemClock reads the wall clock', () => {
    const before = Date.now();
    const now = new SystemClock().now();
    expect(now).toBeGreaterThanOrEqual(before);
    expect(now).toBeLessThanOrEqual(Date.now());
  });

  it('CryptoIds mints unique URL-safe ids of at most 40 chars that pass IdSchema', () => {
    const ids = new CryptoIds();
    const minted = new Set(Array.from({ length: 1000 }, () => ids.newId('cmd')));
    expect(minted.size).toBe(1000);
    for (const id of minted) {
      expect(id.length).toBeLessThanOrEqual(40);
      expect(id).toMatch(/^cmd-[A-Za-z0-9_-]{22}$/);
      expect(IdSchema.safeParse(id).success).toBe(true);
    }
    expect(ids.newId('a'.repeat(17)).length).toBe(40);
  });

  it('CryptoIds refuses prefixes that would break the id contract', () => {
    const ids = new CryptoIds();
    expect(() => ids.newId('a'.repeat(18))).toThrow(/prefix/);
    expect(() => ids.newId('')).toThrow(/prefix/);
    expect(() => ids.newId('has space')).toThrow(/prefix/);
  });

  it('CryptoIds secrets carry 256 bits, base64url', () => {
    const secret = new CryptoIds().newSecret();
    expect(secret).toMatch(/^[A-Za-z0-9_-]{43}$/);
    expect(new CryptoIds().newSecret()).not.toBe(secret);
  });

  it('Sha256Hasher hashes UTF-8 text to lowercase hex', () => {
    const hasher = new Sha256Hasher();
    expect(hasher.hash('abc')).toBe('ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad');
    expect(hasher.hash('é')).toBe(hasher.hash('\u00e9'));
    expect(hasher.hash('é')).not.toBe(hasher.hash('e\u0301'));
  });
});
