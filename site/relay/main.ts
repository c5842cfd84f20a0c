import { DefinitionFiles } from '../adapters/definition-files';
import { HttpUplink } from '../adapters/http-uplink';
import { JsonLinesLogger } from '../adapters/json-logger';
import { LanTransport } from '../adapters/lan-transport';
import { RelayStateFile } from '../adapters/relay-state-file';
import { loadRelayConfig, type RelaySettings } from '../config/relay-config';
import {
  configOption,
  isEntryPoint,
  type MainIo,
  newCommand,
  parseCommand,
  runProgram,
  systemClock,
} from '../program';
import { checkBmc, renderChecks } from './check-bmc';
import { fenceConfig } from './devices';
import { makeRedactor } from './redact';
import { Relay } from './relay';

/**
 * `halo-relay`: the site relay program.
 *
 *   halo-relay --config FILE                              the relay (runs until SIGTERM/SIGINT)
 *   halo-relay check-bmc --config FILE [--json] [HOST…]   reads every fence level, changes nothing
 *
 * Exit codes: 0 ok; 1 check-bmc found a level that did not answer (or the relay failed at run time);
 * 2 bad usage or configuration (the message names the field or file).
 */

/** Runs the command line; resolves with the exit code. */
export async function main(argv: readonly string[], io: MainIo): Promise<number> {
  let code = 0;
  const program = newCommand(
    'halo-relay',
    'Halo site relay: hears the host agents, reports to the control plane, fences hosts',
    io,
  )
    .option('-c, --config <file>', 'relay configuration (YAML or JSON)')
    .enablePositionalOptions()
    .action(async (opts: { config?: string }) => {
      code = await runRelay(loadRelayConfig(configOption(opts)), io);
    });
  const checkCommand = newCommand(
    'check-bmc',
    'read the power status through every fence level of HOSTs (all when none); changes nothing',
    io,
  )
    .argument('[hosts...]', 'host ids of the configuration')
    .requiredOption('-c, --config <file>', 'relay configuration (YAML or JSON)')
    .option('--json', 'print a JSON array instead of a table')
    .action(async (hosts: string[], opts: { config: string; json?: boolean }) => {
      const checks = await checkBmc(loadRelayConfig(opts.config), hosts);
      io.stdout(opts.json === true ? `${JSON.stringify(checks, null, 2)}\n` : renderChecks(checks));
      code = checks.every((c) => c.ok) ? 0 : 1;
    });
  program.addCommand(checkCommand);
  return parseCommand(program, argv, io, () => code);
}

/** The relay program: opens its ports, runs until stopped, saves its state. */
async function runRelay(settings: RelaySettings, io: MainIo): Promise<number> {
  const redact = makeRedactor(settings.credential, settings.secrets);
  const log = new JsonLinesLogger('halo-relay', redact, io.stdout);
  let relay: Relay | null = null;
  const lan = await LanTransport.open({
    siteId: settings.siteId,
    selfId: settings.relayId,
    key: settings.lan.key,
    listen: { host: settings.lan.host, port: settings.lan.port },
    peers: settings.lan.relays,
    receive: (message) => relay?.receive(message),
    ...(settings.lan.maxSkewMs === undefined ? {} : { maxSkewMs: settings.lan.maxSkewMs }),
    log,
  });
  try {
    relay = await Relay.open(
      {
        siteId: settings.siteId,
        relayId: settings.relayId,
        credential: settings.credential,
        timing: settings.timing,
        fence: fenceConfig(settings.hosts),
        secrets: settings.secrets,
        peers: Object.keys(settings.lan.relays),
        ...(settings.fenceCheckMs === undefined ? {} : { fenceCheckMs: settings.fenceCheckMs }),
        ...(settings.bmcPollMs === undefined ? {} : { bmcPollMs: settings.bmcPollMs }),
      },
      {
        clock: systemClock,
        uplink: new HttpUplink(settings.controlPlaneUrl, settings.requestTimeoutMs),
        lan,
        state: new RelayStateFile(settings.stateDir),
        definitions: new DefinitionFiles(settings.stateDir),
        log,
      },
    );
    log.info('relay started', {
      site: settings.siteId,
      relay: settings.relayId,
      controlPlane: new URL(settings.controlPlaneUrl).origin,
      lan: `${settings.lan.host}:${lan.address().port}`,
      hosts: Object.keys(settings.hosts).length,
    });
    await relay.run(io.stopSignal);
    log.info('relay stopped; state saved', { lan: lan.stats() });
    return 0;
  } catch (error) {
    // Through the redacting logger: an error from a port may quote what it was given.
    log.error('relay failed', { error: error instanceof Error ? error.message : String(error) });
    return 1;
  } finally {
    await lan.close();
  }
}

/** Runs halo-relay in this process (the npm bin and the bundle). */
export function runProcess(argv: readonly string[]): Promise<never> {
  return runProgram('halo-relay', main, argv);
}

if (isEntryPoint(import.meta.url)) void runProcess(process.argv.slice(2));
