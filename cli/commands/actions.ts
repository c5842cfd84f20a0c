import { writeFile } from 'node:fs/promises';
import * as z from 'zod';
import { IdSchema } from '../../contracts/relay-protocol';
import { PRIORITIES, type Priority } from '../../core/model';
import {
  EnrolledRelaySchema,
  FencingResultSchema,
  listSites,
  MaintenanceResultSchema,
  parseAnswer,
  type Vm,
  VmSchema,
} from '../api';
import type { OperatorClient } from '../client';
import { type CommandContext, writeJson, writeLines } from '../context';
import { UsageError } from '../errors';
import { EXIT, type ExitCode, renderTable } from '../format';
import { findCluster, findHost, vmsOf } from '../lookup';

/** `on` or `off`, as commands take it. */
export type OnOff = 'on' | 'off';

// ---------------------------------------------------------------- maintenance and fencing

/** `halo maintenance <host> on|off [--site S]`: a maintenance host is never suspected, fenced or used. */
export async function maintenanceCommand(
  ctx: CommandContext,
  hostId: string,
  state: OnOff,
  options: { readonly site?: string | undefined },
): Promise<ExitCode> {
  const client = await ctx.client();
  const host = await findHost(client, hostId, options.site);
  const answer = parseAnswer(
    MaintenanceResultSchema,
    await client.call('setMaintenance', {
      params: { siteId: host.siteId, hostId },
      body: { enabled: state === 'on' },
    }),
    'setMaintenance',
  );
  if (ctx.json) writeJson(ctx, answer);
  else
    writeLines(ctx, [
      state === 'on'
        ? `${hostId} (site ${answer.siteId}) is in maintenance: never suspected or fenced, and takes no VM restarts, until \`halo maintenance ${hostId} off\`.`
        : `${hostId} (site ${answer.siteId}) is out of maintenance: now ${answer.status}.`,
    ]);
  return EXIT.ok;
}

/** `halo fencing <cluster> on|off [--site S]`: off, a silent host of the cluster is neither fenced nor failed over. */
export async function fencingCommand(
  ctx: CommandContext,
  clusterId: string,
  state: OnOff,
  options: { readonly site?: string | undefined },
): Promise<ExitCode> {
  const client = await ctx.client();
  const { siteId } = await findCluster(client, clusterId, options.site);
  const answer = parseAnswer(
    FencingResultSchema,
    await client.call('setFencing', { params: { siteId, clusterId }, body: { enabled: state === 'on' } }),
    'setFencing',
  );
  if (ctx.json) writeJson(ctx, answer);
  else
    writeLines(ctx, [
      answer.cluster.fencingEnabled
        ? `Fencing is on for cluster ${clusterId} (site ${siteId}): a dead host is powered off and its HA VMs restart elsewhere.`
        : `Fencing is OFF for cluster ${clusterId} (site ${siteId}): a silent host is neither fenced nor failed over ` +
          `(its incident ends fencing-suppressed) until \`halo fencing ${clusterId} on\`.`,
    ]);
  return EXIT.ok;
}

// ---------------------------------------------------------------- relays

/** Writes a credential to a new file readable by its owner only; refuses to overwrite one. */
async function writeCredential(file: string, credential: string): Promise<void> {
  try {
    await writeFile(file, `${credential}\n`, { mode: 0o600, flag: 'wx' });
  } catch (error) {
    const code = error instanceof Error && 'code' in error ? error.code : '';
    throw new UsageError(
      code === 'EEXIST'
        ? `--out ${file}: the file exists; remove it first`
        : `--out ${file}: ${String(error)}`,
    );
  }
}

async function enroll(
  ctx: CommandContext,
  client: OperatorClient,
  siteId: string,
  relayId: string,
  out: string | undefined,
  verb: string,
): Promise<ExitCode> {
  const answer = parseAnswer(
    EnrolledRelaySchema,
    await client.call('enrollRelay', { params: { siteId }, body: { relayId } }),
    'enrollRelay',
  );
  if (out !== undefined) await writeCredential(out, answer.credential);
  if (ctx.json) {
    writeJson(ctx, out === undefined ? { siteId, ...answer } : { siteId, relayId, credentialFile: out });
    return EXIT.ok;
  }
  const lines = [`Relay ${relayId} of site ${siteId} ${verb}.`];
  if (out === undefined)
    lines.push(
      'Its credential, shown this once (the control plane keeps only its hash):',
      '',
      `  ${answer.credential}`,
      '',
      'Install it as the relay’s controlPlane.credentialFile (owner halo, mode 600), e.g. /etc/halo/relay.credential.',
    );
  else
    lines.push(
      `Its credential is in ${out} (mode 600): install it as the relay’s controlPlane.credentialFile.`,
    );
  writeLines(ctx, lines);
  return EXIT.ok;
}

