import { describe, expect, it } from 'vitest';
import {
  DEFAULT_MASS_SILENCE_SHARE,
  decideFencing,
  type FencingPolicyInput,
  InvalidPolicyInputError,
} from '../../../core/fencing-policy';

const input = (extra: Partial<FencingPolicyInput> = {}): FencingPolicyInput => ({
  liveRelays: 2,
  clusterHosts: 10,
  silentHostsInCluster: 1,
  hostInMaintenance: false,
  fencingEnabled: true,
  hostRecovered: false,
  ...extra,
});

describe('fencing policy', () => {
  it('defaults the mass-silence share to one half', () => {
    expect(DEFAULT_MASS_SILENCE_SHARE).toBe(0.5);
  });

  it('fences a silent host when nothing suppresses it, echoing the inputs as evidence', () => {
    const decision = decideFencing(input());
    expect(decision).toMatchObject({ action: 'fence', reason: 'host-silent' });
    expect(decision.evidence).toEqual({ ...input(), massSilenceShare: 0.5 });
    expect(decision.detail).toContain('1 of 10');
  });

  it('suppresses when every relay of the site is silent: partitioned, not dead (safety rule 2)', () => {
    const decision = decideFencing(input({ liveRelays: 0 }));
    expect(decision).toMatchObject({ action: 'suppress', reason: 'site-partitioned' });
    expect(decision.detail).toContain('0 live');
  });

  it('suppresses when the host was heard again', () => {
    expect(decideFencing(input({ hostRecovered: true }))).toMatchObject({
      action: 'suppress',
      reason: 'host-recovered',
    });
  });

  it('suppresses for a host in maintenance (safety rule 7)', () => {
    expect(decideFencing(input({ hostInMaintenance: true }))).toMatchObject({
      action: 'suppress',
      reason: 'maintenance',
    });
  });

  it('suppresses when fencing is disabled for the cluster (safety rule 7)', () => {
    expect(decideFencing(input({ fencingEnabled: false }))).toMatchObject({
      action: 'suppress',
      reason: 'fencing-disabled',
    });
  });

  it('suppresses when more than half the cluster is silent (safety rule 3), with the numbers in the detail', () => {
    const decision = decideFencing(input({ silentHostsInCluster: 6 }));
    expect(decision).toMatchObject({ action: 'suppress', reason: 'mass-silence' });
    expect(decision.detail).toContain('6 of 10');
    expect(decision.detail).toContain('60%');
    expect(decision.detail).toContain('50%');
  });

  describe('mass-silence boundary', () => {
    it('fences at exactly the share: 5 of 10 silent', () => {
      expect(decideFencing(input({ silentHostsInCluster: 5 })).action).toBe('fence');
    });

    it('suppresses just above the share: 6 of 10 silent', () => {
      expect(decideFencing(input({ silentHostsInCluster: 6 })).reason).toBe('mass-silence');
    });

    it('fences at exactly 1 of 2 and suppresses 2 of 2', () => {
      expect(decideFencing(input({ clusterHosts: 2, silentHostsInCluster: 1 })).action).toBe('fence');
      expect(decideFencing(input({ clusterHosts: 2, silentHostsInCluster: 2 })).reason).toBe('mass-silence');
    });

    it('compares exactly where a product would round: 57 of 100 at a 0.57 share fences', () => {
      // 0.57 * 100 is 56.99999999999999 in floating point; the share is met, not exceeded.
      expect(
        decideFencing(input({ clusterHosts: 100, silentHostsInCluster: 57, massSilenceShare: 0.57 })).action,
      ).toBe('fence');
      expect(
        decideFencing(input({ clusterHosts: 100, silentHostsInCluster: 58, massSilenceShare: 0.57 })).reason,
      ).toBe('mass-silence');
    });

    it('honours a custom share: 3 of 10 silent is too many at 0.25', () => {
      expect(decideFencing(input({ silentHostsInCluster: 3, massSilenceShare: 0.25 })).reason).toBe(
        'mass-silence',
      );
    });

    it('never suppresses for mass silence at a share of 1: a lone host is fenced', () => {
      expect(
        decideFencing(input({ clusterHosts: 1, silentHostsInCluster: 1, massSilenceShare: 1 })).action,
      ).toBe('fence');
    });
  });

  describe('check order', () => {
    it('site-partitioned wins over every other reason', () => {
      const everything = input({
        liveRelays: 0,
        hostRecovered: true,
        hostInMaintenance: true,
        fencingEnabled: false,
        silentHostsInCluster: 10,
      });
      expect(decideFencing(everything).reason).toBe('site-partitioned');
    });

    it('then host-recovered, maintenance, fencing-disabled, mass-silence', () => {
      const base = { hostInMaintenance: true, fencingEnabled: false, silentHostsInCluster: 10 };
      expect(decideFencing(input({ ...base, hostRecovered: true })).reason).toBe('host-recovered');
      expect(decideFencing(input(base)).reason).toBe('maintenance');
      expect(decideFencing(input({ ...base, hostInMaintenance: false })).reason).toBe('fencing-disabled');
      expect(decideFencing(input({ ...base, hostInMaintenance: false, fencingEnabled: true })).reason).toBe(
        'mass-silence',
      );
    });
  });

  describe('invalid input', () => {
    it.each<[string, Partial<FencingPolicyInput>, keyof FencingPolicyInput]>([
      ['negative live relays', { liveRelays: -1 }, 'liveRelays'],
      ['fractional live relays', { liveRelays: 1.5 }, 'liveRelays'],
      ['negative cluster size', { clusterHosts: -1 }, 'clusterHosts'],
      ['an empty cluster', { clusterHosts: 0, silentHostsInCluster: 0 }, 'clusterHosts'],
      ['negative silent hosts', { silentHostsInCluster: -1 }, 'silentHostsInCluster'],
      ['no silent host although this one is silent', { silentHostsInCluster: 0 }, 'silentHostsInCluster'],
      ['more silent hosts than hosts', { silentHostsInCluster: 11 }, 'silentHostsInCluster'],
      ['NaN silent hosts', { silentHostsInCluster: Number.NaN }, 'silentHostsInCluster'],
      ['a share of 0', { massSilenceShare: 0 }, 'massSilenceShare'],
      ['a negative share', { massSilenceShare: -0.5 }, 'massSilenceShare'],
      ['a share above 1', { massSilenceShare: 1.01 }, 'massSilenceShare'],
      ['a NaN share', { massSilenceShare: Number.NaN }, 'massSilenceShare'],
    ])('refuses %s', (_, extra, field) => {
      let thrown: unknown;
      try {
        decideFencing(input(extra));
      } catch (error) {
        thrown = error;
      }
      expect(thrown).toBeInstanceOf(InvalidPolicyInputError);
      expect(thrown).toMatchObject({ name: 'InvalidPolicyInputError', code: 'invalid-policy-input', field });
    });

    it('accepts no silent host once the host has recovered', () => {
      expect(decideFencing(input({ silentHostsInCluster: 0, hostRecovered: true })).reason).toBe(
        'host-recovered',
      );
    });

    it('refuses invalid input even when a suppress reason would apply', () => {
      expect(() => decideFencing(input({ liveRelays: 0, silentHostsInCluster: 11 }))).toThrow(
        InvalidPolicyInputError,
      );
    });
  });
});
