import { createSocket } from 'node:dgram';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { readLanKey, sealEnvelope } from '../../site/adapters/lan-transport';
import { LAN_PROTOCOL_VERSION } from '../../site/lan-protocol';
import type { IpmiSim } from '../support/ipmi-sim';
import { eventually, newLanKey } from './site/processes';
import {
  CLUSTER,
  HOSTS,
  hostRecords,
  incidentEvents,
  incidents,
  makeWebHa,
  openRelaySite,
  type RelaySite,
  SITE,
} from './site/relay-site';

/**
 * The relay program for real: `halo-relay` as a process, configured from a YAML file, against the local
 * control plane (`npm start -- --serve`, production timing: 2 s heartbeats, silent after 3 missed),
 * fencing through ipmitool against OpenIPMI's ipmi_sim, hearing agents over the authenticated LAN.
 * Durations are not asserted: every wait polls for an outcome, with a generous limit.
 */

describe('halo-relay against the local control plane and ipmi_sim', () => {
  let site: RelaySite;

  beforeAll(async () => {
    site = await openRelaySite();
  }, 180_000);

  afterAll(async () => {
    await site?.close();
  });

  it('reports every host heard over the LAN, with each host’s fence readiness', async () => {
    const hosts = await eventually('three hosts up with readiness', async () => {
      const records = await hostRecords(site.cp);
      const ready = records.filter((h) => JSON.stringify(h).includes('"ok":true'));
      return records.length === 3 && ready.length === 3 ? records : undefined;
    });
    expect(hosts.map((h) => h.hostId).sort()).toEqual([...HOSTS]);
    // the VM's metadata makes it HA
    await makeWebHa(site.cp);
  }, 120_000);

  it('ignores forged, replayed and unauthenticated LAN packets, counting them', async () => {
    const socket = createSocket('udp4');
    const send = (bytes: Buffer) =>
      new Promise<void>((done) => socket.send(bytes, site.lanPort, '127.0.0.1', () => done()));
    const heartbeat = {
      kind: 'heartbeat' as const,
      hostId: 'node09',
      cluster: CLUSTER,
      bootId: 'forged-boot',
      cpus: 64,
      memoryMiB: 131_072,
      vmCount: 0,
      digest: '0'.repeat(64),
      sentAt: Date.now(),
    };
    const envelope = {
      v: LAN_PROTOCOL_VERSION,
      site: SITE,
      from: 'node09',
      port: 9,
      seq: Date.now(),
      sentAt: Date.now(),
      msg: heartbeat,
    };
    // forged: another key
    await send(sealEnvelope(readLanKey(newLanKey()), envelope));
    // unauthenticated: no MAC at all
    await send(Buffer.from(JSON.stringify(envelope)));
    // valid, then replayed
    const valid = sealEnvelope(readLanKey(site.lanKey), envelope);
    await send(valid);
    await send(valid);
    socket.close();
    await eventually('drops logged', () => {
      const text = site.relay.lines.join('\n');
      return text.includes('unauthenticated') && text.includes('replayed') ? true : undefined;
    });
    // the one valid datagram is answered by an inventory request, but no forged host is ever reported
    const hosts = await hostRecords(site.cp);
    expect(hosts.map((h) => h.hostId)).not.toContain('node09');
  }, 60_000);

  it('a dead host is fenced through ipmi_sim: power-off read back, the HA VM restarted elsewhere', async () => {
    // when node01's agent dies (its heartbeats stop; its BMC still answers)
    await site.agents.get('node01')?.stop();

    // then the control plane opens an incident, the relay fences node01 and the BMC reads off
    const bmc = site.bmcs.get('node01') as IpmiSim;
    await eventually('node01 powered off', () => (bmc.power() === 'off' ? true : undefined), 120_000);
    expect(bmc.offCalls()).toBe(1);
    const incident = await eventually('incident closed', async () => {
      const list = await incidents(site.cp);
      return list.find((i) => i.hostId === 'node01' && i.closedAt !== null);
    });
    expect(incident.outcome).toBe('recovered');
    // the timeline says which fence level read the power back
    const events = await incidentEvents(site.cp, String(incident.incidentId));
    expect(JSON.stringify(events)).toContain('level 1 (ipmitool)');
    // and web01 runs on another host, started through its agent over the LAN
    const runningOn = [...site.agents.values()]
      .filter((a) => a.hostId !== 'node01')
      .filter((a) => a.hypervisor.vms.some((vm) => vm.id === 'web01' && vm.state === 'running'));
    expect(runningOn).toHaveLength(1);
    // the relay's logs carry no secret
    const logs = site.relay.lines.join('\n');
    for (const secret of [bmc.password, site.lanKey]) expect(logs).not.toContain(secret);
  }, 180_000);
});
