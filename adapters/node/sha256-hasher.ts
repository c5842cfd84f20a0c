import { createHash } from 'node:crypto';
import type { Hasher } from '../../app/crypto';

/** sha256 of UTF-8 text as lowercase hex (credential hashes, inventory digests). */
export class Sha256Hasher implements Hasher {
  hash(text: string): string {
    return createHash('sha256').update(text, 'utf8').digest('hex');
  }
}
