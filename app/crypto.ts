/**
 * Hashing of relay secrets and inventory digests (sha256 hex in production). It is a port so that app/
 * stays free of node I/O modules: functions/ hands in the node:crypto implementation.
 */
export interface Hasher {
  readonly hash: (text: string) => string;
}
