import { describe, expect, it } from 'vitest';
import type { HostLoad } from '../../../core/placement';
import { resolvePolicy } from '../../../core/policy';
import {
  classifyVmState,
  type HostFacts,
  recoveryTargets,
  restartVerdict,
  startScope,
} from '../../../core/vm-recovery';

const MIN = 60_000;
const HOUR = 60 * MIN;
const budget = { vmRestartLimit: 3, vmRestartWindowMs: HOUR, vmRestartBackoffMs: 10_000 };
const T = 1_700_000_000_000;

describe('classifyVmState: what HA restarts', () => {
  it.each([
    ['crashed', null],
    ['crashed', 'panicked'],
    ['shut-off', 'crashed'],
    ['shut-off', 'failed'],
    ['shut-off', 'unknown'],
    ['shut-off', null],
    ['down', null],
  ] as const)('%s (%s) stopped unexpectedly', (state, reason) => {
    expect(classifyVmState(state, reason)).toBe('unexpected');
  });

  it.each([
    ['shut-off', 'shutdown'],
    ['shut-off', 'destroyed'],
    ['shut-off', 'saved'],
    ['shut-off', 'migrated'],
    ['shut-off', 'from-snapshot'],
    ['shut-off', 'daemon'],
  ] as const)('%s (%s) was stopped on purpose or is no failure: it stays down', (state, reason) => {
    expect(classifyVmState(state, reason)).toBe('on-purpose');
  });

  it.each([
    ['running', 'booted'],
    ['paused', 'io-error'],
  ] as const)('%s (%s) is active', (state, reason) => {
    expect(classifyVmState(state, reason)).toBe('active');
  });
});

describe('restartVerdict: at most 3 restarts an hour, with backoff', () => {
  it('given no restart in the window, then the restart goes at once', () => {
    expect(restartVerdict([], T, budget)).toEqual({ allowed: true, at: T, recent: [] });
    expect(restartVerdict([T - 2 * HOUR], T, budget)).toEqual({ allowed: true, at: T, recent: [] });
  });

  it('given restarts just before, then each next one waits base × 2^(n−2) after the previous', () => {
    expect(restartVerdict([T - 1000], T, budget)).toMatchObject({ allowed: true, at: T - 1000 + 10_000 });
    expect(restartVerdict([T - 5000, T - 1000], T, budget)).toMatchObject({
      allowed: true,
      at: T - 1000 + 20_000,
    });
  });

  it('given the previous restart long ago, then the backoff has passed and it goes at once', () => {
    expect(restartVerdict([T - 30 * MIN], T, budget)).toMatchObject({ allowed: true, at: T });
  });

  it('given three restarts in the window, then it is refused until the oldest leaves the window', () => {
    const restarts = [T - 50 * MIN, T - 20 * MIN, T - MIN];
    expect(restartVerdict(restarts, T, budget)).toEqual({
      allowed: false,
      until: T - 50 * MIN + HOUR,
      recent: restarts,
    });
    // Once it left, one restart is allowed, after the backoff of the third within the window.
    expect(restartVerdict(restarts, T + 10 * MIN + 1, budget)).toMatchObject({ allowed: true });
  });

  it('keeps only the restarts within the window, oldest first, whatever order they came in', () => {
    const verdict = restartVerdict([T - MIN, T - 2 * HOUR, T - 2 * MIN], T, budget);
    expect(verdict.recent).toEqual([T - 2 * MIN, T - MIN]);
  });

  it('reads its three fields from the resolved policy: 3 per hour, backoff from the heartbeat', () => {
    const policy = resolvePolicy();
    expect(policy).toMatchObject({ vmRestartLimit: 3, vmRestartWindowMs: HOUR, vmRestartBackoffMs: 10_000 });
    expect(resolvePolicy({ hostHeartbeatMs: 200, relayReportMs: 500 }).vmRestartBackoffMs).toBe(1000);
    expect(policy.vmRetryIntervalMs).toBe(60_000);
    expect(() => resolvePolicy({ vmRestartLimit: 0 })).toThrow(/vmRestartLimit/);
    expect(() => resolvePolicy({ vmRestartLimit: 1.5 })).toThrow(/whole number/);
  });
});

const up = (hostId: string, extra: Partial<HostFacts> = {}): HostFacts => ({
  hostId,
  status: 'up',
  heard: true,
  bootId: `${hostId}-b1`,
  ...extra,
});