/** `halo relay enroll <relay> --site S [--out FILE]`: the site is created with its first relay. */
export async function relayEnrollCommand(
  ctx: CommandContext,
  relayId: string,
  options: { readonly site: string; readonly out?: string | undefined },
): Promise<ExitCode> {
  return enroll(ctx, await ctx.client(), options.site, relayId, options.out, 'is enrolled');
}

/** `halo relay revoke <relay> --site S`: its reports are refused from now on. */
export async function relayRevokeCommand(
  ctx: CommandContext,
  relayId: string,
  options: { readonly site: string },
): Promise<ExitCode> {
  const client = await ctx.client();
  await client.call('revokeRelay', { params: { siteId: options.site, relayId } });
  if (ctx.json) writeJson(ctx, { siteId: options.site, relayId, revoked: true });
  else
    writeLines(ctx, [
      `Relay ${relayId} of site ${options.site} is revoked: its reports are refused. \`halo relay enroll ${relayId} --site ${options.site}\` issues a new credential.`,
    ]);
  return EXIT.ok;
}

/**
 * `halo relay rotate <relay> --site S [--out FILE]`: revokes the credential and issues a new one. The relay's
 * reports are refused from the revocation until it runs with the new credential: rotate one relay of a
 * site at a time, so that the other keeps reporting.
 */
export async function relayRotateCommand(
  ctx: CommandContext,
  relayId: string,
  options: { readonly site: string; readonly out?: string | undefined },
): Promise<ExitCode> {
  const client = await ctx.client();
  await client.call('revokeRelay', { params: { siteId: options.site, relayId } });
  const code = await enroll(
    ctx,
    client,
    options.site,
    relayId,
    options.out,
    'has a new credential (the old one is revoked)',
  );
  if (!ctx.json)
    writeLines(ctx, [
      'Until the relay runs with it, its reports are refused: restart it with the new credential now.',
    ]);
  return code;
}

// ---------------------------------------------------------------- VM metadata

/** One VM's change, from the command line or a bulk file: unset fields keep their current value. */
export interface VmChange {
  readonly vm: string;
  readonly site?: string | undefined;
  readonly ha?: boolean | undefined;
  readonly priority?: Priority | undefined;
  /** A group, or null to take the VM out of its group. */
  readonly antiAffinity?: string | null | undefined;
}

const VmChangeListSchema = z.array(
  z.strictObject({
    vm: IdSchema,
    site: IdSchema.optional(),
    ha: z.boolean().optional(),
    priority: z.enum(PRIORITIES as [Priority, ...Priority[]]).optional(),
    antiAffinity: IdSchema.nullable().optional(),
  }),
);

/** A bulk file's entries: a list, or `{ "vms": [...] }`, in JSON or YAML. */
export const VmChangeFileSchema = z.union([VmChangeListSchema, z.strictObject({ vms: VmChangeListSchema })]);

/** Parses a bulk file's text (JSON or YAML); a UsageError names the entry and field at fault. */
export async function parseVmChanges(text: string, name: string): Promise<VmChange[]> {
  const { parse } = await import('yaml');
  let raw: unknown;
  try {
    raw = parse(text);
  } catch (error) {
    throw new UsageError(
      `${name}: not JSON or YAML: ${error instanceof Error ? error.message.split('\n')[0] : String(error)}`,
    );
  }
  // By shape, so that an error names the entry and field (a union's error would name neither).
  const parsed = Array.isArray(raw)
    ? VmChangeListSchema.safeParse(raw)
    : z.strictObject({ vms: VmChangeListSchema }).safeParse(raw);
  if (!parsed.success) {
    const issue = parsed.error.issues[0];
    const path = issue?.path.map((p) => (typeof p === 'number' ? `[${p}]` : `.${String(p)}`)).join('') ?? '';
    throw new UsageError(
      `${name}${path === '' ? '' : ` ${path.replace(/^\./, '')}`}: ${issue?.message ?? 'invalid'}`,
    );
  }
  return Array.isArray(parsed.data) ? parsed.data : (parsed.data as { vms: VmChange[] }).vms;
}

