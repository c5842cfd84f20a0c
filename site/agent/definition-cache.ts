import type { ObservedVm } from '../../contracts/relay-protocol';
import { definitionDigest, MAX_DEFINITION_BYTES } from '../lan-protocol';
import type { Hypervisor, SiteLogger } from '../ports';

/** Every definition is read again this often, so an edit that changed no state is noticed too. */
export const DEFAULT_DEFINITION_REFRESH_MS = 60_000;

interface Cached {
  readonly xml: string;
  readonly digest: string;
  readonly state: ObservedVm['state'];
}

/**
 * The agent's copy of its VMs' definitions (libvirt domain XML) and their digests: the inventory carries
 * the digests, a relay asks for the XML it lacks. Reading a definition is a virsh call per VM, so it is
 * never on a heartbeat's path: `refresh()` runs beside it, reading the VMs that are new or changed state
 * at once and every VM every `refreshMs`.
 */
export class DefinitionCache {
  private readonly cache = new Map<string, Cached>();
  private fullReadAt = Number.NEGATIVE_INFINITY;
  private running: Promise<boolean> | null = null;

  constructor(
    private readonly hypervisor: Hypervisor,
    private readonly log: SiteLogger,
    private readonly refreshMs = DEFAULT_DEFINITION_REFRESH_MS,
  ) {}

  /** Whether this hypervisor has definitions at all (the simulator's has none). */
  get supported(): boolean {
    return this.hypervisor.definitionOf !== undefined;
  }

  /** The digests known now, by VM id; undefined when the hypervisor has no definitions. */
  digests(): Record<string, string> | undefined {
    if (!this.supported) return undefined;
    const digests: Record<string, string> = {};
    for (const [vmId, cached] of this.cache) digests[vmId] = cached.digest;
    return digests;
  }

  /** The XML of a VM, as last read. */
  xmlOf(vmId: string): string | undefined {
    return this.cache.get(vmId)?.xml;
  }

  /**
   * Reads what is due for these VMs (one refresh at a time; a call during one shares it). Resolves true
   * when a digest changed, so the agent tells its relays.
   */
  refresh(vms: readonly ObservedVm[], now: number): Promise<boolean> {
    if (!this.supported) return Promise.resolve(false);
    this.running ??= this.read(vms, now).finally(() => {
      this.running = null;
    });
    return this.running;
  }

  private async read(vms: readonly ObservedVm[], now: number): Promise<boolean> {
    const definitionOf = this.hypervisor.definitionOf?.bind(this.hypervisor);
    if (definitionOf === undefined) return false;
    let changed = false;
    const listed = new Set(vms.map((vm) => vm.id));
    for (const vmId of [...this.cache.keys()]) {
      if (!listed.has(vmId)) {
        this.cache.delete(vmId);
        changed = true;
      }
    }
    const full = now - this.fullReadAt >= this.refreshMs;
    if (full) this.fullReadAt = now;
    for (const vm of vms) {
      const cached = this.cache.get(vm.id);
      if (!full && cached !== undefined && cached.state === vm.state) continue;
      let xml: string | null;
      try {
        xml = await definitionOf(vm.id);
      } catch (error) {
        this.log.warn('VM definition unreadable', {
          vmId: vm.id,
          error: error instanceof Error ? error.message : String(error),
        });
        continue;
      }
      if (xml === null || Buffer.byteLength(xml) > MAX_DEFINITION_BYTES) {
        if (cached !== undefined) {
          this.cache.delete(vm.id);
          changed = true;
        }
        continue;
      }
      const digest = definitionDigest(xml);
      if (cached?.digest !== digest) changed = true;
      this.cache.set(vm.id, { xml, digest, state: vm.state });
    }
    return changed;
  }
}