describe('startScope: never two copies', () => {
  it('given the VM runs, then it starts nowhere', () => {
    expect(startScope({ vmState: 'running', lastHost: up('h1'), pin: null, pinnedHost: null }).kind).toBe(
      'none',
    );
  });

  it('given its healthy host reports it crashed, then in place first, and elsewhere too (the read-back)', () => {
    expect(startScope({ vmState: 'crashed', lastHost: up('h1'), pin: null, pinnedHost: null })).toEqual({
      kind: 'free',
      inPlace: 'h1',
      elsewhere: true,
    });
  });

  it('given its host is silent, suspect, being fenced or awaiting an operator, then nowhere', () => {
    for (const facts of [
      up('h1', { heard: false }),
      up('h1', { status: 'suspect' }),
      up('h1', { status: 'fencing' }),
      up('h1', { status: 'awaiting-operator' }),
      up('h1', { status: 'maintenance', heard: false }),
    ]) {
      expect(startScope({ vmState: 'shut-off', lastHost: facts, pin: null, pinnedHost: null }).kind).toBe(
        'none',
      );
    }
  });

  it('given its host is fenced, then elsewhere only', () => {
    expect(
      startScope({ vmState: 'down', lastHost: up('h1', { status: 'fenced' }), pin: null, pinnedHost: null }),
    ).toEqual({ kind: 'free', inPlace: null, elsewhere: true });
  });

  it('given its host is in maintenance but heard reporting it stopped, then elsewhere only (rule 7)', () => {
    expect(
      startScope({
        vmState: 'crashed',
        lastHost: up('h1', { status: 'maintenance' }),
        pin: null,
        pinnedHost: null,
      }),
    ).toEqual({ kind: 'free', inPlace: null, elsewhere: true });
  });

  it('given a start without a result on h2 and h2 still in that boot, then only h2', () => {
    const pin = { hostId: 'h2', bootId: 'h2-b1' };
    expect(startScope({ vmState: 'crashed', lastHost: up('h1'), pin, pinnedHost: up('h2') })).toEqual({
      kind: 'pinned',
      hostId: 'h2',
    });
    expect(
      startScope({
        vmState: 'crashed',
        lastHost: up('h1'),
        pin,
        pinnedHost: up('h2', { status: 'suspect' }),
      }).kind,
    ).toBe('none');
  });

  it('given the pinned host rebooted or was fenced, then the pin is void', () => {
    const pin = { hostId: 'h2', bootId: 'h2-b1' };
    for (const pinnedHost of [up('h2', { bootId: 'h2-b2' }), up('h2', { status: 'fenced' }), null]) {
      expect(startScope({ vmState: 'crashed', lastHost: up('h1'), pin, pinnedHost }).kind).toBe('free');
    }
  });
});

const load = (id: string, usedMiB: number, extra: Partial<HostLoad> = {}): HostLoad => ({
  id,
  cpus: 16,
  memoryMiB: 32_768,
  usedCpus: 0,
  usedMiB,
  antiAffinityGroups: [],
  maintenance: false,
  ...extra,
});
const vm = { id: 'web-1', cpus: 2, memoryMiB: 8192, ha: true, priority: 'high' as const };
const placement = { cpuOvercommit: 1, reserveMiB: 0, reserveCpus: 0 };

describe('recoveryTargets: in place first, then by placement', () => {
  const loads = [load('h1', 20_000), load('h2', 4096), load('h3', 0)];

  it('puts its own host first even when another is emptier', () => {
    const scope = { kind: 'free', inPlace: 'h1', elsewhere: true } as const;
    expect(recoveryTargets({ vm, scope, loads, policy: placement, tried: [] })).toEqual(['h1', 'h3', 'h2']);
  });

  it('skips its own host when the VM no longer fits there', () => {
    const full = [load('h1', 30_000), load('h2', 0)];
    const scope = { kind: 'free', inPlace: 'h1', elsewhere: true } as const;
    expect(recoveryTargets({ vm, scope, loads: full, policy: placement, tried: [] })).toEqual(['h2']);
  });

  it('leaves out the hosts this restart tried', () => {
    const scope = { kind: 'free', inPlace: 'h1', elsewhere: true } as const;
    expect(recoveryTargets({ vm, scope, loads, policy: placement, tried: ['h1'] })).toEqual(['h3', 'h2']);
  });

  it('honours anti-affinity like any placement', () => {
    const grouped = { ...vm, antiAffinity: 'db' };
    const scope = { kind: 'free', inPlace: null, elsewhere: true } as const;
    const withGroup = [load('h2', 0, { antiAffinityGroups: ['db'] }), load('h3', 4096)];
    expect(recoveryTargets({ vm: grouped, scope, loads: withGroup, policy: placement, tried: [] })).toEqual([
      'h3',
    ]);
  });

  it('gives only the pinned host, and nothing when the scope is none', () => {
    expect(
      recoveryTargets({ vm, scope: { kind: 'pinned', hostId: 'h2' }, loads, policy: placement, tried: [] }),
    ).toEqual(['h2']);
    expect(
      recoveryTargets({ vm, scope: { kind: 'none', reason: 'x' }, loads, policy: placement, tried: [] }),
    ).toEqual([]);
  });
});
