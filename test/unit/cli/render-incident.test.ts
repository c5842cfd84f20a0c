import { describe, expect, it } from 'vitest';
import { consoleUrl, incidentIsBadNews, renderIncident } from '../../../cli/render-incident';
import { makeStyle } from '../../../cli/style';
import { FIXED_INCIDENT, FIXED_NOW } from '../../fixtures/cli/incident';

const time = { now: FIXED_NOW, timeZone: 'UTC' };

describe('halo incident, rendered for people', () => {
  it('renders a fixed incident the same way every time (snapshot)', async () => {
    const text = renderIncident(FIXED_INCIDENT, { time, style: makeStyle(false), local: false }).join('\n');
    await expect(`${text}\n`).toMatchFileSnapshot('__snapshots__/incident.txt');
  });

  it('gives every step its time, its offset from the opening and its duration until the next', () => {
    const text = renderIncident(FIXED_INCIDENT, { time, style: makeStyle(false), local: false }).join('\n');
    // fence attempt 1 at +3.3 s lasted until attempt 2, 20 s later
    expect(text).toMatch(/09:26:56\.430 +\+3\.3 s +20 s +fence-ordered +fence attempt 1/);
    expect(text).toMatch(/09:27:51\.520 +\+58 s +closed/);
  });

  it('shows the evidence behind the fence: who heard the host last, who was ignored, each attempt', () => {
    const text = renderIncident(FIXED_INCIDENT, { time, style: makeStyle(false), local: false }).join('\n');
    expect(text).toContain('last heard: r1 6.4 s before');
    expect(text).toContain('r2 (overdue, last report 31 s before)');
    expect(text).toMatch(/1 +r1 +\+3\.3 s +no power-off read back/);
    expect(text).toMatch(/2 +r1 +\+23 s +off after 18 s: .*level 2 fence_apc_snmp/);
  });

  it('says where each VM went and why, and what was left down', () => {
    const text = renderIncident(FIXED_INCIDENT, { time, style: makeStyle(false), local: false }).join('\n');
    expect(text).toMatch(/db-1 +high +started +→ node03 +1 +\+47 s +node03 keeps the cluster most even/);
    expect(text).toMatch(
      /web-1 +medium +started +→ node04 +2 +\+56 s +moved on after a failed start; failed on node01/,
    );
    expect(text).toMatch(/big-1 +low +unplaced +— +memory: needs 65536 MiB/);
    expect(text).toContain('Left down: big-1');
    expect(incidentIsBadNews(FIXED_INCIDENT)).toBe(true);
  });

  it('links the execution in the Step Functions console of its region, but not for the local control plane', () => {
    const arn = FIXED_INCIDENT.executionArn ?? '';
    expect(consoleUrl(arn)).toBe(
      `https://eu-west-1.console.aws.amazon.com/states/home?region=eu-west-1#/v2/executions/details/${arn}`,
    );
    const local = renderIncident(FIXED_INCIDENT, { time, style: makeStyle(false), local: true }).join('\n');
    expect(local).toContain('(local control plane: no Step Functions console)');
    expect(local).not.toContain('console.aws.amazon.com');
  });

  it('renders times in the zone it is given', () => {
    const text = renderIncident(FIXED_INCIDENT, {
      time: { now: FIXED_NOW, timeZone: 'Europe/Paris' },
      style: makeStyle(false),
      local: false,
    }).join('\n');
    expect(text).toContain('opened     2026-03-14 10:26:53 CET (12 min 34 s ago)');
    expect(text).toMatch(/10:26:53\.120 +\+0 ms/);
  });

  it('colours outcomes on a terminal without breaking the table alignment', () => {
    const plain = renderIncident(FIXED_INCIDENT, { time, style: makeStyle(false), local: false });
    const coloured = renderIncident(FIXED_INCIDENT, { time, style: makeStyle(true), local: false });
    expect(coloured.join('\n')).toContain('\x1b[31mpartially-recovered\x1b[39m');
    // biome-ignore lint/suspicious/noControlCharactersInRegex: stripping the colour codes.
    const stripped = coloured.map((line) => line.replace(/\x1b\[[0-9;]*m/g, ''));
    expect(stripped).toEqual(plain);
  });

  it('an open incident waiting for an operator says what to run next', () => {
    const waiting = {
      ...FIXED_INCIDENT,
      incident: { ...FIXED_INCIDENT.incident, outcome: 'awaiting-operator', closedAt: null, fencedAt: null },
      events: FIXED_INCIDENT.events.slice(0, 4),
    };
    const text = renderIncident(waiting, { time, style: makeStyle(false), local: false }).join('\n');
    expect(text).toContain('open for   12 min 34 s');
    expect(text).toContain('halo confirm-off node02 --site dc1');
    expect(text).toMatch(/fence-ordered .*\n/);
    expect(text).toContain('12 min 30 s so far');
  });
});
