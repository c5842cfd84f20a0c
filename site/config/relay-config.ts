import * as z from 'zod';
import { IdSchema, MAX_FENCE_LEVELS } from '../../contracts/relay-protocol';
import {
  assertPrivate,
  ConfigError,
  parseHostPort,
  readConfigFile,
  readLanKeyFile,
  readSecretFile,
  resolveFrom,
  validate,
} from './config-file';

/**
 * The relay's configuration file (`halo-relay --config FILE`): its schema, and the loader that turns it
 * into settings with every secret read, every path resolved and every secret file's permissions checked.
 * Documented in docs/site-install.md.
 */

const positiveMs = z.number().int().positive();

/** `host:port` to listen on. */
const ListenSchema = z
  .string()
  .refine((v) => parseHostPort(v) !== null, 'expected host:port, e.g. 0.0.0.0:7400');

/** Options of a fence agent: its documented stdin names; booleans become 1 (true) or are left out. */
const AgentOptionsSchema = z.record(
  z.string().regex(/^[A-Za-z][A-Za-z0-9_]*$/, 'an option name: letters, digits and "_"'),
  z.union([z.string().regex(/^[^\r\n]*$/, 'no line breaks'), z.number(), z.boolean()]),
);

const IpmitoolLevelSchema = z.strictObject({
  driver: z.literal('ipmitool'),
  address: z.string().min(1).max(253),
  port: z.number().int().min(1).max(65_535).optional(),
  username: z.string().min(1).max(64),
  password: z.string().min(1).optional(),
  passwordFile: z.string().min(1).optional(),
  cipherSuite: z.number().int().min(0).max(17).optional(),
  privilege: z.enum(['ADMINISTRATOR', 'OPERATOR', 'USER']).optional(),
  /** ipmitool -N (seconds per try) and -R (tries): 1 and 1 make a dead BMC fail in about 2 s. */
  ipmiTimeoutS: z.number().int().min(1).max(30).optional(),
  ipmiRetries: z.number().int().min(0).max(10).optional(),
  /** Longest this level may take to read `off` back before the next level is tried. */
  timeoutMs: positiveMs.optional(),
});

const FenceAgentLevelSchema = z.strictObject({
  driver: z.literal('fence-agent'),
  agent: z.string().regex(/^fence_[a-z0-9_]+$/, 'a fence agent name such as fence_redfish'),
  options: AgentOptionsSchema.default({}),
  /** Hard limit of one agent call. */
  callTimeoutMs: positiveMs.optional(),
  timeoutMs: positiveMs.optional(),
});

const FenceLevelSchema = z.discriminatedUnion('driver', [IpmitoolLevelSchema, FenceAgentLevelSchema]);

export const RelayConfigFileSchema = z.strictObject({
  site: IdSchema,
  relay: IdSchema,
  controlPlane: z.strictObject({
    url: z.url({ protocol: /^https?$/ }),
    credentialFile: z.string().min(1),
    /** One report's request timeout. */
    timeoutMs: positiveMs.max(60_000).optional(),
  }),
  lan: z.strictObject({
    listen: ListenSchema,
    keyFile: z.string().min(1),
    /** Largest accepted difference between a sender's clock and ours. */
    maxSkewMs: positiveMs.optional(),
    /**
     * The site's other relays, by id, at their LAN `host:port`: this relay heartbeats each and reports how
     * long ago it heard each, so that relays that hear each other take turns reporting and a dead one is
     * known at once (docs/protocol.md "Relays take turns"). Optional: without it the relay reports alone.
     */
    relays: z.record(IdSchema, ListenSchema).optional(),
  }),
  stateDir: z.string().min(1),
  /** Must match the control plane's policy for the site (core/policy; `cdk.json` halo:policy). */
  timing: z
    .strictObject({
      hostHeartbeatMs: positiveMs.optional(),
      missedHeartbeats: z.number().int().positive().optional(),
      relayReportMs: positiveMs.optional(),
    })
    .default({}),
  /** How often every host's fence levels are read (no change made); 0 turns the checks off. */
  fenceCheckMs: z.number().int().nonnegative().optional(),
  /** Interval of status reads while a fence waits for `off`. */
  bmcPollMs: positiveMs.optional(),
  hosts: z.record(
    IdSchema,
    z.strictObject({ fence: z.array(FenceLevelSchema).min(1).max(MAX_FENCE_LEVELS) }),
  ),
});
export type RelayConfigFile = z.infer<typeof RelayConfigFileSchema>;

/** An ipmitool level with its password read. */
export interface IpmitoolLevel {
  readonly driver: 'ipmitool';
  readonly address: string;
  readonly port?: number;
  readonly username: string;
  readonly password: string;
  readonly cipherSuite?: number;
  readonly privilege?: 'ADMINISTRATOR' | 'OPERATOR' | 'USER';
  readonly ipmiTimeoutS?: number;
  readonly ipmiRetries?: number;
  readonly timeoutMs?: number;
}

/** A fence-agent level with its options as the agent reads them on stdin (secret files read). */
export interface FenceAgentLevel {
  readonly driver: 'fence-agent';
  readonly agent: string;
  readonly options: Readonly<Record<string, string>>;
  readonly callTimeoutMs?: number;
  readonly timeoutMs?: number;
}

export type LevelSettings = IpmitoolLevel | FenceAgentLevel;

