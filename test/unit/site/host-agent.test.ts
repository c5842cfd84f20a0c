import { describe, expect, it } from 'vitest';
import type { ObservedVm } from '../../../contracts/relay-protocol';
import { HostAgent } from '../../../site/agent/host-agent';
import { inventoryDigest, type StartVmRequest } from '../../../site/lan-protocol';
import { FakeHypervisor, FakeLan, flush, ManualClock, T0 } from './fakes';

const HEARTBEAT_MS = 2000;
const running = (id: string): ObservedVm => ({ id, cpus: 2, memoryMiB: 4096, state: 'running' });

function setup() {
  const clock = new ManualClock();
  const lan = new FakeLan();
  const hypervisor = new FakeHypervisor('boot-a', { cpus: 32, memoryMiB: 65_536 }, [running('vm-1')]);
  const agent = new HostAgent(
    { hostId: 'h1', cluster: 'c1', relays: ['r1', 'r2'], hostHeartbeatMs: HEARTBEAT_MS },
    { clock, hypervisor, lan },
  );
  lan.attach('h1', agent);
  return { clock, lan, hypervisor, agent };
}

function request(overrides: Partial<StartVmRequest> = {}): StartVmRequest {
  return {
    kind: 'start-vm',
    commandId: 'dc1:h9:1:start:vm-7:1',
    relayId: 'r1',
    hostId: 'h1',
    vm: { id: 'vm-7', cpus: 2, memoryMiB: 2048 },
    notAfter: T0 + 20_000,
    ...overrides,
  };
}

describe('host agent heartbeat', () => {
  it('sends every relay the host, its boot, capacity and VMs at once, then every hostHeartbeatMs', async () => {
    // given an agent of h1 in a site with relays r1 and r2
    const { clock, lan, agent } = setup();

    // when it ticks for the first time
    await agent.tick();

    // then both relays get the full inventory, then a small heartbeat that carries its digest
    const content = { cluster: 'c1', bootId: 'boot-a', cpus: 32, memoryMiB: 65_536, vms: [running('vm-1')] };
    const digest = inventoryDigest(content);
    const inventory = { kind: 'inventory', hostId: 'h1', ...content, digest, sentAt: T0 };
    const heartbeat = {
      kind: 'heartbeat',
      hostId: 'h1',
      cluster: 'c1',
      bootId: 'boot-a',
      cpus: 32,
      memoryMiB: 65_536,
      vmCount: 1,
      digest,
      sentAt: T0,
    };
    for (const relay of ['r1', 'r2']) {
      expect(lan.sent.filter((m) => m.to === relay).map((m) => m.message)).toEqual([inventory, heartbeat]);
    }

    // when it ticks again just before the interval, then nothing more is sent
    clock.advance(HEARTBEAT_MS - 1);
    await agent.tick();
    expect(lan.sentTo('r1', 'heartbeat')).toHaveLength(1);

    // when the interval is reached, then the next heartbeat goes out, stamped with its time
    clock.advance(1);
    await agent.tick();
    expect(lan.sentTo('r1', 'heartbeat').map((h) => h.sentAt)).toEqual([T0, T0 + HEARTBEAT_MS]);
  });

  it('keeps to its schedule when a tick comes late (no drift)', async () => {
    const { clock, lan, agent } = setup();
    await agent.tick();
    clock.advance(HEARTBEAT_MS + 300);
    await agent.tick();
    clock.advance(HEARTBEAT_MS - 300);
    await agent.tick();
    expect(lan.sentTo('r1', 'heartbeat').map((h) => h.sentAt - T0)).toEqual([0, 2300, 4000]);
  });

  it('repeats the last inventory while libvirtd does not answer, rather than fall silent and get fenced', async () => {
    // given an agent that has heartbeated once
    const { clock, lan, hypervisor, agent } = setup();
    await agent.tick();

    // when libvirtd stops answering
    hypervisor.down = true;
    clock.advance(HEARTBEAT_MS);
    await agent.tick();

    // then the heartbeat still goes out with the last known inventory's digest, and no new inventory
    const beats = lan.sentTo('r1', 'heartbeat');
    expect(beats).toHaveLength(2);
    expect(beats[1]?.digest).toBe(beats[0]?.digest);
    expect(lan.sentTo('r1', 'inventory').map((i) => i.vms)).toEqual([[running('vm-1')]]);
  });

  it('sends no heartbeat before it could read the hypervisor once', async () => {
    const { lan, hypervisor, agent } = setup();
    hypervisor.down = true;
    await agent.tick();
    expect(lan.sent).toEqual([]);
  });

  it('run() heartbeats on the clock until aborted', async () => {
    const { clock, lan, agent } = setup();
    const abort = new AbortController();
    const loop = agent.run(abort.signal);
    await flush();
    for (let i = 0; i < 3; i++) {
      clock.advance(HEARTBEAT_MS);
      await flush();
    }
    abort.abort();
    clock.advance(HEARTBEAT_MS);
    await loop;
    // The abort is seen when the sleep ends: no heartbeat after it.
    expect(lan.sentTo('r1', 'heartbeat').map((h) => h.sentAt - T0)).toEqual([0, 2000, 4000, 6000]);
  });
});

