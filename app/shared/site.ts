import type { AppContext } from '../context';
import { NotFoundError } from '../errors';
import type { SiteControl } from '../ports';

/** The site's control items; NotFoundError for an unknown site. */
export async function requireControl(ctx: AppContext, siteId: string): Promise<SiteControl> {
  const control = await ctx.ports.sites.loadControl(siteId);
  if (control === null) throw new NotFoundError(`site ${siteId} not found`);
  return control;
}
