import type { CommandRecord, CommandStore } from '../../app/ports';
import type { CommandResult } from '../../contracts/relay-protocol';
import { compareStrings, copy, type MemoryState, rowKey, rowsOfSite } from './memory-state';

/** In-memory CommandStore with the DynamoDB store's semantics (finished commands are kept: no TTL here). */
export class MemoryCommandStore implements CommandStore {
  constructor(private readonly state: MemoryState) {}

  async create(
    command: Omit<CommandRecord, 'status' | 'deliveredAt' | 'result'>,
  ): Promise<{ created: boolean }> {
    const key = rowKey(command.siteId, command.command.commandId);
    if (this.state.commands.has(key)) return { created: false };
    this.state.commands.set(key, { ...copy(command), status: 'pending', deliveredAt: null, result: null });
    return { created: true };
  }

  async adoptTaskToken(siteId: string, commandId: string, taskToken: string): Promise<CommandRecord | null> {
    const key = rowKey(siteId, commandId);
    const command = this.state.commands.get(key);
    if (command === undefined) return null;
    const next = { ...command, taskToken };
    this.state.commands.set(key, next);
    return copy(next);
  }

  async listOpen(siteId: string, relayId: string): Promise<CommandRecord[]> {
    return inIssueOrder(
      rowsOfSite(this.state.commands, siteId).filter(
        (c) => c.relayId === relayId && (c.status === 'pending' || c.status === 'delivered'),
      ),
    );
  }

  async listForIncident(siteId: string, incidentId: string): Promise<CommandRecord[]> {
    return inIssueOrder(
      rowsOfSite(this.state.commands, siteId).filter((c) => c.command.incidentId === incidentId),
    );
  }

  async markDelivered(siteId: string, commandId: string, at: number): Promise<void> {
    const key = rowKey(siteId, commandId);
    const command = this.state.commands.get(key);
    // Only the first delivery counts; finished or unknown commands are left alone.
    if (command === undefined || command.status !== 'pending') return;
    this.state.commands.set(key, { ...command, status: 'delivered', deliveredAt: at });
  }

  async complete(
    siteId: string,
    commandId: string,
    result: CommandResult,
    relayId: string,
  ): Promise<CommandRecord | null> {
    const key = rowKey(siteId, commandId);
    const command = this.state.commands.get(key);
    // Once only, only from the relay it was sent to, and only for the incident it was issued for.
    if (command === undefined || command.relayId !== relayId) return null;
    if (command.status !== 'pending' && command.status !== 'delivered') return null;
    if (command.command.incidentId !== result.incidentId) return null;
    const next: CommandRecord = { ...command, status: result.outcome, result: copy(result) };
    this.state.commands.set(key, next);
    return copy(next);
  }
}

/** Oldest first, then by id: the order a relay should carry commands out in. */
function inIssueOrder(commands: CommandRecord[]): CommandRecord[] {
  return commands.sort(
    (a, b) => a.createdAt - b.createdAt || compareStrings(a.command.commandId, b.command.commandId),
  );
}
