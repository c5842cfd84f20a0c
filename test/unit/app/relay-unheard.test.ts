import { beforeEach, describe, expect, it } from 'vitest';
import { createWorld, SILENT_MS, SITE, type StandardSite, standardSite, type World } from './world';

/**
 * A relay that does not list a host at all (it has not heard it since it started: lost state, a LAN key or
 * clock it cannot hear the agents with) is no evidence that the host lives. It must not keep a host that
 * the other relay calls silent from getting its incident; nor can it make a host silent by itself.
 */

let world: World;
let site: StandardSite;

beforeEach(async () => {
  world = createWorld();
  site = await standardSite(world);
});

function incidentsOf(hostId: string): string[] {
  return [...world.workflow.executions.values()].filter((i) => i.hostId === hostId).map((i) => i.incidentId);
}

describe('a relay that does not list a host', () => {
  it('does not outvote the relay that calls the host silent: the incident opens, naming it', async () => {
    // r2 went deaf: its reports list no host at all.
    await site.r2.report([]);
    await site.r1.report(site.hosts({ h1: { lastHeardMsAgo: SILENT_MS } }));
    const [incidentId] = incidentsOf('h1');
    expect(incidentId).toBeDefined();
    const input = [...world.workflow.executions.values()].find((i) => i.hostId === 'h1');
    expect(input?.evidence.unheardRelays).toEqual(['r2']);
    expect(input?.evidence.relays).toEqual([{ relayId: 'r1', lastHeardMsAgo: SILENT_MS }]);
    expect((await world.stores.relays.getRelay(SITE, 'r2'))?.unheardHosts).toEqual(['h1', 'h2', 'h3']);
  });

  it('makes no host silent by itself, and hearing it again clears the mark', async () => {
    await site.r2.report([]);
    await site.r1.report(site.hosts());
    expect(incidentsOf('h1')).toEqual([]);
    await site.r2.report(site.hosts());
    expect((await world.stores.relays.getRelay(SITE, 'r2'))?.unheardHosts).toBeUndefined();
  });

  it('still outvotes when it lists the host as heard', async () => {
    await site.r2.report(site.hosts());
    await site.r1.report(site.hosts({ h1: { lastHeardMsAgo: SILENT_MS } }));
    expect(incidentsOf('h1')).toEqual([]);
  });
});
