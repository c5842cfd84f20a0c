/** Values shorter than this are not blanked: a one-letter "password" would shred every message. */
const MIN_SECRET_LENGTH = 3;

/**
 * Builds the function every free-text detail passes through before it can reach a report or a log line:
 * it blanks the relay's credential (whole and its secret part) and each configured secret (BMC addresses,
 * users and passwords, PDU options, the LAN key). Error messages of ipmitool name the address they could
 * not reach, and a misbehaving BMC can echo anything, so text is cleaned rather than trusted.
 */
export function makeRedactor(credential: string, secrets: readonly string[]): (text: string) => string {
  const secret = credential.slice(credential.lastIndexOf('.') + 1);
  const values = [...new Set([credential, secret, ...secrets])]
    .filter((v) => v.length >= MIN_SECRET_LENGTH)
    // Longest first, so a password that contains the user name is blanked whole.
    .sort((a, b) => b.length - a.length);
  return (text) => {
    let clean = text;
    for (const value of values) clean = clean.split(value).join('[redacted]');
    return clean;
  };
}
