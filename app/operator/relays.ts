import type { AppContext } from '../context';
import { NotFoundError } from '../errors';
import { formatCredential } from '../ingest/credential';

/** A relay's credential, returned once at enrolment: only its hash is stored. */
export interface EnrolledRelay {
  readonly relayId: string;
  readonly credential: string;
}

/**
 * Enrols a relay (creating the site on its first relay) and returns its credential, the only time it is
 * ever seen: the control plane keeps the hash of its secret. RelayExistsError if the relay is enrolled.
 */
export async function enrollRelay(
  ctx: AppContext,
  args: { readonly siteId: string; readonly relayId: string },
): Promise<EnrolledRelay> {
  const { clock, ids, sites, relays } = ctx.ports;
  const at = clock.now();
  if ((await sites.loadControl(args.siteId)) === null)
    await sites.putSite({ siteId: args.siteId, createdAt: at });
  const secret = ids.newSecret();
  const credential = formatCredential(args.siteId, args.relayId, secret);
  await relays.enroll({
    siteId: args.siteId,
    relayId: args.relayId,
    credentialHash: ctx.hasher.hash(secret),
    at,
  });
  return { relayId: args.relayId, credential };
}

/** Revokes a relay's credential: its later reports are refused. NotFoundError for an unknown relay. */
export async function revokeRelay(
  ctx: AppContext,
  args: { readonly siteId: string; readonly relayId: string },
): Promise<void> {
  const relay = await ctx.ports.relays.getRelay(args.siteId, args.relayId);
  if (relay === null) throw new NotFoundError(`relay ${args.siteId}/${args.relayId} not found`);
  await ctx.ports.relays.revoke(args.siteId, args.relayId, ctx.ports.clock.now());
}
