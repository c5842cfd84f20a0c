import * as z from 'zod';
import { IdSchema } from '../../contracts/relay-protocol';
import {
  ConfigError,
  parseHostPort,
  readConfigFile,
  readLanKeyFile,
  resolveFrom,
  validate,
} from './config-file';

/**
 * The host agent's configuration file (`halo-agent --config FILE`), with the relay's conventions: YAML or
 * JSON, zod-validated, fields named in errors, relative paths against the file, the LAN key in a file
 * nobody else can read. Documented in docs/site-install.md.
 */

const HostPortSchema = z
  .string()
  .refine((v) => parseHostPort(v) !== null, 'expected host:port, e.g. 10.0.0.5:7400');

export const AgentConfigFileSchema = z.strictObject({
  site: IdSchema,
  /** This host's id: the name the control plane, the relays and the BMC configuration know it by. */
  host: IdSchema,
  /** The cluster the host belongs to (VMs fail over within their cluster). */
  cluster: IdSchema,
  /** Every relay of the site, by relay id, with its LAN address: each gets every heartbeat. */
  relays: z.record(IdSchema, HostPortSchema).refine((r) => Object.keys(r).length > 0, 'at least one relay'),
  lan: z.strictObject({
    listen: HostPortSchema,
    keyFile: z.string().min(1),
    maxSkewMs: z.number().int().positive().optional(),
  }),
  hypervisor: z
    .strictObject({
      /** `qemu:///system` in production; a `test:///…` URI in tests. */
      uri: z.string().min(1),
      /** Where the boot id is read (Linux: /proc/sys/kernel/random/boot_id). */
      bootIdFile: z.string().min(1).optional(),
      /** `virsh` to run. */
      virshPath: z.string().min(1).optional(),
      /** Watch libvirt's lifecycle events (`virsh event --loop`) to report changes at once; default true. */
      events: z.boolean().optional(),
    })
    .default({ uri: 'qemu:///system' }),
  timing: z
    .strictObject({
      /** Must equal the control plane's policy (`halo:policy`); default 2000. */
      hostHeartbeatMs: z.number().int().positive().optional(),
    })
    .default({}),
  /** Every VM definition is read again this often (new or changed VMs' at once). */
  definitionRefreshMs: z.number().int().positive().optional(),
});
export type AgentConfigFile = z.infer<typeof AgentConfigFileSchema>;

/** The agent's settings, ready to use. */
export interface AgentSettings {
  readonly configPath: string;
  readonly siteId: string;
  readonly hostId: string;
  readonly cluster: string;
  readonly relays: Readonly<Record<string, { readonly host: string; readonly port: number }>>;
  readonly lan: {
    readonly host: string;
    readonly port: number;
    /** The decoded LAN key. */
    readonly key: Buffer;
    readonly maxSkewMs?: number;
  };
  /** Values blanked from every log line (the LAN key's text). */
  readonly secrets: readonly string[];
  readonly hypervisor: {
    readonly uri: string;
    readonly bootIdFile?: string;
    readonly virshPath?: string;
    readonly events: boolean;
  };
  readonly hostHeartbeatMs: number;
  readonly definitionRefreshMs?: number;
}

/** Loads, validates and completes an agent configuration; throws ConfigError naming the field or file. */
export function loadAgentConfig(configPath: string): AgentSettings {
  const path = resolveFrom(process.cwd(), configPath);
  const file = validate(AgentConfigFileSchema, readConfigFile(path), path);
  const { key, text: keyText } = readLanKeyFile(resolveFrom(path, file.lan.keyFile));
  const listen = parseHostPort(file.lan.listen);
  if (listen === null) throw new ConfigError('lan.listen: expected host:port');
  const relays: Record<string, { host: string; port: number }> = {};
  for (const [relayId, address] of Object.entries(file.relays)) {
    const parsed = parseHostPort(address);
    if (parsed === null) throw new ConfigError(`relays.${relayId}: expected host:port`);
    relays[relayId] = parsed;
  }
  const { hypervisor } = file;
  return {
    configPath: path,
    siteId: file.site,
    hostId: file.host,
    cluster: file.cluster,
    relays,
    lan: {
      ...listen,
      key,
      ...(file.lan.maxSkewMs === undefined ? {} : { maxSkewMs: file.lan.maxSkewMs }),
    },
    hypervisor: {
      uri: hypervisor.uri,
      ...(hypervisor.bootIdFile === undefined
        ? {}
        : { bootIdFile: resolveFrom(path, hypervisor.bootIdFile) }),
      ...(hypervisor.virshPath === undefined ? {} : { virshPath: hypervisor.virshPath }),
      events: hypervisor.events ?? true,
    },
    hostHeartbeatMs: file.timing.hostHeartbeatMs ?? 2000,
    secrets: [keyText],
    ...(file.definitionRefreshMs === undefined ? {} : { definitionRefreshMs: file.definitionRefreshMs }),
  };
}
