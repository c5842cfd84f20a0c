import { realpathSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { Command, CommanderError } from 'commander';
import { DefinitionFiles } from '../adapters/definition-files';
import { HttpUplink } from '../adapters/http-uplink';
import { JsonLinesLogger } from '../adapters/json-logger';
import { LanTransport, readLanKey } from '../adapters/lan-transport';
import { RelayStateFile } from '../adapters/relay-state-file';
import { ConfigError } from '../config/config-file';
import { loadRelayConfig, type RelaySettings } from '../config/relay-config';
import type { Clock } from '../ports';
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

/** The process's clock. */
const systemClock: Clock = {
  now: () => Date.now(),
  sleep: (ms) => new Promise((resolve) => setTimeout(resolve, Math.max(0, ms))),
};

/** Where a command writes, and how it ends. */
export interface MainIo {
  readonly stdout: (text: string) => void;
  readonly stderr: (text: string) => void;
  /** Resolves when the program should stop (SIGTERM/SIGINT in production). */
  readonly stopSignal: AbortSignal;
}

/** Runs the command line; resolves with the exit code. */
export async function main(argv: readonly string[], io: MainIo): Promise<number> {
  let code = 0;
  const program = new Command('halo-relay')
    .description('Halo site relay: hears the host agents, reports to the control plane, fences hosts')
    // Not `requiredOption`: commander would demand it before dispatching to check-bmc too.
    .option('-c, --config <file>', 'relay configuration (YAML or JSON)')
    .enablePositionalOptions()
    .exitOverride()
    .configureOutput({ writeOut: io.stdout, writeErr: io.stderr })
    .action(async (opts: { config?: string }) => {
      if (opts.config === undefined) {
        io.stderr("halo-relay: required option '-c, --config <file>' not specified\n");
        code = 2;
        return;
      }
      code = await runRelay(loadRelayConfig(opts.config), io);
    });
  program
    .command('check-bmc')
    .exitOverride()
    .configureOutput({ writeOut: io.stdout, writeErr: io.stderr })
    .description('read the power status through every fence level of HOSTs (all when none); changes nothing')
    .argument('[hosts...]', 'host ids of the configuration')
    .requiredOption('-c, --config <file>', 'relay configuration (YAML or JSON)')
    .option('--json', 'print a JSON array instead of a table')
    .action(async (hosts: string[], opts: { config: string; json?: boolean }) => {
      const checks = await checkBmc(loadRelayConfig(opts.config), hosts);
      io.stdout(opts.json === true ? `${JSON.stringify(checks, null, 2)}\n` : renderChecks(checks));
      code = checks.every((c) => c.ok) ? 0 : 1;
    });
  try {
    await program.parseAsync([...argv], { from: 'user' });
    return code;
  } catch (error) {
    if (error instanceof CommanderError) return error.exitCode === 0 ? 0 : 2;
    if (error instanceof ConfigError) {
      io.stderr(`halo-relay: ${error.message}\n`);
      return 2;
    }
    throw error;
  }
}

/** The relay program: opens its ports, runs until stopped, saves its state. */
async function runRelay(settings: RelaySettings, io: MainIo): Promise<number> {
  const redact = makeRedactor(settings.credential, settings.secrets);
  const log = new JsonLinesLogger('halo-relay', redact, io.stdout);
  let key: Buffer;
  try {
    key = readLanKey(settings.lan.key);
  } catch (error) {
    throw new ConfigError(`lan.keyFile: ${(error as Error).message}`);
  }
  let relay: Relay | null = null;
  const lan = await LanTransport.open({
    siteId: settings.siteId,
    selfId: settings.relayId,
    key,
    listen: { host: settings.lan.host, port: settings.lan.port },
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

/** Whether this module is the process's entry point (run directly, through the npm bin or a bundle). */
function isEntryPoint(): boolean {
  const entry = process.argv[1];
  if (entry === undefined) return false;
  try {
    return realpathSync(entry) === realpathSync(fileURLToPath(import.meta.url));
  } catch {
    return false;
  }
}

/** Runs the program in this process: signals stop it, the exit code ends it. */
export async function runProcess(argv: readonly string[]): Promise<never> {
  const stop = new AbortController();
  const onSignal = () => stop.abort();
  process.once('SIGTERM', onSignal);
  process.once('SIGINT', onSignal);
  let code: number;
  try {
    code = await main(argv, {
      stdout: (text) => void process.stdout.write(text),
      stderr: (text) => void process.stderr.write(text),
      stopSignal: stop.signal,
    });
  } catch (error) {
    process.stderr.write(`halo-relay: ${error instanceof Error ? error.message : String(error)}\n`);
    code = 1;
  }
  process.exit(code);
}

if (isEntryPoint()) void runProcess(process.argv.slice(2));
