import { JsonLinesLogger } from '../adapters/json-logger';
import { LanTransport } from '../adapters/lan-transport';
import { VirshEventWatcher } from '../adapters/virsh-events';
import { VirshHypervisor } from '../adapters/virsh-hypervisor';
import { loadAgentConfig } from '../config/agent-config';
import {
  configOption,
  isEntryPoint,
  type MainIo,
  newCommand,
  parseCommand,
  runProgram,
  systemClock,
} from '../program';
import { makeRedactor } from '../relay/redact';
import { HostAgent } from './host-agent';

/**
 * `halo-agent --config FILE`: the host agent of one KVM/libvirt host. It heartbeats to every relay of its
 * site, hands them its inventory and VM definitions, and starts the VMs they ask for. It never starts or
 * stops a VM on its own initiative.
 *
 * Exit codes: 0 stopped by SIGTERM/SIGINT; 1 failed at run time; 2 bad usage or configuration.
 */

/** Without libvirt events (a `test:///` URI), the inventory is read this often to notice changes. */
const POLL_MS = 500;

/** Runs the command line; resolves with the exit code. */
export async function main(argv: readonly string[], io: MainIo): Promise<number> {
  let code = 0;
  const program = newCommand(
    'halo-agent',
    'Halo host agent: reports this host and its VMs to the site relays, starts VMs they ask for',
    io,
  )
    .option('-c, --config <file>', 'agent configuration (YAML or JSON)')
    .action(async (opts: { config?: string }) => {
      code = await runAgent(configOption(opts), io);
    });
  return parseCommand(program, argv, io, () => code);
}

async function runAgent(configPath: string, io: MainIo): Promise<number> {
  const settings = loadAgentConfig(configPath);
  const redact = makeRedactor('', settings.secrets);
  const log = new JsonLinesLogger('halo-agent', redact, io.stdout);
  const hypervisor = await VirshHypervisor.open({
    uri: settings.hypervisor.uri,
    ...(settings.hypervisor.bootIdFile === undefined ? {} : { bootIdFile: settings.hypervisor.bootIdFile }),
    ...(settings.hypervisor.virshPath === undefined ? {} : { virshPath: settings.hypervisor.virshPath }),
    log,
  });
  let agent: HostAgent | null = null;
  const lan = await LanTransport.open({
    siteId: settings.siteId,
    selfId: settings.hostId,
    key: settings.lan.key,
    listen: { host: settings.lan.host, port: settings.lan.port },
    peers: settings.relays,
    receive: (message) => agent?.receive(message),
    ...(settings.lan.maxSkewMs === undefined ? {} : { maxSkewMs: settings.lan.maxSkewMs }),
    log,
  });
  const hostAgent = new HostAgent(
    {
      hostId: settings.hostId,
      cluster: settings.cluster,
      relays: Object.keys(settings.relays),
      hostHeartbeatMs: settings.hostHeartbeatMs,
      ...(settings.definitionRefreshMs === undefined
        ? {}
        : { definitionRefreshMs: settings.definitionRefreshMs }),
    },
    { clock: systemClock, hypervisor, lan, log },
  );
  agent = hostAgent;
  const useEvents = settings.hypervisor.events && !settings.hypervisor.uri.startsWith('test:///');
  const watcher = useEvents
    ? new VirshEventWatcher(
        settings.hypervisor.uri,
        () => hostAgent.changed(),
        log,
        settings.hypervisor.virshPath,
      )
    : null;
  watcher?.start();
  const poll = useEvents ? null : startPolling(hypervisor, () => hostAgent.changed(), io.stopSignal);
  log.info('agent started', {
    site: settings.siteId,
    host: settings.hostId,
    cluster: settings.cluster,
    relays: Object.keys(settings.relays),
    hypervisor: settings.hypervisor.uri,
    changes: useEvents ? 'libvirt events' : `polled every ${POLL_MS} ms`,
    lan: `${settings.lan.host}:${lan.address().port}`,
  });
  try {
    await hostAgent.run(io.stopSignal);
    log.info('agent stopped', { lan: lan.stats() });
    return 0;
  } catch (error) {
    log.error('agent failed', { error: error instanceof Error ? error.message : String(error) });
    return 1;
  } finally {
    watcher?.stop();
    await poll;
    await lan.close();
    await hypervisor.close();
  }
}

/**
 * Reads the VMs' states every POLL_MS and says when they changed: the fallback for connections without
 * events, so that a crashed or started VM is reported within half a second rather than a heartbeat.
 */
async function startPolling(
  hypervisor: VirshHypervisor,
  onChange: () => void,
  stop: AbortSignal,
): Promise<void> {
  let last: string | null = null;
  while (!stop.aborted) {
    await systemClock.sleep(POLL_MS);
    if (stop.aborted) break;
    try {
      const vms = await hypervisor.listVms();
      const key = JSON.stringify(vms.map((vm) => [vm.id, vm.state, vm.reason ?? null]).sort());
      if (last !== null && key !== last) onChange();
      last = key;
    } catch {
      // The heartbeat reports hypervisor trouble; the poll only looks for changes.
    }
  }
}

/** Runs halo-agent in this process (the npm bin and the bundle). */
export function runProcess(argv: readonly string[]): Promise<never> {
  return runProgram('halo-agent', main, argv);
}

if (isEntryPoint(import.meta.url)) void runProcess(process.argv.slice(2));
