import { realpathSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { OPERATOR_ROUTES } from '../contracts/operator-api';
import { type LocalControlPlane, startLocalControlPlane } from './control-plane';
import { REPORT_ROUTE_KEY } from './http-endpoint';
import { localTokenPath, newLocalToken, writeLocalToken } from './local-token';

/**
 * `npx tsx local/serve.ts [--port 8787]`: the local control plane in the foreground, until SIGINT/SIGTERM.
 * The endpoint is on 127.0.0.1 only and has no SigV4: operator requests present the local operator token
 * (a fresh one per start, printed and written 0600 to local/local-token.ts localTokenPath) and act as the
 * local operator; the endpoint also refuses foreign Host and Origin headers (local/http-endpoint.ts).
 */

/** Port when none is given. */
export const DEFAULT_SERVE_PORT = 8787;

/** Parsed command line of serve. */
export interface ServeArgs {
  readonly port: number;
}

/** Parses `[--port N]` (also `--port=N`); throws with a usage line on anything else. */
export function parseServeArgs(argv: readonly string[]): ServeArgs {
  let port = DEFAULT_SERVE_PORT;
  for (let i = 0; i < argv.length; i += 1) {
    const arg = argv[i] ?? '';
    const value =
      arg === '--port' ? argv[++i] : arg.startsWith('--port=') ? arg.slice('--port='.length) : null;
    if (value === null) throw new Error(`unknown argument ${arg}; usage: serve [--port N]`);
    const parsed = Number(value);
    if (value === undefined || !Number.isInteger(parsed) || parsed < 0 || parsed > 65_535) {
      throw new Error(`--port needs a port number (0–65535), got ${value ?? 'nothing'}`);
    }
    port = parsed;
  }
  return { port };
}

/**
 * What serve prints once the control plane is up: the URL, the local operator token and its file, the
 * routes, and how to enrol a relay.
 */
export function banner(
  plane: Pick<LocalControlPlane, 'url' | 'operatorToken'>,
  startupMs: number,
  tokenFile: string,
): string {
  const { url } = plane;
  const routes = [REPORT_ROUTE_KEY, ...OPERATOR_ROUTES.map((r) => `${r.method} ${r.path}`)];
  return [
    `Halo local control plane on ${url} (started in ${Math.round(startupMs)} ms)`,
    'Loopback only, no SigV4: operator requests need the local operator token and act as',
    'arn:aws:iam::000000000000:user/local-operator; bodies must be application/json.',
    `Local operator token (new at every start; the halo CLI reads it from ${tokenFile}):`,
    `  ${plane.operatorToken}`,
    '',
    'Routes:',
    ...routes.map((r) => `  ${r}`),
    '',
    'Enrol a relay (the credential in the answer is shown once):',
    `  curl -sS -X POST ${url}/v1/sites/site-1/relays -H "authorization: Bearer $(cat ${tokenFile})" \\`,
    `    -H 'content-type: application/json' -d '{"relayId":"relay-1"}'`,
    'Report as that relay:',
    `  curl -sS -X POST ${url}/v1/reports -H "authorization: Bearer $CREDENTIAL" -H 'content-type: application/json' \\`,
    `    -d '{"protocol":1,"siteId":"site-1","relayId":"relay-1","seq":1,"sentAt":'$(date +%s%3N)',"hosts":[]}'`,
    '',
    'Ctrl-C stops it.',
  ].join('\n');
}

let serving: Promise<void> | undefined;

/**
 * Starts the control plane, prints the banner, and stops it gracefully on SIGINT/SIGTERM. One control
 * plane per process: a second call returns the first call's promise.
 */
export function serve(argv: readonly string[]): Promise<void> {
  serving ??= run(argv);
  return serving;
}

async function run(argv: readonly string[]): Promise<void> {
  const args = parseServeArgs(argv);
  const started = performance.now();
  const tokenFile = localTokenPath();
  const operatorToken = newLocalToken();
  // Written before the endpoint listens: the CLI finds the token as soon as the port answers.
  await writeLocalToken(tokenFile, operatorToken);
  const plane = await startLocalControlPlane({
    port: args.port,
    operatorToken,
    tokenFile,
    log: (line) => process.stdout.write(`${new Date().toISOString()} ${line}\n`),
  });
  process.stdout.write(`${banner(plane, performance.now() - started, tokenFile)}\n`);
  await new Promise<void>((resolve) => {
    const onSignal = (signal: NodeJS.Signals) => {
      process.stdout.write(`${signal}: stopping…\n`);
      // A second signal while stopping means "now".
      process.once('SIGINT', () => process.exit(130));
      process.once('SIGTERM', () => process.exit(143));
      resolve();
    };
    process.once('SIGINT', onSignal);
    process.once('SIGTERM', onSignal);
  });
  await plane.stop();
  process.stdout.write('stopped\n');
}

/** True when this module is the program (`tsx local/serve.ts`). */
function isMain(): boolean {
  const invokedAs = process.argv[1];
  if (invokedAs === undefined) return false;
  try {
    return realpathSync(invokedAs) === fileURLToPath(import.meta.url);
  } catch {
    return false;
  }
}

// Runs as a program (`tsx local/serve.ts`); an import (local/start.ts for `--serve`, tests) starts nothing.
if (isMain()) {
  serve(process.argv.slice(2)).catch((error: unknown) => {
    process.stderr.write(`${error instanceof Error ? error.message : String(error)}\n`);
    process.exitCode = 1;
  });
}
