import type {
  AnyRelayReport,
  HostInventory,
  ObservedVm,
  RelayReportV2,
  ReportResponse,
} from '../../../contracts/relay-protocol';
import {
  type Inventory,
  type InventoryContent,
  inventoryDigest,
  type LanMessage,
} from '../../../site/lan-protocol';
import {
  type Clock,
  type DefinitionStore,
  type FenceDevice,
  type HostCapacity,
  type Hypervisor,
  type Lan,
  type PowerStatus,
  type RelayState,
  type RelayStateStore,
  type StoredDefinition,
  type Uplink,
  UplinkError,
  type VmSpec,
} from '../../../site/ports';

/** Test time zero. */
export const T0 = 1_760_000_000_000;

/** A clock that moves only when the test says; sleepers wake as it passes their time. */
export class ManualClock implements Clock {
  private sleepers: { until: number; wake: () => void }[] = [];

  constructor(private current = T0) {}

  now(): number {
    return this.current;
  }

  sleep(ms: number): Promise<void> {
    return new Promise((wake) => this.sleepers.push({ until: this.current + ms, wake }));
  }

  /** Moves time on and wakes every sleeper whose time has come. */
  advance(ms: number): number {
    this.current += ms;
    const due = this.sleepers.filter((s) => s.until <= this.current);
    this.sleepers = this.sleepers.filter((s) => s.until > this.current);
    for (const s of due) s.wake();
    return this.current;
  }

  /** Sets the time (a restarted program on a clock that went backwards). */
  set(at: number): void {
    this.current = at;
  }
}

/** Lets every pending promise callback run. */
export async function flush(rounds = 20): Promise<void> {
  for (let i = 0; i < rounds; i++) await Promise.resolve();
}

/** What the fake BMC answers for one host: a status per read (the last one repeats), or `no-answer`. */
export type BmcScript = readonly (PowerStatus | 'no-answer')[];

/** Where and how a fake BMC is reached: the values its error messages echo. */
export interface FakeEndpoint {
  readonly address: string;
  readonly user: string;
  readonly password: string;
}

/**
 * The fence devices of a site: scripted status reads, every call recorded. Each device has a key (the host
 * id for a host's first level, `h1#2` for its second…) by which tests script it and read its calls.
 */
export class FakeBmc {
  readonly calls: { op: 'status' | 'off'; key: string }[] = [];
  private readonly scripts = new Map<string, BmcScript>();
  private readonly reads = new Map<string, number>();
  /** Makes power-off fail for these devices, with this message. */
  readonly offFails = new Map<string, string>();
  /** A device whose status reads `off` from the n-th read after its power-off was acknowledged. */
  readonly offAfterReads = new Map<string, number>();
  private readonly ackedAtRead = new Map<string, number>();

  script(key: string, script: BmcScript): void {
    this.scripts.set(key, script);
  }

  /** The device with this key, reached at `endpoint` (which its errors name, as ipmitool's do). */
  device(key: string, endpoint: FakeEndpoint, driver = 'fake-ipmi'): FenceDevice {
    return {
      driver,
      powerOff: () => this.powerOff(key),
      powerStatus: () => this.powerStatus(key, endpoint),
    };
  }

  private async powerOff(key: string): Promise<void> {
    this.calls.push({ op: 'off', key });
    const failure = this.offFails.get(key);
    if (failure !== undefined) throw new Error(failure);
    this.ackedAtRead.set(key, this.reads.get(key) ?? 0);
  }

  private async powerStatus(key: string, endpoint: FakeEndpoint): Promise<PowerStatus> {
    this.calls.push({ op: 'status', key });
    const n = this.reads.get(key) ?? 0;
    this.reads.set(key, n + 1);
    const acked = this.ackedAtRead.get(key);
    const delay = this.offAfterReads.get(key);
    if (acked !== undefined && delay !== undefined && n >= acked + delay - 1) return 'off';
    const script = this.scripts.get(key) ?? ['on'];
    const answer = script[Math.min(n, script.length - 1)] ?? 'on';
    if (answer === 'no-answer') {
      throw new Error(
        `Error: Unable to establish IPMI v2 / RMCP+ session to ${endpoint.address} as ${endpoint.user}`,
      );
    }
    return answer;
  }