/** The record after a change: the change's fields over the current ones, or the defaults for a new VM. */
function merged(
  change: VmChange,
  current: Vm | null,
): { ha: boolean; priority: Priority; antiAffinity: string | null } {
  return {
    ha: change.ha ?? current?.ha ?? false,
    priority: change.priority ?? current?.priority ?? 'medium',
    antiAffinity: change.antiAffinity === undefined ? (current?.antiAffinity ?? null) : change.antiAffinity,
  };
}

/**
 * `halo vm set <vm…> [--ha|--no-ha] [--priority P] [--anti-affinity G|--no-anti-affinity] [--site S]` and
 * `halo vm set --file vms.yaml`: every VM is found (its site) and checked before the first write.
 */
export async function vmSetCommand(ctx: CommandContext, changes: readonly VmChange[]): Promise<ExitCode> {
  if (changes.length === 0) throw new UsageError('vm set: name at least one VM, or --file');
  for (const c of changes)
    if (c.ha === undefined && c.priority === undefined && c.antiAffinity === undefined)
      throw new UsageError(
        `vm set ${c.vm}: nothing to change (--ha, --no-ha, --priority, --anti-affinity, --no-anti-affinity)`,
      );
  const client = await ctx.client();
  const known = await vmsOf(client, undefined);
  const sites = (await listSites(client)).map((s) => s.siteId);
  const plan = changes.map((change) => {
    const matches = known.filter(
      (v) => v.vmId === change.vm && (change.site === undefined || v.siteId === change.site),
    );
    if (matches.length > 1)
      throw new UsageError(
        `VM ${change.vm} is in sites ${matches.map((m) => m.siteId).join(', ')}: pass --site`,
      );
    const current = matches[0] ?? null;
    const siteId = current?.siteId ?? change.site ?? (sites.length === 1 ? sites[0] : undefined);
    if (siteId === undefined)
      throw new UsageError(
        `VM ${change.vm} is not reported by any site yet: pass --site to register it ahead`,
      );
    if (!sites.includes(siteId)) throw new UsageError(`no site ${siteId}`);
    return { change, siteId, body: merged(change, current) };
  });
  const updated: Vm[] = [];
  for (const { change, siteId, body } of plan) {
    const answer = await client.call('setVmMetadata', { params: { siteId, vmId: change.vm }, body });
    updated.push(parseAnswer(VmSchema, answer, 'setVmMetadata'));
  }
  if (ctx.json) {
    writeJson(ctx, updated);
    return EXIT.ok;
  }
  writeLines(ctx, [
    ...renderTable(
      [
        { header: 'VM' },
        { header: 'site' },
        { header: 'HA' },
        { header: 'priority' },
        { header: 'anti-affinity' },
      ],
      updated.map((v) => [v.vmId, v.siteId, v.ha ? 'yes' : 'no', v.priority, v.antiAffinity ?? '']),
    ),
    '',
    `${updated.length} updated.`,
  ]);
  return EXIT.ok;
}

/**
 * `halo vm down-on-purpose <vm…> on|off [--site S]`: on, an HA VM that is down stays down (no more
 * retries) until it runs again; off takes that back and retries it at once.
 */
export async function vmDownOnPurposeCommand(
  ctx: CommandContext,
  vmIds: readonly string[],
  state: OnOff,
  options: { readonly site?: string | undefined },
): Promise<ExitCode> {
  const client = await ctx.client();
  const known = await vmsOf(client, options.site);
  const targets = vmIds.map((vmId) => {
    const matches = known.filter((v) => v.vmId === vmId);
    if (matches[0] === undefined)
      throw new UsageError(
        `no VM ${vmId} ${options.site === undefined ? 'in any site' : `in site ${options.site}`}`,
      );
    if (matches.length > 1) throw new UsageError(`VM ${vmId} is in several sites: pass --site`);
    return matches[0];
  });
  const updated: Vm[] = [];
  for (const vm of targets) {
    const answer = await client.call('setVmDownOnPurpose', {
      params: { siteId: vm.siteId, vmId: vm.vmId },
      body: { enabled: state === 'on' },
    });
    updated.push(parseAnswer(VmSchema, answer, 'setVmDownOnPurpose'));
  }
  if (ctx.json) writeJson(ctx, updated);
  else
    writeLines(
      ctx,
      updated.map((v) =>
        state === 'on'
          ? `${v.vmId}: down on purpose — no longer retried, until it runs again.`
          : `${v.vmId}: ${v.state}${v.recovery?.status === 'waiting' || v.recovery?.status === 'starting' ? ', back on the retry list' : ''}.`,
      ),
    );
  return EXIT.ok;
}
