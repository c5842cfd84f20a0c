import { parseArgs } from 'node:util';
import { EXIT, type ExitCode, type Io } from './format';
import { PLAN_USAGE, planCommand } from './plan';

/** A subcommand: parses its own arguments, writes to the sink, returns the exit code. */
interface Command {
  readonly usage: string;
  readonly summary: string;
  readonly run: (args: readonly string[], io: Io) => Promise<ExitCode>;
}

// Adding a subcommand is one entry here.
const COMMANDS: Readonly<Record<string, Command>> = {
  plan: {
    usage: PLAN_USAGE,
    summary: 'N+1 report: can each cluster survive the loss of any one host?',
    run: planCommand,
  },
};

function usage(): string {
  const lines = [
    ...Object.values(COMMANDS).map((c) => [c.usage, c.summary] as const),
    ['halo <command> --help', 'help for one command'] as const,
  ];
  const width = Math.max(...lines.map(([u]) => u.length));
  return `Usage:\n${lines.map(([u, summary]) => `  ${u.padEnd(width)}  ${summary}`).join('\n')}\n`;
}

function help(): string {
  return `Halo: HA control plane for on-prem hypervisor hosts.

${usage()}
Exit status:
  0  success; for plan: every cluster survives the loss of any one host, unattended
  1  the check failed; for plan: N+1 fails (some host failure leaves HA VMs down)
     or some host cannot be fenced (its failover waits for an operator)
  2  usage error, or an unreadable or invalid input file
`;
}

const usageError = (io: Io, problem: string): ExitCode => {
  io.stderr(`halo: ${problem}\n${usage()}`);
  return EXIT.usage;
};

async function main(argv: readonly string[], io: Io): Promise<ExitCode> {
  // Options before the command are global; everything after it belongs to the command.
  const { tokens } = parseArgs({
    args: [...argv],
    options: { help: { type: 'boolean', short: 'h' } },
    allowPositionals: true,
    strict: false,
    tokens: true,
  });
  for (const token of tokens) {
    if (token.kind === 'option') {
      if (token.name === 'help') {
        io.stdout(help());
        return EXIT.ok;
      }
      return usageError(io, `unknown option ${token.rawName}`);
    }
    if (token.kind === 'positional') {
      const command = Object.hasOwn(COMMANDS, token.value) ? COMMANDS[token.value] : undefined;
      if (command === undefined) return usageError(io, `unknown command ${token.value}`);
      return command.run(argv.slice(token.index + 1), io);
    }
  }
  return usageError(io, 'missing command');
}

const io: Io = {
  stdout: (text) => process.stdout.write(text),
  stderr: (text) => process.stderr.write(text),
};

// exitCode rather than exit(): a long report piped to another program is flushed before Node exits.
process.exitCode = await main(process.argv.slice(2), io);
