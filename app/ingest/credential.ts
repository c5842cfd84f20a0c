import { UnauthorizedError, WrongSiteError } from '../errors';

/** Version tag of the relay credential format `hrc1.<siteId>.<relayId>.<secret>`. */
export const CREDENTIAL_PREFIX = 'hrc1';

// Secrets are base64url (IdGenerator.newSecret): never a dot, so the last dot always ends the relay id.
const SECRET = /^[A-Za-z0-9_-]+$/;

/** The credential a relay presents as `Authorization: Bearer …`. */
export function formatCredential(siteId: string, relayId: string, secret: string): string {
  if (!SECRET.test(secret)) throw new Error('a relay secret must be URL-safe base64 (no dots)');
  return `${CREDENTIAL_PREFIX}.${siteId}.${relayId}.${secret}`;
}

/**
 * Checks the Authorization header against the report's site and relay and returns the secret, which the
 * relay store then checks by hash. Ids may contain dots, so the credential is matched against the ids the
 * body names rather than split: `<siteId>.<relayId>` must be exactly what sits between prefix and secret.
 */
export function relaySecret(
  authorization: string | undefined,
  report: { readonly siteId: string; readonly relayId: string },
): string {
  const match = /^Bearer\s+(\S+)\s*$/i.exec(authorization ?? '');
  const token = match?.[1];
  if (token === undefined)
    throw new UnauthorizedError('a relay credential is required (Authorization: Bearer …)');
  const lastDot = token.lastIndexOf('.');
  const head = `${CREDENTIAL_PREFIX}.`;
  const ids = token.slice(head.length, lastDot);
  const secret = token.slice(lastDot + 1);
  if (!token.startsWith(head) || lastDot <= head.length || !ids.includes('.') || !SECRET.test(secret)) {
    throw new UnauthorizedError(
      `malformed relay credential: expected ${CREDENTIAL_PREFIX}.<siteId>.<relayId>.<secret>`,
    );
  }
  if (ids !== `${report.siteId}.${report.relayId}`) {
    throw new WrongSiteError(`the credential is not for relay ${report.relayId} of site ${report.siteId}`);
  }
  return secret;
}