/** The relay's settings, ready to use: secrets in memory, paths absolute. */
export interface RelaySettings {
  readonly configPath: string;
  readonly siteId: string;
  readonly relayId: string;
  readonly controlPlaneUrl: string;
  readonly credential: string;
  readonly requestTimeoutMs?: number;
  readonly lan: {
    readonly host: string;
    readonly port: number;
    /** The site's other relays at their LAN addresses (lan.relays). */
    readonly relays: Readonly<Record<string, { readonly host: string; readonly port: number }>>;
    /** The decoded LAN key. */
    readonly key: Buffer;
    readonly maxSkewMs?: number;
  };
  readonly stateDir: string;
  readonly timing: RelayConfigFile['timing'];
  readonly fenceCheckMs?: number;
  readonly bmcPollMs?: number;
  readonly hosts: Readonly<Record<string, readonly LevelSettings[]>>;
  /** Every value to blank from what leaves the relay: passwords, addresses, users, option secrets. */
  readonly secrets: readonly string[];
}

/** Option names whose value is a secret (fence agents' password, SNMP community, keys…). */
const SECRET_OPTION = /pass|secret|community|key|token/i;

/** The suffix that makes an option name a file to read: `passwordFile: ./pdu.pass` gives `password`. */
const FILE_SUFFIX = 'File';

/** Loads, validates and completes a relay configuration; throws ConfigError naming the field or file. */
export function loadRelayConfig(configPath: string): RelaySettings {
  const path = resolveFrom(process.cwd(), configPath);
  const file = validate(RelayConfigFileSchema, readConfigFile(path), path);
  const secrets: string[] = [];
  let inlineSecret = false;

  const hosts: Record<string, LevelSettings[]> = {};
  for (const [hostId, host] of Object.entries(file.hosts)) {
    hosts[hostId] = host.fence.map((level, i): LevelSettings => {
      const where = `hosts.${hostId}.fence.${i}`;
      if (level.driver === 'ipmitool') {
        const password = ipmitoolPassword(level, where, path);
        if (level.password !== undefined) inlineSecret = true;
        secrets.push(password, level.address, level.username);
        const { passwordFile: _file, ...rest } = level;
        return { ...rest, password };
      }
      const options: Record<string, string> = {};
      for (const [name, raw] of Object.entries(level.options)) {
        if (raw === false) continue;
        const value = raw === true ? '1' : String(raw);
        if (name.endsWith(FILE_SUFFIX) && name.length > FILE_SUFFIX.length) {
          const target = name.slice(0, -FILE_SUFFIX.length);
          const secret = readSecretFile(resolveFrom(path, value), `${where}.options.${name}`);
          if (/[\r\n]/.test(secret)) {
            throw new ConfigError(`${where}.options.${name}: the file holds more than one line`);
          }
          options[target] = secret;
          secrets.push(secret);
        } else {
          options[name] = value;
          if (SECRET_OPTION.test(name)) {
            inlineSecret = true;
            secrets.push(value);
          }
        }
      }
      for (const name of ['ip', 'ipaddr', 'username', 'login']) {
        const value = options[name];
        if (value !== undefined) secrets.push(value);
      }
      return { ...level, options };
    });
  }
  // A configuration that holds a secret itself is a secret file.
  if (inlineSecret) assertPrivate(path, 'configuration with inline secrets');

  const credential = readSecretFile(
    resolveFrom(path, file.controlPlane.credentialFile),
    'controlPlane.credentialFile',
  ).trim();
  if (!/^hrc1\.[^.]+\.[^.]+\.[^.]+$/.test(credential)) {
    throw new ConfigError('controlPlane.credentialFile: expected the hrc1.… credential from enrolment');
  }
  if (!credential.startsWith(`hrc1.${file.site}.${file.relay}.`)) {
    throw new ConfigError(
      `controlPlane.credentialFile: the credential belongs to another site or relay than ${file.site}/${file.relay}`,
    );
  }
  const { key, text: keyText } = readLanKeyFile(resolveFrom(path, file.lan.keyFile));
  secrets.push(keyText);
  const listen = parseHostPort(file.lan.listen);
  if (listen === null) throw new ConfigError('lan.listen: expected host:port');
  const relays: Record<string, { host: string; port: number }> = {};
  for (const [relayId, address] of Object.entries(file.lan.relays ?? {})) {
    if (relayId === file.relay) throw new ConfigError(`lan.relays.${relayId}: this relay itself`);
    const parsed = parseHostPort(address);
    if (parsed === null) throw new ConfigError(`lan.relays.${relayId}: expected host:port`);
    relays[relayId] = parsed;
  }

  return {
    configPath: path,
    siteId: file.site,
    relayId: file.relay,
    controlPlaneUrl: file.controlPlane.url,
    credential,
    ...(file.controlPlane.timeoutMs === undefined ? {} : { requestTimeoutMs: file.controlPlane.timeoutMs }),
    lan: {
      ...listen,
      relays,
      key,
      ...(file.lan.maxSkewMs === undefined ? {} : { maxSkewMs: file.lan.maxSkewMs }),
    },
    stateDir: resolveFrom(path, file.stateDir),
    timing: file.timing,
    ...(file.fenceCheckMs === undefined ? {} : { fenceCheckMs: file.fenceCheckMs }),
    ...(file.bmcPollMs === undefined ? {} : { bmcPollMs: file.bmcPollMs }),
    hosts,
    secrets: [...new Set(secrets)],
  };
}

function ipmitoolPassword(
  level: z.infer<typeof IpmitoolLevelSchema>,
  where: string,
  configPath: string,
): string {
  if ((level.password === undefined) === (level.passwordFile === undefined)) {
    throw new ConfigError(`${where}: give exactly one of password and passwordFile`);
  }
  if (level.password !== undefined) return level.password;
  return readSecretFile(resolveFrom(configPath, level.passwordFile ?? ''), `${where}.passwordFile`);
}
