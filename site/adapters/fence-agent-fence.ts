import { constants } from 'node:fs';
import { access } from 'node:fs/promises';
import { delimiter, join } from 'node:path';
import type { FenceDevice, PowerStatus } from '../ports';
import { type RunResult, runProcess } from './child-process';

/** A fence device driven by one of the cluster fence agents (fence-agents: fence_ipmilan, fence_redfish…). */
export interface FenceAgentOptions {
  /** The agent's program name, e.g. `fence_ipmilan`. */
  readonly agent: string;
  /**
   * The agent's own options as its metadata (`fence_X -o metadata`) names them: ip, ipport, username,
   * password, lanplus, cipher, plug… `action` is the adapter's to set.
   */
  readonly options: Readonly<Record<string, string>>;
  /** Hard deadline of one agent run, after which it and its children are killed; 30 s by default. */
  readonly callTimeoutMs?: number;
  /** Where to look for the agent, PATH-style; by default the relay's PATH plus /usr/sbin and /sbin. */
  readonly agentDir?: string;
}

/** Longest part of the agent's output quoted in an error. */
const MAX_MESSAGE = 300;

/** Option names whose values are secrets, blanked from every message (password, snmp_priv_passwd…). */
const SECRET_OPTION = /pas+w|passphrase|pwd|secret|community|token|credential|key|kg/i;

/** Exit codes of the fence-agents convention for `action=status`. */
const STATUS_ON = 0;
const STATUS_OFF = 2;

/**
 * A fence device behind a fence agent. The agent runs with no arguments and reads its options from
 * standard input as `name=value` lines, the form Pacemaker uses, so no option (the password above all)
 * is on its command line. The agent itself may put secrets on the command lines of what it runs:
 * fence_ipmilan runs `ipmitool … -P <password>` (ipmitool blanks it once started), whatever the input form.
 */
export class FenceAgentDevice implements FenceDevice {
  readonly driver: string;
  private readonly input: string;
  private readonly secrets: readonly string[];
  private readonly callTimeoutMs: number;
  private readonly searchPath: readonly string[];
  private agentPath: string | undefined;

  constructor(options: FenceAgentOptions) {
    if (!/^fence_[a-z0-9_]+$/.test(options.agent)) {
      throw new Error(`fence agent: '${options.agent}' is not a fence agent name (fence_[a-z0-9_]+)`);
    }
    this.driver = options.agent;
    const lines: string[] = [];
    const secrets: string[] = [];
    for (const [name, value] of Object.entries(options.options)) {
      checkOption(options.agent, name, value);
      lines.push(`${name}=${value}\n`);
      if (SECRET_OPTION.test(name) && value.length >= 3) secrets.push(value);
    }
    this.input = lines.join('');
    // Longest first, so a password containing another secret is blanked whole.
    this.secrets = secrets.sort((a, b) => b.length - a.length);
    this.callTimeoutMs = options.callTimeoutMs ?? 30_000;
    const path = options.agentDir ?? [process.env.PATH ?? '', '/usr/sbin', '/sbin'].join(delimiter);
    this.searchPath = path.split(delimiter).filter((dir) => dir.length > 0);
  }

  async powerOff(): Promise<void> {
    const result = await this.run('off');
    if (result.code !== 0) throw new Error(`${this.driver} off: ${this.failure(result)}`);
  }

  async powerStatus(): Promise<PowerStatus> {
    const result = await this.run('status');
    if (result.code === STATUS_ON) return 'on';
    if (result.code === STATUS_OFF) return 'off';
    throw new Error(`${this.driver} status: ${this.failure(result)}`);
  }

  private async run(action: 'off' | 'status'): Promise<RunResult> {
    const file = await this.locate();
    const result = await runProcess({
      file,
      args: [],
      env: {
        PATH: [process.env.PATH ?? '', '/usr/sbin', '/sbin'].join(delimiter),
        LC_ALL: 'C',
        // Python agents import a deprecated module (`pipes`) and warn on every run; the noise hides errors.
        PYTHONWARNINGS: 'ignore::DeprecationWarning',
      },
      stdin: `${this.input}action=${action}\n`,
      timeoutMs: this.callTimeoutMs,
    });
    if (result.timedOut) {
      throw new Error(`${this.driver} ${action}: no answer within ${this.callTimeoutMs} ms (killed)`);
    }
    return result;
  }

  /** The agent's absolute path, found once: a relay whose agent is missing fails every call, clearly. */
  private async locate(): Promise<string> {
    if (this.agentPath !== undefined) return this.agentPath;
    for (const dir of this.searchPath) {
      const candidate = join(dir, this.driver);
      try {
        await access(candidate, constants.X_OK);
        this.agentPath = candidate;
        return candidate;
      } catch {
        // Not in this directory.
      }
    }
    throw new Error(`${this.driver}: fence agent not found in ${this.searchPath.join(delimiter)}`);
  }

  private failure(result: RunResult): string {
    const line = agentMessage(result.stderr) ?? agentMessage(result.stdout);
    const text = line ?? `exit code ${result.code ?? 'none'}`;
    let clean = text;
    for (const secret of this.secrets) clean = clean.split(secret).join('[redacted]');
    return clean.slice(0, MAX_MESSAGE);
  }
}

/**
 * The line of an agent's output that says what went wrong: its logged ERROR when there is one (warnings
 * such as "Parse error: Ignoring unknown option" come first), else the first line that is not Python
 * warning noise, without the logger's timestamp and level.
 */
function agentMessage(text: string): string | undefined {
  const lines: string[] = [];
  let inWarning = false;
  for (const raw of text.split('\n')) {
    const line = raw.trimEnd();
    if (line.trim().length === 0) continue;
    // "/usr/sbin/fence_x:5: DeprecationWarning: …" then the offending source line, indented.
    if (/^\S.*:\d+: \w*Warning: /.test(line)) {
      inWarning = true;
      continue;
    }
    if (inWarning && /^\s/.test(line)) continue;
    inWarning = false;
    lines.push(line.trim());
  }
  const error = lines.find((line) => /\b(ERROR|CRITICAL):/.test(line));
  const chosen = error ?? lines[0];
  if (chosen === undefined) return undefined;
  return chosen
    .replace(/^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d(,\d+)? /, '')
    .replace(/^(ERROR|CRITICAL|WARNING): /, '');
}

/**
 * An option must arrive as exactly the line it is: the agent splits its input on newlines, strips each line
 * and drops one pair of surrounding quotes, so a newline would smuggle in another option and padding would
 * silently change a password.
 */
function checkOption(agent: string, name: string, value: string): void {
  if (!/^[A-Za-z][A-Za-z0-9_-]*$/.test(name)) {
    throw new Error(`fence agent ${agent}: option name '${name}' is not a plain option name`);
  }
  if (name === 'action')
    throw new Error(`fence agent ${agent}: 'action' is set by the relay, not configured`);
  if (/[\0\r\n]/.test(value)) throw new Error(`fence agent ${agent}: option ${name} must be one line`);
  if (value !== value.trim()) {
    throw new Error(
      `fence agent ${agent}: option ${name} has leading or trailing blanks the agent would strip`,
    );
  }
}
