import type { FenceResult, IncidentInput } from '../../contracts/workflow';
import type { AppContext } from '../context';
import { FenceNotConfirmedError } from '../errors';
import { fenceLevelOf, fenceLevelText } from '../shared/callbacks';
import { appendEvent } from '../shared/events';

/**
 * VerifyPowerOff (safety rule 1): the fence counts only if the power was read back `off`, by the relay the
 * command went to, for a fence command of this incident and host, as the command's stored result says.
 */
export async function verifyPowerOff(
  ctx: AppContext,
  incident: IncidentInput,
  fence: FenceResult,
): Promise<{ by: 'ipmi-read-back'; detail: string }> {
  const commands = await ctx.ports.commands.listForIncident(incident.siteId, incident.incidentId);
  const record = commands.find((c) => c.command.commandId === fence.commandId && c.command.kind === 'fence');
  const problem =
    record === undefined
      ? `${fence.commandId} is not a fence command of incident ${incident.incidentId}`
      : record.command.hostId !== incident.hostId
        ? `${fence.commandId} fenced ${record.command.hostId}, not ${incident.hostId}`
        : record.relayId !== fence.relayId
          ? `${fence.commandId} went to relay ${record.relayId}, but relay ${fence.relayId} answered`
          : fence.powerState !== 'off' || record.result?.powerState !== 'off' || record.status !== 'succeeded'
            ? `power of ${incident.hostId} read back ${fence.powerState} (stored result: ${record.status}, ${record.result?.powerState ?? 'no read-back'})`
            : null;
  if (problem !== null) {
    await appendEvent(ctx, incident.incidentId, 'fence-failed', `fence not confirmed: ${problem}`, {
      commandId: fence.commandId,
      relayId: fence.relayId,
      powerState: fence.powerState,
    });
    throw new FenceNotConfirmedError(problem);
  }
  // Which fence level read the power back comes from the stored result, the evidence just checked.
  const stored = record?.result ?? fence;
  const level = fenceLevelText(stored);
  const detail =
    `relay ${fence.relayId} read the power of ${incident.hostId} back as off (${fence.commandId})` +
    (level === null ? '' : `; power-off confirmed by ${level}`);
  await appendEvent(ctx, incident.incidentId, 'power-off-confirmed', detail, {
    by: 'ipmi-read-back',
    commandId: fence.commandId,
    relayId: fence.relayId,
    ...fenceLevelOf(stored),
    finishedAt: fence.finishedAt,
  });
  return { by: 'ipmi-read-back', detail };
}
