import type { Incident, IncidentDetail, IncidentEvent } from './api';
import { listOf, plural, renderTable } from './format';
import type { Style } from './style';
import { formatDuration, formatInstant, formatWhen, type TimeContext } from './time';

/**
 * `halo incident <id>` for people: what happened, when, how long each step took, why the host was judged
 * dead and how it was fenced, where each VM went and what was left down. Pure: the same incident, clock
 * and zone render the same text.
 */

const INDENT = '  ';

/** Outcomes an operator must act on or know about: the answer is bad news (exit 1). */
export function incidentIsBadNews(detail: IncidentDetail): boolean {
  const { outcome } = detail.incident;
  return (
    outcome === 'awaiting-operator' || outcome === 'partially-recovered' || vmRows(detail).some((r) => r.down)
  );
}

/** The Step Functions console page of an execution (its region is the ARN's). */
export function consoleUrl(executionArn: string): string | null {
  const region = executionArn.split(':')[3];
  if (region === undefined || region === '') return null;
  return (
    `https://${region}.console.aws.amazon.com/states/home?region=${region}` +
    `#/v2/executions/details/${executionArn}`
  );
}

/** A colour for an outcome: good, bad, or in between. */
export function outcomeText(outcome: string, style: Style): string {
  if (outcome === 'recovered' || outcome === 'false-alarm') return style.good(outcome);
  if (outcome === 'awaiting-operator' || outcome === 'partially-recovered') return style.bad(outcome);
  return style.warn(outcome);
}

/** What an incident is about, in words: `host node01` or `VM web-1 (on node01)`. */
export function subjectOf(incident: Incident): string {
  return incident.kind === 'vm' && incident.vmId
    ? `VM ${incident.vmId} (on ${incident.hostId})`
    : `host ${incident.hostId}`;
}

const str = (value: unknown): string | undefined => (typeof value === 'string' ? value : undefined);
const num = (value: unknown): number | undefined => (typeof value === 'number' ? value : undefined);
const arr = (value: unknown): unknown[] => (Array.isArray(value) ? value : []);
const rec = (value: unknown): Record<string, unknown> =>
  typeof value === 'object' && value !== null && !Array.isArray(value)
    ? (value as Record<string, unknown>)
    : {};

/** One VM of the incident: its fate, where it went, and why. */
interface VmRow {
  readonly vmId: string;
  readonly priority: string;
  readonly outcome: string;
  readonly where: string;
  readonly attempts: number;
  readonly at: number | null;
  readonly why: string;
  /** Left down: unplaced, unconfirmed, or not started by a closed incident. */
  readonly down: boolean;
}