  /** The operations sent to one device, in order. */
  opsFor(key: string): ('status' | 'off')[] {
    return this.calls.filter((c) => c.key === key).map((c) => c.op);
  }
}

/** A hypervisor holding VMs in memory; `startVm` makes a VM running and counts the calls. */
export class FakeHypervisor implements Hypervisor {
  readonly started: VmSpec[] = [];
  /** Makes `startVm` fail with this message. */
  startFails: string | null = null;
  /** Makes the inventory reads fail (libvirtd restarting). */
  down = false;
  /** Holds every start until released, to test a repeat that arrives mid-start. */
  private gate: Promise<void> | null = null;
  private openGate: (() => void) | null = null;

  constructor(
    public boot = 'boot-1',
    public cap: HostCapacity = { cpus: 16, memoryMiB: 32_768 },
    public vms: ObservedVm[] = [],
  ) {}

  async bootId(): Promise<string> {
    if (this.down) throw new Error('libvirtd not answering');
    return this.boot;
  }

  async capacity(): Promise<HostCapacity> {
    if (this.down) throw new Error('libvirtd not answering');
    return this.cap;
  }

  async listVms(): Promise<ObservedVm[]> {
    if (this.down) throw new Error('libvirtd not answering');
    return this.vms.map((vm) => ({ ...vm }));
  }

  async startVm(vm: VmSpec, _definition?: string): Promise<void> {
    this.started.push(vm);
    if (this.gate !== null) await this.gate;
    if (this.startFails !== null) throw new Error(this.startFails);
    const existing = this.vms.find((v) => v.id === vm.id);
    if (existing !== undefined) existing.state = 'running';
    else this.vms.push({ ...vm, state: 'running' });
  }

  /** Starts hold until `release()`. */
  hold(): void {
    this.gate = new Promise((open) => {
      this.openGate = open;
    });
  }

  release(): void {
    this.openGate?.();
    this.gate = null;
  }
}

/**
 * A hypervisor with libvirt-like definitions: each VM has a domain XML; a start of a VM not defined here
 * defines it from the definition given (recorded), as the virsh adapter does.
 */
export class DefiningHypervisor extends FakeHypervisor {
  readonly xml = new Map<string, string>();
  /** The definitions starts were given, by VM id. */
  readonly definedFrom = new Map<string, string>();

  async definitionOf(vmId: string): Promise<string | null> {
    return this.xml.get(vmId) ?? null;
  }

  override async startVm(vm: VmSpec, definition?: string): Promise<void> {
    if (!this.xml.has(vm.id)) {
      if (definition === undefined)
        throw new Error(`${vm.id} is not defined on this host and no definition given`);
      this.xml.set(vm.id, definition);
      this.definedFrom.set(vm.id, definition);
    }
    await super.startVm(vm);
  }
}

/** Something that takes LAN messages: an agent or a relay. */
export interface LanPeer {
  receive(message: LanMessage): void | Promise<void>;
}

/** The site LAN: messages wait in a queue until `deliver()`; a drop rule loses the ones it matches. */
export class FakeLan implements Lan {
  readonly sent: { to: string; message: LanMessage }[] = [];
  private queue: { to: string; message: LanMessage }[] = [];
  private readonly peers = new Map<string, LanPeer>();
  /** Messages it returns true for are lost. */
  drop: (to: string, message: LanMessage) => boolean = () => false;

  send(to: string, message: LanMessage): void {
    this.sent.push({ to, message });
    if (!this.drop(to, message)) this.queue.push({ to, message });
  }

  attach(id: string, peer: LanPeer): void {
    this.peers.set(id, peer);
  }

  detach(id: string): void {
    this.peers.delete(id);
  }

  /** Delivers every queued message (and the ones their handling sends) to attached peers. */
  async deliver(): Promise<void> {
    while (this.queue.length > 0) {
      const batch = this.queue;
      this.queue = [];
      for (const { to, message } of batch) await this.peers.get(to)?.receive(message);
    }
  }

