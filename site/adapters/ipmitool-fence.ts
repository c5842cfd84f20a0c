import type { FenceDevice, PowerStatus } from '../ports';
import { type RunResult, runProcess } from './child-process';

/** A BMC reached with ipmitool over IPMI v2 (lanplus). */
export interface IpmitoolFenceOptions {
  readonly address: string;
  /** UDP port of the BMC; 623 by default. */
  readonly port?: number;
  readonly username: string;
  readonly password: string;
  /** ipmitool -C; 3 by default. Without it ipmitool discovers the suite, ~10 s a call. */
  readonly cipherSuite?: number;
  readonly privilege?: 'ADMINISTRATOR' | 'OPERATOR' | 'USER';
  /** ipmitool -N, seconds per attempt; 1 by default, so a dead BMC fails in ~2 s, not 20. */
  readonly timeoutS?: number;
  /** ipmitool -R, attempts; 1 by default. */
  readonly retries?: number;
  /** Hard deadline of one ipmitool run, after which it is killed; 10 s by default. */
  readonly callTimeoutMs?: number;
  readonly ipmitoolPath?: string;
}

/** Longest part of ipmitool's output quoted in an error: enough for its one-line errors. */
const MAX_MESSAGE = 300;

/**
 * A host's BMC through ipmitool. The password reaches ipmitool in its environment (`-E`, IPMI_PASSWORD)
 * only: a `-P` argument would be readable by every user in /proc/PID/cmdline until ipmitool blanks it.
 * Each call is one ipmitool run; the fence run above decides about retries and reading power back.
 */
export class IpmitoolFenceDevice implements FenceDevice {
  readonly driver = 'ipmitool';
  private readonly baseArgs: readonly string[];
  private readonly password: string;
  private readonly callTimeoutMs: number;
  private readonly ipmitoolPath: string;

  constructor(options: IpmitoolFenceOptions) {
    const port = options.port ?? 623;
    const cipher = options.cipherSuite ?? 3;
    const timeoutS = options.timeoutS ?? 1;
    const retries = options.retries ?? 1;
    requireText('address', options.address);
    requireText('username', options.username);
    requireLine('password', options.password);
    requireInteger('port', port, 1, 65_535);
    requireInteger('cipherSuite', cipher, 0, 255);
    requireInteger('timeoutS', timeoutS, 1, 3600);
    requireInteger('retries', retries, 0, 100);
    this.password = options.password;
    this.callTimeoutMs = options.callTimeoutMs ?? 10_000;
    this.ipmitoolPath = options.ipmitoolPath ?? 'ipmitool';
    this.baseArgs = [
      ...['-I', 'lanplus', '-H', options.address, '-p', String(port), '-U', options.username],
      ...['-C', String(cipher), '-L', options.privilege ?? 'ADMINISTRATOR'],
      ...['-N', String(timeoutS), '-R', String(retries), '-E'],
    ];
  }

  async powerOff(): Promise<void> {
    const what = 'ipmitool chassis power off';
    const result = await this.run(['chassis', 'power', 'off'], what);
    if (result.code !== 0) throw new Error(`${what}: ${this.failure(result)}`);
  }

  async powerStatus(): Promise<PowerStatus> {
    const what = 'ipmitool chassis power status';
    const result = await this.run(['chassis', 'power', 'status'], what);
    if (result.code !== 0) throw new Error(`${what}: ${this.failure(result)}`);
    const match = /Chassis Power is (on|off)\b/i.exec(result.stdout);
    const power = match?.[1]?.toLowerCase();
    if (power === 'on' || power === 'off') return power;
    const answer = firstLine(result.stdout) ?? 'nothing';
    throw new Error(`${what}: unexpected answer: ${this.clean(answer)}`);
  }

  private async run(command: readonly string[], what: string): Promise<RunResult> {
    const result = await runProcess({
      file: this.ipmitoolPath,
      args: [...this.baseArgs, ...command],
      env: { IPMI_PASSWORD: this.password },
      timeoutMs: this.callTimeoutMs,
    });
    if (result.timedOut) throw new Error(`${what}: no answer within ${this.callTimeoutMs} ms (killed)`);
    return result;
  }

  /** ipmitool says what went wrong on its first stderr line ("Error: Unable to establish…"). */
  private failure(result: RunResult): string {
    const line = firstLine(result.stderr) ?? firstLine(result.stdout);
    return this.clean(line ?? `exit code ${result.code ?? 'none'}`);
  }

  /** ipmitool never sees the password on its command line, but a BMC's answer is not to be trusted. */
  private clean(text: string): string {
    const blanked = this.password.length >= 3 ? text.split(this.password).join('[redacted]') : text;
    return blanked.slice(0, MAX_MESSAGE);
  }
}

function firstLine(text: string): string | undefined {
  return text
    .split('\n')
    .map((line) => line.trim())
    .find((line) => line.length > 0);
}

function requireLine(name: string, value: string): void {
  if (/[\0\r\n]/.test(value)) throw new Error(`ipmitool fence device: ${name} must be one line`);
}

function requireText(name: string, value: string): void {
  requireLine(name, value);
  // A value read as an option by ipmitool would change the command, not just fail it.
  if (value.trim().length === 0 || value.startsWith('-')) {
    throw new Error(`ipmitool fence device: ${name} must be non-empty and not start with '-'`);
  }
}

function requireInteger(name: string, value: number, min: number, max: number): void {
  if (!Number.isInteger(value) || value < min || value > max) {
    throw new Error(`ipmitool fence device: ${name} must be an integer from ${min} to ${max}`);
  }
}
