import type { RelayCommand } from '../../contracts/relay-protocol';
import type { AppContext } from '../context';
import { forEachConcurrently, STEP_WRITE_CONCURRENCY } from '../shared/concurrently';

/**
 * The commands a relay should carry out now: its open ones not past `notAfter`. Pending ones are marked
 * delivered; delivered ones are sent again, since the response that carried them may have been lost (the
 * relay drops command ids it has seen, safety rule 4).
 */
export async function commandsFor(
  ctx: AppContext,
  args: { readonly siteId: string; readonly relayId: string; readonly now: number },
): Promise<RelayCommand[]> {
  const { commands } = ctx.ports;
  const open = await commands.listOpen(args.siteId, args.relayId);
  const due = open.filter((c) => c.command.notAfter >= args.now);
  const pending = due.filter((c) => c.status === 'pending');
  await forEachConcurrently(pending, STEP_WRITE_CONCURRENCY, (c) =>
    commands.markDelivered(args.siteId, c.command.commandId, args.now),
  );
  return due.map((c) => c.command);
}
