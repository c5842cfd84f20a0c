import type { CommandResult, StartVmCommand } from '../../contracts/relay-protocol';
import type { StartVmReply, StartVmRequest } from '../lan-protocol';
import type { Clock, Lan } from '../ports';
import { type CommandRun, finished, NOT_FINISHED, type StepOutcome } from './command-run';

/** What a VM start needs from the relay. */
export interface StartDeps {
  readonly relayId: string;
  readonly lan: Lan;
  readonly clock: Clock;
  readonly resendMs: number;
  /** Whether the host's latest heartbeat shows the VM running. */
  readonly seenRunning: (hostId: string, vmId: string) => boolean;
  /** The VM's domain XML as the site keeps it, sent along so that any host can define it. */
  readonly definitionOf?: (vmId: string) => string | undefined;
  /** The boot the relay last heard the host in (undefined: never heard). */
  readonly heardBoot?: (hostId: string) => string | undefined;
}

/**
 * A VM start: the request goes to the host's agent over the LAN, again every `resendMs` until it answers
 * (the LAN drops messages; the agent acts once per command id), until notAfter.
 *
 * With no answer by notAfter nothing is reported: the agent may have started the VM and lost its answer,
 * and a `failed` would send the VM to another host while it runs here (safety rule 6). The control plane's
 * start timeout then keeps the VM's reservation until the host's inventory tells. A heartbeat that shows
 * the VM running is an answer too.
 *
 * The start belongs to the boot the host was heard in when the relay took it: once the host is heard in
 * another boot, the start is over (failed, never sent again), and the agent refuses a request of another
 * boot. A host fenced and powered on again, or crashed and rebooted, must not run a start the control
 * plane may have given up on and sent elsewhere (the host's incident takes such a VM over).
 */
export class StartRun implements CommandRun {
  dueAt: number;
  private sent = false;
  /** The host's boot when the relay took the start. */
  private readonly boot: string | undefined;

  constructor(
    private readonly command: StartVmCommand,
    private readonly deps: StartDeps,
  ) {
    this.dueAt = deps.clock.now();
    this.boot = deps.heardBoot?.(command.hostId);
  }

  async step(): Promise<StepOutcome> {
    const { clock, lan } = this.deps;
    const { hostId, vm } = this.command;
    // First: a heartbeat of another boot showing the VM running is someone else's start, not this one.
    const heard = this.deps.heardBoot?.(hostId);
    if (this.boot !== undefined && heard !== undefined && heard !== this.boot) {
      return finished(
        this.result(
          'failed',
          `${hostId} is heard in boot ${heard}, not ${this.boot} in which the start was taken: not started`,
        ),
      );
    }
    if (this.sent && this.deps.seenRunning(hostId, vm.id)) {
      return finished(
        this.result(
          'succeeded',
          `no answer from ${hostId}'s agent, but its heartbeat shows ${vm.id} running`,
        ),
      );
    }
    const now = clock.now();
    if (now > this.command.notAfter) return finished(null);
    const request: StartVmRequest = {
      kind: 'start-vm',
      commandId: this.command.commandId,
      relayId: this.deps.relayId,
      hostId,
      vm,
      notAfter: this.command.notAfter,
      ...(this.boot === undefined ? {} : { bootId: this.boot }),
    };
    const definition = this.deps.definitionOf?.(vm.id);
    lan.send(hostId, definition === undefined ? request : { ...request, definition });
    this.sent = true;
    this.dueAt = Math.min(now + this.deps.resendMs, this.command.notAfter + 1);
    return NOT_FINISHED;
  }

  /** The result an agent's answer makes; null for an answer from another host than the command's. */
  answered(reply: StartVmReply): CommandResult | null {
    if (reply.hostId !== this.command.hostId) return null;
    return this.result(reply.outcome, reply.detail ?? `agent of ${reply.hostId} answered ${reply.outcome}`);
  }

  private result(outcome: CommandResult['outcome'], detail: string): CommandResult {
    return {
      commandId: this.command.commandId,
      incidentId: this.command.incidentId,
      outcome,
      detail,
      finishedAt: this.deps.clock.now(),
    };
  }
}
