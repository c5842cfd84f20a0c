import { randomBytes } from 'node:crypto';
import type { IdGenerator } from '../../app/ports';

/** Ids are `<prefix>-<22 chars>` and must stay ≤ 40 chars (IdGenerator's contract), so prefixes stay short. */
const MAX_PREFIX = 17;
const PREFIX = /^[A-Za-z0-9][A-Za-z0-9_-]*$/;

/** Random ids and relay secrets from node:crypto (128-bit ids, 256-bit secrets, base64url). */
export class CryptoIds implements IdGenerator {
  newId(prefix: string): string {
    // A bad prefix is a programming error: fail loudly rather than mint ids that break IdSchema or the length cap.
    if (prefix.length > MAX_PREFIX || !PREFIX.test(prefix)) {
      throw new Error(`id prefix must match ${PREFIX} and be at most ${MAX_PREFIX} chars: "${prefix}"`);
    }
    return `${prefix}-${randomBytes(16).toString('base64url')}`;
  }

  newSecret(): string {
    return randomBytes(32).toString('base64url');
  }
}