/** Per VM, from the timeline: the HA set, the plan, each start ordered, failed or confirmed. */
function vmRows(detail: IncidentDetail): VmRow[] {
  const { incident, events } = detail;
  const order: string[] = [];
  const priority = new Map<string, string>();
  const note = (vmId: string | undefined, p?: string) => {
    if (vmId === undefined) return;
    if (!order.includes(vmId)) order.push(vmId);
    if (p !== undefined && !priority.has(vmId)) priority.set(vmId, p);
  };
  const planned = new Map<string, { hostId: string; reason: string }>();
  const unplaced = new Map<string, string>();
  const already = new Map<string, string>();
  const started = new Map<string, { hostId: string; at: number; attempt: number | undefined }>();
  const orders = new Map<string, number>();
  const lastOrder = new Map<string, string>();
  const failures = new Map<string, string[]>();
  const leftDown = new Map<string, string>();
  if (incident.kind === 'vm' && incident.vmId) note(incident.vmId);
  for (const event of events) {
    const data = event.data ?? {};
    const vmId = str(data.vmId);
    switch (event.kind) {
      case 'ha-vms':
        for (const vm of arr(data.vms)) note(str(rec(vm).vmId), str(rec(vm).priority));
        break;
      case 'placement-planned': {
        const plan = rec(data.plan);
        for (const wave of arr(plan.waves))
          for (const vm of arr(rec(wave).vms)) {
            const v = rec(vm);
            const id = str(v.vmId);
            note(id, str(v.priority));
            if (id !== undefined)
              planned.set(id, { hostId: str(v.hostId) ?? '?', reason: str(v.reason) ?? '' });
          }
        for (const vm of arr(plan.unplaced)) {
          const v = rec(vm);
          const id = str(v.vmId);
          note(id, str(v.priority));
          if (id !== undefined) unplaced.set(id, `${str(v.reason) ?? 'unplaced'}: ${str(v.detail) ?? ''}`);
        }
        for (const vm of arr(plan.running)) {
          const id = str(rec(vm).vmId);
          note(id);
          if (id !== undefined) already.set(id, str(rec(vm).hostId) ?? '?');
        }
        break;
      }
      case 'start-ordered':
      case 'restart-scheduled':
        note(vmId);
        if (vmId !== undefined && event.kind === 'start-ordered') {
          orders.set(vmId, (orders.get(vmId) ?? 0) + 1);
          lastOrder.set(vmId, str(data.hostId) ?? '?');
        }
        break;
      case 'vm-started':
        note(vmId);
        if (vmId !== undefined && !started.has(vmId))
          started.set(vmId, { hostId: str(data.hostId) ?? '?', at: event.at, attempt: num(data.attempt) });
        break;
      case 'start-failed':
      case 'restart-failed':
        note(vmId);
        if (vmId !== undefined) failures.set(vmId, [...(failures.get(vmId) ?? []), str(data.hostId) ?? '?']);
        break;
      case 'vm-unplaced':
      case 'start-unconfirmed':
        note(vmId);
        if (vmId !== undefined)
          leftDown.set(vmId, event.kind === 'vm-unplaced' ? 'unplaced' : 'start unconfirmed');
        break;
      default:
        break;
    }
  }
  const closed = incident.closedAt !== null;
  return order.map((vmId): VmRow => {
    const start = started.get(vmId);
    const failed = failures.get(vmId) ?? [];
    const failedText = failed.length === 0 ? '' : `; failed on ${listOf(failed)}`;
    const attempts = orders.get(vmId) ?? 0;
    const base = { vmId, priority: priority.get(vmId) ?? '', attempts };
    if (start !== undefined) {
      const plan = planned.get(vmId);
      const why =
        plan !== undefined && plan.hostId === start.hostId ? plan.reason : 'moved on after a failed start';
      return {
        ...base,
        outcome: 'started',
        where: `→ ${start.hostId}`,
        at: start.at,
        why: why + failedText,
        down: false,
      };
    }
    const runs = already.get(vmId);
    if (runs !== undefined)
      return {
        ...base,
        outcome: 'already running',
        where: runs,
        at: null,
        why: 'found running when planned',
        down: false,
      };
    const why = unplaced.get(vmId);
    if (why !== undefined || leftDown.get(vmId) === 'unplaced')
      return {
        ...base,
        outcome: 'unplaced',
        where: '—',
        at: null,
        why: (why ?? 'no host could take it') + failedText,
        down: true,
      };
    const plan = planned.get(vmId);
    if (leftDown.get(vmId) === 'start unconfirmed')
      return {
        ...base,
        outcome: 'unconfirmed',
        where: lastOrder.has(vmId) ? `(→ ${lastOrder.get(vmId)})` : '—',
        at: null,
        why: `ordered, no start confirmed in time${failedText}`,
        down: true,
      };
    return {
      ...base,
      outcome: closed ? 'not started' : 'pending',
      where: plan === undefined ? '' : `(→ ${plan.hostId})`,
      at: null,
      why: (plan?.reason ?? '') + failedText,
      down: closed && incident.outcome !== 'false-alarm' && incident.outcome !== 'fencing-suppressed',
    };
  });
}

/** Offset from the incident's opening: `+1.2 s`. */
const offset = (at: number, incident: Incident): string => `+${formatDuration(at - incident.openedAt)}`;

