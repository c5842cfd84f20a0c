import type { BmcConfig } from './config';

/** Longest `detail` the protocol accepts; a longer one would get the whole report refused. */
const MAX_DETAIL = 1000;

/**
 * Builds the function every free-text detail passes through before it can reach a report: it blanks each
 * BMC address, user and password and the relay's credential. Error messages of ipmitool name the address
 * they could not reach, and a misbehaving BMC can echo anything, so text is cleaned rather than trusted.
 */
export function makeRedactor(bmc: BmcConfig, credential: string): (text: string) => string {
  const secret = credential.slice(credential.lastIndexOf('.') + 1);
  const values = [credential, secret, ...Object.values(bmc).flatMap((e) => [e.address, e.user, e.password])]
    .filter((v) => v.length > 0)
    // Longest first, so a password that contains the user name is blanked whole.
    .sort((a, b) => b.length - a.length);
  return (text) => {
    let clean = text;
    for (const value of values) clean = clean.split(value).join('[redacted]');
    return clean.slice(0, MAX_DETAIL);
  };
}
