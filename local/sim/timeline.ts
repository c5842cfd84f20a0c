import type { IncidentEvent } from '../../app/ports';
import type { ScenarioFault, ScenarioReport } from '../../contracts/scenario';
import type { WorldEvent } from './world';

/** One line of a run's timeline. */
export interface TimelineEntry {
  /** Ms since the scenario started (negative while the site warms up). */
  readonly atMs: number;
  /** Where it came from: the simulated world, a site program, or the control plane. */
  readonly source: 'world' | 'site' | 'control-plane' | 'oracle';
  /** What it is about: a host, VM, relay or site id. */
  readonly subject: string;
  readonly text: string;
}

/** `+  2.650s  node01  text`: fixed-width time and subject so a run reads as columns. */
export function formatEntry(entry: TimelineEntry): string {
  const sign = entry.atMs < 0 ? '-' : '+';
  const seconds = `${(Math.abs(entry.atMs) / 1000).toFixed(3)}s`.padStart(8);
  const mark = entry.source === 'control-plane' ? '☁ ' : entry.source === 'oracle' ? '!!' : '  ';
  return `${sign}${seconds}  ${entry.subject.padEnd(10)} ${mark} ${entry.text}`;
}

function faultSubject(fault: ScenarioFault): string {
  if ('host' in fault) return fault.host;
  if ('vm' in fault) return fault.vm;
  if ('relay' in fault) return fault.relay;
  return fault.site;
}

/** The timeline text of a fault: what it does, for the faults whose type alone does not say. */
function faultText(fault: ScenarioFault): string {
  switch (fault.type) {
    case 'vm-start-fails':
      return `fault: ${fault.vm} will fail to start here`;
    case 'vm-crash':
      return 'fault injected: vm-crash (its process dies; the host stays up)';
    case 'vm-guest-shutdown':
      return 'fault injected: vm-guest-shutdown (its guest shuts down: on purpose)';
    case 'lan-degrade':
      return `fault injected: lan-degrade (${fault.delayMs} ms + up to ${fault.jitterMs} ms, ${fault.lossPct} % lost)`;
    case 'lan-heal':
      return "fault injected: lan-heal (the site's LAN is back to its own conditions)";
    default:
      return `fault injected: ${fault.type}`;
  }
}

/** The timeline entry of a world event; null for one that adds nothing for a reader. */
export function worldEntry(event: WorldEvent): TimelineEntry | null {
  const at = (subject: string, text: string): TimelineEntry => ({
    atMs: event.atMs,
    source: 'world',
    subject,
    text,
  });
  switch (event.kind) {
    case 'fault':
      return at(faultSubject(event.fault), faultText(event.fault));
    case 'power':
      return at(event.host, event.on ? 'power on' : `power off (${event.why})`);
    case 'os':
      // A power-off stops the OS too; that line already says so.
      if (!event.running && event.why !== 'crashed') return null;
      return at(event.host, event.running ? `booted (${event.bootId})` : 'OS crashed; its VMs are gone');
    case 'lan':
      return at(event.host, event.reachable ? 'back on the LAN' : 'LAN cable cut: isolated');
    case 'bmc':
      return at(
        event.host,
        event.mode === 'ok'
          ? 'BMC answers again'
          : event.mode === 'unreachable'
            ? 'BMC unreachable'
            : 'BMC acknowledges power-off but ignores it',
      );
    case 'vm-start':
      return at(event.vm, `running on ${event.host}`);
    case 'vm-stop':
      return at(event.vm, `stopped on ${event.host} (${event.why})`);
    case 'relay':
      return at(event.relay, event.up ? 'relay up' : 'relay down');
    case 'uplink':
      return at(event.site, event.up ? 'internet uplink restored' : 'internet uplink cut: site partitioned');
    case 'start-fails':
      return null;
    case 'operator-confirms-off':
      return at(event.host, 'operator confirms the host is powered off');
  }
}

/** The text of a control-plane incident event: short, from its data where it has some. */
export function incidentEventText(event: IncidentEvent): { subject: string | null; text: string } {
  const data = event.data ?? {};
  const str = (key: string): string | null => {
    const value = data[key];
    return typeof value === 'string' ? value : null;
  };
  const vmId = str('vmId');
  const hostId = str('hostId');
  switch (event.kind) {
    case 'vm-started':
      return { subject: vmId, text: `VM started on ${hostId ?? '?'} (control plane)` };
    case 'vm-unplaced':
      return { subject: vmId, text: `unplaced: ${shorten(event.detail, 90)}` };
    case 'closed':
      return { subject: null, text: `incident closed: ${str('outcome') ?? shorten(event.detail, 60)}` };
    case 'fence-ordered':
      return { subject: null, text: `fence ordered via ${str('relayId') ?? '?'}` };
    case 'power-off-confirmed':
      return {
        subject: null,
        text: `power-off confirmed (${str('by') === 'operator' ? 'by the operator' : 'IPMI read back off'})`,
      };
    default:
      return { subject: vmId, text: `${event.kind}: ${shorten(event.detail, 100)}` };
  }
}