  /** Messages sent to one peer, of one kind. */
  sentTo<K extends LanMessage['kind']>(to: string, kind: K): Extract<LanMessage, { kind: K }>[] {
    return this.sent
      .filter((s) => s.to === to)
      .map((s) => s.message)
      .filter((m): m is Extract<LanMessage, { kind: K }> => m.kind === kind);
  }
}

/**
 * The control plane as a relay sees it. Every report handed over is kept, the ones that failed too, with
 * the credential, so tests can look at exactly what left the site.
 */
export class FakeUplink implements Uplink {
  readonly attempts: { report: RelayReportV2; credential: string; accepted: boolean }[] = [];
  /** Commands every response carries until changed. */
  commands: ReportResponse['commands'] = [];
  nextReportInMs = 10_000;
  /** Hosts every response asks the inventory of until changed (v2 `inventoryWanted`). */
  inventoryWanted: string[] = [];
  /** When set, every send fails like this. */
  failure: UplinkError | null = null;

  async send(report: AnyRelayReport, credential: string): Promise<ReportResponse> {
    if (report.protocol !== 2) throw new Error('the relay sends v2 reports');
    // A deep copy: what was on the wire, unaffected by later changes to the relay's objects.
    const sent = structuredClone(report);
    if (this.failure !== null) {
      this.attempts.push({ report: sent, credential, accepted: false });
      throw this.failure;
    }
    this.attempts.push({ report: sent, credential, accepted: true });
    return {
      protocol: 2,
      acceptedSeq: report.seq,
      commands: this.commands,
      nextReportInMs: this.nextReportInMs,
      ...(this.inventoryWanted.length === 0 ? {} : { inventoryWanted: [...this.inventoryWanted] }),
    };
  }

  /** Reports the control plane accepted. */
  get accepted(): RelayReportV2[] {
    return this.attempts.filter((a) => a.accepted).map((a) => a.report);
  }

  /** Every report handed to the uplink, accepted or not. */
  get reports(): RelayReportV2[] {
    return this.attempts.map((a) => a.report);
  }

  /** The last report handed over. */
  get last(): RelayReportV2 | undefined {
    return this.attempts.at(-1)?.report;
  }

  /** The last inventory of a host the control plane accepted: what it knows the host runs. */
  inventoryOf(hostId: string): HostInventory | undefined {
    for (const report of [...this.accepted].reverse()) {
      const inventory = report.hosts.find((h) => h.hostId === hostId)?.inventory;
      if (inventory !== undefined) return inventory;
    }
    return undefined;
  }

  /** Ids of the VMs of the last inventory of a host the control plane accepted. */
  vmIdsOf(hostId: string): string[] | undefined {
    return this.inventoryOf(hostId)?.vms.map((vm) => vm.id);
  }
}

/** A network failure, as the HTTPS adapter reports one. */
export function networkDown(): UplinkError {
  return new UplinkError(null, null, 'connect ETIMEDOUT');
}

/** The relay's state file, in memory; survives a relay's restart when handed to the next one. */
export class MemoryStateStore implements RelayStateStore {
  saved: RelayState | null = null;
  saves = 0;

  async load(): Promise<RelayState | null> {
    return this.saved === null ? null : structuredClone(this.saved);
  }

  async save(state: RelayState): Promise<void> {
    this.saves += 1;
    this.saved = structuredClone(state);
  }
}

/** Definitions kept in memory, as a relay's definition files would keep them. */
export class MemoryDefinitionStore implements DefinitionStore {
  readonly saved = new Map<string, StoredDefinition>();

  async load(): Promise<StoredDefinition[]> {
    return [...this.saved.values()];
  }

  async save(definition: StoredDefinition): Promise<void> {
    this.saved.set(definition.vmId, definition);
  }
}

/** The inventory message an agent would send for this content, at `sentAt`. */
export function inventoryMessage(
  content: InventoryContent & { readonly hostId: string },
  sentAt: number,
): Inventory {
  return { kind: 'inventory', ...content, vms: [...content.vms], digest: inventoryDigest(content), sentAt };
}
