import { readFile } from 'node:fs/promises';
import { Argument, Command, CommanderError, Option } from 'commander';
import { PRIORITIES } from '../core/model';
import {
  fencingCommand,
  maintenanceCommand,
  type OnOff,
  parseVmChanges,
  relayEnrollCommand,
  relayRevokeCommand,
  relayRotateCommand,
  type VmChange,
  vmDownOnPurposeCommand,
  vmSetCommand,
} from './commands/actions';
import { eventsCommand } from './commands/events';
import { confirmOffCommand, incidentCommand, incidentsCommand } from './commands/incidents';
import { hostsCommand, vmsCommand } from './commands/inventory';
import { livePlanCommand } from './commands/plan-live';
import { policySetCommand, policyShowCommand } from './commands/policy';
import { relaysCommand } from './commands/relays';
import { DEFAULT_SLO_PERCENT, slaCommand } from './commands/sla';
import { statusCommand } from './commands/status';
import type { CliHost, CommandContext } from './context';
import { CliError, UsageError } from './errors';
import { EXIT, type ExitCode } from './format';
import { planCommand } from './plan';
import { makeStyle, wantsColor } from './style';
import type { Target } from './target';

/** `halo --help`'s closing part: how to choose the control plane, and what the exit status means. */
export const HELP_FOOTER = `
Target (the control plane):
  --url URL / HALO_URL   a URL on loopback is local mode (\`npm start -- --serve\`, plain HTTP with the
                         local operator token it writes to ~/.config/halo/local-token, or the file
                         HALO_LOCAL_TOKEN_FILE names); any other URL is a deployed API, signed with SigV4
  otherwise              the stack's outputs (--stack / HALO_STACK, default Halo) found with your AWS
                         credentials and region (the SDK's default chain; --profile, --region)

Exit status:
  0  ok
  1  the answer is bad news: N+1 broken or a host that cannot be fenced, HA VMs down, a host waiting
     for an operator, a relay not reporting, an SLA breach (each command's help says which)
  2  usage or input error, or a request the control plane refused as such: nothing was done
  3  cannot reach the control plane, find its stack, or authenticate (or it failed to answer)
`;

/** Global options, after parsing. */
interface GlobalOptions {
  readonly url?: string;
  readonly stack?: string;
  readonly region?: string;
  readonly profile?: string;
  readonly json?: boolean;
  readonly color: boolean;
}

const onOff = (): Argument => new Argument('<on|off>', 'on or off').choices(['on', 'off']);
const site = (): Option => new Option('--site <site>', 'only this site (default: look in every site)');

/** Builds the command context of one run from the global options. */
function contextOf(host: CliHost, globals: GlobalOptions): CommandContext {
  const json = globals.json === true;
  const color = !json && wantsColor({ flag: globals.color, isTTY: host.isTTY, env: host.env });
  let target: Promise<Target> | undefined;
  const resolve = (): Promise<Target> => {
    target ??= host.resolveTarget({
      url: globals.url,
      stack: globals.stack,
      region: globals.region,
      profile: globals.profile,
    });
    return target;
  };
  return {
    host,
    io: host.io,
    json,
    style: makeStyle(color),
    time: { now: host.now(), timeZone: host.timeZone },
    target: resolve,
    client: async () => (await resolve()).client,
  };
}

/** A plan argument that names a file rather than a cluster: a path, or a JSON or YAML name. */
function looksLikeFile(text: string): boolean {
  return /[/\\]/.test(text) || /\.(json|ya?ml)$/i.test(text);
}