function shorten(text: string, max: number): string {
  return text.length <= max ? text : `${text.slice(0, max - 1)}…`;
}

/**
 * Collects a run's timeline and prints it live. Consecutive VM stops on one host at the same instant (a
 * crash, a power-off) print as one line: the truth keeps one event per VM.
 */
export class Timeline {
  readonly entries: TimelineEntry[] = [];
  private stops: { host: string; why: string; atMs: number; vms: string[] } | null = null;

  constructor(private readonly onLine: (line: string) => void = () => undefined) {}

  add(entry: TimelineEntry): void {
    this.flushStops();
    this.push(entry);
  }

  world(event: WorldEvent): void {
    if (event.kind === 'vm-stop') {
      const group = this.stops;
      if (
        group !== null &&
        group.host === event.host &&
        group.why === event.why &&
        group.atMs === event.atMs
      ) {
        group.vms.push(event.vm);
        return;
      }
      this.flushStops();
      this.stops = { host: event.host, why: event.why, atMs: event.atMs, vms: [event.vm] };
      queueMicrotask(() => this.flushStops());
      return;
    }
    const entry = worldEntry(event);
    if (entry !== null) this.add(entry);
  }

  /** The entries in time order (control-plane events are polled, so they may arrive a little late). */
  sorted(): TimelineEntry[] {
    this.flushStops();
    return [...this.entries].sort((a, b) => a.atMs - b.atMs);
  }

  private flushStops(): void {
    const group = this.stops;
    if (group === null) return;
    this.stops = null;
    const text =
      group.vms.length === 1
        ? `${group.vms[0] ?? ''} stopped (${group.why})`
        : `${group.vms.length} VMs stopped (${group.why})`;
    this.push({ atMs: group.atMs, source: 'world', subject: group.host, text });
  }

  private push(entry: TimelineEntry): void {
    this.entries.push(entry);
    this.onLine(formatEntry(entry));
  }
}

function secondsOrDash(ms: number | null | undefined): string {
  return ms === null || ms === undefined ? '-' : `${(ms / 1000).toFixed(3)}s`;
}

/** The summary table printed after the timeline: one row per incident, then the violations. */
export function summaryTable(report: ScenarioReport): string {
  const header = [
    'incident',
    'outcome',
    'opened',
    'fenced',
    'first start',
    'last start',
    'started',
    'unplaced',
  ];
  const rows = report.incidents.map((incident, i) => {
    const starts = incident.starts.map((s) => s.atMs);
    return [
      `#${i + 1} ${incident.host}${incident.vm === undefined ? '' : `/${incident.vm}`}`,
      incident.outcome,
      secondsOrDash(incident.openedAtMs),
      secondsOrDash(incident.fencedAtMs),
      secondsOrDash(starts.length === 0 ? null : Math.min(...starts)),
      secondsOrDash(starts.length === 0 ? null : Math.max(...starts)),
      String(incident.starts.length),
      String(incident.unplaced.length),
    ];
  });
  const widths = header.map((h, c) => Math.max(h.length, ...rows.map((r) => (r[c] ?? '').length)));
  const line = (cells: readonly string[]) => cells.map((cell, c) => cell.padEnd(widths[c] ?? 0)).join('  ');
  const out = [`Scenario: ${report.scenario}`, '', line(header), line(widths.map((w) => '-'.repeat(w)))];
  if (rows.length === 0) out.push('(no incidents)');
  for (const row of rows) out.push(line(row));
  out.push('', ...downTable(report));
  if (report.violations.length === 0) out.push('Violations: none');
  else {
    out.push(`Violations: ${report.violations.length}`);
    for (const v of report.violations) out.push(`  ${v.rule}: ${v.detail}`);
  }
  return out.join('\n');
}

/** The VMs that ran nowhere for a while: how long in all (SLA minutes), and where each runs at the end. */
function downTable(report: ScenarioReport): string[] {
  const down = Object.entries(report.vms)
    .filter(([, vm]) => vm.downMs > 0)
    .sort(([a], [b]) => a.localeCompare(b));
  if (down.length === 0) return ['VMs down: none', ''];
  const header = ['vm', 'down', 'running on at the end'];
  const rows = down.map(([id, vm]) => [id, secondsOrDash(vm.downMs), vm.runningOn.join(', ') || '-']);
  const widths = header.map((h, c) => Math.max(h.length, ...rows.map((r) => (r[c] ?? '').length)));
  const line = (cells: readonly string[]) => cells.map((cell, c) => cell.padEnd(widths[c] ?? 0)).join('  ');
  return [
    `VMs down: ${down.length}`,
    line(header),
    line(widths.map((w) => '-'.repeat(w))),
    ...rows.map(line),
    '',
  ];
}
