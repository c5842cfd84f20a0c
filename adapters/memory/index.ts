import type { Ports } from '../../app/ports';
import { MemoryCommandStore } from './memory-command-store';
import { MemoryHostStore } from './memory-host-store';
import { MemoryIncidentStore } from './memory-incident-store';
import { MemoryRelayStore } from './memory-relay-store';
import { MemorySiteStore } from './memory-site-store';
import { createMemoryState } from './memory-state';
import { MemoryVmStore } from './memory-vm-store';

/** Every store port, as one object to spread into `Ports`. */
export type MemoryStores = Pick<Ports, 'sites' | 'relays' | 'hosts' | 'vms' | 'incidents' | 'commands'>;

/** Builds all in-memory stores over one fresh, empty state (use cases' tests and the simulator). */
export function createMemoryStores(): MemoryStores {
  const state = createMemoryState();
  return {
    sites: new MemorySiteStore(state),
    relays: new MemoryRelayStore(state),
    hosts: new MemoryHostStore(state),
    vms: new MemoryVmStore(state),
    incidents: new MemoryIncidentStore(state),
    commands: new MemoryCommandStore(state),
  };
}