function header(detail: IncidentDetail, time: TimeContext, style: Style, local: boolean): string[] {
  const { incident } = detail;
  const end = incident.closedAt ?? time.now;
  const lines = [
    style.bold(`Incident ${incident.incidentId}`) +
      ` — ${subjectOf(incident)}, site ${incident.siteId}, cluster ${incident.cluster}`,
    `${INDENT}outcome    ${outcomeText(incident.outcome, style)}${incident.closedAt === null ? ' (open)' : ''}`,
    `${INDENT}opened     ${formatWhen(incident.openedAt, time)}`,
    incident.closedAt === null
      ? `${INDENT}open for   ${formatDuration(end - incident.openedAt)}`
      : `${INDENT}closed     ${formatWhen(incident.closedAt, time)}, after ${formatDuration(end - incident.openedAt)}`,
  ];
  if (incident.fencedAt !== null)
    lines.push(
      `${INDENT}fenced     ${formatInstant(incident.fencedAt, time.timeZone)} (${offset(incident.fencedAt, incident)})`,
    );
  const answer = incident.operatorAnswer ?? null;
  if (answer !== null)
    lines.push(
      `${INDENT}operator   ${answer.decision} by ${answer.by} at ${formatInstant(answer.at, time.timeZone)}`,
    );
  const arn = detail.executionArn ?? incident.executionArn;
  if (arn !== null) {
    const url = consoleUrl(arn);
    lines.push(
      local || url === null
        ? `${INDENT}execution  ${arn} (local control plane: no Step Functions console)`
        : `${INDENT}execution  ${url}`,
    );
  }
  return lines;
}

/** The events in time order with their offsets, and each step's duration: until the next event. */
function timeline(detail: IncidentDetail, time: TimeContext, style: Style): string[] {
  const { incident } = detail;
  const events = [...detail.events].sort((a, b) => a.at - b.at);
  const rows = events.map((event, i) => {
    const next = events[i + 1];
    const step =
      next !== undefined
        ? formatDuration(next.at - event.at)
        : incident.closedAt === null
          ? `${formatDuration(time.now - event.at)} so far`
          : '';
    const kind =
      event.kind === 'awaiting-operator' || event.kind.endsWith('failed')
        ? style.bad(event.kind)
        : event.kind;
    return [
      formatInstant(event.at, time.timeZone, { time: true, ms: true, zone: false }),
      offset(event.at, incident),
      step,
      kind,
      event.detail,
    ];
  });
  const zone =
    events[0] === undefined ? '' : formatInstant(events[0].at, time.timeZone).split(' ').slice(2).join(' ');
  return [
    style.bold(`Timeline${zone === '' ? '' : ` (${zone})`}`),
    ...renderTable(
      [
        { header: 'time' },
        { header: 'since open', align: 'right' },
        { header: 'step', align: 'right' },
        { header: 'event' },
        { header: 'detail' },
      ],
      rows,
      INDENT,
    ),
  ];
}

/** Why the host was judged dead, each fence attempt, and what proved it off. */
function evidence(detail: IncidentDetail, time: TimeContext, style: Style): string[] {
  const { incident, events } = detail;
  if (incident.kind === 'vm') return [];
  const lines = [style.bold('Fence evidence')];
  const input = incident.input?.evidence;
  const suspected = events.find((e) => e.kind === 'suspected');
  const silence = input ?? (suspected === undefined ? undefined : rec(suspected.data?.evidence));
  const relays = arr(silence?.relays).map(rec);
  if (relays.length > 0) {
    const heard = relays.map(
      (r) => `${str(r.relayId) ?? '?'} ${formatDuration(num(r.lastHeardMsAgo) ?? 0)} before`,
    );
    const after = num(silence?.silentAfterMs);
    lines.push(
      `${INDENT}silence    every live relay called ${incident.hostId} silent` +
        `${after === undefined ? '' : ` (silent after ${formatDuration(after)})`}; last heard: ${heard.join(', ')}`,
    );
  }
  const overdue = arr(silence?.overdueRelays).map(rec);
  if (overdue.length > 0)
    lines.push(
      `${INDENT}ignored    ${overdue.map((r) => `${str(r.relayId) ?? '?'} (overdue, last report ${formatDuration(num(r.reportAgeMs) ?? 0)} before)`).join(', ')}`,
    );
  const confirmed = events.find((e) => e.kind === 'silence-confirmed');
  if (confirmed !== undefined)
    lines.push(`${INDENT}confirmed  ${confirmed.detail} (${offset(confirmed.at, incident)})`);
  const attempts = events.filter((e) => e.kind === 'fence-ordered');
  const offs = events.filter((e) => e.kind === 'power-off-confirmed');
  if (attempts.length > 0) {
    const rows = attempts.map((attempt, i) => {
      const commandId = str(attempt.data?.commandId);
      const off = offs.find((o) => commandId !== undefined && str(o.data?.commandId) === commandId);
      const next = attempts[i + 1];
      const failed = events.find(
        (e) => e.kind === 'fence-failed' && e.at >= attempt.at && (next === undefined || e.at < next.at),
      );
      const result =
        off !== undefined
          ? `off after ${formatDuration(off.at - attempt.at)}: ${off.detail}`
          : failed !== undefined
            ? style.bad(failed.detail)
            : next !== undefined
              ? style.bad('no power-off read back')
              : incident.closedAt === null && incident.fencedAt === null
                ? 'waiting for the relay'
                : style.bad('no power-off read back');
      return [
        String(num(attempt.data?.attempt) ?? i + 1),
        str(attempt.data?.relayId) ?? '?',
        offset(attempt.at, incident),
        result,
      ];
    });
    lines.push(
      ...renderTable(
        [
          { header: 'attempt', align: 'right' },
          { header: 'relay' },
          { header: 'ordered' },
          { header: 'result' },
        ],
        rows,
        INDENT,
      ),
    );
  }
  for (const kind of [
    'fencing-suppressed',
    'awaiting-operator',
    'operator-timed-out',
    'host-came-back',
    'boot-ended',
    'false-alarm',
  ]) {
    const event = events.find((e) => e.kind === kind);
    if (event !== undefined) lines.push(`${INDENT}${kind}: ${event.detail} (${offset(event.at, incident)})`);
  }
  const byOperator = offs.find((o) => o.data?.by === 'operator');
  if (byOperator !== undefined)
    lines.push(
      `${INDENT}confirmed off by operator ${str(byOperator.data?.operator) ?? '?'} at ${formatInstant(byOperator.at, time.timeZone)}`,
    );
  const fenced = events.find((e) => e.kind === 'fenced');
  if (fenced !== undefined)
    lines.push(`${INDENT}verdict    ${fenced.detail} (${offset(fenced.at, incident)})`);
  else if (incident.fencedAt === null && incident.closedAt !== null)
    lines.push(`${INDENT}verdict    never fenced`);
  return lines.length === 1 ? [] : lines;
}

