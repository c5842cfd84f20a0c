import type { ObservedVm, RelayReport, ReportResponse, StartVmCommand } from '../contracts/relay-protocol';
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

/** What a BMC answers to `chassis power status`. */
export type PowerStatus = 'on' | 'off';

/** Where and how to reach one BMC; read from the relay's local configuration, never sent anywhere. */
export interface BmcEndpoint {
  readonly address: string;
  readonly user: string;
  readonly password: string;
}

/** One host's BMC, as the relay hands it to the power port for a single call. */
export interface BmcTarget extends BmcEndpoint {
  readonly hostId: string;
}

/**
 * Chassis power through a host's BMC (ipmitool in production). The endpoint travels with each call so the
 * relay's configuration stays the one place that holds BMC credentials; an adapter should pass the password
 * out of band (ipmitool -E / -f), never on a command line other users can read.
 */
export interface BmcPower {
  /** Sends `chassis power off`. Resolving means the BMC acknowledged it, which confirms nothing. */
  powerOff(target: BmcTarget): Promise<void>;
  /** Reads `chassis power status`; throws when the BMC does not answer. */
  powerStatus(target: BmcTarget): Promise<PowerStatus>;
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
  /** Starts the VM; idempotent: a VM already running is success. Throws when it cannot be started. */
  startVm(vm: VmSpec): Promise<void>;
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
  send(report: RelayReport, credential: string): Promise<ReportResponse>;
}

/** A host as the relay last heard it: the heartbeat's content and when, on the relay's clock. */
export interface HeardHost {
  readonly hostId: string;
  readonly cluster: string;
  readonly bootId: string;
  readonly cpus: number;
  readonly memoryMiB: number;
  readonly vms: readonly ObservedVm[];
  /** The relay's clock when the heartbeat arrived (the agent's clock is not trusted for silence). */
  readonly heardAt: number;
}

/** What a relay keeps across restarts. */
export interface RelayState {
  /** The highest report sequence number ever handed to the uplink. */
  readonly seq: number;
  /** Every host heard so far, so a host that died while the relay was down is still reported (silent). */
  readonly hosts: readonly HeardHost[];
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
