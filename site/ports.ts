import type {
  AnyRelayReport,
  CommandResult,
  ObservedVm,
  RelayCommand,
  ReportResponse,
  StartVmCommand,
} from '../contracts/relay-protocol';
import type { LanMessage } from './lan-protocol';

/**
 * Ports of the on-prem programs. The host agent and the relay are written once against them: production
 * plugs in ipmitool, virsh, the LAN transport and HTTPS; the simulator plugs in its simulated world. Every
 * port is an async boundary that may fail; the programs decide what a failure means.
 */

/** Time and waiting, passed in so the simulator can run the same code on virtual time. */
export interface Clock {
  /** Epoch milliseconds. */
  now(): number;
  /** Resolves after `ms` milliseconds of this clock's time. */
  sleep(ms: number): Promise<void>;
}

/** What a BMC (or a PDU outlet) answers to a power-status read. */
export type PowerStatus = 'on' | 'off';

/**
 * One fence device of one host: a BMC through ipmitool, any fence agent (fence_redfish, a switched PDU
 * through fence_apc_snmp…), or the simulator's BMC. The adapter holds the device's address and secret,
 * read from the relay's local configuration and never sent anywhere; it passes the secret out of band
 * (environment, stdin or a file), never on a command line other users can read.
 */
export interface FenceDevice {
  /** Driver name for results, readiness and logs: `ipmitool`, `fence_apc_snmp`, `sim`… */
  readonly driver: string;
  /** Sends the power-off. Resolving means the device acknowledged it, which confirms nothing. */
  powerOff(): Promise<void>;
  /** Reads the power status; throws when the device does not answer. */
  powerStatus(): Promise<PowerStatus>;
}

/** A host's capacity as its hypervisor reports it. */
export interface HostCapacity {
  readonly cpus: number;
  readonly memoryMiB: number;
}

/** The VM a start command asks for. */
export type VmSpec = StartVmCommand['vm'];

/** The hypervisor of the agent's own host (libvirt/virsh in production). */
export interface Hypervisor {
  /** Changes at every boot (Linux: /proc/sys/kernel/random/boot_id). */
  bootId(): Promise<string>;
  capacity(): Promise<HostCapacity>;
  /** Every VM defined on this host with its power state. */
  listVms(): Promise<ObservedVm[]>;
  /**
   * Starts the VM; idempotent: a VM already running is success. A VM not defined here is first defined from
   * `definition` (its libvirt domain XML, which the relays keep for the site). Throws, saying why, when it
   * cannot be started: not defined and no definition, a VM with the same UUID under another name here,
   * not enough free memory on this host, libvirt refused.
   */
  startVm(vm: VmSpec, definition?: string): Promise<void>;
  /**
   * The persistent definition (libvirt domain XML) of a VM defined on this host, so that the relays can
   * keep a copy for a restart elsewhere; null when it has none. Hypervisors without definitions (the
   * simulator's) leave it out.
   */
  definitionOf?(vmId: string): Promise<string | null>;
}

/**
 * The site's LAN between agents and relays. Message-based and lossy, like the UDP it stands for: `send`
 * never throws and never says whether the message arrived. Peers are addressed by id (a host id for an
 * agent, a relay id for a relay); inbound messages are handed to the program's `receive`.
 */
export interface Lan {
  send(to: string, message: LanMessage): void;
}

/** A report refused by the control plane (`status`, error `code`) or that never got there (`status` null). */
export class UplinkError extends Error {
  override readonly name = 'UplinkError';

  constructor(
    readonly status: number | null,
    readonly code: string | null,
    message: string,
  ) {
    super(message);
  }
}

/** The relay's HTTPS link to the control plane (POST /v1/reports). */
export interface Uplink {
  /** Sends one report; resolves with the validated 200 response, throws UplinkError otherwise. */
  send(report: AnyRelayReport, credential: string): Promise<ReportResponse>;
}

/** A host as the relay last heard it: the heartbeat's content and when, on the relay's clock. */
export interface HeardHost {
  readonly hostId: string;
  readonly cluster: string;
  readonly bootId: string;
  readonly cpus: number;
  readonly memoryMiB: number;
  readonly vms: readonly ObservedVm[];
  /** Digests of the host's VM definitions, by VM id (hosts whose hypervisor has definitions). */
  readonly definitions?: Readonly<Record<string, string>> | undefined;
  /** `inventoryDigest` of the content above: a heartbeat with another digest makes the relay ask again. */
  readonly digest: string;
  /** The relay's clock when the host was last heard (the agent's clock is not trusted for silence). */
  readonly heardAt: number;
  /** When the agent took the inventory held (its clock): reported, and orders inventories of one boot. */
  readonly takenAt?: number | undefined;
}

/** A VM's definition (libvirt domain XML) as a relay keeps it for the site. */
export interface StoredDefinition {
  readonly vmId: string;
  readonly xml: string;
  /** `definitionDigest(xml)`. */
  readonly digest: string;
  /** The host whose agent handed it over. */
  readonly fromHost: string;
  readonly storedAt: number;
}

/** Where a relay keeps the site's VM definitions (files in its state folder in production). */
export interface DefinitionStore {
  load(): Promise<StoredDefinition[]>;
  save(definition: StoredDefinition): Promise<void>;
}

/** A command as the relay's state file keeps it: taken, and finished once it has a result. */
export interface SavedCommand {
  readonly command: RelayCommand;
  /** Null while it is being carried out (a restarted relay resumes it); set once it finished. */
  readonly result: CommandResult | null;
  /** The result has not been taken by the control plane yet. */
  readonly unsent: boolean;
}

/** What a relay keeps across restarts. */
export interface RelayState {
  /** The highest report sequence number ever handed to the uplink. */
  readonly seq: number;
  /** Every host heard so far, so a host that died while the relay was down is still reported (silent). */
  readonly hosts: readonly HeardHost[];
  /**
   * Every command taken and not yet forgotten: one in flight when the relay died is resumed, one finished
   * is never carried out again and its result is not lost. Absent in state files of older relays.
   */
  readonly commands?: readonly SavedCommand[];
}

/** The relay's small persistent state (a local file in production); saved before each report goes out. */
export interface RelayStateStore {
  /** The last saved state, or null on the very first start. */
  load(): Promise<RelayState | null>;
  save(state: RelayState): Promise<void>;
}

/** Operational log of the site programs; it never receives a credential. */
export interface SiteLogger {
  info(message: string, data?: Readonly<Record<string, unknown>>): void;
  warn(message: string, data?: Readonly<Record<string, unknown>>): void;
}

/** A logger that drops everything, for programs run without one. */
export const silentLogger: SiteLogger = {
  info: () => undefined,
  warn: () => undefined,
};
