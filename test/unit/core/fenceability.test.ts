import { describe, expect, it } from 'vitest';
import { assessCapacity, planHostFailure } from '../../../core/capacity';
import { fenceability, fenceVerdict, type RelayFenceCheck } from '../../../core/fenceability';
import type { Host, PlacementPolicy } from '../../../core/model';

const ipmiDown = { level: 1, driver: 'ipmitool', ok: false, error: 'connection timed out' };
const pduDown = { level: 2, driver: 'fence_apc_snmp', ok: false, error: 'authentication failed' };
const pduUp = { level: 2, driver: 'fence_apc_snmp', ok: true, error: null };

function check(relayId: string, levels: RelayFenceCheck['levels']): RelayFenceCheck {
  return { relayId, ok: levels.some((l) => l.ok), levels };
}

describe('fenceVerdict', () => {
  it('is unknown (null) when no relay checked, true when any relay can fence, false when none can', () => {
    expect(fenceVerdict([])).toBeNull();
    expect(fenceVerdict([false, true])).toBe(true);
    expect(fenceVerdict([true])).toBe(true);
    expect(fenceVerdict([false, false])).toBe(false);
  });
});

describe('fenceability', () => {
  it('given no relay ever checked the host (older relays), then unknown, with no reason', () => {
    expect(fenceability([])).toEqual({ fenceable: null, reason: null });
  });

  it('given one level of one relay answers, then fenceable, whatever the other levels and relays say', () => {
    expect(fenceability([check('r2', [ipmiDown]), check('r1', [ipmiDown, pduUp])])).toEqual({
      fenceable: true,
      reason: null,
    });
  });

  it('given every level of every relay failed, then not fenceable, naming each relay and level in order', () => {
    const verdict = fenceability([check('r2', [pduDown, ipmiDown]), check('r1', [ipmiDown])]);

    expect(verdict).toEqual({
      fenceable: false,
      reason:
        'relay r1: level 1 ipmitool: connection timed out; ' +
        'relay r2: level 1 ipmitool: connection timed out, level 2 fence_apc_snmp: authentication failed',
    });
  });

  it('given a relay with no level configured or a level that failed without a reason, then it says so', () => {
    const silentLevel = { level: 1, driver: 'ipmitool', ok: false, error: null };

    expect(fenceability([check('r1', []), check('r2', [silentLevel])]).reason).toBe(
      'relay r1: no fence level configured; relay r2: level 1 ipmitool: no answer',
    );
  });

  it("trusts the relay's own verdict over its levels (a relay may count a level the cloud cannot judge)", () => {
    expect(fenceability([{ relayId: 'r1', ok: true, levels: [ipmiDown] }]).fenceable).toBe(true);
  });
});

describe('N+1 with fenceability', () => {
  const policy: PlacementPolicy = { cpuOvercommit: 1, reserveMiB: 0, reserveCpus: 0 };
  const vm = (id: string) => ({ id, cpus: 2, memoryMiB: 4096, ha: true, priority: 'high' as const });
  const host = (id: string, extra: Partial<Host> = {}): Host => ({
    id,
    cpus: 16,
    memoryMiB: 32_768,
    vms: [vm(`${id}-vm`)],
    ...extra,
  });
  const broken = { fenceable: false, reason: 'relay r1: level 1 ipmitool: connection timed out' };

  it('given every host fenceable or unknown, then failover is automatic and no plan needs an operator', () => {
    const report = assessCapacity(
      [host('a', { fencing: { fenceable: true, reason: null } }), host('b'), host('c')],
      policy,
    );

    expect(report.automaticFailover).toBe(true);
    expect(report.notFenceable).toEqual([]);
    expect(report.plans.every((p) => !p.needsOperator && p.operatorReason === null)).toBe(true);
  });

  it('given b cannot be fenced, then N+1 still holds but its failover needs an operator, and says why', () => {
    const report = assessCapacity([host('a'), host('b', { fencing: broken }), host('c')], policy);

    expect(report.survivesAnyOneHostFailure).toBe(true);
    expect(report.automaticFailover).toBe(false);
    expect(report.notFenceable).toEqual([
      { hostId: 'b', reason: 'cannot be fenced: relay r1: level 1 ipmitool: connection timed out' },
    ]);
    const plan = report.plans.find((p) => p.failedHostId === 'b');
    expect(plan).toMatchObject({ needsOperator: true, survives: true });
    // Its VMs still have their place: they only wait for the operator's confirmation.
    expect(plan?.plan.placements.map((p) => p.vmId)).toEqual(['b-vm']);
    expect(planHostFailure('b', [host('a'), host('b', { fencing: broken })], policy).needsOperator).toBe(
      true,
    );
  });
});