/** The `halo` program: every command, writing to the host's streams, each action setting the exit code. */
export function buildProgram(host: CliHost, setCode: (code: ExitCode) => void): Command {
  const program = new Command('halo');
  const run =
    <A extends unknown[]>(fn: (ctx: CommandContext, ...args: A) => Promise<ExitCode>) =>
    async (...args: unknown[]): Promise<void> => {
      const command = args[args.length - 1] as Command;
      const ctx = contextOf(host, command.optsWithGlobals<GlobalOptions>());
      setCode(await fn(ctx, ...(args.slice(0, -1) as A)));
    };

  program
    .description('Halo: HA control plane for on-prem KVM hosts — the operator’s command line')
    .option('--url <url>', 'control plane URL (env HALO_URL); loopback = local mode')
    .option('--stack <name>', 'stack whose outputs name the API (env HALO_STACK; default Halo)')
    .option('--region <region>', 'AWS region (default: the SDK chain, AWS_REGION)')
    .option('--profile <profile>', 'AWS profile (default: the SDK chain, AWS_PROFILE)')
    .option('--json', 'print JSON for scripts instead of tables')
    .option('--no-color', 'no colour even on a terminal (also NO_COLOR)')
    .configureHelp({ helpWidth: 110, showGlobalOptions: true })
    .addHelpText('after', HELP_FOOTER)
    .showHelpAfterError('(halo --help lists the commands)')
    .exitOverride()
    .configureOutput({
      writeOut: (text) => host.io.stdout(text),
      writeErr: (text) => host.io.stderr(text),
      outputError: (text, write) => write(text.replace(/^error: /, 'halo: ')),
    });

  program
    .command('status')
    .summary('one screen: relays, hosts, open incidents, HA VMs down, N+1')
    .description('one screen: relays, hosts not up, open incidents, HA VMs down, N+1 (exit 1 on any problem)')
    .addOption(site())
    .action(run((ctx, options: { site?: string }) => statusCommand(ctx, options)));

  program
    .command('hosts')
    .summary('hosts: lifecycle state, usage, fence readiness')
    .description(
      'hosts with lifecycle state and fence readiness (exit 1: one waits for an operator or cannot be fenced)',
    )
    .addOption(site())
    .option('--cluster <cluster>', 'only this cluster')
    .option(
      '--state <states>',
      'only these states, comma-separated (up, suspect, fencing, fenced, awaiting-operator, maintenance)',
    )
    .action(
      run((ctx, options: { site?: string; cluster?: string; state?: string }) => hostsCommand(ctx, options)),
    );

  program
    .command('vms')
    .summary('VMs: where each runs, HA settings, recovery')
    .description('VMs: where each runs, HA settings, recovery (exit 1: an HA VM listed is down)')
    .addOption(site())
    .option('--cluster <cluster>', 'only VMs on hosts of this cluster')
    .option(
      '--state <states>',
      'only these states, comma-separated (running, paused, shut-off, crashed, down)',
    )
    .option('--ha', 'only HA VMs')
    .action(
      run((ctx, options: { site?: string; cluster?: string; state?: string; ha?: boolean }) =>
        vmsCommand(ctx, options),
      ),
    );

  program
    .command('relays')
    .summary('relays: last report, hosts heard and silent')
    .description(
      'relays: last report, sequence, hosts heard and silent (exit 1: an enrolled relay is not live)',
    )
    .addOption(site())
    .option('--cluster <cluster>', 'only relays that hear or miss hosts of this cluster')
    .option('--state <states>', 'only these states, comma-separated (live, late, silent, revoked)')
    .action(
      run((ctx, options: { site?: string; cluster?: string; state?: string }) => relaysCommand(ctx, options)),
    );

  program
    .command('incidents')
    .summary('incidents opened lately, with durations')
    .description('incidents opened lately, newest first, with durations (exit 1: one waits for an operator)')
    .addOption(site())
    .option('--since <span>', 'how far back: 45m, 12h, 30d, 2w', '30d')
    .option('--open', 'only open incidents')
    .action(
      run((ctx, options: { since: string; site?: string; open?: boolean }) => incidentsCommand(ctx, options)),
    );

  program
    .command('incident')
    .summary('one incident: timeline, fence evidence, where each VM went')
    .description(
      'one incident: timeline with step durations, fence evidence, where each VM went (exit 1: waiting for an operator, or VMs left down)',
    )
    .argument('<id>', 'incident id, e.g. dc1:node01:3')
    .action(run((ctx, id: string) => incidentCommand(ctx, id)));

  program
    .command('events')
    .summary('the event feed of every incident')
    .description('the event feed: every incident’s timeline, oldest first')
    .addOption(site())
    .option('--since <span>', 'how far back: 45m, 12h, 30d', '1h')
    .action(run((ctx, options: { since: string; site?: string }) => eventsCommand(ctx, options)));

  program
    .command('confirm-off')
    .summary('confirm a host waiting for an operator is powered off')
    .description(
      'confirm that a host waiting for an operator is powered off, so its HA VMs restart elsewhere',
    )
    .argument('<host>', 'the host')
    .addOption(site())
    .option('-y, --yes', 'do not ask (for scripts)')
    .option('--operator <name>', 'who confirms (default: your IAM identity; locally, your user name)')
    .action(
      run((ctx, hostId: string, options: { site?: string; yes?: boolean; operator?: string }) =>
        confirmOffCommand(ctx, hostId, options),
      ),
    );

  program
    .command('maintenance')
    .summary('put a host into maintenance or take it out')
    .description('put a host into maintenance (never suspected, fenced or used) or take it out')
    .argument('<host>', 'the host')
    .addArgument(onOff())
    .addOption(site())
    .action(
      run((ctx, hostId: string, state: OnOff, options: { site?: string }) =>
        maintenanceCommand(ctx, hostId, state, options),
      ),
    );

  program
    .command('fencing')
    .summary('turn fencing on or off for a cluster')
    .description(
      'turn fencing on or off for a cluster (off: a silent host is neither fenced nor failed over)',
    )
    .argument('<cluster>', 'the cluster')
    .addArgument(onOff())
    .addOption(site())
    .action(
      run((ctx, clusterId: string, state: OnOff, options: { site?: string }) =>
        fencingCommand(ctx, clusterId, state, options),
      ),
    );

  const policy = program
    .command('policy')
    .summary('a cluster’s effective HA policy; policy set changes it')
    .description('a cluster’s effective HA policy and its override (policy set changes it)')
    .argument('[cluster]', 'the cluster (default: every cluster)')
    .addOption(site())
    .action(
      run((ctx, clusterId: string | undefined, options: { site?: string }) =>
        policyShowCommand(ctx, clusterId, options),
      ),
    );
  policy
    .command('set')
    .description(
      'change a cluster’s override: key=value sets a key, key= removes it (the halo:policy schema of cdk.json)',
    )
    .argument('<cluster>', 'the cluster')
    .argument('<assignments...>', 'key=value pairs, e.g. fenceDeadlineMs=60000 cpuOvercommit=2')
    .addOption(site())
    .action(
      run((ctx, clusterId: string, pairs: string[], options: { site?: string }) =>
        policySetCommand(ctx, clusterId, pairs, options),
      ),
    );

  program
    .command('plan')
    .summary('N+1 report, live or of an inventory file')
    .description(
      'N+1 report: live per cluster, or of an inventory file (exit 1: N+1 fails or a host cannot be fenced)',
    )
    .argument('[cluster-or-file]', 'a cluster of the live site, or an inventory file (JSON)')
    .addOption(site())
    .action(
      run(async (ctx, target: string | undefined, options: { site?: string }) => {
        if (target !== undefined && looksLikeFile(target))
          return planCommand(ctx.json ? ['--json', target] : [target], ctx.io);
        return livePlanCommand(ctx, target, options);
      }),
    );

  const relay = program.command('relay').description('enrol, revoke or rotate a relay’s credential');
  const relayOut = (): Option =>
    new Option('--out <file>', 'write the credential to this new file (mode 600) instead of printing it');
  relay
    .command('enroll')
    .description('enrol a relay and print its credential, once (the site is created with its first relay)')
    .argument('<relay>', 'the relay id')
    .requiredOption('--site <site>', 'the relay’s site')
    .addOption(relayOut())
    .action(
      run((ctx, relayId: string, options: { site: string; out?: string }) =>
        relayEnrollCommand(ctx, relayId, options),
      ),
    );
  relay
    .command('revoke')
    .description('revoke a relay’s credential: its reports are refused')
    .argument('<relay>', 'the relay id')
    .requiredOption('--site <site>', 'the relay’s site')
    .action(
      run((ctx, relayId: string, options: { site: string }) => relayRevokeCommand(ctx, relayId, options)),
    );
  relay
    .command('rotate')
    .description('revoke a relay’s credential and issue a new one (restart the relay with it)')
    .argument('<relay>', 'the relay id')
    .requiredOption('--site <site>', 'the relay’s site')
    .addOption(relayOut())
    .action(
      run((ctx, relayId: string, options: { site: string; out?: string }) =>
        relayRotateCommand(ctx, relayId, options),
      ),
    );

  const vm = program.command('vm').description('VM settings: HA, priority, anti-affinity; down on purpose');
  vm.command('set')
    .description('set HA, priority and anti-affinity of VMs (unset fields keep their value), or from a file')
    .argument('[vms...]', 'the VMs')
    .option('--ha', 'restart it elsewhere when its host dies')
    .option('--no-ha', 'do not')
    .addOption(new Option('--priority <priority>', 'restart wave').choices(PRIORITIES))
    .option('--anti-affinity <group>', 'never on the same host as another VM of the group')
    .option('--no-anti-affinity', 'leave its anti-affinity group')
    .option('--file <file>', 'JSON or YAML list of {vm, site?, ha?, priority?, antiAffinity?}')
    .addOption(site())
    .action(
      run(
        async (
          ctx,
          vms: string[],
          options: {
            ha?: boolean;
            priority?: VmChange['priority'];
            antiAffinity?: string | false;
            file?: string;
            site?: string;
          },
        ) => {
          let changes: VmChange[];
          if (options.file !== undefined) {
            if (vms.length > 0) throw new UsageError('vm set: name VMs or give --file, not both');
            let text: string;
            try {
              text = await readFile(options.file, 'utf8');
            } catch (error) {
              throw new UsageError(
                `--file ${options.file}: ${error instanceof Error ? error.message : String(error)}`,
              );
            }
            changes = (await parseVmChanges(text, options.file)).map((c) => ({
              ...c,
              site: c.site ?? options.site,
            }));
          } else {
            changes = vms.map((id) => ({
              vm: id,
              site: options.site,
              ha: options.ha,
              priority: options.priority,
              antiAffinity: options.antiAffinity === false ? null : options.antiAffinity,
            }));
          }
          return vmSetCommand(ctx, changes);
        },
      ),
    );
  vm.command('down-on-purpose')
    .description('on: an HA VM that is down stays down (no more retries) until it runs again; off: retry it')
    .argument('<vm-and-state...>', 'the VMs, then on or off')
    .addOption(site())
    .action(
      run((ctx, words: string[], options: { site?: string }) => {
        const state = words[words.length - 1];
        const vms = words.slice(0, -1);
        if ((state !== 'on' && state !== 'off') || vms.length === 0)
          throw new UsageError('usage: halo vm down-on-purpose <vm…> on|off');
        return vmDownOnPurposeCommand(ctx, vms, state, options);
      }),
    );

  program
    .command('sla')
    .summary('minutes down per HA VM in a month against the SLO')
    .description('minutes down per HA VM in a month against the SLO (exit 1: a breach)')
    .option('--month <YYYY-MM>', 'the month, UTC (default: this month, until now)')
    .option('--slo <percent>', 'availability objective', String(DEFAULT_SLO_PERCENT))
    .addOption(site())
    .action(run((ctx, options: { month?: string; slo: string; site?: string }) => slaCommand(ctx, options)));

  return program;
}

/**
 * Runs `halo` with `argv` (the arguments after the program name) and returns its exit code; never throws
 * for a failure it can explain: usage errors are 2, unreachable or unauthorised control planes 3.
 */
export async function runHalo(argv: readonly string[], host: CliHost): Promise<ExitCode> {
  let code: ExitCode = EXIT.ok;
  const program = buildProgram(host, (c) => {
    code = c;
  });
  if (argv.length === 0) {
    host.io.stderr(program.helpInformation());
    return EXIT.usage;
  }
  try {
    await program.parseAsync([...argv], { from: 'user' });
    return code;
  } catch (error) {
    if (error instanceof CommanderError) return error.exitCode === 0 ? EXIT.ok : EXIT.usage;
    if (error instanceof CliError) {
      host.io.stderr(`halo: ${error.message}\n`);
      return error.exitCode;
    }
    // Not one we explain: say what it was; the control plane answered something the CLI did not expect.
    host.io.stderr(
      `halo: unexpected error: ${error instanceof Error ? (error.stack ?? error.message) : String(error)}\n`,
    );
    return EXIT.unreachable;
  }
}
