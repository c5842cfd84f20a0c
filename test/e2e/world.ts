import type { HostObservation, ObservedVm } from '../../contracts/relay-protocol';

/**
 * The physical world of an e2e scenario: hosts with power, agents and the VMs that really run on them.
 * It is also the oracle: it knows which host really has power and where each VM really runs, and records
 * every start that breaks a safety rule, whatever the control plane believed at the time.
 */

/** A VM as it really runs on a host. */
export interface SimVm extends ObservedVm {
  readonly ha: boolean;
  readonly priority: 'high' | 'medium' | 'low';
}

/** A hypervisor host as it really is. */
export interface SimHost {
  readonly hostId: string;
  readonly cluster: string;
  readonly bootId: string;
  readonly cpus: number;
  readonly memoryMiB: number;
  /** The chassis has power (a crashed host still has: only a fence or an operator takes it away). */
  powered: boolean;
  /** Its agent heartbeats on the LAN. */
  agentAlive: boolean;
  /** Since when relays have not heard it; null while heard. */
  silentSince: number | null;
  readonly vms: Map<string, SimVm>;
}

/** How long ago relays heard a host that heartbeats normally (well under any silence threshold). */
export const HEARD_MS_AGO = 50;

/** Host and VM layout of a scenario's world. */
export interface WorldSpec {
  readonly cluster: string;
  readonly hosts: readonly {
    readonly hostId: string;
    readonly cpus: number;
    readonly memoryMiB: number;
    readonly vms: readonly SimVm[];
  }[];
}

/** The simulated hosts of one site, and the oracle's findings. */
export class World {
  readonly hosts = new Map<string, SimHost>();
  /** Every broken safety rule the oracle saw, as a sentence; must stay empty. */
  readonly violations: string[] = [];
  private readonly meta = new Map<string, SimVm>();

  constructor(readonly spec: WorldSpec) {
    for (const vm of spec.hosts.flatMap((h) => h.vms)) this.meta.set(vm.id, vm);
    for (const h of spec.hosts) {
      this.hosts.set(h.hostId, {
        hostId: h.hostId,
        cluster: spec.cluster,
        bootId: `boot-${h.hostId}-1`,
        cpus: h.cpus,
        memoryMiB: h.memoryMiB,
        powered: true,
        agentAlive: true,
        silentSince: null,
        vms: new Map(h.vms.map((vm) => [vm.id, { ...vm }])),
      });
    }
  }

  host(hostId: string): SimHost {
    const host = this.hosts.get(hostId);
    if (host === undefined) throw new Error(`no host ${hostId} in the world`);
    return host;
  }

  /** The host stops heartbeating (kernel panic, NIC gone) but keeps its power, and maybe its VMs. */
  crash(hostId: string, at = Date.now()): void {
    const host = this.host(hostId);
    host.agentAlive = false;
    host.silentSince ??= at;
  }

  /** The host's agent is heard again, in the same boot. */
  revive(hostId: string): void {
    const host = this.host(hostId);
    if (!host.powered) throw new Error(`${hostId} has no power: it cannot come back by itself`);
    host.agentAlive = true;
    host.silentSince = null;
  }

  /** Power goes off (BMC or an operator): the host and every VM on it stop, for sure. */
  powerOff(hostId: string, at = Date.now()): void {
    const host = this.host(hostId);
    host.powered = false;
    host.agentAlive = false;
    host.silentSince ??= at;
    host.vms.clear();
  }

  /** Where a VM really runs: every host that has power and lists it. */
  runningOn(vmId: string): string[] {
    return [...this.hosts.values()].filter((h) => h.powered && h.vms.has(vmId)).map((h) => h.hostId);
  }

  /**
   * A start-vm command carried out on `hostId`. The oracle checks safety rule 1 and 6 (the VM must not
   * still run on a host with power: its previous host must have been confirmed off) and rule 5 (the host's
   * memory and CPUs hold it). A start on a host that is down fails, as libvirt would.
   */
  startVm(hostId: string, vm: { id: string; cpus: number; memoryMiB: number }): boolean {
    const meta = this.meta.get(vm.id);
    if (meta === undefined) throw new Error(`the control plane started ${vm.id}, which never existed`);
    const target = this.host(hostId);
    if (!target.powered || !target.agentAlive) return false;
    const elsewhere = this.runningOn(vm.id).filter((id) => id !== hostId);
    if (elsewhere.length > 0) {
      this.violations.push(
        `rule 1/6: ${vm.id} started on ${hostId} while ${elsewhere.join(', ')} (powered) may still run it`,
      );
    }
    if (target.vms.has(vm.id)) this.violations.push(`rule 4: ${vm.id} started twice on ${hostId}`);
    const usedMiB = [...target.vms.values()].reduce((sum, v) => sum + v.memoryMiB, 0) + vm.memoryMiB;
    const usedCpus = [...target.vms.values()].reduce((sum, v) => sum + v.cpus, 0) + vm.cpus;
    if (usedMiB > target.memoryMiB || usedCpus > target.cpus) {
      this.violations.push(
        `rule 5: ${hostId} overfilled by ${vm.id}: ${usedMiB}/${target.memoryMiB} MiB, ${usedCpus}/${target.cpus} vCPU`,
      );
    }
    target.vms.set(vm.id, { ...meta, cpus: vm.cpus, memoryMiB: vm.memoryMiB, state: 'running' });
    return true;
  }

  /** What a relay reports of every host now: heard hosts just heard, silent ones since they went quiet. */
  observe(now: number): HostObservation[] {
    return [...this.hosts.values()].map((h) => ({
      hostId: h.hostId,
      cluster: h.cluster,
      bootId: h.bootId,
      lastHeardMsAgo: h.agentAlive ? HEARD_MS_AGO : Math.max(0, now - (h.silentSince ?? now)),
      cpus: h.cpus,
      memoryMiB: h.memoryMiB,
      vms: [...h.vms.values()].map(({ id, cpus, memoryMiB, state }) => ({ id, cpus, memoryMiB, state })),
    }));
  }
}
