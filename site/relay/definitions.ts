import type { ObservedVm } from '../../contracts/relay-protocol';
import { type Definitions, definitionDigest } from '../lan-protocol';
import type { DefinitionStore, SiteLogger, StoredDefinition } from '../ports';
import { describeError } from './command-run';

/** What a host told the relay about its VMs: states and the digests of their definitions. */
export interface HostDefinitions {
  readonly hostId: string;
  readonly vms: readonly ObservedVm[];
  readonly definitions?: Readonly<Record<string, string>> | undefined;
}

const ACTIVE: ReadonlySet<ObservedVm['state']> = new Set(['running', 'paused']);

/**
 * The site's copy of every VM's libvirt definition (domain XML), kept by each relay so that a VM can be
 * started on any host of its cluster, including one where it was never defined. Agents hand their VMs'
 * definitions over on request; the relay attaches a VM's definition to each start request. Definitions
 * never leave the site (they are not part of any report).
 *
 * Several hosts may hold a definition of the same VM (it was defined on each, or started there once);
 * the copy of the host where the VM is active is preferred, since that is the one in use: a stale copy of
 * a host where it is shut off never replaces it.
 */
export class SiteDefinitions {
  private readonly byVm = new Map<string, StoredDefinition>();

  constructor(
    private readonly store: DefinitionStore | undefined,
    private readonly log: SiteLogger,
    private readonly now: () => number,
  ) {}

  /** Loads the copies saved before a restart; an unreadable store starts empty (agents hand them over again). */
  async load(): Promise<void> {
    if (this.store === undefined) return;
    try {
      for (const definition of await this.store.load()) this.byVm.set(definition.vmId, definition);
    } catch (error) {
      this.log.warn('VM definitions unreadable; asking the agents again', { error: describeError(error) });
    }
  }

  /** The domain XML of a VM, if the site has one. */
  xmlOf(vmId: string): string | undefined {
    return this.byVm.get(vmId)?.xml;
  }

  /** How many definitions the relay holds. */
  get size(): number {
    return this.byVm.size;
  }

  /** The VMs of a host's inventory whose definition the relay wants from that host. */
  wanted(host: HostDefinitions): string[] {
    const wanted: string[] = [];
    for (const [vmId, digest] of Object.entries(host.definitions ?? {})) {
      const held = this.byVm.get(vmId);
      if (held?.digest === digest) continue;
      if (this.prefers(host, vmId, held)) wanted.push(vmId);
    }
    return wanted.sort();
  }

  /**
   * Takes definitions a host sent: each must be of a VM that host lists, with the digest its inventory
   * announced (so a host cannot plant a definition for another host's VM). Returns how many were stored.
   */
  async accept(host: HostDefinitions | undefined, message: Definitions): Promise<number> {
    if (host === undefined || host.hostId !== message.hostId) return 0;
    let stored = 0;
    const saves: Promise<void>[] = [];
    for (const item of message.items) {
      const digest = definitionDigest(item.xml);
      const announced = host.definitions?.[item.vmId];
      if (announced !== digest || !host.vms.some((vm) => vm.id === item.vmId)) {
        this.log.warn('VM definition refused: not the one the host announced', {
          hostId: host.hostId,
          vmId: item.vmId,
        });
        continue;
      }
      const held = this.byVm.get(item.vmId);
      if (held?.digest === digest || !this.prefers(host, item.vmId, held)) continue;
      const definition: StoredDefinition = {
        vmId: item.vmId,
        xml: item.xml,
        digest,
        fromHost: host.hostId,
        storedAt: this.now(),
      };
      this.byVm.set(item.vmId, definition);
      stored += 1;
      if (this.store !== undefined) saves.push(this.save(definition));
    }
    await Promise.all(saves);
    if (stored > 0) this.log.info('VM definitions stored', { hostId: host.hostId, count: stored });
    return stored;
  }

  /** Whether `host`'s copy of a VM's definition should replace the one held (`held`). */
  private prefers(host: HostDefinitions, vmId: string, held: StoredDefinition | undefined): boolean {
    if (held === undefined || held.fromHost === host.hostId) return true;
    return host.vms.some((vm) => vm.id === vmId && ACTIVE.has(vm.state));
  }

  private async save(definition: StoredDefinition): Promise<void> {
    try {
      await this.store?.save(definition);
    } catch (error) {
      this.log.warn('VM definition not saved', { vmId: definition.vmId, error: describeError(error) });
    }
  }
}