describe('host agent start requests', () => {
  it('starts the VM and answers the relay that asked', async () => {
    const { lan, hypervisor, agent } = setup();

    await agent.receive(request());

    expect(hypervisor.started).toEqual([{ id: 'vm-7', cpus: 2, memoryMiB: 2048 }]);
    expect(lan.sentTo('r1', 'start-result')).toEqual([
      {
        kind: 'start-result',
        commandId: 'dc1:h9:1:start:vm-7:1',
        hostId: 'h1',
        outcome: 'succeeded',
        detail: 'vm-7 running on h1',
        finishedAt: T0,
      },
    ]);
  });

  it('a repeated request gets the first answer and never starts the VM twice', async () => {
    // given a request already carried out
    const { clock, lan, hypervisor, agent } = setup();
    await agent.receive(request());

    // when the same command id arrives again, later (a resend after a lost answer)
    clock.advance(3000);
    await agent.receive(request());

    // then the VM was started once and both answers are the first one
    expect(hypervisor.started).toHaveLength(1);
    const answers = lan.sentTo('r1', 'start-result');
    expect(answers).toHaveLength(2);
    expect(answers[1]).toEqual(answers[0]);
  });

  it('a repeat that arrives while the first start is under way waits for it, and starts nothing', async () => {
    const { hypervisor, lan, agent } = setup();
    hypervisor.hold();
    const first = agent.receive(request());
    const second = agent.receive(request());
    await flush();
    hypervisor.release();
    await Promise.all([first, second]);
    expect(hypervisor.started).toHaveLength(1);
    expect(lan.sentTo('r1', 'start-result').map((r) => r.outcome)).toEqual(['succeeded', 'succeeded']);
  });

  it('a failed start is answered as failed, with the reason, and a repeat does not try again', async () => {
    const { lan, hypervisor, agent } = setup();
    hypervisor.startFails = 'not enough memory';
    await agent.receive(request());
    hypervisor.startFails = null;
    await agent.receive(request());
    expect(hypervisor.started).toHaveLength(1);
    const answers = lan.sentTo('r1', 'start-result');
    expect(answers.map((a) => a.outcome)).toEqual(['failed', 'failed']);
    expect(answers[0]?.detail).toContain('not enough memory');
  });

  it('does not start a request past its notAfter', async () => {
    const { lan, hypervisor, agent } = setup();
    await agent.receive(request({ notAfter: T0 - 1 }));
    expect(hypervisor.started).toEqual([]);
    expect(lan.sentTo('r1', 'start-result')[0]?.outcome).toBe('failed');
  });

  it('does not start a request of another boot than the one it runs (that boot ended, and the start with it)', async () => {
    const { lan, hypervisor, agent } = setup();
    await agent.receive(request({ bootId: 'boot-old' }));
    expect(hypervisor.started).toEqual([]);
    const [answer] = lan.sentTo('r1', 'start-result');
    expect(answer?.outcome).toBe('failed');
    expect(answer?.detail).toMatch(/ordered for boot boot-old; this host runs boot boot-a/);
    await agent.receive(request({ commandId: 'dc1:h9:1:start:vm-7:2', bootId: 'boot-a' }));
    expect(hypervisor.started.map((v) => v.id)).toEqual(['vm-7']);
  });

  it('ignores a request meant for another host', async () => {
    const { lan, hypervisor, agent } = setup();
    await agent.receive(request({ hostId: 'h2' }));
    expect(hypervisor.started).toEqual([]);
    expect(lan.sent).toEqual([]);
  });

  it('heartbeats at once after a start, so the relays see the VM running', async () => {
    const { clock, lan, agent } = setup();
    await agent.tick();
    clock.advance(500);
    await agent.receive(request());
    await agent.tick();
    const beats = lan.sentTo('r1', 'heartbeat');
    expect(beats.map((b) => b.sentAt - T0)).toEqual([0, 500]);
    expect(beats.map((b) => b.vmCount)).toEqual([1, 2]);
    // the changed inventory went out before that heartbeat
    expect(lan.sentTo('r1', 'inventory').map((i) => i.vms.map((v) => v.id))).toEqual([
      ['vm-1'],
      ['vm-1', 'vm-7'],
    ]);
  });
});

describe('host agent: only its configured relays are obeyed', () => {
  it('ignores start and inventory requests from a relay that is not in its configuration', async () => {
    const { lan, hypervisor, agent } = setup();
    await agent.tick();
    const before = lan.sent.length;
    await agent.receive(request({ relayId: 'r9' }));
    await agent.receive({ kind: 'inventory-request', relayId: 'r9', hostId: 'h1' });
    await agent.receive({ kind: 'definition-request', relayId: 'r9', hostId: 'h1', vmIds: ['vm-1'] });
    expect(hypervisor.started).toEqual([]);
    expect(lan.sent.length).toBe(before);
  });

  it('answers a configured relay’s inventory request with the full inventory', async () => {
    const { lan, agent } = setup();
    await agent.tick();
    await agent.receive({ kind: 'inventory-request', relayId: 'r2', hostId: 'h1' });
    expect(lan.sentTo('r2', 'inventory').map((i) => i.vms.map((v) => v.id))).toEqual([['vm-1'], ['vm-1']]);
  });

  it('hands the start’s definition to the hypervisor, so a host without the VM can define it', async () => {
    const { hypervisor, agent } = setup();
    const definitions: (string | undefined)[] = [];
    const start = hypervisor.startVm.bind(hypervisor);
    hypervisor.startVm = async (vm, definition) => {
      definitions.push(definition);
      await start(vm);
    };
    await agent.receive(request({ definition: '<domain><name>vm-7</name></domain>' }));
    expect(definitions).toEqual(['<domain><name>vm-7</name></domain>']);
  });
});