function vmSection(detail: IncidentDetail, style: Style): string[] {
  const rows = vmRows(detail);
  if (rows.length === 0) return [];
  const { incident } = detail;
  const cells = rows.map((r) => [
    r.vmId,
    r.priority,
    r.down ? style.bad(r.outcome) : r.outcome,
    r.where,
    r.attempts === 0 ? '' : String(r.attempts),
    r.at === null ? '' : offset(r.at, incident),
    r.why,
  ]);
  const lines = [
    style.bold(`VMs (${plural(rows.length, 'HA VM')})`),
    ...renderTable(
      [
        { header: 'VM' },
        { header: 'priority' },
        { header: 'outcome' },
        { header: 'where' },
        { header: 'starts', align: 'right' },
        { header: 'running', align: 'right' },
        { header: 'why' },
      ],
      cells,
      INDENT,
    ),
  ];
  const down = rows.filter((r) => r.down).map((r) => r.vmId);
  if (down.length > 0)
    lines.push(
      '',
      style.bad(`Left down: ${listOf(down, 20)}`) +
        ' — on the retry list: they start when a host can take them, or `halo vm down-on-purpose <vm> on` to stop retrying',
    );
  return lines;
}

/** What the operator can do next, for an incident that waits for one. */
function nextSteps(detail: IncidentDetail): string[] {
  const { incident } = detail;
  if (incident.outcome !== 'awaiting-operator' || incident.closedAt !== null) return [];
  return [
    'Next: make sure the host is powered off (cut its power if need be), then',
    `${INDENT}halo confirm-off ${incident.hostId} --site ${incident.siteId}`,
  ];
}

/** The whole human report of one incident. `local`: no Step Functions console to link to. */
export function renderIncident(
  detail: IncidentDetail,
  options: { readonly time: TimeContext; readonly style: Style; readonly local: boolean },
): string[] {
  const { time, style, local } = options;
  const sections = [
    header(detail, time, style, local),
    timeline(detail, time, style),
    evidence(detail, time, style),
    vmSection(detail, style),
    nextSteps(detail),
  ].filter((s) => s.length > 0);
  return sections.flatMap((s, i) => (i === 0 ? s : ['', ...s]));
}

/** The latest event of an incident: the step it is at. */
export function latestEvent(events: readonly IncidentEvent[]): IncidentEvent | undefined {
  let latest: IncidentEvent | undefined;
  for (const e of events) if (latest === undefined || e.at >= latest.at) latest = e;
  return latest;
}
